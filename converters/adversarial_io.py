"""Adversarial sets in upstream's ``torch.save`` format (reference.md §1.6), for its transfer test.

An upstream attack folder holds three files, each a tuple of two CPU tensors:
``original_data.pt`` = (clean x, labels), ``visual_adData.pt`` = (x_adv, surrogate argmax on x_adv) and
``transfer_adv_data.pt`` = (x_adv, labels) — the file ``--transfer_path`` reads. Labels are the attack labels
(true classes, or targets for a targeted attack). torch is imported only here.
"""

from __future__ import annotations

import pathlib

import numpy as np
from tasar_jax.converters.torch_io import CheckpointError, _import_torch, read_pth

from tasar_jax.attacks.common import AdversarialSet
from tasar_jax.data.formats import atomic_path

FILES = ("original_data.pt", "visual_adData.pt", "transfer_adv_data.pt")


def _save_pair(path, data, labels) -> pathlib.Path:
    torch = _import_torch()
    pair = (torch.from_numpy(np.ascontiguousarray(data, np.float32)),
            torch.from_numpy(np.ascontiguousarray(labels, np.int64)))
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(pair, tmp)
    return pathlib.Path(path)


def read_pair(path) -> tuple[np.ndarray, np.ndarray]:
    """Reads one upstream ``(data, labels)`` file (``weights_only``) as numpy float32 / int64 arrays."""
    obj = read_pth(path)
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2 and all(hasattr(t, "numpy") for t in obj)):
        raise CheckpointError(f"{path}: expected a (data, labels) tuple of tensors, got {type(obj).__name__}")
    data, labels = (t.detach().cpu().numpy() for t in obj)
    if data.ndim != 5 or labels.shape != (data.shape[0],):
        raise CheckpointError(f"{path}: data {data.shape} and labels {labels.shape} do not form a batch")
    return data.astype(np.float32), labels.astype(np.int64)


def write_upstream(folder, adv: AdversarialSet) -> dict[str, pathlib.Path]:
    """Writes the three upstream files of ``adv`` into ``folder`` (each atomically); returns their paths."""
    folder = pathlib.Path(folder)
    pairs = {"original_data.pt": (adv.x, adv.labels), "visual_adData.pt": (adv.x_adv, adv.predictions),
             "transfer_adv_data.pt": (adv.x_adv, adv.labels)}
    return {name: _save_pair(folder / name, *pair) for name, pair in pairs.items()}


def read_upstream(folder) -> AdversarialSet:
    """Reads an upstream attack folder back; ``success`` = surrogate prediction ≠ label (untargeted reading)."""
    folder = pathlib.Path(folder)
    x, labels = read_pair(folder / "original_data.pt")
    x_adv, predictions = read_pair(folder / "visual_adData.pt")
    if x.shape != x_adv.shape:
        raise CheckpointError(f"{folder}: clean {x.shape} and adversarial {x_adv.shape} batches differ")
    return AdversarialSet(x, x_adv, labels, predictions, predictions != labels)
