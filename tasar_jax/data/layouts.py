"""Dataset descriptions: class counts, persons, skeletons (joint parents, edges, torso) and stored-file codecs.

A dataset is one ``Dataset`` in ``DATASETS``; what differs between datasets hangs off it (its ``Skeleton`` and
its ``codec``), so the readers, models, attacks and the command line never branch on a dataset's name. Adding a
dataset or a file layout is an entry here (``docs/extending.md``). Layout letters used throughout the package:
N batch, C xyz channel (3), T frames, V joints, M persons.
Values are the upstream ones (``shared/reference/reference.md`` §1.2 and §2.1).
"""

from __future__ import annotations

import dataclasses

import numpy as np

NUM_FRAMES = 60
NUM_JOINTS = 25
NUM_CHANNELS = 3

# 0-based parent of every joint; the root is its own parent, so its bone vector is zero.
HDM05_PARENTS = (10, 0, 1, 2, 3, 10, 5, 6, 7, 8, 10, 10, 11, 12, 13, 13, 15, 16, 17, 18, 13, 20, 21, 22, 23)
NTU_PARENTS = (0, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11)

# Skeleton edges, 0-based (child, parent) pairs without self loops.
HDM05_EDGES = (
    (10, 11), (11, 12), (12, 13), (13, 14), (13, 15), (15, 16), (16, 17), (17, 18), (18, 19),
    (13, 20), (20, 21), (21, 22), (22, 23), (23, 24), (10, 0), (0, 1), (1, 2), (2, 3), (3, 4),
    (10, 5), (5, 6), (6, 7), (7, 8), (8, 9),
)
_NTU_EDGES_1BASED = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
    (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
    (23, 8), (24, 25), (25, 12),
)
NTU_EDGES = tuple((i - 1, j - 1) for i, j in _NTU_EDGES_1BASED)

# SkateFormer's 24-joint re-indexing (NTU semantics; upstream applies it to HDM05 too, reference.md §7.6).
SKATEFORMER_JOINTS = (6, 7, 21, 22, 10, 11, 23, 24, 12, 13, 14, 15, 16, 17, 18, 19, 4, 8, 5, 9, 1, 2, 0, 3)
SKATEFORMER_FRAMES = 64


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """One joint layout: how its 25 joints connect, and what the graphs, attacks and synthetic body need of it.

    Attributes:
      name: the graph layout name model configs store (``graph_layout``), e.g. ``hdm05``, ``ntu-rgb+d``.
      parents: 0-based parent joint of every joint (bone vectors ``x - x[..., parents, :]``; the root is its own).
      edges: (child, parent) pairs without self loops, the skeleton graph of the graph models.
      center: the centre joint of ST-GCN's "spatial" partition.
      torso: the torso joints (SMART/CIASA weight them twice in their L2 term).
      joint_names: the synthetic body's joint (``tasar_jax.data.kinematics``) stored at each index.
    """

    name: str
    parents: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    center: int
    torso: tuple[int, ...]
    joint_names: tuple[str, ...]


class JointMajor:
    """Stored ``clips`` (N, T, V·3): column ``3j + c`` is coordinate c of joint j; one person (HDM05)."""

    name = "joint_major"
    stored_dtype = np.float64  # as the BEAT HDM05 files

    @staticmethod
    def shape_text(num_persons: int) -> str:
        return f"(N, T, {NUM_JOINTS * NUM_CHANNELS})"

    @staticmethod
    def accepts(shape: tuple[int, ...]) -> bool:
        return len(shape) == 3 and shape[2] == NUM_JOINTS * NUM_CHANNELS

    @staticmethod
    def persons(shape: tuple[int, ...]) -> int:
        return 1

    @staticmethod
    def to_common(clips: np.ndarray) -> np.ndarray:
        n, t, _ = clips.shape
        return clips.reshape(n, t, -1, NUM_CHANNELS, 1).transpose(0, 3, 1, 2, 4)

    @staticmethod
    def from_common(x: np.ndarray) -> np.ndarray:
        if x.shape[-1] != 1:
            raise ValueError(f"the joint-major layout stores one person, got M={x.shape[-1]}")
        n, c, t, v, _ = x.shape
        return x[..., 0].transpose(0, 2, 3, 1).reshape(n, t, v * c)


class ChannelsFirst:
    """Stored ``clips`` (N, 3, T, V, M): already the common layout (NTU60, NTU120)."""

    name = "nctvm"
    stored_dtype = np.float32

    @staticmethod
    def shape_text(num_persons: int) -> str:
        return f"(N, 3, T, {NUM_JOINTS}, {num_persons})"

    @staticmethod
    def accepts(shape: tuple[int, ...]) -> bool:
        return len(shape) == 5 and shape[1] == NUM_CHANNELS and shape[3] == NUM_JOINTS

    @staticmethod
    def persons(shape: tuple[int, ...]) -> int:
        return shape[4]

    @staticmethod
    def to_common(clips: np.ndarray) -> np.ndarray:
        return clips

    @staticmethod
    def from_common(x: np.ndarray) -> np.ndarray:
        return x


