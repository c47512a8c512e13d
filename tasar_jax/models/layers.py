"""Shared NNX building blocks with PyTorch-compatible numerics (BatchNorm eps 1e-5, momentum 0.1)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax
from jax.custom_derivatives import SymbolicZero


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


def _hashable(value):
    """Lists (e.g. paddings) as tuples, recursively; named tuples (dimension numbers) unchanged."""
    if isinstance(value, list) or (isinstance(value, tuple) and not hasattr(value, "_fields")):
        return tuple(_hashable(v) for v in value)
    return value


def _channels_last(dn) -> bool:
    """Whether dimension numbers are (N, spatial…, C) / (spatial…, I, O) / (N, spatial…, C), as nnx.Conv passes."""
    n = len(dn.lhs_spec)
    last = (0, n - 1, *range(1, n - 1))
    return tuple(dn.lhs_spec) == last and tuple(dn.out_spec) == last and tuple(dn.rhs_spec) == (n - 1, n - 2,
                                                                                                 *range(n - 2))


def _per_offset_kernel_tangent(kwargs: dict):
    """``d_rhs ↦ conv(lhs, d_rhs)`` written as ``Σ_offsets lhs_patch(offset) · d_rhs[offset]`` (one matrix product
    per kernel offset), or None where that form does not apply (string padding, input dilation).

    Same values as the convolution; what changes is its transpose, the weight gradient: one ``dot_general`` per
    kernel offset, where XLA CPU otherwise runs a filter-gradient convolution ~4× slower than PyTorch's (decision
    X9: full-width ST-GCN, batch 16, parameter gradient 5.2 s against 1.3 s).
    """
    padding, lhs_dilation = kwargs["padding"], kwargs.get("lhs_dilation")
    if isinstance(padding, str) or (lhs_dilation is not None and any(d != 1 for d in lhs_dilation)):
        return None
    strides, rhs_dilation = kwargs["window_strides"], kwargs.get("rhs_dilation")
    extra = {k: kwargs[k] for k in ("precision", "preferred_element_type") if kwargs.get(k) is not None}

    def tangent(lhs, d_rhs):
        nd = lhs.ndim - 2
        dilation = rhs_dilation or (1,) * nd
        x = jnp.pad(lhs, ((0, 0), *padding, (0, 0)))
        kernel = d_rhs.shape[:nd]
        out = [(x.shape[1 + i] - dilation[i] * (kernel[i] - 1) - 1) // strides[i] + 1 for i in range(nd)]
        total = 0.0
        for offset in np.ndindex(*kernel):
            start = [0, *(o * d for o, d in zip(offset, dilation)), 0]
            limit = [x.shape[0], *(st + s * (n - 1) + 1 for st, s, n in zip(start[1:-1], strides, out)), x.shape[-1]]
            patch = lax.slice(x, start, limit, (1, *strides, 1))
            total = total + jnp.einsum("...i,io->...o", patch, d_rhs[offset], **extra)
        return total

    return tangent


@functools.lru_cache(maxsize=None)
def _canonical_conv(conv_args: tuple):
    """``lax.conv_general_dilated`` with the fixed arguments ``conv_args`` and a JVP whose input tangent convolves with
    the kernel's I/O axes swapped in memory and whose kernel tangent is one product per kernel offset (see
    ``conv_general_dilated``)."""
    kwargs = dict(conv_args)
    dn = kwargs["dimension_numbers"]
    kernel_tangent = _per_offset_kernel_tangent(kwargs) if _channels_last(dn) else None
    out_axis, in_axis = dn.rhs_spec[:2]
    perm = list(range(len(dn.rhs_spec)))
    perm[out_axis], perm[in_axis] = in_axis, out_axis
    swapped = {**kwargs, "dimension_numbers": dn._replace(rhs_spec=(in_axis, out_axis) + tuple(dn.rhs_spec[2:]))}

    @jax.custom_jvp
    def conv(lhs, rhs):
        return lax.conv_general_dilated(lhs, rhs, **kwargs)

    def conv_jvp(primals, tangents):
        (lhs, rhs), (d_lhs, d_rhs) = primals, tangents
        out = conv(lhs, rhs)
        terms = []
        if not isinstance(d_lhs, SymbolicZero):
            terms.append(lax.conv_general_dilated(d_lhs, jnp.transpose(rhs, perm), **swapped))
        if not isinstance(d_rhs, SymbolicZero):
            terms.append(lax.conv_general_dilated(lhs, d_rhs, **kwargs) if kernel_tangent is None
                         else kernel_tangent(lhs, d_rhs))
        return out, sum(terms[1:], terms[0]) if terms else jnp.zeros_like(out)

    conv.defjvp(conv_jvp, symbolic_zeros=True)
    return conv


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1, **kwargs):
    """``lax.conv_general_dilated`` (same values and derivatives) whose input gradient is fast on XLA CPU.

    JAX transposes a convolution into one whose kernel has its I/O roles swapped in the dimension numbers. XLA CPU
    runs a convolution with Eigen only if the kernel is laid out (spatial, I, O); it rewrites other layouts with
    explicit transposes, but only in the entry computation. Inside ``lax.scan``/``while`` bodies (every attack loop)
    the swapped backward convolutions fell back to XLA's naive loop, 2–8× slower. Here the forward tangent uses the
    kernel with its I/O axes swapped *in memory* (an explicit transpose), so that its transpose is canonical.
    The kernel tangent (channels-last layouts, explicit padding) is a sum of one matrix product per kernel offset,
    so the weight gradient of training is matrix products too (``_per_offset_kernel_tangent``).
    Grouped convolutions and string dimension numbers use the plain function.
    """
    plain = feature_group_count != 1 or batch_group_count != 1
    if plain or not isinstance(dimension_numbers, lax.ConvDimensionNumbers):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, batch_group_count, **kwargs)
    conv_args = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                     rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers, **kwargs)
    return _canonical_conv(tuple((k, _hashable(v)) for k, v in conv_args.items()))(lhs, rhs)


def conv2d(in_features, out_features, kernel_size, *, strides=(1, 1), padding=((0, 0), (0, 0)), rngs) -> nnx.Conv:
    """A 2-D convolution on channels-last maps (N, H, W, C) with explicit (torch-style) padding; its input gradient
    stays on XLA CPU's fast path inside loops (``conv_general_dilated``)."""
    return nnx.Conv(in_features, out_features, kernel_size, strides=strides, padding=padding,
                    conv_general_dilated=conv_general_dilated, rngs=rngs)


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
