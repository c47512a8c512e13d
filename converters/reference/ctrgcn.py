"""CTR-GCN in PyTorch, written from the specification (reference.md §2.1, §2.3) as the torch side of parity tests.

The module names reproduce the state_dict of RobustBenchHAR's ``classifiers/CTRGCN.py`` exactly (822 entries, in
upstream order): ``data_bn``, ``l1``…``l10`` (``gcn1.{PA, alpha, convs.<k>.conv1..4, down.0/1, bn}``,
``tcn1.branches.<b>…``, ``residual.{conv, bn}``), ``fc``. Layout NCHW with H = time, W = joint. Nothing here
calls ``.cuda()``: the module runs on whatever device it is moved to.

Upstream facts reproduced (and decisions):

* ``data_bn`` has M·V·C channels (M = 1 for HDM05, 2 for NTU), channel index ``(m·V + v)·C + c``.
* The NTU "spatial" graph ``(I, normalize(inward), normalize(outward))`` initialises ``PA`` for every dataset,
  HDM05 included (reference.md §7.11); only the adaptive path exists (``PA`` is a parameter, always loaded).
* ``CTRGC`` relation/mid channels: 8/16 when the input has 3 (or 9) channels, else in/8 and in.
* ``MultiScale_TemporalConv`` with kernel 5, dilations (1, 2), four branches of out/4 channels, no internal
  residual; the max-pool branch pads with −inf (torch ``MaxPool2d``).
* Head: mean over (T·V), mean over persons, ``Linear``; dropout 0 (upstream default), so it is omitted.
* Initialisation follows upstream (kaiming fan-out convs, zero biases, BN γ = 1 except ``gcn1.bn`` γ = 1e-6,
  ``alpha`` = 0, temporal-branch BN γ ~ N(1, 0.02), ``fc`` ~ N(0, 2/K)); weights are meant to be loaded.
* ``width`` scales the base channels 64 to ``max(8, 4·round(64·width/4))`` (same rule as the JAX port).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from tasar_jax.data import layouts
from tasar_jax.models import graph

BASE_CHANNELS = 64
CHANNEL_FACTORS = (1, 1, 1, 1, 2, 2, 2, 4, 4, 4)
STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)


def ntu_spatial_graph() -> np.ndarray:
    """(3, 25, 25) float64: identity, column-normalised inward and outward NTU adjacency.

    Same construction as upstream ``tools.get_spatial_graph``; ``PA`` stores it as float32."""
    return graph.directed_spatial_graph(layouts.NTU_EDGES, layouts.NUM_JOINTS)


def scaled_channels(width: float) -> tuple[int, ...]:
    """Unit output channels for a width multiplier (1.0 = upstream): base ``max(8, 4·round(64·width/4))`` times the
    upstream factors, the rule of the JAX ``Config.channels`` (keeps every width divisible by the 4 branches)."""
    base = max(8, 4 * int(round(BASE_CHANNELS * width / 4)))
    return tuple(base * f for f in CHANNEL_FACTORS)


def _conv_init(conv: nn.Conv2d):
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    nn.init.zeros_(conv.bias)


def _bn_init(bn, scale: float):
    nn.init.constant_(bn.weight, scale)
    nn.init.zeros_(bn.bias)


class CTRGC(nn.Module):
    """Channel-wise topology refinement for one subset.

    ``M = conv4(tanh(x̄1[..., u] − x̄2[..., v]))·α + A`` (x̄ = time means), ``z[n,c,t,u] = Σ_v M[n,c,u,v] x3[n,c,t,v]``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        rel = 8 if in_channels in (3, 9) else in_channels // 8
        self.conv1 = nn.Conv2d(in_channels, rel, 1)
        self.conv2 = nn.Conv2d(in_channels, rel, 1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1)
        self.conv4 = nn.Conv2d(rel, out_channels, 1)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            _conv_init(conv)

    def forward(self, x, adjacency, alpha):
        x1 = self.conv1(x).mean(dim=-2)  # N, R, V (time mean)
        x2 = self.conv2(x).mean(dim=-2)
        x3 = self.conv3(x)
        rel = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))  # N, R, V, V
        topology = self.conv4(rel) * alpha + adjacency[None, None]
        return torch.einsum("ncuv,nctv->nctu", topology, x3)