@dataclasses.dataclass(frozen=True)
class Dataset:
    """What the loaders and models need to know about one dataset.

    Attributes:
      name: the dataset's name (``hdm05``, ``ntu60``, ``ntu120``).
      num_classes: number of action classes of the real dataset.
      num_persons: M, persons per sample in the on-disk format.
      skeleton: its joint layout (graph, bones, torso).
      codec: its stored ``clips`` layout: ``to_common``/``from_common`` convert to and from (N, 3, T, V, M),
        ``accepts(shape)`` checks a stored shape, ``persons(shape)`` reads M from it, ``shape_text(M)`` describes it,
        ``stored_dtype`` is what files are written in (``JointMajor``, ``ChannelsFirst``).
      sensor: ``mocap`` or ``kinect`` (the synthetic data adds Kinect's frame drops and jitter to the latter).
    """

    name: str
    num_classes: int
    num_persons: int
    skeleton: Skeleton
    codec: type
    sensor: str = "mocap"

    @property
    def parents(self) -> tuple[int, ...]:
        return self.skeleton.parents

    @property
    def parents_array(self) -> np.ndarray:
        return np.asarray(self.parents, dtype=np.int32)

    @property
    def graph_layout(self) -> str:
        return self.skeleton.name


SKELETONS = {skeleton.name: skeleton for skeleton in (
    Skeleton("hdm05", HDM05_PARENTS, HDM05_EDGES, center=12, torso=(10, 11, 12, 13, 14), joint_names=(
        "l_hip", "l_knee", "l_ankle", "l_foot", "l_toes", "r_hip", "r_knee", "r_ankle", "r_foot", "r_toes",
        "pelvis", "lower_back", "upper_back", "thorax", "head", "l_clavicle", "l_shoulder", "l_elbow", "l_wrist",
        "l_hand", "r_clavicle", "r_shoulder", "r_elbow", "r_wrist", "r_hand")),
    Skeleton("ntu-rgb+d", NTU_PARENTS, NTU_EDGES, center=20, torso=(0, 1, 20, 2, 3), joint_names=(
        "pelvis", "upper_back", "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "l_hand", "r_shoulder",
        "r_elbow", "r_wrist", "r_hand", "l_hip", "l_knee", "l_ankle", "l_foot", "r_hip", "r_knee", "r_ankle",
        "r_foot", "thorax", "l_handtip", "l_thumb", "r_handtip", "r_thumb")),
)}

DATASETS = {
    "hdm05": Dataset("hdm05", 65, 1, SKELETONS["hdm05"], JointMajor),
    "ntu60": Dataset("ntu60", 60, 2, SKELETONS["ntu-rgb+d"], ChannelsFirst, sensor="kinect"),
    "ntu120": Dataset("ntu120", 120, 2, SKELETONS["ntu-rgb+d"], ChannelsFirst, sensor="kinect"),
}


def get_dataset(name: str) -> Dataset:
    """Returns the layout of dataset ``name``; an unknown name raises a ValueError listing the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}") from None


def get_skeleton(name: str) -> Skeleton:
    """Returns skeleton layout ``name`` (a model config's ``graph_layout``); unknown names raise a ValueError."""
    try:
        return SKELETONS[name]
    except KeyError:
        raise ValueError(f"unknown graph layout {name!r}; valid: {', '.join(SKELETONS)}") from None


def skeleton_with_parents(parents) -> Skeleton:
    """The registered skeleton whose joint parents are ``parents``; a ValueError if none is."""
    parents = tuple(int(p) for p in parents)
    for skeleton in SKELETONS.values():
        if skeleton.parents == parents:
            return skeleton
    raise ValueError("unknown skeleton layout: no registered skeleton has these joint parents")


def dataset_for_stored_shape(shape: tuple[int, ...]) -> str:
    """The dataset to read a file whose ``clips`` have ``shape`` as, when none is named: of the datasets whose codec
    and person count fit the shape, the one with the most classes (so that any of their labels validate)."""
    fits = [layout for layout in DATASETS.values()
            if layout.codec.accepts(shape) and layout.codec.persons(shape) == layout.num_persons]
    if not fits:
        raise ValueError(f"clips of shape {tuple(shape)} fit no known dataset description; name the dataset")
    return max(fits, key=lambda layout: layout.num_classes).name
