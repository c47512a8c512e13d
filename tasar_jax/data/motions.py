"""Motion vocabulary of the synthetic dataset: poses, temporal programs and the tracks that combine them.

An action class is a list of *tracks*, written as short strings (``tasar_jax.data.catalog``)::

    "<limb> <pose> <program>[@<start>-<end>]"      e.g. "R mouth rep3", "B up touch@0-0.5", "2C back go"

- limb: ``R`` / ``L`` one side (poses are written for the right side; ``L`` mirrors them), ``B`` both sides in
  phase, ``A`` both sides in anti-phase (the left side half a cycle later), ``C`` centre (trunk, head, both
  legs, the root); a leading ``2`` puts the track on the partner of a two-person action.
- pose: a name in ``POSES``: joint angles in degrees reached at activation +1 (``pos``) and, for oscillating
  programs, at -1 (``neg``). Pseudo-joints move the root: ``_fwd`` / ``_side`` (metres, along the body's
  facing / to its left, integrated along the current yaw), ``_lift`` (metres up).
- program: the activation over the action's progress q in [0, 1] (or the ``@`` window of it): ``touch``
  (rest, pose, hold, rest), ``repK`` (K smooth reps rest-pose-rest), ``pulseK`` (K fast ballistic reps),
  ``oscK`` (K oscillations between ``neg`` and ``pos``, ``oscKq`` a quarter cycle later), ``sawK`` (K slow
  rises and fast returns), ``go`` (rest to pose, then stays), ``back`` (pose to rest), ``hold`` (the pose for the
  whole clip).

A class played backwards (``reverse``) evaluates every program at 1 - q: sit down / stand up, put on / take off,
walk forwards / backwards are exact time reverses of each other. Activation waveforms are symmetric in
distribution (in-phase vs anti-phase, one vs three reps, forwards vs backwards), so such families share their
per-joint temporal statistics and differ only in time.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from tasar_jax.data import kinematics as kin

_R = "r_"


def _pose(pos: dict, neg: dict | None = None) -> tuple[dict, dict]:
    return pos, (neg or {})


# Right-side or centre poses, degrees (x, y, z) per joint; see kinematics for the sign conventions.
POSES: dict[str, tuple[dict, dict]] = {
    # --- arm targets (right arm; "L" mirrors) ---
    "mouth": _pose({"r_shoulder": (-35, 0, 20), "r_elbow": (-145, 0, 0), "r_wrist": (-20, 0, 0)}),
    "face": _pose({"r_shoulder": (-55, 0, 15), "r_elbow": (-150, 0, 0)}),
    "eyes": _pose({"r_shoulder": (-65, 0, 10), "r_elbow": (-150, 0, 0), "r_wrist": (-30, 0, 0)}),
    "forehead": _pose({"r_shoulder": (-60, 0, -50), "r_elbow": (-150, 0, 0), "r_wrist": (-40, 0, 0)}),
    "head": _pose({"r_shoulder": (-110, 0, -45), "r_elbow": (-120, 0, 0)}),
    "ear": _pose({"r_shoulder": (-25, 0, -55), "r_elbow": (-150, 0, 0)}),
    "neck": _pose({"r_shoulder": (-40, 0, -35), "r_elbow": (-150, 0, 0), "r_wrist": (30, 0, 0)}),
    "chest": _pose({"r_shoulder": (-25, 0, 25), "r_elbow": (-115, 0, 0)}),
    "belly": _pose({"r_shoulder": (-10, 0, 20), "r_elbow": (-90, 0, 0)}),
    "back": _pose({"r_shoulder": (40, 0, 10), "r_elbow": (-100, 0, 0)}),
    "pocket": _pose({"r_shoulder": (15, 0, -12), "r_elbow": (-35, 0, 0), "r_wrist": (20, 0, 0)}),
    "front": _pose({"r_shoulder": (-85, 0, 0), "r_elbow": (-15, 0, 0)}),
    "front_low": _pose({"r_shoulder": (-45, 0, 5), "r_elbow": (-20, 0, 0)}),
    "front_mid": _pose({"r_shoulder": (-70, 0, 5), "r_elbow": (-40, 0, 0)}),
    "high": _pose({"r_shoulder": (-150, 0, -10), "r_elbow": (-15, 0, 0)}),
    "floor": _pose({"r_shoulder": (-60, 0, 0), "r_elbow": (-5, 0, 0)}),
    "up": _pose({"r_shoulder": (-5, 0, -170), "r_elbow": (-5, 0, 0)}),
    "side": _pose({"r_shoulder": (0, 0, -90), "r_elbow": (-5, 0, 0)}),
    "point": _pose({"r_shoulder": (-90, 0, -10), "r_elbow": (0, 0, 0), "r_hand": (-50, 0, 0)}),
    "desk": _pose({"r_shoulder": (-25, 0, 10), "r_elbow": (-80, 0, 0)}),
    "guard": _pose({"r_shoulder": (-35, 0, 0), "r_elbow": (-120, 0, 0)}),
    "wave_up": _pose({"r_shoulder": (-15, 0, -120), "r_elbow": (-70, 0, 0)}),
    "wind_up": _pose({"r_shoulder": (-150, 0, -35), "r_elbow": (-100, 0, 0)}),
    "arms_front": _pose({"r_shoulder": (-75, 0, 0), "r_elbow": (-25, 0, 0)}),
    "hug": _pose({"r_shoulder": (-80, 30, -10), "r_elbow": (-70, 0, 0)}),
    "cross": _pose({"r_shoulder": (-60, 40, 20), "r_elbow": (-90, 0, 0)}),
    "fist": _pose({"r_hand": (-55, 0, 0), "r_wrist": (-30, 0, 0)}),
    "thumb_up": _pose({"r_shoulder": (-30, 0, -5), "r_elbow": (-90, 0, 0), "r_wrist": (0, 0, -50)}),
    "thumb_down": _pose({"r_shoulder": (-30, 0, -5), "r_elbow": (-90, 0, 0), "r_wrist": (0, 0, 50)}),
    # --- arm movements around a held pose ---
    "punch": _pose({"r_shoulder": (-55, 5, 5), "r_elbow": (110, 0, 0)}),  # from guard: extend
    "punch_side": _pose({"r_shoulder": (35, 0, -85), "r_elbow": (110, 0, 0)}),
    "strike": _pose({"r_shoulder": (100, 0, 20), "r_elbow": (90, 0, 0)}),  # from wind-up: hit down
    "throw": _pose({"r_shoulder": (85, 0, 35), "r_elbow": (95, 0, 0), "r_wrist": (-40, 0, 0)}),
    "clap": _pose({"r_shoulder": (0, 30, 0)}, {"r_shoulder": (0, -35, 0)}),
    "scrub": _pose({"r_shoulder": (0, 15, 0), "r_wrist": (0, 0, 25)}, {"r_shoulder": (0, -15, 0),
                                                                       "r_wrist": (0, 0, -25)}),
    "tap": _pose({"r_wrist": (-35, 0, 0), "r_hand": (-30, 0, 0)}, {"r_wrist": (25, 0, 0)}),
    "wag": _pose({"r_shoulder": (0, 0, 25)}, {"r_shoulder": (0, 0, -25)}),
    "fan": _pose({"r_wrist": (-50, 0, 0)}, {"r_wrist": (50, 0, 0)}),
    "swing": _pose({"r_shoulder": (-70, 0, 0)}, {"r_shoulder": (45, 0, 0)}),
    "circle_x": _pose({"r_shoulder": (-55, 0, 0)}, {"r_shoulder": (55, 0, 0)}),
    "circle_z": _pose({"r_shoulder": (0, 0, -50)}, {"r_shoulder": (0, 0, 50)}),
    "lift_arm": _pose({"r_shoulder": (-45, 0, 0), "r_elbow": (-20, 0, 0)}),
    "sleeve": _pose({"r_shoulder": (45, 0, -30), "r_elbow": (-60, 0, 0), "r_wrist": (30, 0, 0)}),
    # --- legs (right leg; "L" mirrors) ---
    "kick_front": _pose({"r_hip": (-80, 0, 0), "r_knee": (10, 0, 0)}),
    "kick_side": _pose({"r_hip": (0, 0, -55), "r_knee": (5, 0, 0), "torso": (0, 0, 15)}),
    "kick_back": _pose({"r_hip": (10, 0, 0), "r_knee": (120, 0, 0)}),
    "knee_up": _pose({"r_hip": (-85, 0, 0), "r_knee": (95, 0, 0)}),
    "stamp": _pose({"r_hip": (-40, 0, 0), "r_knee": (60, 0, 0)}),
    "stride": _pose({"r_hip": (-35, 0, 0), "r_knee": (45, 0, 0), "r_ankle": (-10, 0, 0)},
                    {"r_hip": (20, 0, 0), "r_knee": (10, 0, 0)}),
    "run_stride": _pose({"r_hip": (-55, 0, 0), "r_knee": (95, 0, 0)}, {"r_hip": (25, 0, 0), "r_knee": (40, 0, 0)}),
    "side_step": _pose({"r_hip": (0, 0, -25)}),
    "leg_spread": _pose({"r_hip": (0, 0, -25), "r_ankle": (0, 0, 25)}),
    # --- trunk and head ---
    "bow": _pose({"torso": (45, 0, 0), "upper_back": (15, 0, 0)}),
    "bend": _pose({"torso": (80, 0, 0), "upper_back": (10, 0, 0), "cervical": (-15, 0, 0)}),
    "nod": _pose({"cervical": (25, 0, 0)}, {"cervical": (-10, 0, 0)}),
    "head_shake": _pose({"cervical": (0, 35, 0)}, {"cervical": (0, -35, 0)}),
    "look_down": _pose({"cervical": (40, 0, 0), "thorax": (10, 0, 0)}),
    "lean_back": _pose({"torso": (-20, 0, 0)}),
    "lean_side": _pose({"torso": (0, 0, 25)}, {"torso": (0, 0, -25)}),
    "twist": _pose({"torso": (0, 35, 0)}, {"torso": (0, -35, 0)}),
    "jerk": _pose({"torso": (20, 0, 0), "cervical": (20, 0, 0)}),
    "recoil": _pose({"torso": (-20, 0, 0), "cervical": (-15, 0, 0), "_fwd": -0.15}),
    "yawn": _pose({"cervical": (-35, 0, 0), "thorax": (-10, 0, 0)}),
    # --- whole body ---
    "squat": _pose({"l_hip": (-95, 0, 0), "r_hip": (-95, 0, 0), "l_knee": (125, 0, 0), "r_knee": (125, 0, 0),
                    "l_ankle": (-30, 0, 0), "r_ankle": (-30, 0, 0), "torso": (35, 0, 0)}),
    "crouch": _pose({"l_hip": (-50, 0, 0), "r_hip": (-50, 0, 0), "l_knee": (80, 0, 0), "r_knee": (80, 0, 0),
                     "l_ankle": (-30, 0, 0), "r_ankle": (-30, 0, 0), "torso": (25, 0, 0)}),
    "chair": _pose({"l_hip": (-90, 0, 0), "r_hip": (-90, 0, 0), "l_knee": (90, 0, 0), "r_knee": (90, 0, 0),
                    "torso": (5, 0, 0)}),
    "sit_floor": _pose({"l_hip": (-95, 0, 10), "r_hip": (-95, 0, -10), "l_knee": (25, 0, 0),
                        "r_knee": (25, 0, 0), "torso": (-10, 0, 0)}),
    "kneel": _pose({"l_knee": (95, 0, 0), "r_knee": (95, 0, 0), "l_ankle": (-40, 0, 0), "r_ankle": (-40, 0, 0),
                    "torso": (10, 0, 0)}),
    "tie_shoes": _pose({"l_hip": (-100, 0, 0), "l_knee": (110, 0, 0), "r_knee": (100, 0, 0), "torso": (55, 0, 0),
                        "l_shoulder": (-60, 0, 0), "r_shoulder": (-60, 0, 0)}),
    "lie": _pose({"pelvis": (-88, 0, 0), "l_knee": (15, 0, 0), "r_knee": (15, 0, 0)}),
    "fall": _pose({"pelvis": (80, 0, 0), "l_knee": (40, 0, 0), "r_knee": (40, 0, 0), "l_shoulder": (-90, 0, 0),
                   "r_shoulder": (-90, 0, 0)}),
    "jump": _pose({"_lift": 0.35}),
    "hop": _pose({"_lift": 0.15}),
    "step_up": _pose({"_lift": 0.54, "_fwd": 0.9}),
    "step_down": _pose({"_lift": -0.35, "_fwd": 0.3}),
    "descend": _pose({"_lift": -0.54, "_fwd": 0.9}),
    "forward": _pose({"_fwd": 0.8}),
    "run_forward": _pose({"_fwd": 1.6}),
    "leftward": _pose({"_side": 0.6}),
    "approach": _pose({"_fwd": 0.6}),
    "turn": _pose({"pelvis": (0, 100, 0)}),
    "circle": _pose({"pelvis": (0, 200, 0), "_fwd": 1.4}),
    "cartwheel": _pose({"pelvis": (0, 0, 360), "_side": 1.3}),
    "sway": _pose({"torso": (0, 0, 12), "_side": 0.2}, {"torso": (0, 0, -12), "_side": -0.2}),
}

_TRACK = re.compile(r"^(2?)([RLBAC]) (\w+) (touch|go|back|hold|(?:rep|pulse|osc|saw)\d+q?)(?:@([\d.]+)-([\d.]+))?$")


@dataclasses.dataclass(frozen=True)
class Track:
    """One pose driven by one program on one limb set of one person (see the module docstring)."""

    person: int
    limb: str
    pose: str
    program: str
    count: int
    quarter: bool
    window: tuple[float, float]


def parse_track(text: str) -> Track:
    """Parses ``"<limb> <pose> <program>[@a-b]"``; raises ValueError naming the bad part."""
    m = _TRACK.match(text.strip())
    if m is None:
        raise ValueError(f"bad track {text!r}: expected '<[2]R|L|B|A|C> <pose> <program>[@a-b]'")
    partner, limb, pose, program, a, b = m.groups()
    if pose not in POSES:
        raise ValueError(f"bad track {text!r}: unknown pose {pose!r}")
    kind = re.match(r"[a-z]+", program).group(0)
    count = int(re.search(r"\d+", program).group(0)) if kind in ("rep", "pulse", "osc", "saw") else 1
    window = (float(a), float(b)) if a is not None else (0.0, 1.0)
    if not 0.0 <= window[0] < window[1] <= 1.0:
        raise ValueError(f"bad track {text!r}: window must satisfy 0 <= start < end <= 1")
    return Track(int(bool(partner)), limb, pose, kind, count, program.endswith("q"), window)


def _smooth(x):
    """Smoothstep of x clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def envelope(q, rise: float = 0.2, fall: float = 0.8):
    """Smooth 0 -> 1 -> 0 envelope over normalised time."""
    return _smooth(q / rise) * _smooth((1.0 - q) / (1.0 - fall))


