"""Procedurally generated skeleton actions: the embedded default dataset (no download needed).

A superset body (pelvis, spine, neck, head, clavicles, arms with hand tips and thumbs, legs with feet and
toes) is posed by forward kinematics: rest-pose bone offsets scaled per subject, per-joint Euler rotations
accumulated down the chain, then a root translation and yaw. Each action class is a set of joint-angle
trajectories over normalised time; every sample draws its own subject (bone lengths), speed, time warp,
amplitude, phase, idle posture, position drift, viewpoint and sensor noise from
``np.random.default_rng([seed, split_id, label, index])``, so a sample never depends on how many others were
generated. The 25 joints of the NTU or HDM05 order are then selected (``layouts.NTU_PARENTS`` /
``layouts.HDM05_PARENTS``).

Difficulty: the action occupies a random part of the clip, so a classifier must find it in time. Three
"held twins" (arms out sideways / star pose / crouch) share the average posture of a swinging class (arm
circles / jumping jacks / squat) but stay still, and "stand up" is "sit down" played backwards: these pairs
need temporal features, which a graph-conv net learns and an MLP on flattened coordinates mostly misses.

Axis convention (metres, right-handed): y up, x the subject's left, z the subject's facing direction (before
the random viewpoint rotation, which is small). Standing height is about 1.7 m; every sequence is centred on
the first person's pelvis (spine base / root) at frame 0, so the floor lies near y = -0.95.
"""

from __future__ import annotations

import pathlib

import numpy as np

from tasar_jax.data import formats, layouts

ACTIONS: tuple[str, ...] = (
    "wave", "clap", "punch", "kick", "squat", "jump", "walk in place", "bow", "raise both arms", "turn",
    "sit down", "handshake", "wave left hand", "arm circles", "arms out sideways", "stand up", "jumping jacks",
    "star pose", "crouch",
)
TWO_PERSON_ACTIONS = frozenset({"handshake"})
_SPLIT_IDS = {"train": 0, "test": 1}
_T = layouts.NUM_FRAMES

# (name, parent, rest offset from the parent in metres, bone group for the subject's length factors).
_BODY = (
    ("pelvis", None, (0.0, 0.0, 0.0), None),
    ("torso", "pelvis", (0.0, 0.0, 0.0), None),  # virtual joint: bends the whole trunk about the pelvis
    ("lower_back", "torso", (0.0, 0.10, -0.01), "spine"),
    ("upper_back", "lower_back", (0.0, 0.15, -0.01), "spine"),
    ("thorax", "upper_back", (0.0, 0.20, 0.0), "spine"),
    ("neck", "thorax", (0.0, 0.10, 0.01), "neck"),
    ("head", "neck", (0.0, 0.12, 0.02), "neck"),
    ("l_clavicle", "thorax", (0.05, -0.01, 0.0), "clavicle"),
    ("l_shoulder", "l_clavicle", (0.14, -0.02, 0.0), "clavicle"),
    ("l_elbow", "l_shoulder", (0.0, -0.28, 0.0), "upper_arm"),
    ("l_wrist", "l_elbow", (0.0, -0.25, 0.0), "forearm"),
    ("l_hand", "l_wrist", (0.0, -0.08, 0.0), "hand"),
    ("l_handtip", "l_hand", (0.0, -0.07, 0.0), "hand"),
    ("l_thumb", "l_hand", (-0.01, -0.03, 0.04), "hand"),
    ("l_hip", "pelvis", (0.09, -0.06, 0.0), "hip"),
    ("l_knee", "l_hip", (0.0, -0.42, 0.0), "thigh"),
    ("l_ankle", "l_knee", (0.0, -0.40, -0.01), "shin"),
    ("l_foot", "l_ankle", (0.0, -0.05, 0.11), "foot"),
    ("l_toes", "l_foot", (0.0, -0.01, 0.05), "foot"),
)


