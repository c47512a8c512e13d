"""Posterior files: upstream state_dicts (as numpy mappings) → ``HeadParams``, and our own npz format.

Reading the upstream ``.pth``/``.pt`` files needs torch and lives in ``converters/posterior_io.py``; this module
is numpy-only. Our format: one npz with ``heads.w1`` … ``sqmean.b2`` (leading axis = head) and a JSON ``metadata``
entry (``num_heads``, ``num_classes``, ``dataset``, ``surrogate_checkpoint``, anything else given), written
atomically. A posterior is a per-stream tuple (``tasar_jax.models.streams``): ``(posterior,)`` is stored without a
prefix, a two-stream ``(joint, bone)`` pair with the prefixes ``joint.`` and ``bone.`` (metadata
``streams = ["joint", "bone"]``); ``load_posterior`` returns the tuple.
"""

from __future__ import annotations

import json
import pathlib
from typing import Mapping

import numpy as np

from tasar_jax.data.formats import atomic_path
from tasar_jax.models import streams
from tasar_jax.posterior.heads import HeadParams, Posterior

__all__ = ["PosteriorFormatError", "UPSTREAM_HEAD_KEYS", "head_from_state_dict", "stack_heads",
           "save_posterior", "load_posterior"]

UPSTREAM_HEAD_KEYS = ("0.weight", "0.bias", "1.weight", "1.bias")  # Sequential(Linear, Linear, ReLU)
_GROUPS = ("heads", "mean", "sqmean")
FORMAT_VERSION = 1


class PosteriorFormatError(ValueError):
    """A posterior or head file is missing entries or has inconsistent shapes; the message says which."""


def head_from_state_dict(state_dict: Mapping[str, np.ndarray], where: str = "head") -> HeadParams:
    """One head from a head state_dict (keys ``0.weight`` …) or an AppendedModel one (``model.0.weight`` …)."""
    keys = set(state_dict)
    prefix = "model." if {"model." + k for k in UPSTREAM_HEAD_KEYS} <= keys else ""
    missing = [prefix + k for k in UPSTREAM_HEAD_KEYS if prefix + k not in keys]
    if missing:
        raise PosteriorFormatError(f"{where}: missing {missing}; found {sorted(keys)}")
    w1, b1, w2, b2 = (np.asarray(state_dict[prefix + k], np.float32) for k in UPSTREAM_HEAD_KEYS)
    k = w1.shape[0]
    if w1.shape != (k, k) or w2.shape != (k, k) or b1.shape != (k,) or b2.shape != (k,):
        raise PosteriorFormatError(f"{where}: expected W (K,K) and b (K,), got {w1.shape}, {b1.shape}, "
                                   f"{w2.shape}, {b2.shape}")
    return HeadParams(w1, b1, w2, b2)


def stack_heads(heads) -> HeadParams:
    """A list of single heads → one stacked ``HeadParams`` (leading axis = head index)."""
    heads = list(heads)
    if not heads:
        raise PosteriorFormatError("no heads to stack")
    return HeadParams(*(np.stack(leaves) for leaves in zip(*heads)))


def _arrays(posterior: Posterior, prefix: str = "") -> dict[str, np.ndarray]:
    return {f"{prefix}{group}.{name}": np.asarray(leaf) for group, tree in zip(_GROUPS, posterior)
            for name, leaf in zip(HeadParams._fields, tree)}


def save_posterior(path, posterior: tuple[Posterior, ...], *, dataset: str | None = None,
                   surrogate_checkpoint: str | None = None, **metadata) -> pathlib.Path:
    """Writes a per-stream ``posterior`` tuple and its metadata to ``path`` (npz) atomically."""
    path = pathlib.Path(path)
    posterior = streams.check_per_stream(posterior, "posterior")
    if len(posterior) == 1:
        arrays = _arrays(posterior[0])
        w1 = arrays["heads.w1"]
    else:
        arrays = {k: v for stream, p in zip(streams.STREAMS, posterior, strict=True)
                  for k, v in _arrays(p, f"{stream}.").items()}
        w1 = arrays["joint.heads.w1"]
        metadata = {"streams": list(streams.STREAMS), **metadata}
    meta = dict(format_version=FORMAT_VERSION, num_heads=int(w1.shape[0]), num_classes=int(w1.shape[-1]),
                dataset=dataset, surrogate_checkpoint=None if surrogate_checkpoint is None
                else str(surrogate_checkpoint), **metadata)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, metadata=np.asarray(json.dumps(meta)), **arrays)
    return path


def load_posterior(path) -> tuple[tuple[Posterior, ...], dict]:
    """Reads a ``save_posterior`` file: (the per-stream tuple of Posteriors of numpy arrays — ``(posterior,)``, or
    ``(joint, bone)`` for a two-stream surrogate — and the metadata dict)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise PosteriorFormatError(f"{path}: no such posterior file")
    try:
        with np.load(path, allow_pickle=False) as data:
            entries = {k: data[k] for k in data.files}
    except Exception as err:  # zipfile/pickle/value errors for a damaged file
        raise PosteriorFormatError(f"{path}: not a readable npz: {err}") from err
    if "metadata" not in entries:
        raise PosteriorFormatError(f"{path}: missing entries ['metadata']")
    meta = json.loads(str(entries["metadata"]))
    prefixes = [f"{s}." for s in meta["streams"]] if meta.get("streams") else [""]
    posteriors = tuple(_posterior_from(entries, prefix, path) for prefix in prefixes)
    return posteriors, meta


def _posterior_from(entries: dict, prefix: str, path) -> Posterior:
    wanted = [f"{prefix}{g}.{n}" for g in _GROUPS for n in HeadParams._fields]
    missing = [k for k in wanted if k not in entries]
    if missing:
        raise PosteriorFormatError(f"{path}: missing entries {missing}")
    trees = [HeadParams(*(entries[f"{prefix}{g}.{n}"] for n in HeadParams._fields)) for g in _GROUPS]
    shapes = {tuple(leaf.shape for leaf in tree) for tree in trees}
    if len(shapes) != 1:
        raise PosteriorFormatError(f"{path}: {prefix}heads/mean/sqmean shapes differ: {sorted(shapes)}")
    return Posterior(*trees)
