"""SkateFormer building blocks (skeletal-temporal partitioned attention), channels-last, in Flax NNX.

Feature maps are (B, T, V, C) with V = 24·M (person-major joints). The four partition types of upstream's
``type_{1..4}_partition`` differ only in whether time and joints are cut into consecutive blocks or strided
groups; ``partition``/``reverse`` implement all four with one reshape/transpose each (see ``PARTITION_STRIDES``).
Attribute names mirror the torch module names (``norm_1``, ``mapping``, ``gconv``, ``tconv``, ``attention``,
``proj``, ``norm_2``, ``mlp.fc1/fc2``, ``downsample.reduction/bn``) so the converter's key table stays small.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tasar_jax.models.layers import Buffer, batch_norm, conv2d

# (time strided, joints strided) for partition types 1..4: type 1 consecutive frames × consecutive joints,
# type 2 consecutive frames × strided joints, type 3 strided frames × consecutive joints, type 4 both strided.
PARTITION_STRIDES = ((False, False), (False, True), (True, False), (True, True))

trunc_normal_02 = nnx.initializers.truncated_normal(stddev=0.02, lower=-100.0, upper=100.0)


def relative_position_index(size: int) -> np.ndarray:
    """Upstream's 1-D relative index ``idx[i, j] = i − j + size − 1`` (int64, shape (size, size))."""
    coords = np.arange(size, dtype=np.int64)
    return coords[:, None] - coords[None, :] + size - 1