def activation(track: Track, p: np.ndarray, shift: float = 0.0) -> np.ndarray:
    """The program's activation (T,) at action progress ``p``; ``shift`` delays oscillations (cycles)."""
    a, b = track.window
    q = np.clip((p - a) / (b - a), 0.0, 1.0)
    inside = (p >= a) & (p <= b)
    k, kind = track.count, track.program
    phase = 2.0 * np.pi * (k * q + shift + (0.25 if track.quarter else 0.0))
    if kind == "touch":
        return envelope(q, 0.25, 0.75)
    if kind == "go":
        return _smooth(q)
    if kind == "back":
        return 1.0 - _smooth(q)
    if kind == "hold":
        return np.ones_like(p)
    if kind == "rep":
        return inside * 0.5 * (1.0 - np.cos(phase))
    if kind == "pulse":
        return inside * (0.5 * (1.0 - np.cos(phase))) ** 3
    if kind == "osc":
        return inside * np.sin(phase) * envelope(q, 0.1, 0.9)
    if kind == "saw":  # slow rise over 80 % of each cycle, fast return
        u = (k * q + shift) % 1.0
        return inside * np.where(u < 0.8, _smooth(u / 0.8), 1.0 - _smooth((u - 0.8) / 0.2))
    raise ValueError(f"unknown program {kind!r}")


