"""CTR-GCN (Chen et al., 2021) as wrapped by RobustBenchHAR (``classifiers/CTRGCN.py``), in Flax NNX.

Architecture (reference.md §2.3): data BatchNorm over M·V·C (channel index ``m·V·C + v·C + c``; the persons are
part of the BN channels, so its size is 75 for HDM05 and 150 for NTU), ten ``TCN_GCN_unit``s ``l1``–``l10`` with
channels 64, 64, 64, 64, 128↓2, 128, 128, 256↓2, 256, 256, global average pooling over (T, V), mean over persons
and a linear classifier ``fc``. Each unit is ``ReLU(tcn1(gcn1(x)) + residual(x))``:

* ``gcn1`` (``unit_gcn``): three channel-wise topology refinement convolutions (``CTRGC``), one per graph subset,
  each refining the learnable adjacency ``PA[i]`` with ``alpha · conv4(tanh(mean_T conv1(x) − mean_T conv2(x)))``;
  summed, BatchNorm, plus ``down(x)`` (1×1 conv + BN when the channel count changes), ReLU.
* ``tcn1``: multi-scale temporal convolution, four branches of C/4 channels (kernel 5 with dilation 1 and 2, a
  3-frame max-pool branch and a strided 1×1 branch), concatenated, no internal residual.

Internally channels-last: feature maps are (N·M, T, V, C). Attribute names mirror the torch module names
(``l1.gcn1.convs.0.conv1``, ``l5.residual.conv``) so the converter's key table only renames ``Sequential`` indices.

Upstream quirks and decisions:

* The NTU "spatial" graph (identity, inward, outward; column-normalised) is used for every dataset, HDM05
  included (reference.md §7.11). It only initialises the learnable ``PA``, which every checkpoint carries, so
  reproducing it affects training from scratch only. No switch.
* ``adaptive`` (upstream default and only use: True) keeps the graph as the parameter ``PA``; ``adaptive=False``
  keeps it as a float32 constant outside the state_dict (upstream ``A``) and still learns ``alpha``.
* Initialisation follows upstream where it is cheap to state: convolutions Kaiming-normal (fan-out) with zero
  bias, the ``gcn1`` output BN with γ = 1e-6, the temporal-branch BNs with γ ~ N(1, 0.02), ``fc`` weight
  N(0, 2/K). ``fc`` bias starts at zero (torch: uniform ±1/√256). Only training from scratch sees this.
* Dropout before ``fc`` is 0 upstream (``drop_out=0``), so the model has no stochastic layer; ``rng_key`` is
  accepted for interface uniformity and ignored.
* The input's person count must equal ``num_persons`` (the data BN size depends on it), as upstream.
* ``width`` scales the base channel count to a multiple of 4 (at least 8: the four temporal branches need C % 4
  == 0 and CTRGC's relation channels are C/8).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen, nnx

from tasar_jax.data import layouts
from tasar_jax.models import graph
from tasar_jax.models.layers import Constant, batch_norm, conv_general_dilated, residual_branch, residual_mode

UPSTREAM_CHANNEL_FACTORS = (1, 1, 1, 1, 2, 2, 2, 4, 4, 4)
UPSTREAM_STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)
UPSTREAM_BASE_CHANNELS = 64

kaiming_fan_out = jax.nn.initializers.variance_scaling(2.0, "fan_out", "normal")


@dataclasses.dataclass(frozen=True)
class Config:
    """CTR-GCN hyper-parameters; defaults are the upstream ones.

    Attributes:
      num_classes: K, size of the logits.
      num_persons: M expected in the input (upstream: 1 for HDM05, 2 for NTU); sizes the data BatchNorm.
      width: channel multiplier (1.0 = upstream base 64; e.g. 0.125 for tiny test/demo models).
      adaptive: learnable graph ``PA`` (upstream True) or a fixed constant graph ``A``.
      in_channels: input coordinates per joint (3).
      num_joints: V (25).
      temporal_kernel: kernel of the dilated temporal branches (5).
      dilations: dilations of those branches ((1, 2)).
    """

    num_classes: int
    num_persons: int = 1
    width: float = 1.0
    adaptive: bool = True
    in_channels: int = 3
    num_joints: int = layouts.NUM_JOINTS
    temporal_kernel: int = 5
    dilations: tuple[int, ...] = (1, 2)

    @classmethod
    def for_dataset(cls, dataset: str, **overrides):
        """The upstream configuration for ``dataset`` (class count and persons), with overrides."""
        layout = layouts.get_dataset(dataset)
        values = dict(num_classes=layout.num_classes, num_persons=layout.num_persons)
        values.update(overrides)
        return cls(**values)

    @property
    def channels(self) -> tuple[int, ...]:
        base = max(8, 4 * int(round(UPSTREAM_BASE_CHANNELS * self.width / 4)))
        return tuple(base * f for f in UPSTREAM_CHANNEL_FACTORS)


def ntu_spatial_graph() -> np.ndarray:
    """``stack(I, norm(inward), norm(outward))`` of the NTU skeleton, (3, 25, 25) float32 (``tools.get_spatial_graph``).

    Inward edges are the (child, parent) pairs; ``A[j, i] = 1`` for a pair (i, j), columns normalised.
    """
    return graph.directed_spatial_graph(layouts.NTU_EDGES, layouts.NUM_JOINTS).astype(np.float32)


def _normal_around_one(key, shape, dtype=jnp.float32):
    """γ ~ N(1, 0.02): upstream's ``weights_init`` for the temporal-branch BatchNorms."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _scaled_batch_norm(num_features: int, scale_init, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """``layers.batch_norm`` with γ set by ``scale_init`` (a constant or an initialiser taking a key)."""
    bn = batch_norm(num_features, rngs=rngs)
    if callable(scale_init):
        bn.scale.set_value(scale_init(rngs.params(), (num_features,)))
    else:
        bn.scale.set_value(jnp.full((num_features,), scale_init, jnp.float32))
    return bn


