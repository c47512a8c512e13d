"""Dataset metadata: class counts, persons, joint parents and skeleton edges (pure numpy constants).

Layout letters used throughout the package: N batch, C xyz channel (3), T frames, V joints, M persons.
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

# Graph centre joint of the ST-GCN "spatial" partition per layout.
GRAPH_CENTERS = {"hdm05": 12, "ntu-rgb+d": 20}
GRAPH_EDGES = {"hdm05": HDM05_EDGES, "ntu-rgb+d": NTU_EDGES}

# SkateFormer's 24-joint re-indexing (NTU semantics; upstream applies it to HDM05 too, reference.md §7.6).
SKATEFORMER_JOINTS = (6, 7, 21, 22, 10, 11, 23, 24, 12, 13, 14, 15, 16, 17, 18, 19, 4, 8, 5, 9, 1, 2, 0, 3)
SKATEFORMER_FRAMES = 64


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What the loaders and models need to know about one dataset.

    Attributes:
      name: ``hdm05``, ``ntu60`` or ``ntu120``.
      num_classes: number of action classes of the real dataset.
      num_persons: M, persons per sample in the on-disk format.
      parents: 0-based parent joint of every joint (bone vectors ``x - x[..., parents, :]``).
      graph_layout: skeleton layout name for the graph constructions (``hdm05`` or ``ntu-rgb+d``).
      file_layout: ``joint_major`` (``clips`` (N, T, 75)) or ``nctvm`` (``clips`` (N, 3, T, 25, M)).
    """

    name: str
    num_classes: int
    num_persons: int
    parents: tuple[int, ...]
    graph_layout: str
    file_layout: str

    @property
    def parents_array(self) -> np.ndarray:
        return np.asarray(self.parents, dtype=np.int32)


DATASETS = {
    "hdm05": DatasetSpec("hdm05", 65, 1, HDM05_PARENTS, "hdm05", "joint_major"),
    "ntu60": DatasetSpec("ntu60", 60, 2, NTU_PARENTS, "ntu-rgb+d", "nctvm"),
    "ntu120": DatasetSpec("ntu120", 120, 2, NTU_PARENTS, "ntu-rgb+d", "nctvm"),
}


def get_dataset(name: str) -> DatasetSpec:
    """Returns the spec of dataset ``name``; an unknown name raises a ValueError listing the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}") from None
