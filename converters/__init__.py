"""PyTorch checkpoint → Flax NNX conversion: one generic engine plus a key table per architecture.

Only this package (and the optional PyTorch reference) imports torch; ``tasar_jax`` never does.
"""

from __future__ import annotations

import importlib

from converters.engine import load_state_dict
from converters.torch_io import CheckpointError, read_state_dict
from tasar_jax import models

__all__ = ["CheckpointError", "convert", "convert_file", "keymap", "load_state_dict", "read_state_dict"]


def keymap(arch: str):
    """The key-table module of ``arch`` (``converters/keymaps/<arch>.py``)."""
    module_name = models.ARCHITECTURES.get(arch.lower())
    if module_name is None:
        raise ValueError(f"unknown architecture {arch!r}; valid names: {', '.join(models.ARCHITECTURES)}")
    return importlib.import_module(f"converters.keymaps.{module_name}")


def convert(arch: str, dataset: str, state_dict, *, source: str = "checkpoint", **overrides):
    """Builds the upstream-size ``arch`` model for ``dataset`` and loads a numpy ``state_dict`` into it (strict)."""
    table = keymap(arch)
    config = models.config_for(arch, dataset, **{**getattr(table, "CONFIG_OVERRIDES", {}), **overrides})
    model = models.create(arch, config=config)
    return load_state_dict(model, state_dict, table.KEY_TABLE, source=source)


def convert_file(arch: str, dataset: str, path, **overrides):
    """``convert`` for a ``.pth`` (or ``.pth.xz``) file written by the upstream code."""
    return convert(arch, dataset, read_state_dict(path), source=str(path), **overrides)
