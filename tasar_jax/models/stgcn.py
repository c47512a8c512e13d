"""ST-GCN (Yan et al., 2018) as wrapped by RobustBenchHAR (``classifiers/STGCN.py``), in Flax NNX.

Architecturally identical to upstream (reference.md §2.2): data BatchNorm over V·C with persons folded into the
batch, ten ``st_gcn`` blocks (channels 64, 64, 64, 64, 128↓2, 128, 128, 256↓2, 256, 256; temporal kernel 9;
spatial-partition graph with K = 3 subsets), learnable edge-importance masks, global average pooling, mean over
persons and a 1×1 convolution classifier. Internally channels-last: feature maps are (N·M, T, V, C).

Attribute names mirror the upstream torch module names so the converter's key table stays small.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from tasar_jax.data import layouts
from tasar_jax.models import graph
from tasar_jax.models.layers import Buffer, batch_norm, conv2d, residual_branch, residual_mode

UPSTREAM_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
UPSTREAM_STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)


@dataclasses.dataclass(frozen=True)
class Config:
    """ST-GCN hyper-parameters; defaults are the upstream ones.

    Attributes:
      num_classes: K, size of the logits.
      graph_layout: ``hdm05`` or ``ntu-rgb+d`` (upstream: ``hdm05`` for HDM05, ``-glayout`` default for NTU).
      width: channel multiplier (1.0 = upstream; e.g. 0.125 for tiny demo/test models).
      dropout: dropout rate inside blocks 2–10 (upstream ``--dropout`` 0.5; inactive in eval mode).
      edge_importance: learnable edge-importance masks (upstream ``-eiw`` True).
      in_channels: input coordinates per joint (3).
      temporal_kernel: temporal convolution size (9).
    """

    num_classes: int
    graph_layout: str = "hdm05"
    width: float = 1.0
    dropout: float = 0.5
    edge_importance: bool = True
    in_channels: int = 3
    temporal_kernel: int = 9

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "Config":
        """The upstream configuration for ``dataset`` (class count and graph layout), with overrides."""
        layout = layouts.get_dataset(dataset)
        values = dict(num_classes=layout.num_classes, graph_layout=layout.graph_layout)
        values.update(overrides)
        return cls(**values)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(max(1, int(round(c * self.width))) for c in UPSTREAM_CHANNELS)


class ConvTemporalGraphical(nnx.Module):
    """Graph convolution: 1×1 conv to K·C_out channels, then ``y[n,t,w,c] = Σ_k Σ_v x[n,t,v,k,c] A[k,v,w]``."""

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int, *, rngs: nnx.Rngs):
        self.num_subsets = num_subsets
        self.conv = conv2d(in_channels, out_channels * num_subsets, (1, 1), rngs=rngs)

    def __call__(self, x, adjacency):
        y = self.conv(x)  # [NM, T, V, K·C]; torch channel index k·C + c
        n, t, v, kc = y.shape
        y = y.reshape(n, t, v, self.num_subsets, kc // self.num_subsets)
        return jnp.einsum("ntvkc,kvw->ntwc", y, adjacency)


class STGCNBlock(nnx.Module):
    """One ``st_gcn`` block: gcn → BN → ReLU → temporal conv (stride s) → BN → dropout, plus residual, ReLU."""

    def __init__(self, in_channels, out_channels, num_subsets, temporal_kernel, stride, dropout, residual, *, rngs):
        self.gcn = ConvTemporalGraphical(in_channels, out_channels, num_subsets, rngs=rngs)
        pad = (temporal_kernel - 1) // 2
        self.tcn_bn_in = batch_norm(out_channels, rngs=rngs)
        self.tcn_conv = conv2d(
            out_channels, out_channels, (temporal_kernel, 1), strides=(stride, 1), padding=((pad, pad), (0, 0)),
            rngs=rngs)
        self.tcn_bn_out = batch_norm(out_channels, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)
        self.residual_mode = residual_mode(residual, in_channels, out_channels, stride)
        if self.residual_mode == "conv":
            self.residual_conv = conv2d(in_channels, out_channels, (1, 1), strides=(stride, 1), rngs=rngs)
            self.residual_bn = batch_norm(out_channels, rngs=rngs)

    def __call__(self, x, adjacency, rng_key=None):
        res = residual_branch(self.residual_mode, x, lambda h: self.residual_bn(self.residual_conv(h)))
        y = self.gcn(x, adjacency)
        y = self.tcn_conv(jax.nn.relu(self.tcn_bn_in(y)))
        y = self.dropout(self.tcn_bn_out(y), rngs=rng_key)
        return jax.nn.relu(y + res)


class Model(nnx.Module):
    """ST-GCN classifier. Call with x (N, 3, T, V, M) → logits (N, K).

    ``model.eval()`` switches BatchNorm to running statistics and disables dropout (used by every attack);
    ``model.train()`` switches back. In train mode pass ``rng_key`` for dropout.
    """

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.config = config
        adjacency = graph.stgcn_spatial_graph(config.graph_layout)
        num_subsets, num_joints = adjacency.shape[0], adjacency.shape[1]
        self.A = Buffer(jnp.asarray(adjacency, dtype=jnp.float32))
        self.data_bn = batch_norm(config.in_channels * num_joints, rngs=rngs)
        blocks, c_in = [], config.in_channels
        for i, (c_out, stride) in enumerate(zip(config.channels, UPSTREAM_STRIDES)):
            blocks.append(STGCNBlock(
                c_in, c_out, num_subsets, config.temporal_kernel, stride,
                dropout=0.0 if i == 0 else config.dropout, residual=i > 0, rngs=rngs))
            c_in = c_out
        self.st_gcn_networks = nnx.List(blocks)
        if config.edge_importance:
            self.edge_importance = nnx.List(
                [nnx.Param(jnp.ones(adjacency.shape, jnp.float32)) for _ in blocks])
        self.fcn = conv2d(c_in, config.num_classes, (1, 1), rngs=rngs)

    def __call__(self, x, rng_key=None):
        """x: [N, C, T, V, M] → logits [N, K]."""
        n, c, t, v, m = x.shape
        # data BN over (V·C) with channel index v·C + c, persons folded into the batch
        h = jnp.transpose(x, (0, 4, 2, 3, 1)).reshape(n * m, t, v * c)
        h = self.data_bn(h).reshape(n * m, t, v, c)
        adjacency = self.A[...]
        for i, block in enumerate(self.st_gcn_networks):
            a = adjacency * self.edge_importance[i][...] if self.config.edge_importance else adjacency
            key = None if rng_key is None else jax.random.fold_in(rng_key, i)
            h = block(h, a, key)
        h = h.mean(axis=(1, 2)).reshape(n, m, -1).mean(axis=1)  # [N, C_last]
        return self.fcn(h[:, None, None, :]).reshape(n, -1)