_SWAP = {"l_": "r_", "r_": "l_"}  # mirrored joint name = swapped prefix
_BODY = _BODY + tuple(  # the right side mirrors the left one (x -> -x)
    ("r_" + n[2:], "r_" + q[2:] if q.startswith("l_") else q, (-o[0], o[1], o[2]), g)
    for n, q, o, g in _BODY if n.startswith("l_")
)
JOINTS: tuple[str, ...] = tuple(b[0] for b in _BODY)
_IDX = {n: i for i, n in enumerate(JOINTS)}
_PARENT = np.array([_IDX[p] if p is not None else -1 for _, p, _, _ in _BODY])
_OFFSET = np.array([b[2] for b in _BODY], dtype=np.float64)
_GROUPS = sorted({b[3] for b in _BODY if b[3] is not None})
_GROUP_OF = [(_GROUPS.index(b[3]) if b[3] is not None else -1) for b in _BODY]
_MIRROR = np.array([_IDX[_SWAP[n[:2]] + n[2:]] if n[:2] in _SWAP else i for i, n in enumerate(JOINTS)])
_FEET = [_IDX[n] for n in ("l_ankle", "l_foot", "l_toes", "r_ankle", "r_foot", "r_toes")]
_ANKLES = [_IDX["l_ankle"], _IDX["r_ankle"]]

NTU_ORDER: tuple[str, ...] = (
    "pelvis", "upper_back", "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "l_hand", "r_shoulder",
    "r_elbow", "r_wrist", "r_hand", "l_hip", "l_knee", "l_ankle", "l_foot", "r_hip", "r_knee", "r_ankle",
    "r_foot", "thorax", "l_handtip", "l_thumb", "r_handtip", "r_thumb",
)
HDM05_ORDER: tuple[str, ...] = (
    "l_hip", "l_knee", "l_ankle", "l_foot", "l_toes", "r_hip", "r_knee", "r_ankle", "r_foot", "r_toes",
    "pelvis", "lower_back", "upper_back", "thorax", "head", "l_clavicle", "l_shoulder", "l_elbow", "l_wrist",
    "l_hand", "r_clavicle", "r_shoulder", "r_elbow", "r_wrist", "r_hand",
)
# Joints that never rotate, so that every bone of both orders keeps its length (e.g. NTU's shoulder hangs
# off the thorax through the clavicle, HDM05's head off the thorax through the neck).
_RIGID = ("lower_back", "neck", "l_clavicle", "r_clavicle")
_FIDGET_DEG = 1.5  # std of the slow per-joint fidgeting
_NOISE_M = 0.005  # sensor jitter (metres)
_HOLD = 0.4  # held twins of the swinging classes keep a pose within this fraction of the swing range


def _rot(euler: np.ndarray) -> np.ndarray:
    """Rotation matrices ``Ry(y) @ Rx(x) @ Rz(z)`` for Euler angles (..., 3) = (x, y, z) in radians."""
    cx, cy, cz = np.cos(euler).transpose(-1, *range(euler.ndim - 1))
    sx, sy, sz = np.sin(euler).transpose(-1, *range(euler.ndim - 1))
    o, z = np.ones_like(cx), np.zeros_like(cx)
    rx = np.stack([o, z, z, z, cx, -sx, z, sx, cx], -1).reshape(*cx.shape, 3, 3)
    ry = np.stack([cy, z, sy, z, o, z, -sy, z, cy], -1).reshape(*cx.shape, 3, 3)
    rz = np.stack([cz, -sz, z, sz, cz, z, z, z, o], -1).reshape(*cx.shape, 3, 3)
    return ry @ rx @ rz


