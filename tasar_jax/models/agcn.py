"""2s-AGCN (Shi et al., 2019) as wrapped by RobustBenchHAR (``classifiers/AGCN.py``, ``twosgcn/agcn.py``), in Flax NNX.

One stream (reference.md §2.6): data BatchNorm over M·V·C (persons *not* folded into the batch), ten
``TCN_GCN_unit``s (channels 64, 64, 64, 64, 128↓2, 128, 128, 256↓2, 256, 256; temporal kernel 9), global average
pooling over (T, V), mean over persons and a linear classifier. Each adaptive graph convolution (``unit_gcn``) uses,
for every subset k of the fixed spatial graph ``A`` (identity, inward, outward; shape (3, V, V)),

    S_k = softmax over v of ( Σ_{t,i} a_k[t,v,i] b_k[t,w,i] / (inter·T) ),     A_k' = S_k + A[k] + PA[k],
    y   = BN( Σ_k conv_d_k( x aggregated with A_k' ) ) + down(x) → ReLU,

with ``a_k``/``b_k`` the 1×1 embeddings ``conv_a``/``conv_b`` (inter = out/4 channels). The bone stream computes bone
vectors ``x − x[parents]`` first; the ensemble ``agcn`` is ``streams.TwoStream`` of a joint and a bone model.
Internally channels-last: feature maps are (N·M, T, V, C). Subsets are batched in einsums, never looped.

Upstream behaviour reproduced (reference.md §7):

* §7.10 — on HDM05 upstream builds the graph from the already 0-based HDM05 edge list after subtracting 1 again;
  index −1 wraps (numpy negative indexing) to joint 24, giving e.g. edges (9, 24) and (24, 0) instead of (10, 0).
  The released weights were trained with it and ``A`` is not in the checkpoint, so ``hdm05_graph="upstream_shifted"``
  is the default; ``hdm05_graph="corrected"`` builds the intended HDM05 graph (for training from scratch).
* The fixed ``A`` is a plain float32 attribute upstream (outside the state_dict; ``.double()`` leaves it float32):
  stored here as ``layers.Constant`` holding float32 values.
* ``data_bn`` has M·V·C features with M fixed by the dataset (1 for HDM05, 2 for NTU); an input with another person
  count is rejected, as upstream's ``view`` would fail.
* Initialisation as upstream: 1×1/temporal convs Kaiming-normal (fan-out), ``conv_d`` N(0, 2/(out·in·3)), ``PA``
  1e-6, BatchNorm γ=1 except the ``unit_gcn`` output BN (γ=1e-6), ``fc`` weight N(0, 2/K).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tasar_jax.data import layouts
from tasar_jax.models import graph, streams
from tasar_jax.models.layers import Constant, batch_norm, conv_general_dilated, residual_branch, residual_mode

UPSTREAM_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
UPSTREAM_STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)
HDM05_GRAPHS = ("upstream_shifted", "corrected")
NUM_SUBSETS = 3
COFF_EMBEDDING = 4  # inter = out // 4

# torch kaiming_normal_(mode="fan_out"): untruncated normal, std sqrt(2 / (C_out · kernel size))
_kaiming_fan_out = jax.nn.initializers.variance_scaling(2.0, "fan_out", "normal")


@dataclasses.dataclass(frozen=True)
class Config:
    """2s-AGCN stream hyper-parameters; defaults are the upstream ones.

    Attributes:
      num_classes: K, size of the logits.
      stream: ``joint`` (positions) or ``bone`` (bone vectors ``x − x[parents]`` computed inside the model).
      parents: 0-based parent of every joint (dataset description), used by the bone stream.
      num_persons: M the data BatchNorm is built for (upstream: 1 for HDM05, 2 for NTU).
      graph_layout: ``hdm05`` or ``ntu-rgb+d``.
      hdm05_graph: ``upstream_shifted`` (upstream's off-by-one HDM05 graph, §7.10; needed for released weights) or
        ``corrected`` (the intended HDM05 skeleton). Ignored for other layouts.
      width: channel multiplier (1.0 = upstream; e.g. 0.125 for tiny demo/test models).
      in_channels: input coordinates per joint (3).
      temporal_kernel: temporal convolution size (9).
    """

    num_classes: int
    stream: str = "joint"
    parents: tuple[int, ...] = layouts.HDM05_PARENTS
    num_persons: int = 1
    graph_layout: str = "hdm05"
    hdm05_graph: str = "upstream_shifted"
    width: float = 1.0
    in_channels: int = 3
    temporal_kernel: int = 9

    def __post_init__(self):
        if self.stream not in streams.STREAMS:
            raise ValueError(f"unknown stream {self.stream!r}; valid: {', '.join(streams.STREAMS)}")
        if self.hdm05_graph not in HDM05_GRAPHS:
            raise ValueError(f"unknown hdm05_graph {self.hdm05_graph!r}; valid: {', '.join(HDM05_GRAPHS)}")
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "Config":
        """The upstream configuration for ``dataset`` (classes, persons, parents, graph), with overrides."""
        layout = layouts.get_dataset(dataset)
        values = dict(num_classes=layout.num_classes, num_persons=layout.num_persons, parents=layout.parents,
                      graph_layout=layout.graph_layout)
        values.update(overrides)
        return cls(**values)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(max(1, int(round(c * self.width))) for c in UPSTREAM_CHANNELS)


def upstream_shifted_hdm05_edges(num_nodes: int = layouts.NUM_JOINTS) -> tuple[tuple[int, int], ...]:
    """Upstream's AGCN HDM05 edges: the 0-based list shifted by −1 again, −1 wrapping to ``num_nodes − 1`` (§7.10)."""
    return tuple(((i - 1) % num_nodes, (j - 1) % num_nodes) for i, j in layouts.HDM05_EDGES)


def graph_edges(layout: str, hdm05_graph: str = "upstream_shifted") -> tuple[tuple[int, int], ...]:
    """Inward (child, parent) edges of the AGCN graph for ``layout``."""
    if layout == "hdm05":
        if hdm05_graph not in HDM05_GRAPHS:
            raise ValueError(f"unknown hdm05_graph {hdm05_graph!r}; valid: {', '.join(HDM05_GRAPHS)}")
        return upstream_shifted_hdm05_edges() if hdm05_graph == "upstream_shifted" else layouts.HDM05_EDGES
    return layouts.get_skeleton(layout).edges


def spatial_graph(layout: str, hdm05_graph: str = "upstream_shifted") -> np.ndarray:
    """``stack(I, norm(inward), norm(outward))`` (``tools.get_spatial_graph``), float32, shape (3, V, V)."""
    return graph.directed_spatial_graph(graph_edges(layout, hdm05_graph), layouts.NUM_JOINTS).astype(np.float32)


def _conv(in_channels, out_channels, kernel=(1, 1), *, stride=1, kernel_init=_kaiming_fan_out, rngs):
    """Channels-last conv with torch-style symmetric temporal padding and zero bias (upstream ``conv_init``)."""
    pad = (kernel[0] - 1) // 2
    return nnx.Conv(in_channels, out_channels, kernel, strides=(stride, 1), padding=((pad, pad), (0, 0)),
                    kernel_init=kernel_init, bias_init=jax.nn.initializers.zeros,
                    conv_general_dilated=conv_general_dilated, rngs=rngs)


def _stacked_1x1(convs):
    """Kernels (K, C_in, C_out) and biases (K, C_out) of K 1×1 convs, so all subsets run in one einsum."""
    return (jnp.stack([c.kernel[...][0, 0] for c in convs]), jnp.stack([c.bias[...] for c in convs]))


class UnitGCN(nnx.Module):
    """Adaptive graph convolution ``unit_gcn``: fixed A + learned PA + data-dependent softmax attention S."""

    def __init__(self, in_channels: int, out_channels: int, num_nodes: int, *, rngs: nnx.Rngs):
        self.inter_channels = max(1, out_channels // COFF_EMBEDDING)
        self.PA = nnx.Param(jnp.full((NUM_SUBSETS, num_nodes, num_nodes), 1e-6, jnp.float32))
        branch_init = jax.nn.initializers.normal(math.sqrt(2.0 / (out_channels * in_channels * NUM_SUBSETS)))
        self.conv_a = nnx.List([_conv(in_channels, self.inter_channels, rngs=rngs) for _ in range(NUM_SUBSETS)])
        self.conv_b = nnx.List([_conv(in_channels, self.inter_channels, rngs=rngs) for _ in range(NUM_SUBSETS)])
        self.conv_d = nnx.List([_conv(in_channels, out_channels, kernel_init=branch_init, rngs=rngs)
                                for _ in range(NUM_SUBSETS)])
        self.has_down = in_channels != out_channels
        if self.has_down:
            self.down_conv = _conv(in_channels, out_channels, rngs=rngs)
            self.down_bn = batch_norm(out_channels, rngs=rngs)
        self.bn = batch_norm(out_channels, rngs=rngs)
        self.bn.scale.set_value(jnp.full((out_channels,), 1e-6, jnp.float32))

    def attention(self, x):
        """S (N, K, V, W): softmax over v of the embedded similarity, divided by inter·T as upstream."""
        wa, ba = _stacked_1x1(self.conv_a)
        wb, bb = _stacked_1x1(self.conv_b)
        a = jnp.einsum("ntvc,kci->nktvi", x, wa) + ba[None, :, None, None, :]
        b = jnp.einsum("ntvc,kci->nktvi", x, wb) + bb[None, :, None, None, :]
        scores = jnp.einsum("nktvi,nktwi->nkvw", a, b) / (self.inter_channels * x.shape[1])
        return jax.nn.softmax(scores, axis=2)

    def __call__(self, x, adjacency):
        """x (N, T, V, C_in), fixed adjacency (K, V, V) → (N, T, V, C_out)."""
        graphs = self.attention(x) + (adjacency + self.PA[...])[None]  # (N, K, V, W)
        aggregated = jnp.einsum("ntvc,nkvw->nktwc", x, graphs)
        wd, bd = _stacked_1x1(self.conv_d)
        y = jnp.einsum("nktwc,kcd->ntwd", aggregated, wd) + bd.sum(axis=0)
        res = self.down_bn(self.down_conv(x)) if self.has_down else x
        return jax.nn.relu(self.bn(y) + res)


class UnitTCN(nnx.Module):
    """Temporal convolution ``unit_tcn``: conv (k, 1) with stride s, then BN (no activation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, *, rngs: nnx.Rngs):
        self.conv = _conv(in_channels, out_channels, (kernel, 1), stride=stride, rngs=rngs)
        self.bn = batch_norm(out_channels, rngs=rngs)

    def __call__(self, x):
        return self.bn(self.conv(x))


class TCNGCNUnit(nnx.Module):
    """``TCN_GCN_unit``: ReLU(tcn(gcn(x)) + residual(x)); residual none (l1), identity, or a strided 1×1 unit_tcn."""

    def __init__(self, in_channels, out_channels, num_nodes, temporal_kernel, stride, residual, *, rngs):
        self.gcn1 = UnitGCN(in_channels, out_channels, num_nodes, rngs=rngs)
        self.tcn1 = UnitTCN(out_channels, out_channels, temporal_kernel, stride, rngs=rngs)
        self.residual_mode = residual_mode(residual, in_channels, out_channels, stride)
        if self.residual_mode == "conv":
            self.residual = UnitTCN(in_channels, out_channels, 1, stride, rngs=rngs)

    def __call__(self, x, adjacency):
        res = residual_branch(self.residual_mode, x, lambda h: self.residual(h))
        return jax.nn.relu(self.tcn1(self.gcn1(x, adjacency)) + res)


class Model(nnx.Module):
    """One 2s-AGCN stream. Call with x (N, 3, T, V, M) joint positions → logits (N, K).

    Units are attributes ``l1`` … ``l10`` as upstream. There are no stochastic layers; ``rng_key`` is accepted
    for the common interface and ignored. ``model.train()`` makes BatchNorm use and update batch statistics.
    """

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.config = config
        adjacency = spatial_graph(config.graph_layout, config.hdm05_graph)
        num_nodes = adjacency.shape[-1]
        self.A = Constant(jnp.asarray(adjacency))
        self.data_bn = batch_norm(config.num_persons * config.in_channels * num_nodes, rngs=rngs)
        c_in = config.in_channels
        for i, (c_out, stride) in enumerate(zip(config.channels, UPSTREAM_STRIDES)):
            setattr(self, f"l{i + 1}", TCNGCNUnit(c_in, c_out, num_nodes, config.temporal_kernel, stride,
                                                  residual=i > 0, rngs=rngs))
            c_in = c_out
        bound = 1.0 / math.sqrt(c_in)
        self.fc = nnx.Linear(c_in, config.num_classes, rngs=rngs,
                             kernel_init=jax.nn.initializers.normal(math.sqrt(2.0 / config.num_classes)),
                             bias_init=lambda key, shape, dtype=jnp.float32: jax.random.uniform(
                                 key, shape, dtype, -bound, bound))

    @property
    def units(self) -> list[TCNGCNUnit]:
        return [getattr(self, f"l{i + 1}") for i in range(len(UPSTREAM_CHANNELS))]

    def __call__(self, x, rng_key=None):
        """x: [N, C, T, V, M] → logits [N, K]."""
        del rng_key  # no stochastic layers
        x = streams.stream_input(x, self.config.stream, self.config.parents)
        n, c, t, v, m = x.shape
        if m != self.config.num_persons:
            raise ValueError(f"2s-AGCN's data BatchNorm is built for M={self.config.num_persons} persons, got M={m}")
        # data BN over (M·V·C) with feature index m·V·C + v·C + c, as upstream's permute(0, 4, 3, 1, 2)
        h = jnp.transpose(x, (0, 2, 4, 3, 1)).reshape(n, t, m * v * c)
        h = self.data_bn(h).reshape(n, t, m, v, c)
        h = jnp.transpose(h, (0, 2, 1, 3, 4)).reshape(n * m, t, v, c)
        adjacency = self.A[...]
        for unit in self.units:
            h = unit(h, adjacency)
        h = h.mean(axis=(1, 2)).reshape(n, m, -1).mean(axis=1)  # [N, C_last]
        return self.fc(h)
