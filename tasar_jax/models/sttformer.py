"""STTFormer (Qiu et al., 2022) as wrapped by RobustBenchHAR (``classifiers/STTFormer.py``), in Flax NNX.

Architecturally identical to upstream (reference.md §2.7): the T frames are grouped into T/6 "tuples" of 6
consecutive frames whose 6·25 = 150 (frame-in-tuple, joint) columns are attended jointly. A 1×1 input map
(conv, BN, LeakyReLU 0.1) is followed by eight STA blocks (channels [in, out, qkv] below, 3 heads, kernels
(3, 5)), global average pooling over tuples and columns, the mean over persons and a linear classifier.
Internally channels-last: feature maps are (N·M, T/6, 150, C).

Upstream behaviour reproduced or decided here (docs/decisions.md):

* Class count: upstream hard-codes 65 classes for every non-NTU dataset and ignores ``-cn`` (reference.md §7.16);
  ``Config.for_dataset`` takes 60/120/65 from the dataset description, which gives the same numbers, and a
  ``num_classes`` override is allowed here (upstream would ignore it).
* The positional embedding ``pes.pe`` is a state_dict buffer (``layers.Buffer``) of torch shape
  (1, C, T/6, 150): a sinusoid of the column index only, identical for every tuple. It is built in float32
  exactly like upstream (``positional_embedding``) so fresh models carry it, and a converted checkpoint
  overwrites it with its own copy. Like upstream it is sliced to the number of tuples of the input. Our
  construction agrees with upstream's saved buffers to float32 rounding, not bit for bit (93–95 % of entries
  identical, max |Δ| 7.6e-6): torch's vectorised float32 exp/sin/cos are ≈1-ulp, ours are correctly rounded.
* The attention logits are scaled by 1/(qkv·T_tuples) with the *actual* number of tuples, then ``tanh``, times
  the per-head ``alphas``, plus the learned ``att0s`` (no softmax). The attention is applied to the block input
  ``x``, not to ``x + pe``; ``ff_net`` reuses the same residual ``ress(x)`` as ``out_nets``.
* All upstream dropouts (attention, 1-D, 2-D) have rate 0 and are omitted; ``rng_key`` is accepted and unused.
* ``width`` scales every [in, out, qkv] triple; channel counts are rounded to even numbers (the sin/cos
  interleaving of the embedding needs an even channel count) and qkv to ≥ 1 per head.
* Initialisation follows upstream's scheme (Kaiming-normal fan-out convolutions, Xavier-normal classifier, BN
  γ=1, β=0, ``alphas`` 1, ``att0s`` 1/150) except that convolution biases start at zero.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tasar_jax.data import layouts
from tasar_jax.models.layers import Buffer, batch_norm, conv_general_dilated

# upstream [in_channels, out_channels, qkv_dim] per STA block
UPSTREAM_BLOCKS = ((64, 64, 16), (64, 64, 16), (64, 128, 32), (128, 128, 32),
                   (128, 256, 64), (256, 256, 64), (256, 256, 64), (256, 256, 64))
LEAKY_SLOPE = 0.1

_conv_init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")  # torch kaiming_normal_(mode='fan_out')
_fc_init = nnx.initializers.variance_scaling(1.0, "fan_avg", "normal")  # torch xavier_normal_


@dataclasses.dataclass(frozen=True)
class Config:
    """STTFormer hyper-parameters; defaults are the upstream ones.

    Attributes:
      num_classes: K, size of the logits.
      width: channel multiplier for every [in, out, qkv] triple (1.0 = upstream; e.g. 0.125 for tiny models).
      num_frames: frames the positional embedding is built for (60); inputs may be shorter.
      len_parts: frames per tuple (6); the input's T must be a multiple of it.
      num_heads: attention heads (3).
      kernel_size: (temporal, spatial) kernel sizes of ``out_nett`` and ``out_nets`` ((3, 5)).
      num_joints: joints per frame (25).
      in_channels: input coordinates per joint (3).
    """

    num_classes: int
    width: float = 1.0
    num_frames: int = layouts.NUM_FRAMES
    len_parts: int = 6
    num_heads: int = 3
    kernel_size: tuple[int, int] = (3, 5)
    num_joints: int = layouts.NUM_JOINTS
    in_channels: int = layouts.NUM_CHANNELS

    def __post_init__(self):
        object.__setattr__(self, "kernel_size", tuple(self.kernel_size))  # JSON gives a list back; stay hashable
        if self.num_frames % self.len_parts:
            raise ValueError(f"num_frames={self.num_frames} is not a multiple of len_parts={self.len_parts}")

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "Config":
        """The upstream configuration for ``dataset`` (65 / 60 / 120 classes), with overrides."""
        layout = layouts.get_dataset(dataset)
        values = dict(num_classes=layout.num_classes)
        values.update(overrides)
        return cls(**values)

    @property
    def blocks(self) -> tuple[tuple[int, int, int], ...]:
        """The [in, out, qkv] triple of every STA block, scaled by ``width``."""
        def even(c):
            return max(2, 2 * int(round(c * self.width / 2)))
        return tuple((even(i), even(o), max(1, int(round(q * self.width)))) for i, o, q in UPSTREAM_BLOCKS)

    @property
    def num_tuples(self) -> int:
        return self.num_frames // self.len_parts

    @property
    def num_columns(self) -> int:
        return self.num_joints * self.len_parts


def positional_embedding(channels: int, num_tuples: int, num_columns: int) -> np.ndarray:
    """Upstream's ``Pos_Embed.pe`` (1, C, T, V), float32, reproducing its float32 arithmetic step by step.

    ``pe[0, 2i, t, v] = sin(v·d_i)``, ``pe[0, 2i+1, t, v] = cos(v·d_i)`` with ``d_i = exp(2i·(−ln 10⁴/C))``;
    every product is rounded to float32 as torch does, and exp/sin/cos are evaluated in float64 and rounded
    once (torch's float32 kernels are accurate to about one ulp, see the tests for the measured agreement).
    """
    if channels % 2:
        raise ValueError(f"the positional embedding needs an even channel count, got {channels}")
    scale = np.float32(-(math.log(10000.0) / channels))
    exponent = np.arange(0, channels, 2, dtype=np.float32) * scale
    div_term = np.exp(exponent.astype(np.float64)).astype(np.float32)
    angle = (np.arange(num_columns, dtype=np.float32)[:, None] * div_term[None, :]).astype(np.float64)
    pe = np.empty((num_columns, channels), np.float32)
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle)
    return np.broadcast_to(pe.T[None, :, None, :], (1, channels, num_tuples, num_columns)).copy()


def _conv(in_features, out_features, kernel_size=(1, 1), padding=((0, 0), (0, 0)), *, rngs) -> nnx.Conv:
    """``layers.conv2d`` with upstream's Kaiming-normal (fan-out) kernel initialisation."""
    return nnx.Conv(in_features, out_features, kernel_size, padding=padding, kernel_init=_conv_init,
                    conv_general_dilated=conv_general_dilated, rngs=rngs)


def leaky_relu(x):
    return jax.nn.leaky_relu(x, LEAKY_SLOPE)


class PosEmbed(nnx.Module):
    """Holder of the ``pe`` buffer (torch layout (1, C, T, V)), mirroring upstream's ``pes`` submodule."""

    def __init__(self, channels: int, num_tuples: int, num_columns: int):
        self.pe = Buffer(jnp.asarray(positional_embedding(channels, num_tuples, num_columns)))

    def __call__(self, num_tuples: int):
        """The embedding for the first ``num_tuples`` tuples, channels-last (T, V, C)."""
        pe = self.pe[...]
        if num_tuples > pe.shape[2]:
            raise ValueError(f"input has {num_tuples} tuples but the embedding was built for {pe.shape[2]}")
        return jnp.transpose(pe[0, :, :num_tuples], (1, 2, 0))


class STABlock(nnx.Module):
    """``STA_Block``: spatio-temporal tuple attention (``out_nets``, ``ff_net``) then inter-frame aggregation."""

    def __init__(self, in_channels, out_channels, qkv_dim, num_heads, kernel_size, num_tuples, num_columns, *, rngs):
        self.num_heads, self.qkv_dim = num_heads, qkv_dim
        k_t, k_s = kernel_size
        self.pes = PosEmbed(in_channels, num_tuples, num_columns)
        self.to_qkvs = _conv(in_channels, 2 * num_heads * qkv_dim, rngs=rngs)
        self.alphas = nnx.Param(jnp.ones((1, num_heads, 1, 1), jnp.float32))
        self.att0s = nnx.Param(jnp.full((1, num_heads, num_columns, num_columns), 1.0 / num_columns, jnp.float32))
        self.out_nets_conv = _conv(in_channels * num_heads, out_channels, (1, k_s),
                                   padding=((0, 0), ((k_s - 1) // 2, (k_s - 1) // 2)), rngs=rngs)
        self.out_nets_bn = batch_norm(out_channels, rngs=rngs)
        self.ff_net_conv = _conv(out_channels, out_channels, rngs=rngs)
        self.ff_net_bn = batch_norm(out_channels, rngs=rngs)
        self.out_nett_conv = _conv(out_channels, out_channels, (k_t, 1),
                                   padding=(((k_t - 1) // 2, (k_t - 1) // 2), (0, 0)), rngs=rngs)
        self.out_nett_bn = batch_norm(out_channels, rngs=rngs)
        self.has_residual_convs = in_channels != out_channels
        if self.has_residual_convs:
            self.ress_conv = _conv(in_channels, out_channels, rngs=rngs)
            self.ress_bn = batch_norm(out_channels, rngs=rngs)
            self.rest_conv = _conv(out_channels, out_channels, rngs=rngs)
            self.rest_bn = batch_norm(out_channels, rngs=rngs)

    def attention(self, x):
        """[N, T, V, C] → attention maps [N, H, V, V]: tanh(q·k / (qkv·T)) · alphas + att0s."""
        n, t, v, _ = x.shape
        qk = self.to_qkvs(x + self.pes(t)).reshape(n, t, v, 2 * self.num_heads, self.qkv_dim)
        q, k = qk[..., :self.num_heads, :], qk[..., self.num_heads:, :]
        scores = jnp.einsum("ntuhd,ntvhd->nhuv", q, k) / (self.qkv_dim * t)
        return jnp.tanh(scores) * self.alphas[...] + self.att0s[...]

    def __call__(self, x):
        """x: [N, T, V, C_in] → [N, T, V, C_out]."""
        n, t, v, c = x.shape
        attention = self.attention(x)
        # torch channel index of the head-stacked map is h·C_in + c
        xs = jnp.einsum("ntuc,nhuv->ntvhc", x, attention).reshape(n, t, v, self.num_heads * c)
        res_s = self.ress_bn(self.ress_conv(x)) if self.has_residual_convs else x
        xs = leaky_relu(self.out_nets_bn(self.out_nets_conv(xs)) + res_s)
        xs = leaky_relu(self.ff_net_bn(self.ff_net_conv(xs)) + res_s)
        res_t = self.rest_bn(self.rest_conv(xs)) if self.has_residual_convs else xs
        return leaky_relu(self.out_nett_bn(self.out_nett_conv(xs)) + res_t)


class Model(nnx.Module):
    """STTFormer classifier. Call with x (N, 3, T, V, M) → logits (N, K); T must be a multiple of ``len_parts``.

    ``model.eval()`` switches BatchNorm to running statistics (used by every attack); ``model.train()`` switches
    back. There are no stochastic layers, so ``rng_key`` is ignored.
    """

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.config = config
        triples = config.blocks
        self.input_map_conv = _conv(config.in_channels, triples[0][0], rngs=rngs)
        self.input_map_bn = batch_norm(triples[0][0], rngs=rngs)
        self.blocks = nnx.List([
            STABlock(c_in, c_out, qkv, config.num_heads, config.kernel_size, config.num_tuples,
                     config.num_columns, rngs=rngs)
            for c_in, c_out, qkv in triples])
        self.fc = nnx.Linear(triples[-1][1], config.num_classes, kernel_init=_fc_init, rngs=rngs)

    def to_tuples(self, x):
        """[N, C, T, V, M] → channels-last tuple maps [N·M, T/L, L·V, C] (column index frame_in_tuple·V + joint)."""
        n, c, t, v, m = x.shape
        parts = self.config.len_parts
        if t % parts:
            raise ValueError(f"STTFormer needs T divisible by len_parts={parts}, got T={t}")
        return jnp.transpose(x, (0, 4, 2, 3, 1)).reshape(n * m, t // parts, parts * v, c)

    def __call__(self, x, rng_key=None):
        """x: [N, C, T, V, M] → logits [N, K]. ``rng_key`` is unused (all upstream dropouts are 0)."""
        n, m = x.shape[0], x.shape[-1]
        h = leaky_relu(self.input_map_bn(self.input_map_conv(self.to_tuples(x))))
        for block in self.blocks:
            h = block(h)
        h = h.mean(axis=(1, 2)).reshape(n, m, -1).mean(axis=1)  # [N, C_last]
        return self.fc(h)
