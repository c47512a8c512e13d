"""Procedurally generated skeleton actions: the embedded default dataset (no download needed), version 2.

Every class of the real datasets (65 HDM05, 60 NTU60, 120 NTU120 actions; ``tasar_jax.data.catalog``) is a
set of joint-angle tracks (``tasar_jax.data.motions``) posed by forward kinematics on a human body
(``tasar_jax.data.kinematics``: joint angles clipped to human limits, bone lengths constant within a clip).
Every sample draws its own subject (bone lengths), speed, time warp, placement in the clip, amplitude, phase,
idle posture and fidgeting, position drift, viewpoint and sensor noise from
``np.random.default_rng([seed, split_id, label, index])``, so a sample never depends on how many others (or
which other classes) were generated. NTU-format clips also get occasional Kinect artefacts: dropped frames
(a frame repeats its predecessor) and single-joint glitches. The dataset skeleton's 25 joints are then selected
in its order (``layouts.Skeleton.joint_names``).

Classes are built so that space *and* time matter: many come in families that share their per-joint temporal
statistics (time reverses, counts, in-phase vs anti-phase) and differ only in the order of frames, and left /
right variants differ only in the limb. The action's placement in the clip is symmetric in time, so a class
and its time reverse are exact mirror images in time in distribution (``tests/data/test_synthetic.py``).

Axis convention (metres, right-handed): y up, x the subject's left, z the subject's facing direction (before
the random viewpoint rotation, which is small). Standing height is about 1.7 m; every clip is centred on the
first person's pelvis averaged over the clip (not frame 0, which would leak the direction of time into the
mean posture; docs/decisions.md G1), so for standing actions the floor lies near y = -0.95.
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np

from tasar_jax.data import catalog, formats, layouts, motions
from tasar_jax.data import kinematics as kin

VERSION = 4  # bumped whenever the same seed gives different clips (benchmark stages key their data on it)
_SPLIT_IDS = {"train": 0, "test": 1}
_T = layouts.NUM_FRAMES
_FIDGET_DEG = 1.5  # std of the slow per-joint fidgeting
_NOISE_M = 0.005  # sensor jitter (metres)
_CONTACT_M = 0.75  # distance between two persons facing each other, before their own approach
_DROP_PROB, _GLITCH_PROB = 0.3, 0.2  # per NTU clip: some dropped frames; a single-joint glitch


def class_names(dataset: str) -> tuple[str, ...]:
    """The action names of ``dataset`` indexed by label (65 / 60 / 120, the real datasets' order)."""
    layouts.get_dataset(dataset)
    return tuple(name for name, _ in catalog.CLASSES[dataset])


@functools.cache
def _classes(dataset: str) -> tuple[tuple[tuple[motions.Track, ...], bool], ...]:
    """Parsed tracks and the time-reverse flag of every class of ``dataset``."""
    texts = dict(catalog.CLASSES[dataset])
    out = []
    for name, text in catalog.CLASSES[dataset]:
        reverse = text.startswith("~")
        if reverse:
            text = texts[text[1:]]
        try:
            out.append((tuple(motions.parse_track(t) for t in text.split(";")), reverse))
        except ValueError as err:
            raise ValueError(f"class {name!r} of {dataset}: {err}") from None
    return tuple(out)


def parse_classes(classes, dataset: str) -> tuple[int, ...] | None:
    """A class subset from a list of labels or a string such as ``"0-18,25"``; None (all classes) stays None."""
    if classes is None:
        return None
    if isinstance(classes, str):
        labels = []
        for part in filter(None, (s.strip() for s in classes.split(","))):
            lo, _, hi = part.partition("-")
            try:
                labels.extend(range(int(lo), int(hi or lo) + 1))
            except ValueError:
                raise ValueError(f"bad class list {classes!r}: expected labels and ranges like '0-18,25'") from None
        classes = labels
    labels = tuple(int(c) for c in classes)
    k = layouts.get_dataset(dataset).num_classes
    if not labels or min(labels) < 0 or max(labels) >= k or len(set(labels)) != len(labels):
        raise ValueError(f"class list {classes!r}: need distinct labels in [0, {k}) for {dataset}")
    return labels


def reverse_pairs(dataset: str) -> list[tuple[int, int]]:
    """(label, label of its time reverse) for every class defined as the reverse of another."""
    names = class_names(dataset)
    return [(names.index(text[1:]), k) for k, (_, text) in enumerate(catalog.CLASSES[dataset])
            if text.startswith("~")]


def is_two_person(dataset: str, label: int) -> bool:
    """Whether class ``label`` of ``dataset`` is a two-person (mutual) action."""
    return any(t.person == 1 for t in _classes(dataset)[label][0])


def prototype(dataset: str, label: int) -> list[np.ndarray]:
    """The class's own motion per person, (T, J * 3 + 3): joint angles (degrees) then the root's sideways, up and
    forward displacement (metres), from its tracks over evenly spaced progress with amplitude 1 and no subject,
    idle posture or timing variation (``reverse`` classes run their progress backwards)."""
    tracks, reverse = _classes(dataset)[label]
    p = np.linspace(0.0, 1.0, _T)
    p = 1.0 - p if reverse else p
    out = []
    for person in sorted({t.person for t in tracks}):
        drive = _drive([t for t in tracks if t.person == person], p, 1.0)
        out.append(np.concatenate([drive.angles.reshape(_T, -1), np.stack([drive.side, drive.lift, drive.fwd], 1)], 1))
    return out


def _drive(tracks, p: np.ndarray, amplitude: float) -> motions.Drive:
    """The tracks of one person applied at progress ``p``."""
    drive = motions.Drive.zeros(p.shape[0])
    for track in tracks:
        motions.apply_track(drive, track, p, amplitude)
    return drive


def _timing(rng: np.random.Generator) -> np.ndarray:
    """Action progress per frame: centre symmetric about mid-clip, speed ±25 %, a monotone time warp.

    The distribution is symmetric under time reversal (t -> 1 - t with p -> 1 - p), so a class and its
    reverse have mirror-image statistics.
    """
    t = np.linspace(0.0, 1.0, _T)
    duration = 0.65 / rng.uniform(0.75, 1.35)
    centre = rng.uniform(0.3, 0.7)
    p = np.clip((t - centre) / duration + 0.5, 0.0, 1.0)
    return p + rng.uniform(-0.4, 0.4) * np.sin(2 * np.pi * p) / (2 * np.pi)


def _idle(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Random relaxed posture plus a slow sway and fidgeting, as joint angles (T, J, 3) in degrees."""
    d = motions.Drive.zeros(p.shape[0])
    ones = np.ones_like(p)
    for side, s in (("l", 1), ("r", -1)):
        d.add_pose({f"{side}_shoulder": (rng.normal(0, 5), 0, s * rng.uniform(4, 14)),
                    f"{side}_elbow": (-rng.uniform(5, 25), 0, 0), f"{side}_hip": (0, 0, s * rng.uniform(0, 6)),
                    f"{side}_knee": (rng.uniform(0, 8), 0, 0)}, ones, False)
    sway = np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * np.linspace(0, 1, p.shape[0]) + rng.uniform(0, 2 * np.pi))
    d.add_pose({"torso": (rng.normal(0, 4), 0, rng.normal(0, 2)), "thorax": (rng.normal(0, 4), 0, 0),
                "cervical": (rng.normal(0, 8), rng.normal(0, 10), 0)}, ones, False)
    d.add_pose({"torso": (1.5, 0, 1.5)}, sway, False)
    t = np.linspace(0, 1, p.shape[0])  # fidgeting runs on clip time, not action time
    freq = rng.uniform(0.2, 1.0, size=(2, len(kin.JOINTS), 3))
    shift = rng.uniform(0, 2 * np.pi, size=(2, len(kin.JOINTS), 3))
    amp = rng.normal(0, _FIDGET_DEG, size=(2, len(kin.JOINTS), 3))
    return d.angles + (amp * np.sin(2 * np.pi * freq * t[:, None, None, None] + shift)).sum(1)


def _pose_person(tracks, rng: np.random.Generator, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """One person in their own frame (root on the floor plane at the origin, facing +z).

    Returns positions (T, J, 3), the clipped joint angles (T, J, 3) and the root motion ``{"fwd": forward
    displacement (T,)}``.
    """
    offsets = kin.subject_offsets(rng)
    drive = _drive(tracks, p, rng.uniform(0.8, 1.2))
    angles = kin.clip_to_limits(drive.angles + _idle(rng, p))
    pos = kin.forward_kinematics(offsets, angles)
    pos[..., 1] -= pos[..., 1].min(axis=1, keepdims=True)  # the lowest point of the body is on the floor
    pos[..., 1] += drive.lift[:, None]
    if not drive.legs_free:  # both feet stay where they are: cancel the ankles' horizontal drift
        rest = kin.forward_kinematics(offsets, np.zeros((1,) + angles.shape[1:]))[0, kin.ANKLES].mean(0)
        drift = pos[:, kin.ANKLES].mean(1) - rest
        pos[..., [0, 2]] -= drift[:, None, [0, 2]]
    yaw = np.deg2rad(angles[:, kin.INDEX["pelvis"], 1])  # translations follow the current heading
    step_fwd, step_side = np.diff(drive.fwd, prepend=0.0), np.diff(drive.side, prepend=0.0)
    moved = np.stack([np.cumsum(step_side * np.cos(yaw) + step_fwd * np.sin(yaw)), np.zeros(p.shape[0]),
                      np.cumsum(-step_side * np.sin(yaw) + step_fwd * np.cos(yaw))], -1)
    return pos + moved[:, None, :], angles, {"fwd": drive.fwd}


def _turn_y(pos: np.ndarray, yaw_deg: float) -> np.ndarray:
    return pos @ kin.rotation(np.array([0.0, yaw_deg, 0.0])).T


def _kinect_artefacts(rng: np.random.Generator, persons: list[np.ndarray]) -> None:
    """Dropped frames (a frame repeats the previous one) and a short single-joint glitch, in place."""
    if rng.uniform() < _DROP_PROB:
        for t in rng.choice(np.arange(1, _T), size=rng.integers(1, 4), replace=False):
            for w in persons:
                w[t] = w[t - 1]
    if rng.uniform() < _GLITCH_PROB:
        w = persons[rng.integers(len(persons))]
        t0, joint = rng.integers(0, _T - 3), rng.integers(len(kin.JOINTS))
        w[t0:t0 + rng.integers(1, 4), joint] += rng.normal(0.0, 0.05, 3)


def sample(dataset: str, label: int, rng: np.random.Generator, *, sensor: bool = True) -> dict:
    """One clip of class ``label`` on the superset body.

    Returns ``{"persons": [positions (T, J, 3), ...], "angles": [joint angles (T, J, 3), ...], "progress": (T,)}``
    with one entry per person. ``sensor=False`` leaves out noise and Kinect artefacts (for tests of the body).
    """
    tracks, reverse = _classes(dataset)[label]
    p = _timing(rng)
    if reverse:
        p = 1.0 - p
    persons, angles, motion = [], [], []
    for person in (0, 1) if any(t.person == 1 for t in tracks) else (0,):
        pos, ang, mot = _pose_person([t for t in tracks if t.person == person], rng, p)
        persons.append(pos)
        angles.append(ang)
        motion.append(mot)
    if len(persons) == 2:
        if class_names(dataset)[label] in catalog.SAME_FACING:  # partner walks behind, facing the same way
            persons[1] = persons[1] - np.array([0.0, 0.0, 1.2])
        else:  # facing each other, at contact distance once both have stepped in
            gap = _CONTACT_M + float(np.max(motion[0]["fwd"] + motion[1]["fwd"]))
            persons[1] = _turn_y(persons[1], 180.0) + np.array([0.0, 0.0, gap])
    t = np.linspace(0, 1, _T)[:, None]
    steady = t * rng.normal(0, 0.08, 3)  # drawn first: the seed's clips stay the same
    drift = steady + 0.04 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0, 3) * t + rng.uniform(0, 6.3, 3))
    drift[:, 1] = 0.0  # slow wandering on the floor
    origin = (persons[0][:, kin.INDEX["pelvis"]] + drift).mean(0)
    view = kin.rotation(np.array([rng.uniform(-5, 5), rng.uniform(-20, 20), rng.uniform(-3, 3)]))
    persons = [(w + drift[:, None, :] - origin) @ view.T for w in persons]
    if sensor:
        persons = [w + rng.normal(0.0, _NOISE_M, size=w.shape) for w in persons]
        if layouts.get_dataset(dataset).sensor == "kinect":
            _kinect_artefacts(rng, persons)
    return {"persons": persons, "angles": angles, "progress": p}


def generate(dataset: str, num_per_class: int, seed: int, split: str = "train",
             classes=None) -> tuple[np.ndarray, np.ndarray]:
    """Generates a synthetic split in the common layout.

    Args:
      dataset: ``hdm05`` (HDM05 joint order, M=1), ``ntu60`` or ``ntu120`` (NTU joint order, M=2).
      num_per_class: samples per action class.
      seed: base seed; the same (seed, split) always gives the same samples.
      split: ``train`` or ``test``; the two splits draw different subjects and recordings.
      classes: labels to generate (a list, or a string like ``"0-18,25"``; default: every class of ``dataset``);
        a subset keeps the real labels and gives exactly the samples the full set has for those labels.

    Returns:
      ``(x, labels)``: x float32 (N, 3, 60, 25, M), labels int64 (N,) with N = num_per_class * len(classes);
      classes are interleaved (``labels[n] == classes[n % len(classes)]``); label = index into
      ``class_names(dataset)``.
    """
    if split not in _SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(_SPLIT_IDS)}")
    layout = layouts.get_dataset(dataset)
    subset = parse_classes(classes, dataset)
    chosen = np.arange(layout.num_classes) if subset is None else np.asarray(subset, dtype=np.int64)
    order = [kin.INDEX[n] for n in layout.skeleton.joint_names]
    k = chosen.size
    x = np.zeros((num_per_class * k, 3, _T, layouts.NUM_JOINTS, layout.num_persons), dtype=np.float32)
    labels = np.tile(chosen, num_per_class)
    for n, label in enumerate(labels):
        rng = np.random.default_rng([seed, _SPLIT_IDS[split], int(label), n // k])
        persons = sample(dataset, int(label), rng)["persons"]
        for m, w in enumerate(persons[:layout.num_persons]):
            x[n, :, :, :, m] = w[:, order].transpose(2, 0, 1)
    return x, labels


def write_dataset(root, dataset: str, num_per_class_train: int = 40, num_per_class_test: int = 15,
                  seed: int = 0, classes=None) -> dict[str, pathlib.Path]:
    """Writes ``<root>/<dataset>/classTrain.npz`` and ``classTest.npz`` in the real on-disk format.

    HDM05: ``clips`` float64 (N, 60, 75) joint-major (column ``3 * j + c``), ``classes`` int64.
    NTU60/120: ``clips`` float32 (N, 3, 60, 25, 2), ``classes`` int64. Files are written atomically.

    Args:
      root: data root folder (created if missing).
      dataset: ``hdm05``, ``ntu60`` or ``ntu120``.
      num_per_class_train: training samples per class.
      num_per_class_test: test samples per class.
      seed: base seed for both splits.
      classes: labels to write (default: all); see ``generate``.

    Returns:
      ``{"train": path, "test": path}``.
    """
    folder = pathlib.Path(root) / dataset
    paths = {}
    for split, count, fname in (("train", num_per_class_train, "classTrain.npz"),
                                ("test", num_per_class_test, "classTest.npz")):
        x, labels = generate(dataset, count, seed, split, classes)
        paths[split] = formats.save_dataset_file(folder / fname, x, labels, dataset)
    return paths
