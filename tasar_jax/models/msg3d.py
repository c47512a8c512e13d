"""MS-G3D (Liu et al., 2020) as wrapped by RobustBenchHAR (``classifiers/MSG3D.py``), in Flax NNX.

One stream (reference.md §2.5): data BatchNorm over M·V·C (channel index ``m·V·C + v·C + c``), then three stages
``x = ReLU(sgcn_s(x) + gcn3d_s(x)); x = tcn_s(x)`` with channels 96/192/384 and temporal strides 1/2/2, where
``sgcn_s`` = MS-GCN (13 scales) → MS-TCN (stride s) → MS-TCN without its final ReLU, ``gcn3d_s`` = sum of G3D
pathways over windows 3 and 5 (6 scales), ``tcn_s`` = MS-TCN; global average over (T, V), mean over persons,
``fc``. The bone stream (``stream="bone"``) first replaces x by ``x − x[parents]``; ``models.create("msg3d")``
sums a joint and a bone stream (``streams.TwoStream``). Internally channels-last: feature maps (N·M, T, V, C).

Upstream behaviour reproduced (see also ``msg3d_layers``):

* graphs: HDM05 uses ``msg3d/graph/hdm05.py`` (the already 0-based HDM05 edge list), NTU uses ``ntu_rgb_d.py``;
* ``A_powers`` / ``A_scales`` are plain float32 attributes upstream, not in the state_dict: kept here as
  ``layers.Constant`` holding the same float32-rounded values (``normalize_adjacency_matrix`` casts to float32), so
  a float64 model promotes float32 constants exactly as ``model.double()`` does upstream;
* upstream's ``D^{-1/2}`` uses NumPy's float32 ``power``, whose last bit depends on the CPU (SIMD path); here the
  inverse square roots are the correctly rounded float32 values, which reproduce the fixtures' float64 logits to
  1e-15 (this machine's float32 ``power`` would leave 2e-8 relative, above the 1e-8 tolerance);
* ``data_bn`` has ``num_persons·3·25`` channels (75 HDM05, 150 NTU); the person count is part of the config, so an
  input with another M does not fit (as upstream);
* MS-TCN max-pool pads with −inf (torch ``MaxPool2d``); the pointwise branch's strided 1×1 conv equals a 1×1 conv
  on every s-th frame;
* ``width`` scales 96/192/384 to the nearest multiple of 6 (MS-TCN has six equal branches); 1.0 is upstream.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from tasar_jax.data import layouts
from tasar_jax.models import streams
from tasar_jax.models.layers import batch_norm
from tasar_jax.models.msg3d_layers import MultiScaleGraphConv, MultiScaleTemporalConv, MultiWindowG3D, binary_adjacency

UPSTREAM_CHANNELS = (96, 192, 384)
UPSTREAM_STRIDES = (1, 2, 2)


@dataclasses.dataclass(frozen=True)
class Config:
    """MS-G3D hyper-parameters; defaults are the upstream ones.

    Attributes:
      num_classes: K, size of the logits.
      stream: ``joint`` (positions) or ``bone`` (``x − x[parents]`` computed inside the model).
      parents: 0-based parent joint of every joint (dataset description), used by the bone stream.
      graph_layout: ``hdm05`` or ``ntu-rgb+d`` (skeleton graph ``A_binary``).
      num_persons: M of the dataset (``data_bn`` has M·3·25 channels; 1 HDM05, 2 NTU).
      width: channel multiplier (1.0 = upstream 96/192/384; e.g. 0.0625 for tiny test models).
      num_gcn_scales: MS-GCN scales (13).
      num_g3d_scales: G3D scales (6).
      window_sizes: G3D temporal window sizes (3, 5).
      in_channels: input coordinates per joint (3).
    """

    num_classes: int
    stream: str = "joint"
    parents: tuple[int, ...] = layouts.HDM05_PARENTS
    graph_layout: str = "hdm05"
    num_persons: int = 1
    width: float = 1.0
    num_gcn_scales: int = 13
    num_g3d_scales: int = 6
    window_sizes: tuple[int, ...] = (3, 5)
    in_channels: int = 3

    def __post_init__(self):
        if self.stream not in streams.STREAMS:
            raise ValueError(f"unknown stream {self.stream!r}; valid: {', '.join(streams.STREAMS)}")
        # JSON round trips give lists back; keep the config hashable
        object.__setattr__(self, "parents", tuple(self.parents))
        object.__setattr__(self, "window_sizes", tuple(self.window_sizes))

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "Config":
        """The upstream configuration for ``dataset`` (classes, parents, graph, persons), with overrides."""
        layout = layouts.get_dataset(dataset)
        values = dict(num_classes=layout.num_classes, parents=layout.parents, graph_layout=layout.graph_layout,
                      num_persons=layout.num_persons)
        values.update(overrides)
        return cls(**values)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(6 * max(1, int(round(c * self.width / 6))) for c in UPSTREAM_CHANNELS)


class Model(nnx.Module):
    """One MS-G3D stream. Call with x (N, 3, T, V, M) joint positions → logits (N, K).

    No stochastic layers (upstream dropouts are 0); ``rng_key`` is accepted for the common interface.
    ``model.eval()`` uses BatchNorm running statistics, ``model.train()`` batch statistics.
    """

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.config = config
        layout = config.graph_layout
        num_joints = binary_adjacency(layout).shape[0]
        self.data_bn = batch_norm(config.num_persons * config.in_channels * num_joints, rngs=rngs)
        c_prev = config.in_channels
        for stage, (c_out, stride) in enumerate(zip(config.channels, UPSTREAM_STRIDES), start=1):
            c_gcn = c_out if stage == 1 else c_prev  # MS-GCN keeps the width from stage 2 on; MS-TCN widens
            setattr(self, f"gcn3d{stage}", MultiWindowG3D(
                c_prev, c_out, layout, config.num_g3d_scales, config.window_sizes, stride, rngs=rngs))
            setattr(self, f"sgcn{stage}", nnx.List([
                MultiScaleGraphConv(config.num_gcn_scales, c_prev, c_gcn, layout, rngs=rngs),
                MultiScaleTemporalConv(c_gcn, c_out, stride=stride, rngs=rngs),
                MultiScaleTemporalConv(c_out, c_out, activation=False, rngs=rngs)]))
            setattr(self, f"tcn{stage}", MultiScaleTemporalConv(c_out, c_out, rngs=rngs))
            c_prev = c_out
        self.fc = nnx.Linear(c_prev, config.num_classes, rngs=rngs)

    def stages(self):
        """(gcn3d, sgcn, tcn) of the three stages."""
        return [(getattr(self, f"gcn3d{s}"), getattr(self, f"sgcn{s}"), getattr(self, f"tcn{s}")) for s in (1, 2, 3)]

    def __call__(self, x, rng_key=None):
        """x: [N, C, T, V, M] → logits [N, K]."""
        del rng_key  # deterministic network
        x = streams.stream_input(x, self.config.stream, self.config.parents)
        n, c, t, v, m = x.shape
        h = jnp.transpose(x, (0, 2, 4, 3, 1)).reshape(n, t, m * v * c)  # channel m·V·C + v·C + c
        h = self.data_bn(h).reshape(n, t, m, v, c)
        h = jnp.transpose(h, (0, 2, 1, 3, 4)).reshape(n * m, t, v, c)
        for gcn3d, sgcn, tcn in self.stages():
            s = h
            for layer in sgcn:
                s = layer(s)
            h = tcn(jax.nn.relu(s + gcn3d(h)))
        h = h.mean(axis=(1, 2)).reshape(n, m, -1).mean(axis=1)
        return self.fc(h)