def _forward_kinematics(offsets: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Joint positions (T, J, 3) with the pelvis at the origin; rotation of joint j turns its child bones."""
    rot = _rot(np.deg2rad(angles_deg))
    glob = np.empty_like(rot)
    pos = np.zeros(angles_deg.shape[:2] + (3,))
    for j, p in enumerate(_PARENT):  # _BODY lists every parent before its children
        if p < 0:
            glob[:, j] = rot[:, j]
            continue
        pos[:, j] = pos[:, p] + glob[:, p] @ offsets[j]
        glob[:, j] = glob[:, p] @ rot[:, j]
    return pos


def _smooth(x):
    """Smoothstep of x clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _env(p, rise=0.2, fall=0.8):
    """Smooth 0 -> 1 -> 0 envelope over normalised time."""
    return _smooth(p / rise) * _smooth((1.0 - p) / (1.0 - fall))


class _Motion:
    """Joint angles (degrees) plus root yaw / jump height being built for one person.

    Sign conventions (local frame, y up, x left, z forward): +x tips a downward bone backwards (so raising an
    arm forward or flexing a hip is negative, a knee bend positive), +z swings a downward bone towards +x (left
    arm abduction positive, right arm negative), +y turns towards the subject's left.
    """

    def __init__(self, p: np.ndarray, cycles: float = 1.0, phase: float = 0.0):
        self.p, self.cycles, self.phase = p, cycles, phase
        self.angles = np.zeros((p.shape[0], len(JOINTS), 3))
        self.yaw = np.zeros(p.shape[0])
        self.lift = np.zeros(p.shape[0])
        self.foot_lock = True

    def osc(self, cycles: float, shift: float = 0.0) -> np.ndarray:
        return np.sin(2.0 * np.pi * cycles * self.cycles * self.p + self.phase + shift)

    def add(self, joint: str, x=0.0, y=0.0, z=0.0) -> None:
        self.angles[:, _IDX[joint]] += np.stack(np.broadcast_arrays(x, y, z, self.p)[:3], -1)


def _legs_flex(m: _Motion, side: str, hip, knee, flat: float = 1.0) -> None:
    """Hip and knee flexion (degrees, positive = bend) with the ankle keeping the foot ``flat``."""
    m.add(f"{side}_hip", x=-hip)
    m.add(f"{side}_knee", x=knee)
    m.add(f"{side}_ankle", x=flat * (hip - knee))


def _swing(m, rng, hold, cycles, shift=0.0):
    """A periodic signal for a swinging class, or a random constant in ±_HOLD for its held twin."""
    return rng.uniform(-_HOLD, _HOLD) if hold else m.osc(cycles, shift)


def _act(base: str, m: _Motion, a: float, rng: np.random.Generator, hold: bool, reverse: bool) -> None:
    """Adds the joint-angle trajectories (degrees) of action ``base`` to ``m`` (right-handed variants).

    ``a`` is the sample's amplitude factor; ``hold`` freezes a swinging action at a random point near the middle
    of its swing (the held twins), ``reverse`` plays it backwards (stand up).
    """
    p = m.p
    if base == "wave":
        e, sw = _env(p, 0.25, 0.75), m.osc(4.0)
        m.add("r_shoulder", x=-15 * e, z=-(125 + 35 * sw) * a * e)
        m.add("r_elbow", z=-(45 + 45 * a * sw) * e)
        m.add("r_wrist", z=-20 * m.osc(4.0, 0.6) * e)
    elif base == "clap":
        e, c = _env(p, 0.25, 0.75), 0.5 * (1 + m.osc(5.0))
        for side, s in (("l", 1), ("r", -1)):
            m.add(f"{side}_shoulder", x=-80 * a * e, y=-s * (65 * c - 32) * e)
            m.add(f"{side}_elbow", x=-(20 + 40 * (1 - c)) * e, y=-s * 20 * e)
    elif base == "punch":
        g, q = _env(p, 0.12, 0.9), (0.5 * (1 + m.osc(3.0))) ** 3
        m.add("r_shoulder", x=(-35 - 55 * a * q) * g, y=8 * q * g)
        m.add("r_elbow", x=(-115 + 105 * q) * g)
        m.add("l_shoulder", x=-35 * g)
        m.add("l_elbow", x=-115 * g)
        m.add("torso", x=10 * q * g, y=25 * q * g)
        _legs_flex(m, "l", 30 * g, 35 * g)  # boxing stance: left foot forward, knees bent
        _legs_flex(m, "r", -15 * g, 20 * g)
    elif base == "kick":
        e = _env(p, 0.1, 0.9)
        q = (0.5 * (1 + m.osc(1.5))) ** 2 * e
        m.add("r_hip", x=-90 * a * q)
        m.add("r_knee", x=240 * q * (1 - q) * e)
        m.add("torso", x=-20 * q)
        for side, s in (("l", 1), ("r", -1)):
            m.add(f"{side}_shoulder", x=-40 * e, z=s * 30 * e)
            m.add(f"{side}_elbow", x=-70 * e)
        m.foot_lock = False
    elif base == "squat":
        d = 0.5 * (1 - _swing(m, rng, hold, 2.5)) * _env(p, 0.15, 0.85)
        for side in "lr":
            _legs_flex(m, side, 95 * a * d, 125 * a * d)
            m.add(f"{side}_shoulder", x=-80 * d)
        m.add("torso", x=35 * d)
    elif base == "jump":
        phi = (rng.integers(1, 3) * p) % 1.0
        crouch = (np.sin(np.pi * np.clip(phi / 0.3, 0, 1)) ** 2
                  + np.sin(np.pi * np.clip((phi - 0.75) / 0.25, 0, 1)) ** 2)
        air = np.clip((phi - 0.3) / 0.45, 0, 1)
        air = 4 * air * (1 - air)
        for side, s in (("l", 1), ("r", -1)):
            _legs_flex(m, side, 50 * crouch + 15 * air, 80 * crouch + 25 * air)
            m.add(f"{side}_shoulder", x=35 * crouch - 140 * a * air, z=s * 10 * air)
        m.add("torso", x=25 * crouch)
        m.lift = 0.3 * a * air
    elif base in ("walk in place", "turn"):
        e = _env(p, 0.1, 0.9)
        turn = base == "turn"
        if turn:
            m.yaw = rng.choice([-1.0, 1.0]) * rng.uniform(150, 200) * _smooth((p - 0.1) / 0.7)
        s = m.osc(2.5 if turn else 2.0) * e
        hip, knee = (15, 30) if turn else (40 * a, 70 * a)
        for side, sign in (("r", 1), ("l", -1)):
            step = np.maximum(0, sign * s)
            _legs_flex(m, side, hip * step, knee * step, flat=0.5)
            if not turn:
                m.add(f"{side}_shoulder", x=sign * 25 * a * s)
                m.add(f"{side}_elbow", x=-25 * e)
        m.foot_lock = False
    elif base == "bow":
        e = _env(p, 0.3, 0.7)
        m.add("torso", x=55 * a * e)
        m.add("upper_back", x=15 * a * e)
        m.add("thorax", x=10 * e)
        m.add("l_shoulder", x=-45 * e)
        m.add("r_shoulder", x=-45 * e)
    elif base == "raise both arms":
        e, up = _env(p, 0.3, 0.75), min(160 * a, 178)
        m.add("l_shoulder", x=-10 * e, z=up * e)
        m.add("r_shoulder", x=-10 * e, z=-up * e)
    elif base == "sit down":
        e = _smooth(((1.0 - p if reverse else p) - 0.1) / 0.65)
        for side in "lr":
            _legs_flex(m, side, 90 * e, 90 * e)
            m.add(f"{side}_shoulder", x=-35 * e)
            m.add(f"{side}_elbow", x=-40 * e)
        m.add("torso", x=40 * a * np.sin(np.pi * e) + 5 * e)
    elif base == "handshake":
        e, shake = _env(p, 0.2, 0.85), m.osc(3.5) * _env(p, 0.35, 0.8)
        m.add("r_shoulder", x=-40 * a * e - 8 * shake, y=10 * e)
        m.add("r_elbow", x=-30 * e - 15 * shake)
    elif base == "arm circles":
        e = _env(p, 0.25, 0.75)
        c1, c2 = _swing(m, rng, hold, 3.5), _swing(m, rng, hold, 3.5, np.pi / 2)
        for side, s in (("l", 1), ("r", -1)):
            m.add(f"{side}_shoulder", x=45 * a * c1 * e, z=s * (75 + 45 * a * c2) * e)
    elif base == "jumping jacks":
        e, c = _env(p, 0.15, 0.85), 0.5 * (1 + _swing(m, rng, hold, 3.0))
        for side, s in (("l", 1), ("r", -1)):
            m.add(f"{side}_shoulder", x=-10 * e, z=s * (60 + 120 * a * c) * e)
            m.add(f"{side}_hip", z=s * 25 * c * e)
            m.add(f"{side}_ankle", z=-s * 25 * c * e)
        if not hold:
            m.lift = 0.08 * a * np.abs(np.sin(np.pi * 3.0 * m.cycles * p + m.phase / 2)) * e
            m.foot_lock = False
    else:
        raise ValueError(f"unknown action {base!r}")


# class name -> (base action, mirrored to the left side, variant: "" / "hold" / "reverse")
_ACTION_DEFS = {name: (name, False, "") for name in ACTIONS}
_ACTION_DEFS.update({
    "wave left hand": ("wave", True, ""),
    "arms out sideways": ("arm circles", False, "hold"), "star pose": ("jumping jacks", False, "hold"),
    "crouch": ("squat", False, "hold"), "stand up": ("sit down", False, "reverse"),
})


def _idle(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Random relaxed posture plus a slow sway, as joint angles (T, J, 3) in degrees."""
    m = _Motion(p)
    for side, s in (("l", 1), ("r", -1)):
        m.add(f"{side}_shoulder", x=rng.normal(0, 5), z=s * rng.uniform(4, 14))
        m.add(f"{side}_elbow", x=-rng.uniform(5, 25))
        m.add(f"{side}_hip", z=s * rng.uniform(0, 6))
        m.add(f"{side}_ankle", z=-s * rng.uniform(0, 6))
        m.add(f"{side}_knee", x=rng.uniform(0, 8))
    sway = np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * p + rng.uniform(0, 2 * np.pi))
    m.add("torso", x=rng.normal(0, 4) + 1.5 * sway, z=rng.normal(0, 2) + 1.5 * sway)
    m.add("thorax", x=rng.normal(0, 4))
    m.add("head", x=rng.normal(0, 8), y=rng.normal(0, 10))
    # slow fidgeting of every joint: two random low-frequency sinusoids per angle
    freq = rng.uniform(0.2, 1.0, size=(2, len(JOINTS), 3))
    shift = rng.uniform(0, 2 * np.pi, size=(2, len(JOINTS), 3))
    amp = rng.normal(0, _FIDGET_DEG, size=(2, len(JOINTS), 3))
    m.angles += (amp * np.sin(2 * np.pi * freq * p[:, None, None, None] + shift)).sum(1)
    return m.angles


def _subject(rng: np.random.Generator) -> np.ndarray:
    """Rest-pose offsets with a global size factor and left/right symmetric per-bone-group factors (~±10 %)."""
    groups = rng.uniform(0.95, 1.05, size=len(_GROUPS))
    scale = rng.uniform(0.92, 1.08) * np.array([groups[g] if g >= 0 else 1.0 for g in _GROUP_OF])
    return _OFFSET * scale[:, None]


def _timing(rng: np.random.Generator) -> np.ndarray:
    """Normalised action progress per frame: random start, speed (±25 %) and a monotone time warp."""
    t = np.linspace(0.0, 1.0, _T)
    speed = rng.uniform(0.75, 1.25)
    start = rng.uniform(-0.2, 0.45)
    p = np.clip((t - start) * speed / 0.6, 0.0, 1.0)
    return p + rng.uniform(-0.3, 0.3) * np.sin(2 * np.pi * p) / (2 * np.pi)


def _pose_person(action: str, rng, p, cycles, phase, raise_arm=0.0) -> tuple[np.ndarray, np.ndarray]:
    """One person in their own root frame, feet on the floor (y = 0); returns (positions (T, J, 3), yaw (T,)).

    ``raise_arm`` (degrees, scaled by the handshake envelope) lifts the right arm so two hands can meet.
    """
    base, mirror, variant = _ACTION_DEFS[action]
    offsets = _subject(rng)
    m = _Motion(p, cycles, phase)
    _act(base, m, rng.uniform(0.8, 1.2), rng, hold=variant == "hold", reverse=variant == "reverse")
    m.add("r_shoulder", x=-raise_arm * _env(p, 0.2, 0.85))
    angles = m.angles
    if mirror:
        angles = angles[:, _MIRROR] * np.array([1.0, -1.0, -1.0])
    angles = angles + _idle(rng, p)
    angles[:, [_IDX[n] for n in _RIGID]] = 0.0
    pos = _forward_kinematics(offsets, angles)
    pos[..., 1] -= pos[:, _FEET, 1].min(axis=1, keepdims=True) - m.lift[:, None]
    if m.foot_lock:
        rest = _forward_kinematics(offsets, np.zeros((1,) + angles.shape[1:]))[0, _ANKLES].mean(0)
        drift = pos[:, _ANKLES].mean(1) - rest
        pos[..., [0, 2]] -= drift[:, None, [0, 2]]
    return pos, (-1.0 if mirror else 1.0) * m.yaw


def _to_world(pos, yaw_deg, translation) -> np.ndarray:
    rot = _rot(np.stack([np.zeros_like(yaw_deg), np.deg2rad(yaw_deg), np.zeros_like(yaw_deg)], -1))
    return np.einsum("tij,tvj->tvi", rot, pos) + translation[:, None, :]


def _sample(action: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Superset-body positions (T, J, 3) of the first person and the second one (zeros when absent)."""
    p = _timing(rng)
    cycles, phase = rng.uniform(0.8, 1.2), rng.uniform(0, 2 * np.pi)
    pos1, yaw1 = _pose_person(action, rng, p, cycles, phase)
    t = np.linspace(0, 1, _T)[:, None]
    drift = t * rng.normal(0, 0.08, 3)
    drift += 0.04 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0, 3) * t + rng.uniform(0, 6.3, 3))
    drift[:, 1] = 0.0  # slow wandering on the floor
    w1 = _to_world(pos1, yaw1, drift)
    w2 = np.zeros_like(w1)
    if action in TWO_PERSON_ACTIONS:  # partner facing the first person; right hands meet at the envelope peak
        partner_seed, t_meet, hand = rng.integers(2**63), int(np.argmax(_env(p, 0.2, 0.85))), _IDX["r_hand"]
        pos2, yaw2 = _pose_person(action, np.random.default_rng(partner_seed), p, cycles, phase)
        reach = np.linalg.norm(pos2[t_meet, hand] - pos2[t_meet, _IDX["r_shoulder"]])
        lift = np.degrees((w1[t_meet, hand, 1] - pos2[t_meet, hand, 1]) / reach)  # first-order height match
        pos2, yaw2 = _pose_person(action, np.random.default_rng(partner_seed), p, cycles, phase, raise_arm=lift)
        w2 = _to_world(pos2, yaw2 + 180.0, np.zeros((_T, 3)))
        shift = w1[t_meet, hand] - w2[t_meet, hand]
        shift[1] = 0.0
        w2 = w2 + shift
    origin = w1[0, _IDX["pelvis"]].copy()
    view = _rot(np.deg2rad([rng.uniform(-5, 5), rng.uniform(-20, 20), rng.uniform(-3, 3)]))
    out = [(w - origin) @ view.T for w in (w1, w2)]
    out = [w + rng.normal(0.0, _NOISE_M, size=w.shape) for w in out]
    if action not in TWO_PERSON_ACTIONS:
        out[1] = np.zeros_like(w1)
    return out[0], out[1]


