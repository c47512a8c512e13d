"""Reading upstream PyTorch checkpoints (``.pth``, optionally xz-compressed) into numpy (host code).

torch is an optional dependency (``pip install tasar-jax[torch]``); it is imported only here.
"""

from __future__ import annotations

import io
import lzma
import pathlib

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not fit the model; the message says which and why."""


def _import_torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading PyTorch checkpoints needs torch: pip install 'tasar-jax[torch]'") from err
    return torch


def read_pth(path) -> dict:
    """Loads a ``torch.save`` file (``.pth``/``.pt``, or ``.xz``-compressed) with ``weights_only=True``."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    torch = _import_torch()
    raw = path.read_bytes()
    if path.suffix == ".xz":
        try:
            raw = lzma.decompress(raw)
        except lzma.LZMAError as err:
            raise CheckpointError(f"{path}: corrupt xz stream: {err}") from err
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {err}") from err


def to_numpy_state_dict(obj, path="checkpoint") -> dict[str, np.ndarray]:
    """A torch ``state_dict`` (mapping of tensors) as an ordered ``{key: numpy array}``."""
    if not hasattr(obj, "items"):
        raise CheckpointError(f"{path}: expected a state_dict (a mapping of tensors), got {type(obj).__name__}")
    out = {}
    for key, value in obj.items():
        if not hasattr(value, "detach"):
            raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        out[key] = value.detach().cpu().numpy()
    return out


def read_state_dict(path) -> dict[str, np.ndarray]:
    """``read_pth`` + ``to_numpy_state_dict``."""
    return to_numpy_state_dict(read_pth(path), path)