def _split_axis(length: int, size: int, strided: bool) -> tuple[int, int]:
    """How an axis of ``length`` is viewed: (outer, inner) with the window axis inner (blocks) or outer (strided)."""
    return (size, length // size) if strided else (length // size, size)


def partition(x, size: tuple[int, int], strides: tuple[bool, bool]):
    """(B, T, V, C) → windows (B·nT·nV, P0·P1, C), window order (b, nT, nV), token order (p0, p1)."""
    b, t, v, c = x.shape
    (p0, p1), (t_strided, v_strided) = size, strides
    y = x.reshape(b, *_split_axis(t, p0, t_strided), *_split_axis(v, p1, v_strided), c)
    # axes: b, t_outer, t_inner, v_outer, v_inner, c → b, n_t, n_v, p0, p1, c
    t_win, t_pos = (2, 1) if t_strided else (1, 2)
    v_win, v_pos = (4, 3) if v_strided else (3, 4)
    y = jnp.transpose(y, (0, t_win, v_win, t_pos, v_pos, 5))
    return y.reshape(-1, p0 * p1, c)


def reverse(windows, shape: tuple[int, int, int], size: tuple[int, int], strides: tuple[bool, bool]):
    """Inverse of ``partition``: windows (B·nT·nV, P0·P1, C') → (B, T, V, C') with (B, T, V) = ``shape``."""
    b, t, v = shape
    (p0, p1), (t_strided, v_strided) = size, strides
    c = windows.shape[-1]
    y = windows.reshape(b, t // p0, v // p1, p0, p1, c)  # b, n_t, n_v, p0, p1, c
    # place (window, position) of each axis back in the reshape order used by ``partition``
    t_axes = (3, 1) if t_strided else (1, 3)
    v_axes = (4, 2) if v_strided else (2, 4)
    y = jnp.transpose(y, (0, *t_axes, *v_axes, 5))
    return y.reshape(b, t, v, c)


class DropPath(nnx.Module):
    """Stochastic depth as timm's ``DropPath``: drop whole samples with prob. ``rate``, scale survivors by 1/keep."""

    def __init__(self, rate: float):
        self.rate = rate
        self.deterministic = False

    def __call__(self, x, rng_key=None):
        if self.deterministic or self.rate == 0.0:
            return x
        if rng_key is None:
            raise ValueError("DropPath in train mode needs an rng_key (or call model.eval())")
        keep = 1.0 - self.rate
        mask = jax.random.bernoulli(rng_key, keep, (x.shape[0],) + (1,) * (x.ndim - 1)).astype(x.dtype)
        return x * (mask / keep)


class MultiHeadSelfAttention(nnx.Module):
    """Window self-attention without projections: q, k, v are read straight off the C = 3·heads·d channels.

    Upstream scales q by ``heads^{-1/2}`` (not ``d^{-1/2}``). Bias: types 1/3 a temporal table (2·P0−1, heads);
    types 2/4 a table (2·P0−1, P1, P1, heads) per temporal offset and joint pair. Upstream quirk reproduced for
    types 1/3: its ``repeat`` with one more repeat dimension than the tensor tiles the (P0, P0) bias instead of
    interleaving it, so tokens n, m (n = p0·P1 + p1) get ``table[idx[n mod P0, m mod P0]]`` — the bias is not
    aligned with the tokens' frames (joints and frames are mixed). The type 2/4 bias is aligned.
    """

    def __init__(self, rel_type: int, num_heads: int, size: tuple[int, int], attn_drop: float, *, rngs: nnx.Rngs):
        self.rel_type, self.num_heads, self.size = rel_type, num_heads, tuple(size)
        p0, p1 = size
        table_shape = (2 * p0 - 1, num_heads) if rel_type in (1, 3) else (2 * p0 - 1, p1, p1, num_heads)
        self.relative_position_bias_table = nnx.Param(trunc_normal_02(rngs.params(), table_shape, jnp.float32))
        self.relative_position_index = Buffer(jnp.asarray(relative_position_index(p0), dtype=jnp.int32))
        self.attn_drop = nnx.Dropout(attn_drop)

    def bias(self):
        """Relative positional bias (heads, N, N) with token index n = p0·P1 + p1."""
        p0, p1 = self.size
        table = self.relative_position_bias_table[...]
        gathered = table[self.relative_position_index[...]]  # (P0, P0, ...) indexed by (i, j)
        if self.rel_type in (1, 3):  # upstream's 6-fold ``repeat`` tiles: row r gets time r mod P0 (quirk)
            full = jnp.tile(gathered[None, :, None, :, :], (p1, 1, p1, 1, 1))
        else:  # [i, j, a, b, h] → [i, a, j, b, h]
            full = jnp.transpose(gathered, (0, 2, 1, 3, 4))
        return jnp.transpose(full.reshape(p0 * p1, p0 * p1, self.num_heads), (2, 0, 1))

    def __call__(self, x, rng_key=None):
        """x (B_, N, 3·heads·d) → (B_, N, heads·d)."""
        b, n, c = x.shape
        qkv = x.reshape(b, n, 3, self.num_heads, c // (3 * self.num_heads))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        q = q * (self.num_heads ** -0.5)
        attn = jnp.einsum("bnhd,bmhd->bhnm", q, k) + self.bias().astype(x.dtype)[None]
        attn = self.attn_drop(jax.nn.softmax(attn, axis=-1), rngs=rng_key)
        return jnp.einsum("bhnm,bmhd->bnhd", attn, v).reshape(b, n, -1)


class Mlp(nnx.Module):
    """timm ``Mlp``: fc1 → exact (erf) GELU → fc2 (dropouts are 0 upstream)."""

    def __init__(self, channels: int, hidden: int, *, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(channels, hidden, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, channels, rngs=rngs)

    def __call__(self, x):
        return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))


def layer_norm(channels: int, *, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """``torch.nn.LayerNorm`` numerics: eps 1e-5, two-pass variance."""
    return nnx.LayerNorm(channels, epsilon=1e-5, use_fast_variance=False, rngs=rngs)


class SkateFormerBlock(nnx.Module):
    """LN → mapping (C→2C) → [G-conv | T-conv | 4 partitioned attentions] → proj, residual; LN → MLP, residual.

    Channel split of the 2C mapped features (as upstream's ``torch.split``/``chunk``): C/4 G-conv, C/4 T-conv,
    then four chunks of 3C/8 for the attention types; outputs C/4 + C/4 + 4·C/8 = C channels.
    """

    def __init__(self, channels, num_points, kernel_size, num_heads, sizes, attn_drop, drop_path, mlp_ratio, *, rngs):
        groups = num_heads // 4
        self.channels, self.sizes = channels, tuple(tuple(s) for s in sizes)
        self.norm_1 = layer_norm(channels, rngs=rngs)
        self.mapping = nnx.Linear(channels, 2 * channels, rngs=rngs)
        self.gconv = nnx.Param(trunc_normal_02(rngs.params(), (groups, num_points, num_points), jnp.float32))
        pad = (kernel_size - 1) // 2
        self.tconv = nnx.Conv(channels // 4, channels // 4, (kernel_size, 1), padding=((pad, pad), (0, 0)),
                              feature_group_count=groups, rngs=rngs)
        self.attention = nnx.List([
            MultiHeadSelfAttention(i + 1, num_heads // 8, size, attn_drop, rngs=rngs) for i, size in enumerate(sizes)])
        self.proj = nnx.Linear(channels, channels, rngs=rngs)
        self.drop_path = DropPath(drop_path)
        self.norm_2 = layer_norm(channels, rngs=rngs)
        self.mlp = Mlp(channels, int(mlp_ratio * channels), rngs=rngs)

    def graph_conv(self, x):
        """Per-group learned joint mixing ``y[.., v, g, c] = Σ_u x[.., u, g, c] gconv[g, v, u]``."""
        b, t, v, c = x.shape
        groups = self.gconv.shape[0]
        y = jnp.einsum("btugc,gvu->btvgc", x.reshape(b, t, v, groups, c // groups), self.gconv[...])
        return y.reshape(b, t, v, c)

    def __call__(self, x, rng_key=None):
        b, t, v, c = x.shape
        key = (lambda i: None) if rng_key is None else (lambda i: jax.random.fold_in(rng_key, i))
        f = self.mapping(self.norm_1(x))
        quarter, chunk = c // 4, 3 * c // 8
        outputs = [self.graph_conv(f[..., :quarter]), self.tconv(f[..., quarter:2 * quarter])]
        for i, (attention, size, strides) in enumerate(zip(self.attention, self.sizes, PARTITION_STRIDES)):
            part = f[..., 2 * quarter + i * chunk:2 * quarter + (i + 1) * chunk]
            windows = attention(partition(part, size, strides), key(i))
            outputs.append(reverse(windows, (b, t, v), size, strides))
        y = x + self.drop_path(self.proj(jnp.concatenate(outputs, axis=-1)), key(4))
        return y + self.drop_path(self.mlp(self.norm_2(y)), key(5))


class PatchMergingTconv(nnx.Module):
    """Temporal downsampling: Conv (k, 1) stride 2 with 'same' padding, then BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, rngs: nnx.Rngs):
        pad = (kernel_size - 1) // 2
        self.reduction = conv2d(in_channels, out_channels, (kernel_size, 1), strides=(2, 1),
                                padding=((pad, pad), (0, 0)), rngs=rngs)
        self.bn = batch_norm(out_channels, rngs=rngs)

    def __call__(self, x):
        return self.bn(self.reduction(x))


class SkateFormerBlockDS(nnx.Module):
    """Optional ``PatchMergingTconv`` followed by a ``SkateFormerBlock`` (upstream ``SkateFormerBlockDS``)."""

    def __init__(self, in_channels, out_channels, downscale, block_kwargs, *, rngs):
        if downscale:
            self.downsample = PatchMergingTconv(in_channels, out_channels, block_kwargs["kernel_size"], rngs=rngs)
        self.transformer = SkateFormerBlock(out_channels, **block_kwargs, rngs=rngs)

    def __call__(self, x, rng_key=None):
        if hasattr(self, "downsample"):
            x = self.downsample(x)
        return self.transformer(x, rng_key)


class SkateFormerStage(nnx.Module):
    """A list of ``SkateFormerBlockDS`` under ``blocks`` (upstream ``SkateFormerStage``)."""

    def __init__(self, blocks):
        self.blocks = nnx.List(blocks)
