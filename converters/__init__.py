"""PyTorch checkpoint → Flax NNX conversion: one generic engine plus a key table per architecture.

Only this package (and the optional PyTorch reference) imports torch; ``tasar_jax`` never does.
"""

from __future__ import annotations

import importlib
import re

from tasar_jax.converters.engine import load_state_dict
from tasar_jax.converters.torch_io import CheckpointError, read_state_dict

from tasar_jax import models

__all__ = ["CheckpointError", "convert", "convert_file", "keymap", "load_state_dict", "read_state_dict"]


def keymap(arch: str):
    """The key-table module of ``arch`` (``converters/keymaps/<module>.py``; streams and ensembles share one)."""
    return importlib.import_module(f"tasar_jax.converters.keymaps.{models.entry(arch).module}")


def _prefixed(table, prefix: str):
    return tuple((rf"{re.escape(prefix)}{pattern}", f"{prefix}{replacement}") for pattern, replacement in table)


def _without_data_parallel_prefix(state_dict):
    """Keys saved from a ``torch.nn.DataParallel`` wrapper all start with ``module.``; strip it."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k.removeprefix("module."): v for k, v in state_dict.items()}
    return state_dict


def _ensemble_state_dict(state_dict, bone_state_dict, arch: str):
    """One state_dict with upstream's ensemble prefixes ``model_joint.`` / ``model_bone.``."""
    if bone_state_dict is not None:
        return {**{f"model_joint.{k}": v for k, v in state_dict.items()},
                **{f"model_bone.{k}": v for k, v in bone_state_dict.items()}}
    if all(k.startswith(("model_joint.", "model_bone.")) for k in state_dict):
        return state_dict
    raise CheckpointError(f"{arch} is a two-stream ensemble: give the joint checkpoint and then the bone checkpoint "
                          "(or one state_dict with model_joint./model_bone. keys)")


def convert(arch: str, dataset: str, state_dict, bone_state_dict=None, *, source: str = "checkpoint", **overrides):
    """Builds the upstream-size ``arch`` model for ``dataset`` and loads numpy state_dict(s) into it (strict).

    Two-stream ensembles (``msg3d``, ``agcn``) take the joint stream's state_dict and then the bone stream's,
    exactly the two files upstream's ensemble loader reads. A key table may set ``CONFIG_OVERRIDES`` (fixed
    config for upstream checkpoints) and ``config_from_state_dict(sd) -> dict`` (config read off the keys, e.g.
    whether FR-Head's training-only modules are present).
    """
    entry, table = models.entry(arch), keymap(arch)
    if bone_state_dict is not None and not entry.two_stream:
        raise CheckpointError(f"{arch} is a single model: it takes one checkpoint, not two")
    state_dict = _without_data_parallel_prefix(state_dict)
    if bone_state_dict is not None:
        bone_state_dict = _without_data_parallel_prefix(bone_state_dict)
    rules = table.KEY_TABLE
    if entry.two_stream:
        state_dict = _ensemble_state_dict(state_dict, bone_state_dict, arch)
        rules = _prefixed(rules, "model_joint.") + _prefixed(rules, "model_bone.")
    detected = getattr(table, "config_from_state_dict", lambda sd: {})(state_dict)
    config = models.config_for(arch, dataset, **{**getattr(table, "CONFIG_OVERRIDES", {}), **detected, **overrides})
    model = models.create(arch, config=config)
    return load_state_dict(model, state_dict, rules, source=source)


def convert_file(arch: str, dataset: str, path, bone_path=None, **overrides):
    """``convert`` for ``.pth`` (or ``.pth.xz``) file(s) written by the upstream code."""
    bone = None if bone_path is None else read_state_dict(bone_path)
    source = str(path) if bone_path is None else f"{path} + {bone_path}"
    return convert(arch, dataset, read_state_dict(path), bone, source=source, **overrides)