def pointwise_conv(in_channels: int, out_channels: int, *, rngs: nnx.Rngs) -> nnx.Conv:
    """1×1 convolution with Kaiming fan-out weights and zero bias (upstream ``conv_init``)."""
    return nnx.Conv(in_channels, out_channels, (1, 1), kernel_init=kaiming_fan_out,
                    conv_general_dilated=conv_general_dilated, rngs=rngs)


class ConvBN(nnx.Module):
    """Temporal convolution (kernel (k, 1), stride s, dilation d, 'same' padding) followed by BatchNorm.

    Serves as upstream ``TemporalConv``, ``unit_tcn`` (the strided residual) and the conv + BN ``Sequential``s.
    """

    def __init__(self, in_channels, out_channels, kernel=1, *, stride=1, dilation=1, scale_init=1.0, rngs):
        pad = dilation * (kernel - 1) // 2
        self.conv = nnx.Conv(in_channels, out_channels, (kernel, 1), strides=(stride, 1),
                             padding=((pad, pad), (0, 0)), kernel_dilation=(dilation, 1),
                             kernel_init=kaiming_fan_out, conv_general_dilated=conv_general_dilated, rngs=rngs)
        self.bn = _scaled_batch_norm(out_channels, scale_init, rngs=rngs)

    def __call__(self, x):
        return self.bn(self.conv(x))


class DilatedBranch(nnx.Module):
    """1×1 conv → BN → ReLU → temporal conv (kernel k, dilation d, stride s) → BN."""

    def __init__(self, in_channels, channels, kernel, stride, dilation, *, rngs):
        self.pointwise = ConvBN(in_channels, channels, scale_init=_normal_around_one, rngs=rngs)
        self.temporal = ConvBN(channels, channels, kernel, stride=stride, dilation=dilation,
                               scale_init=_normal_around_one, rngs=rngs)

    def __call__(self, x):
        return self.temporal(jax.nn.relu(self.pointwise(x)))


