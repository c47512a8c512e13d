"""Shared NNX building blocks with PyTorch-compatible numerics (BatchNorm eps 1e-5, momentum 0.1)."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx


class Buffer(nnx.Variable):
    """A constant that belongs to the model state but is never trained (torch ``register_buffer``)."""


class Constant(nnx.Variable):
    """A fixed array rebuilt from the config that upstream keeps *outside* its state_dict (plain tensor attribute).

    Examples: MS-G3D ``A_powers``/``A_scales``, 2s-AGCN's fixed graph ``A``. Converters do not expect it in a
    checkpoint. Store float32-rounded values (as upstream does) so a float64 cast reproduces upstream's float64
    numbers, which promote these float32 constants.
    """


def batch_norm(num_features: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """BatchNorm over the last axis matching ``torch.nn.BatchNorm{1,2}d`` defaults.

    Flax ``momentum=0.9`` is torch ``momentum=0.1``; the exact two-pass variance is used. Flax keeps the biased
    batch variance in its running statistic where torch keeps the unbiased one; this only matters when a model
    is trained here and then compared step by step with torch training (docs/decisions.md).
    """
    return nnx.BatchNorm(num_features, momentum=0.9, epsilon=1e-5, use_fast_variance=False, rngs=rngs)


def conv2d(in_features, out_features, kernel_size, *, strides=(1, 1), padding=((0, 0), (0, 0)), rngs) -> nnx.Conv:
    """A 2-D convolution on channels-last maps (N, H, W, C) with explicit (torch-style) padding."""
    return nnx.Conv(in_features, out_features, kernel_size, strides=strides, padding=padding, rngs=rngs)


def residual_mode(enabled: bool, in_channels: int, out_channels: int, stride: int) -> str:
    """Upstream's residual choice: ``none`` (disabled), ``identity`` (shape kept) or ``conv`` (projection)."""
    if not enabled:
        return "none"
    return "identity" if in_channels == out_channels and stride == 1 else "conv"


def residual_branch(mode: str, x, projection):
    """The residual branch for ``mode``: 0, ``x`` itself, or ``projection(x)``."""
    if mode == "none":
        return 0.0
    return x if mode == "identity" else projection(x)


def num_parameters(model: nnx.Module) -> int:
    """Number of trainable parameters, as torch counts ``model.parameters()``."""
    return int(sum(np.prod(p.shape) for p in jax.tree.leaves(nnx.state(model, nnx.Param))))
