"""MS-G3D building blocks (Liu et al., 2020) in Flax NNX, channels-last: feature maps are (N·M, T, V, C).

* graph constants: ``binary_adjacency``, ``k_adjacency``, ``normalize_adjacency`` and the stacked multi-scale
  matrices ``gcn_scales`` (MS-GCN ``A_powers``) and ``g3d_scales`` (G3D ``A_scales``), float32 as upstream;
* ``MultiScaleGraphConv`` (MS-GCN), ``MultiScaleTemporalConv`` (MS-TCN), ``MultiWindowG3D`` (MS-G3D pathway).

Attribute names follow upstream's module names where the torch path has a name (``A_res``, ``branches``,
``out_conv``); indexed ``nn.Sequential`` children get descriptive names mapped in ``converters/keymaps/msg3d.py``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tasar_jax.data import layouts
from tasar_jax.models.layers import Constant, batch_norm, conv2d, conv_general_dilated, residual_branch, residual_mode

# -------- graphs


def binary_adjacency(layout: str) -> np.ndarray:
    """Symmetric 0/1 float32 adjacency (V, V) of the skeleton edges, no self loops (upstream ``A_binary``)."""
    edges = layouts.get_skeleton(layout).edges
    a = np.zeros((layouts.NUM_JOINTS, layouts.NUM_JOINTS), np.float32)
    for i, j in edges:
        a[i, j] = a[j, i] = 1.0
    return a


def k_adjacency(a: np.ndarray, k: int, with_self: bool = True) -> np.ndarray:
    """Joints exactly k hops apart: ``min((A+I)^k, 1) − min((A+I)^(k−1), 1)`` (+ I if ``with_self``); k=0 → I.

    Computed in ``a``'s dtype (float32 upstream); walk counts stay exact integers for these sizes.
    """
    eye = np.eye(len(a), dtype=a.dtype)
    if k == 0:
        return eye
    reach = a + eye
    ak = np.minimum(np.linalg.matrix_power(reach, k), 1) - np.minimum(np.linalg.matrix_power(reach, k - 1), 1)
    return ak + eye if with_self else ak


def normalize_adjacency(a: np.ndarray) -> np.ndarray:
    """``D^{-1/2} A D^{-1/2}`` with D the row sums, rounded to float32.

    Upstream takes ``np.power(deg, -0.5)`` in float32 (``A_binary`` is float32), multiplies in float64 and rounds
    the result to float32. NumPy's float32 ``power`` is not correctly rounded and its last bit depends on the CPU's
    SIMD path; here the inverse square roots are the correctly rounded float32 values (computed in float64), which
    reproduces the reference fixtures bit for bit on any machine.
    """
    inv_sqrt = (a.sum(-1).astype(np.float64) ** -0.5).astype(np.float32)
    scale = np.eye(len(a)) * inv_sqrt  # float64 diagonal holding float32 values
    return (scale @ a @ scale).astype(np.float32)


def multiscale_stack(a: np.ndarray, num_scales: int) -> np.ndarray:
    """(S·V, V) vertical stack of ``normalize(k_adjacency(a, k, with_self=True))`` for k = 0..S−1 (float32)."""
    return np.concatenate([normalize_adjacency(k_adjacency(a, k, with_self=True)) for k in range(num_scales)])


@functools.lru_cache(maxsize=32)
def _cached_scales(layout: str, num_scales: int, window_size: int) -> np.ndarray:
    a = binary_adjacency(layout)
    if window_size > 1:
        a = np.tile(a + np.eye(len(a), dtype=a.dtype), (window_size, window_size))
    out = multiscale_stack(a, num_scales)
    out.flags.writeable = False
    return out


def gcn_scales(layout: str, num_scales: int) -> np.ndarray:
    """MS-GCN ``A_powers`` (S·V, V): disentangled k-hop neighbourhoods of the skeleton (cached, read-only)."""
    return _cached_scales(layout, num_scales, 1)


def g3d_scales(layout: str, num_scales: int, window_size: int) -> np.ndarray:
    """G3D ``A_scales`` (S·wV, wV) on the space-time graph ``tile(A + I, (w, w))`` of a w-frame window (cached)."""
    return _cached_scales(layout, num_scales, window_size)


# -------- helpers


def unfold_windows(x, window_size: int, stride: int):
    """(N, T, V, C) → (N, T', w·V, C): zero-padded temporal windows, index ``k·V + v`` for frame offset k.

    Same ordering as upstream's ``nn.Unfold((w, 1), padding=((w−1)/2, 0))`` + view/permute; T' = ⌊(T−1)/s⌋ + 1.
    """
    pad = (window_size - 1) // 2
    t = x.shape[1]
    num_windows = (t + 2 * pad - window_size) // stride + 1
    xp = jnp.pad(x, ((0, 0), (pad, pad), (0, 0), (0, 0)))
    span = stride * (num_windows - 1) + 1
    windows = jnp.stack([xp[:, k:k + span:stride] for k in range(window_size)], axis=2)  # (N, T', w, V, C)
    n, tw, w, v, c = windows.shape
    return windows.reshape(n, tw, w * v, c)


def multiscale_aggregate(adjacency, x, conv: nnx.Conv):
    """Graph aggregation over S scales followed by the 1×1 ``conv`` on the scale-major S·C channels.

    ``adjacency`` (S·V', U), x (N, T, U, C) → (N, T, V', O) = Σ_{s,u,c} A[s,v',u] x[n,t,u,c] W[s·C+c, o] + b.
    One three-operand einsum lets XLA pick the cheaper contraction order (aggregate first or project first).
    """
    c = x.shape[-1]
    kernel = conv.kernel[...]
    num_scales = kernel.shape[-2] // c
    a = adjacency.reshape(num_scales, -1, adjacency.shape[-1])
    w = kernel.reshape(num_scales, c, kernel.shape[-1])
    return jnp.einsum("svu,ntuc,sco->ntvo", a, x, w) + conv.bias[...]


def max_pool_time(x, stride: int):
    """Max over 3 frames, padding 1 (−inf, as torch ``MaxPool2d((3,1), (s,1), (1,0))``), on (N, T, V, C)."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 1, 1), (1, stride, 1, 1),
                                 ((0, 0), (1, 1), (0, 0), (0, 0)))


def temporal_conv(in_channels, out_channels, kernel_size, stride, dilation, *, rngs) -> nnx.Conv:
    """(k, 1) convolution over time with upstream's "same" padding ``(k + (k−1)(d−1) − 1) // 2``."""
    pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
    return nnx.Conv(in_channels, out_channels, (kernel_size, 1), strides=(stride, 1), padding=((pad, pad), (0, 0)),
                    kernel_dilation=(dilation, 1), conv_general_dilated=conv_general_dilated, rngs=rngs)


def uniform_param(shape, low, high, rngs: nnx.Rngs) -> nnx.Param:
    return nnx.Param(jax.random.uniform(rngs.params(), shape, jnp.float32, low, high))


# -------- modules


class MultiScaleGraphConv(nnx.Module):
    """MS-GCN: ``ReLU(BN(conv1x1(regroup((A_powers + A_res) x))))`` with S disentangled k-hop scales."""

    def __init__(self, num_scales, in_channels, out_channels, layout, *, rngs):
        powers = gcn_scales(layout, num_scales)
        self.A_powers = Constant(jnp.asarray(powers))
        self.A_res = uniform_param(powers.shape, -1e-6, 1e-6, rngs)
        self.mlp_conv = conv2d(in_channels * num_scales, out_channels, (1, 1), rngs=rngs)
        self.mlp_bn = batch_norm(out_channels, rngs=rngs)

    def __call__(self, x):
        a = self.A_powers[...].astype(x.dtype) + self.A_res[...]
        return jax.nn.relu(self.mlp_bn(multiscale_aggregate(a, x, self.mlp_conv)))


class TemporalBranch(nnx.Module):
    """One MS-TCN branch: 1×1 conv + BN, then (``dilated``) ReLU + dilated (3,1) conv + BN, (``pool``) ReLU +
    max-pool + BN, or (``pointwise``) nothing more; the pointwise branch strides its 1×1 conv instead."""

    def __init__(self, kind, in_channels, channels, stride, dilation=1, *, rngs):
        self.kind, self.stride = kind, stride
        self.conv_in = conv2d(in_channels, channels, (1, 1), rngs=rngs)
        self.bn_in = batch_norm(channels, rngs=rngs)
        if kind == "dilated":
            self.temporal_conv = temporal_conv(channels, channels, 3, stride, dilation, rngs=rngs)
            self.temporal_bn = batch_norm(channels, rngs=rngs)
        elif kind == "pool":
            self.pool_bn = batch_norm(channels, rngs=rngs)

    def __call__(self, projected):
        """``projected``: this branch's 1×1-conv output at full frame rate (computed jointly for all branches)."""
        if self.kind == "pointwise":
            return self.bn_in(projected[:, ::self.stride])  # strided 1×1 conv = 1×1 conv on every s-th frame
        y = jax.nn.relu(self.bn_in(projected))
        if self.kind == "dilated":
            return self.temporal_bn(self.temporal_conv(y))
        return self.pool_bn(max_pool_time(y, self.stride))


class MultiScaleTemporalConv(nnx.Module):
    """MS-TCN: 4 dilated branches (d = 1..4), a max-pool branch and a 1×1 branch of out/6 channels each,
    concatenated, plus a residual (identity, or (1,1) conv + BN when channels or stride change), then ReLU
    (``activation=False``: identity, upstream's ``sgcn[-1].act = nn.Identity()``)."""

    def __init__(self, in_channels, out_channels, stride=1, activation=True, dilations=(1, 2, 3, 4), *, rngs):
        num_branches = len(dilations) + 2
        if out_channels % num_branches:
            raise ValueError(f"MS-TCN needs out_channels divisible by {num_branches}, got {out_channels}")
        bc = out_channels // num_branches
        self.activation = activation
        self.branches = nnx.List(
            [TemporalBranch("dilated", in_channels, bc, stride, d, rngs=rngs) for d in dilations]
            + [TemporalBranch("pool", in_channels, bc, stride, rngs=rngs),
               TemporalBranch("pointwise", in_channels, bc, stride, rngs=rngs)])
        self.residual_mode = residual_mode(True, in_channels, out_channels, stride)
        if self.residual_mode == "conv":
            self.residual_conv = conv2d(in_channels, out_channels, (1, 1), strides=(stride, 1), rngs=rngs)
            self.residual_bn = batch_norm(out_channels, rngs=rngs)

    def __call__(self, x):
        # all six 1×1 input projections in one matmul
        kernels = [b.conv_in.kernel[...] for b in self.branches]
        kernel = jnp.concatenate(kernels, axis=-1).reshape(x.shape[-1], -1)
        bias = jnp.concatenate([b.conv_in.bias[...] for b in self.branches])
        projected = jnp.split(x @ kernel + bias, len(kernels), axis=-1)
        out = jnp.concatenate([b(p) for b, p in zip(self.branches, projected)], axis=-1)
        res = residual_branch(self.residual_mode, x, lambda h: self.residual_bn(self.residual_conv(h)))
        out = out + res
        return jax.nn.relu(out) if self.activation else out


class SpatialTemporalGraphConv(nnx.Module):
    """G3D graph conv on unfolded windows: ``ReLU(BN(conv1x1(regroup((A_scales + A_res) x))))`` (no residual)."""

    def __init__(self, in_channels, out_channels, layout, num_scales, window_size, *, rngs):
        scales = g3d_scales(layout, num_scales, window_size)
        self.A_scales = Constant(jnp.asarray(scales))
        self.A_res = uniform_param(scales.shape, -1e-6, 1e-6, rngs)
        self.mlp_conv = conv2d(in_channels * num_scales, out_channels, (1, 1), rngs=rngs)
        self.mlp_bn = batch_norm(out_channels, rngs=rngs)

    def __call__(self, x):
        a = self.A_scales[...].astype(x.dtype) + self.A_res[...]
        return jax.nn.relu(self.mlp_bn(multiscale_aggregate(a, x, self.mlp_conv)))


class G3D(nnx.Module):
    """One MS-G3D window: unfold w frames → G3D graph conv on the wV-node graph → collapse the window with the
    (1, w, 1) ``out_conv`` (torch Conv3d) → BN. Channel widths as upstream with ``embed_factor = 1``: the graph
    conv keeps ``in_channels`` except in the first block (input 3 channels), where it maps to ``out_channels``."""

    def __init__(self, in_channels, out_channels, layout, num_scales, window_size, window_stride, *, rngs):
        self.window_size, self.window_stride = window_size, window_stride
        embed_out = out_channels if in_channels == 3 else in_channels
        self.st_gcn = SpatialTemporalGraphConv(in_channels, embed_out, layout, num_scales, window_size, rngs=rngs)
        self.out_conv = nnx.Conv(embed_out, out_channels, (1, window_size, 1), padding="VALID", rngs=rngs)
        self.out_bn = batch_norm(out_channels, rngs=rngs)

    def __call__(self, x):
        n, _, v, _ = x.shape
        y = self.st_gcn(unfold_windows(x, self.window_size, self.window_stride))  # (N, T', w·V, C')
        y = y.reshape(n, y.shape[1], self.window_size, v, y.shape[-1])
        kernel = self.out_conv.kernel[...][0, :, 0]  # (w, C', O)
        y = jnp.einsum("ntkvc,kco->ntvo", y, kernel) + self.out_conv.bias[...]
        return self.out_bn(y)


class MultiWindowG3D(nnx.Module):
    """Sum of G3D pathways over window sizes (3 and 5), no activation."""

    def __init__(self, in_channels, out_channels, layout, num_scales, window_sizes, window_stride, *, rngs):
        self.gcn3d = nnx.List([G3D(in_channels, out_channels, layout, num_scales, w, window_stride, rngs=rngs)
                               for w in window_sizes])

    def __call__(self, x):
        out = self.gcn3d[0](x)
        for pathway in self.gcn3d[1:]:
            out = out + pathway(x)
        return out