class UnitGCN(nn.Module):
    """``unit_gcn``: Σ_k CTRGC_k(x, PA[k], α) → BN → + down(x) → ReLU."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray):
        super().__init__()
        self.convs = nn.ModuleList([CTRGC(in_channels, out_channels) for _ in range(adjacency.shape[0])])
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
            _conv_init(self.down[0])
            _bn_init(self.down[1], 1.0)
        else:
            self.down = None
        self.PA = nn.Parameter(torch.from_numpy(adjacency.astype(np.float32)))
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)
        _bn_init(self.bn, 1e-6)

    def forward(self, x):
        y = sum(conv(x, self.PA[k], self.alpha) for k, conv in enumerate(self.convs))
        y = self.bn(y) + (x if self.down is None else self.down(x))
        return torch.relu(y)


class TemporalConv(nn.Module):
    """Conv (k, 1) with dilation d, padding d·(k−1)/2, stride s, then BN."""

    def __init__(self, channels: int, kernel_size: int, stride: int, dilation: int):
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(channels, channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1),
                              dilation=(dilation, 1))
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.bn(self.conv(x))


def _multiscale_init(module: nn.Module):
    """Upstream ``weights_init`` of the multi-scale TCN: kaiming fan-out convs, BN γ ~ N(1, 0.02), β = 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            _conv_init(m)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class MultiScaleTemporalConv(nn.Module):
    """Four branches of out/4 channels (two dilated temporal convs, max-pool, strided 1×1), concatenated."""

    def __init__(self, channels: int, stride: int, kernel_size: int = 5, dilations=(1, 2)):
        super().__init__()
        if channels % (len(dilations) + 2):
            raise ValueError(f"channels {channels} must be a multiple of {len(dilations) + 2} branches")
        branch = channels // (len(dilations) + 2)
        branches = [nn.Sequential(nn.Conv2d(channels, branch, 1), nn.BatchNorm2d(branch), nn.ReLU(),
                                  TemporalConv(branch, kernel_size, stride, d)) for d in dilations]
        branches.append(nn.Sequential(nn.Conv2d(channels, branch, 1), nn.BatchNorm2d(branch), nn.ReLU(),
                                      nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)),
                                      nn.BatchNorm2d(branch)))
        branches.append(nn.Sequential(nn.Conv2d(channels, branch, 1, stride=(stride, 1)), nn.BatchNorm2d(branch)))
        self.branches = nn.ModuleList(branches)
        _multiscale_init(self)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], dim=1)


class UnitTCN(nn.Module):
    """Residual projection ``unit_tcn`` with kernel 1: conv 1×1 (stride s) → BN."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        _conv_init(self.conv)
        _bn_init(self.bn, 1.0)

    def forward(self, x):
        return self.bn(self.conv(x))


class TCNGCNUnit(nn.Module):
    """``TCN_GCN_unit``: ReLU(tcn1(gcn1(x)) + residual(x))."""

    def __init__(self, in_channels, out_channels, adjacency, stride=1, residual=True):
        super().__init__()
        self.gcn1 = UnitGCN(in_channels, out_channels, adjacency)
        self.tcn1 = MultiScaleTemporalConv(out_channels, stride)
        if not residual:
            self.residual_mode = "none"
        elif in_channels == out_channels and stride == 1:
            self.residual_mode = "identity"
        else:
            self.residual_mode = "conv"
            self.residual = UnitTCN(in_channels, out_channels, stride)

    def forward(self, x):
        if self.residual_mode == "none":
            res = 0.0
        elif self.residual_mode == "identity":
            res = x
        else:
            res = self.residual(x)
        return torch.relu(self.tcn1(self.gcn1(x)) + res)


class CTRGCN(nn.Module):
    """CTR-GCN classifier: x (N, 3, T, 25, M) → logits (N, K); M must equal ``num_persons``."""

    def __init__(self, num_classes: int, num_persons: int = 1, width: float = 1.0, in_channels: int = 3,
                 num_joints: int = layouts.NUM_JOINTS):
        super().__init__()
        adjacency = ntu_spatial_graph()
        self.data_bn = nn.BatchNorm1d(num_persons * in_channels * num_joints)
        _bn_init(self.data_bn, 1.0)
        c_in = in_channels
        for i, (c_out, stride) in enumerate(zip(scaled_channels(width), STRIDES)):
            setattr(self, f"l{i + 1}", TCNGCNUnit(c_in, c_out, adjacency, stride=stride, residual=i > 0))
            c_in = c_out
        self.fc = nn.Linear(c_in, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, math.sqrt(2.0 / num_classes))

    def units(self):
        return [getattr(self, f"l{i + 1}") for i in range(len(CHANNEL_FACTORS))]

    def forward(self, x):
        n, c, t, v, m = x.shape
        h = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))
        h = h.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for unit in self.units():
            h = unit(h)
        h = h.reshape(n, m, h.shape[1], -1).mean(dim=3).mean(dim=1)
        return self.fc(h)