class MaxPoolBranch(nnx.Module):
    """1×1 conv → BN → ReLU → max-pool over 3 frames (stride s, padding 1) → BN."""

    def __init__(self, in_channels, channels, stride, *, rngs):
        self.stride = stride
        self.pointwise = ConvBN(in_channels, channels, scale_init=_normal_around_one, rngs=rngs)
        self.pool_bn = _scaled_batch_norm(channels, _normal_around_one, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.pointwise(x))
        h = linen.max_pool(h, (3, 1), strides=(self.stride, 1), padding=((1, 1), (0, 0)))
        return self.pool_bn(h)


class StridedBranch(nnx.Module):
    """1×1 conv with temporal stride s → BN."""

    def __init__(self, in_channels, channels, stride, *, rngs):
        self.pointwise = ConvBN(in_channels, channels, stride=stride, scale_init=_normal_around_one, rngs=rngs)

    def __call__(self, x):
        return self.pointwise(x)


class MultiScaleTemporalConv(nnx.Module):
    """Upstream ``MultiScale_TemporalConv`` with ``residual=False``: concatenation of the four branches."""

    def __init__(self, channels, stride, kernel, dilations, *, rngs):
        branch_channels = channels // (len(dilations) + 2)
        if branch_channels * (len(dilations) + 2) != channels:
            raise ValueError(f"{channels} channels do not split into {len(dilations) + 2} temporal branches")
        self.branches = nnx.List(
            [DilatedBranch(channels, branch_channels, kernel, stride, d, rngs=rngs) for d in dilations]
            + [MaxPoolBranch(channels, branch_channels, stride, rngs=rngs),
               StridedBranch(channels, branch_channels, stride, rngs=rngs)])

    def __call__(self, x):
        return jnp.concatenate([branch(x) for branch in self.branches], axis=-1)


class CTRGC(nnx.Module):
    """Channel-wise topology refinement graph convolution for one graph subset.

    ``topology[n,u,v,c] = alpha · conv4(tanh(q[n,u] − k[n,v]))[c] + A[u,v]`` with q, k the time-averaged
    ``conv1``/``conv2`` features; output ``z[n,t,u,c] = Σ_v topology[n,u,v,c] · conv3(x)[n,t,v,c]``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        rel_channels = 8 if in_channels in (3, 9) else in_channels // 8
        self.conv1 = pointwise_conv(in_channels, rel_channels, rngs=rngs)
        self.conv2 = pointwise_conv(in_channels, rel_channels, rngs=rngs)
        self.conv3 = pointwise_conv(in_channels, out_channels, rngs=rngs)
        self.conv4 = pointwise_conv(rel_channels, out_channels, rngs=rngs)

    def __call__(self, x, adjacency, alpha):
        query = self.conv1(x).mean(axis=1)  # [n, V, R]
        key = self.conv2(x).mean(axis=1)
        value = self.conv3(x)  # [n, T, V, C]
        relation = jnp.tanh(query[:, :, None, :] - key[:, None, :, :])  # [n, U, V, R]
        topology = self.conv4(relation) * alpha + adjacency[None, :, :, None]  # [n, U, V, C]
        return jnp.einsum("nuvc,ntvc->ntuc", topology, value)


class UnitGCN(nnx.Module):
    """Upstream ``unit_gcn``: Σ_subsets CTRGC → BN (γ init 1e-6) → + down(x) → ReLU."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray, adaptive: bool, *, rngs):
        self.adaptive = adaptive
        if adaptive:
            self.PA = nnx.Param(jnp.asarray(adjacency, jnp.float32))
        else:
            self.A = Constant(jnp.asarray(adjacency, jnp.float32))
        self.alpha = nnx.Param(jnp.zeros((1,), jnp.float32))
        self.convs = nnx.List([CTRGC(in_channels, out_channels, rngs=rngs) for _ in range(adjacency.shape[0])])
        self.bn = _scaled_batch_norm(out_channels, 1e-6, rngs=rngs)
        self.has_down = in_channels != out_channels
        if self.has_down:
            self.down = ConvBN(in_channels, out_channels, rngs=rngs)

    def __call__(self, x):
        adjacency = self.PA[...] if self.adaptive else self.A[...]
        alpha = self.alpha[...]
        y = sum(conv(x, adjacency[i], alpha) for i, conv in enumerate(self.convs))
        y = self.bn(y) + (self.down(x) if self.has_down else x)
        return jax.nn.relu(y)


