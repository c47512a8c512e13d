"""ST-GCN in PyTorch, written from the specification (reference.md §2.1, §2.2) as the torch side of parity tests.

The module names reproduce the state_dict of RobustBenchHAR's ``classifiers/STGCN.py`` exactly (172 entries, in
upstream order): buffer ``A``, ``data_bn``, ``st_gcn_networks.<i>.{gcn.conv, tcn.0, tcn.2, tcn.3, residual.0,
residual.1}``, ``edge_importance.<i>``, ``fcn``. Layout NCHW with H = time, W = joint, persons folded into the
batch. Nothing here calls ``.cuda()``: the module runs on whatever device it is moved to.

Upstream facts reproduced (and decisions):

* ``data_bn`` has V·C = 75 channels for every dataset (persons are folded into the batch before it), channel
  index ``v·C + c``.
* ``A`` is a registered buffer (so ``.double()`` widens it), built by
  ``tasar_jax.models.graph.stgcn_spatial_graph`` in float64 and stored as float32 like upstream.
* Block 1 has no residual and dropout 0; blocks 2–10 use ``dropout`` (upstream ``--dropout`` 0.5). Upstream's
  in-place ReLU/Dropout are written out-of-place here (same values, autograd friendlier).
* Head: mean over (T, V) (upstream ``avg_pool2d`` over the full map), mean over persons, 1×1 conv classifier.
* Initialisation is torch's default (upstream ST-GCN applies no custom init); weights are meant to be loaded.
* ``width`` scales every block's channels by ``max(1, round(c·width))`` like the JAX ``Config.channels``.
"""

from __future__ import annotations

import torch
from torch import nn

from tasar_jax.models import graph

CHANNELS = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)


def scaled_channels(width: float) -> tuple[int, ...]:
    """Block output channels for a width multiplier (1.0 = upstream)."""
    return tuple(max(1, int(round(c * width))) for c in CHANNELS)


class GraphConv(nn.Module):
    """1×1 conv to K·C_out channels, then ``y[n,c,t,w] = Σ_k Σ_v x[n,k,c,t,v] · A[k,v,w]``."""

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int):
        super().__init__()
        self.num_subsets = num_subsets
        self.conv = nn.Conv2d(in_channels, out_channels * num_subsets, kernel_size=1)

    def forward(self, x, adjacency):
        y = self.conv(x)
        n, kc, t, v = y.shape
        y = y.view(n, self.num_subsets, kc // self.num_subsets, t, v)
        return torch.einsum("nkctv,kvw->nctw", y, adjacency)


class STGCNBlock(nn.Module):
    """``st_gcn``: gcn → [BN, ReLU, temporal conv (stride s), BN, Dropout] + residual → ReLU."""

    def __init__(self, in_channels, out_channels, num_subsets, temporal_kernel, stride, dropout, residual):
        super().__init__()
        pad = (temporal_kernel - 1) // 2
        self.gcn = GraphConv(in_channels, out_channels, num_subsets)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout),
        )
        if not residual:
            self.residual_mode = "none"
        elif in_channels == out_channels and stride == 1:
            self.residual_mode = "identity"
        else:
            self.residual_mode = "conv"
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x, adjacency):
        if self.residual_mode == "none":
            res = 0.0
        elif self.residual_mode == "identity":
            res = x
        else:
            res = self.residual(x)
        return torch.relu(self.tcn(self.gcn(x, adjacency)) + res)


class STGCN(nn.Module):
    """ST-GCN classifier: x (N, 3, T, 25, M) → logits (N, K)."""

    def __init__(self, num_classes: int, graph_layout: str = "hdm05", width: float = 1.0, dropout: float = 0.5,
                 edge_importance: bool = True, in_channels: int = 3, temporal_kernel: int = 9):
        super().__init__()
        adjacency = torch.tensor(graph.stgcn_spatial_graph(graph_layout), dtype=torch.float32)
        self.register_buffer("A", adjacency)
        num_subsets, num_joints = adjacency.shape[0], adjacency.shape[1]
        self.data_bn = nn.BatchNorm1d(in_channels * num_joints)
        blocks, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(zip(scaled_channels(width), STRIDES)):
            blocks.append(STGCNBlock(c_in, c_out, num_subsets, temporal_kernel, stride,
                                     dropout=0.0 if i == 0 else dropout, residual=i > 0))
            c_in = c_out
        self.st_gcn_networks = nn.ModuleList(blocks)
        self.edge_importance = (
            nn.ParameterList([nn.Parameter(torch.ones(adjacency.shape)) for _ in blocks]) if edge_importance else None
        )
        self.fcn = nn.Conv2d(c_in, num_classes, kernel_size=1)

    def forward(self, x):
        n, c, t, v, m = x.shape
        h = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        h = self.data_bn(h)
        h = h.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for i, block in enumerate(self.st_gcn_networks):
            adjacency = self.A if self.edge_importance is None else self.A * self.edge_importance[i]
            h = block(h, adjacency)
        h = h.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)
        return self.fcn(h[:, :, None, None]).view(n, -1)