def generate(dataset: str, num_per_class: int, seed: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Generates a synthetic split in the common layout.

    Args:
      dataset: ``hdm05`` (HDM05 joint order, M=1), ``ntu60`` or ``ntu120`` (NTU joint order, M=2).
      num_per_class: samples per action class.
      seed: base seed; the same (seed, split) always gives the same samples.
      split: ``train`` or ``test``; the two splits draw different subjects and recordings.

    Returns:
      ``(x, labels)``: x float32 (N, 3, 60, 25, M), labels int64 (N,) with N = num_per_class * len(ACTIONS);
      classes are interleaved (``labels[n] == n % len(ACTIONS)``), label = index into ``ACTIONS``.
    """
    if split not in _SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(_SPLIT_IDS)}")
    spec = layouts.get_dataset(dataset)
    order = [_IDX[n] for n in (HDM05_ORDER if spec.graph_layout == "hdm05" else NTU_ORDER)]
    k = len(ACTIONS)
    x = np.zeros((num_per_class * k, 3, _T, layouts.NUM_JOINTS, spec.num_persons), dtype=np.float32)
    labels = np.tile(np.arange(k, dtype=np.int64), num_per_class)
    for n, label in enumerate(labels):
        rng = np.random.default_rng([seed, _SPLIT_IDS[split], int(label), n // k])
        persons = _sample(ACTIONS[label], rng)
        for m in range(spec.num_persons):
            x[n, :, :, :, m] = persons[m][:, order].transpose(2, 0, 1)
    return x, labels


def write_dataset(root, dataset: str, num_per_class_train: int = 40, num_per_class_test: int = 15,
                  seed: int = 0) -> dict[str, pathlib.Path]:
    """Writes ``<root>/<dataset>/classTrain.npz`` and ``classTest.npz`` in the real on-disk format.

    HDM05: ``clips`` float64 (N, 60, 75) joint-major (column ``3 * j + c``), ``classes`` int64.
    NTU60/120: ``clips`` float32 (N, 3, 60, 25, 2), ``classes`` int64. Files are written atomically.

    Args:
      root: data root folder (created if missing).
      dataset: ``hdm05``, ``ntu60`` or ``ntu120``.
      num_per_class_train: training samples per class.
      num_per_class_test: test samples per class.
      seed: base seed for both splits.

    Returns:
      ``{"train": path, "test": path}``.
    """
    folder = pathlib.Path(root) / dataset
    paths = {}
    for split, count, fname in (("train", num_per_class_train, "classTrain.npz"),
                                ("test", num_per_class_test, "classTest.npz")):
        x, labels = generate(dataset, count, seed, split)
        paths[split] = formats.save_dataset_file(folder / fname, x, labels, dataset)
    return paths