class TCNGCNUnit(nnx.Module):
    """Upstream ``TCN_GCN_unit``: ``ReLU(tcn1(gcn1(x)) + residual(x))``; residual none / identity / 1×1 conv + BN."""

    def __init__(self, in_channels, out_channels, adjacency, config: Config, *, stride=1, residual=True, rngs):
        self.gcn1 = UnitGCN(in_channels, out_channels, adjacency, config.adaptive, rngs=rngs)
        self.tcn1 = MultiScaleTemporalConv(out_channels, stride, config.temporal_kernel, config.dilations, rngs=rngs)
        self.residual_mode = residual_mode(residual, in_channels, out_channels, stride)
        if self.residual_mode == "conv":
            self.residual = ConvBN(in_channels, out_channels, stride=stride, rngs=rngs)

    def __call__(self, x):
        res = residual_branch(self.residual_mode, x, lambda h: self.residual(h))
        return jax.nn.relu(self.tcn1(self.gcn1(x)) + res)


class Model(nnx.Module):
    """CTR-GCN classifier. Call with x (N, 3, T, V, M) → logits (N, K).

    ``model.eval()`` switches BatchNorm to running statistics; ``model.train()`` back (no stochastic layers).
    """

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.config = config
        adjacency = ntu_spatial_graph()
        self.data_bn = batch_norm(config.num_persons * config.num_joints * config.in_channels, rngs=rngs)
        c_in = config.in_channels
        for i, (c_out, stride) in enumerate(zip(config.channels, UPSTREAM_STRIDES)):
            unit = TCNGCNUnit(c_in, c_out, adjacency, config, stride=stride, residual=i > 0, rngs=rngs)
            setattr(self, f"l{i + 1}", unit)
            c_in = c_out
        self.fc = nnx.Linear(c_in, config.num_classes, rngs=rngs,
                             kernel_init=jax.nn.initializers.normal(math.sqrt(2.0 / config.num_classes)))

    @property
    def units(self) -> list[TCNGCNUnit]:
        """``l1`` … ``l10`` in order."""
        return [getattr(self, f"l{i + 1}") for i in range(len(UPSTREAM_STRIDES))]

    def normalised_input(self, x):
        """Data BN over (M·V·C) with channel index ``m·V·C + v·C + c``; returns (N·M, T, V, C)."""
        n, c, t, v, m = x.shape
        if m != self.config.num_persons:
            raise ValueError(f"input has {m} persons but the model was built for num_persons={self.config.num_persons}")
        h = jnp.transpose(x, (0, 2, 4, 3, 1)).reshape(n, t, m * v * c)
        h = self.data_bn(h).reshape(n, t, m, v, c)
        return jnp.transpose(h, (0, 2, 1, 3, 4)).reshape(n * m, t, v, c)

    def features(self, x):
        """Pooled backbone features (N, C_last): mean over (T, V), then over persons."""
        n, m = x.shape[0], x.shape[-1]
        h = self.normalised_input(x)
        for unit in self.units:
            h = unit(h)
        return h.mean(axis=(1, 2)).reshape(n, m, -1).mean(axis=1)

    def __call__(self, x, rng_key=None):
        """x: [N, C, T, V, M] → logits [N, K]. ``rng_key`` is unused (no stochastic layers)."""
        del rng_key
        return self.fc(self.features(x))