_PSEUDO = ("_fwd", "_side", "_lift")


@dataclasses.dataclass
class Drive:
    """Joint angles (T, J, 3) in degrees and root motion of one person, accumulated from tracks."""

    angles: np.ndarray
    fwd: np.ndarray
    side: np.ndarray
    lift: np.ndarray
    legs_free: bool = False  # a one-sided leg movement or a root translation: no foot lock

    @classmethod
    def zeros(cls, num_frames: int) -> "Drive":
        z = np.zeros(num_frames)
        return cls(np.zeros((num_frames, len(kin.JOINTS), 3)), z.copy(), z.copy(), z.copy())

    def add_pose(self, pose: dict, weight: np.ndarray, mirror: bool) -> None:
        for joint, value in pose.items():
            if joint in _PSEUDO:
                value = -value if (mirror and joint == "_side") else value
                target = {"_fwd": self.fwd, "_side": self.side, "_lift": self.lift}[joint]
                target += value * weight
                self.legs_free = True
                continue
            angle = np.asarray(value, dtype=np.float64)
            if mirror:
                joint = ("l_" + joint[2:]) if joint.startswith(_R) else joint
                angle = angle * np.array([1.0, -1.0, -1.0])
            self.angles[:, kin.INDEX[joint]] += weight[:, None] * angle


def apply_track(drive: Drive, track: Track, p: np.ndarray, amplitude: float) -> None:
    """Adds ``track`` at progress ``p`` to ``drive``; ``amplitude`` scales the pose (the subject's style)."""
    pos, neg = POSES[track.pose]
    sides = {"R": (False,), "L": (True,), "B": (False, True), "A": (False, True), "C": (False,)}[track.limb]
    one_sided_legs = track.limb in ("R", "L", "A") and any(j[2:] in ("hip", "knee") for j in pos if j[:2] == _R)
    drive.legs_free |= one_sided_legs
    for mirror in sides:
        shift = 0.5 / track.count if (track.limb == "A" and mirror) else 0.0
        act = activation(track, p, shift)
        if track.limb == "A" and mirror and track.program in ("rep", "pulse", "saw"):
            act = act * envelope(np.clip((p - track.window[0]) / np.diff(track.window)[0], 0, 1), 0.1, 0.9)
        drive.add_pose(pos, amplitude * np.maximum(act, 0.0), mirror)
        if neg:
            drive.add_pose(neg, amplitude * np.maximum(-act, 0.0), mirror)
