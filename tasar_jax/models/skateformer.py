"""SkateFormer (Do & Kim, 2024) as used by RobustBenchHAR (``classifiers/SkateFormer.py``), in Flax NNX.

Architecturally identical to upstream (reference.md §2.8): the model first applies upstream's Dataset transform
(zero-pad time **at the end** to 64 frames, keep the 24 re-indexed joints ``layouts.SKATEFORMER_JOINTS`` — NTU
semantics, applied to HDM05 as well, §7.6), so it takes the common layout (N, 3, T ≤ 64, 25, M) and gradients
reach the common-layout x (joint 20 gets none). Then persons are laid out person-major along the joint axis
(V' = 24·M), a 1×1-conv stem 3→6→9→96 with exact GELU, the sinusoidal temporal encoding ``te`` times the
learned ``joint_person_embedding``, 4 stages × 2 SkateFormer blocks (stages 2–4 start with a stride-2 temporal
conv + BN), global average pooling over (T, V') and a linear head. Feature maps are channels-last (B, T, V', C).

Upstream quirks reproduced (see also ``skateformer_layers``):
* ``te`` is built in float32 from ``τ_t = 2t/64 − 1`` with 64 hard-coded (kept as a float32 ``Constant``; a
  float64 model promotes it, as ``.double()`` does upstream, fixture README §A.1).
* attention scales q by ``heads^{-1/2}`` with heads = num_heads/8 = 4, not by the head dimension;
* ``relative_position_index`` is a state_dict buffer (int64 upstream, int32 here) that is loaded from checkpoints
  and rebuilt identically; the bias is gathered through it, so a checkpoint's values are honoured;
* exact (erf) GELU and LayerNorm eps 1e-5 (torch defaults); DropPath rates linear 0 → 0.2 over the 8 blocks.
* types 1/3 relative bias: upstream's ``repeat`` tiles instead of interleaving, so the temporal bias is not
  aligned with the tokens' frames (``skateformer_layers.MultiHeadSelfAttention``); reproduced.
* more than 64 frames is an error (upstream's pad would be negative); the input must have M = ``num_people``
  persons (``joint_person_embedding`` is (C, 24·M)).
* ``__call__`` runs the forward pass as one ``jax.jit`` program (eager dispatch of the many small window ops is
  several times slower); train-mode BN statistics are written back afterwards.
* 65 classes for every non-NTU dataset regardless of the class-count flag (§7.16) — ``for_dataset`` uses the
  dataset description, which gives 65 for HDM05 anyway.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tasar_jax.data import layouts
from tasar_jax.models.layers import Constant, conv2d
from tasar_jax.models.skateformer_layers import DropPath, SkateFormerBlockDS, SkateFormerStage, trunc_normal_02

UPSTREAM_CHANNELS = (96, 192, 192, 192)
NTU_PARTITIONS = ((8, 4), (8, 12), (8, 4), (8, 12))
OTHER_PARTITIONS = ((8, 4), (8, 6), (8, 4), (8, 6))
CHANNEL_QUANTUM = 32  # C/4 split into 8 G-conv/T-conv groups and 3C/8 into q, k, v × 4 heads


@dataclasses.dataclass(frozen=True)
class Config:
    """SkateFormer hyper-parameters; defaults are the upstream ones for HDM05.

    Attributes:
      num_classes: K, size of the logits.
      num_people: M persons the model is built for (2 for NTU, 1 otherwise); V' = 24·M.
      partition_sizes: (frames, joints) window size of partition types 1–4.
      width: channel multiplier (1.0 = upstream); channels are rounded to multiples of 32 (≥ 32).
      depths: blocks per stage.
      num_heads: upstream ``num_heads`` (8 G-conv/T-conv groups = num_heads/4, attention heads = num_heads/8).
      kernel_size: temporal kernel of the T-conv and the downsampling conv.
      attn_drop: attention-probability dropout (train mode only).
      drop_path: final DropPath rate (linear from 0 over all blocks; train mode only).
      mlp_ratio: MLP hidden width / C.
      in_channels: coordinates per joint.
    """

    num_classes: int
    num_people: int = 1
    partition_sizes: tuple[tuple[int, int], ...] = OTHER_PARTITIONS
    width: float = 1.0
    depths: tuple[int, ...] = (2, 2, 2, 2)
    num_heads: int = 32
    kernel_size: int = 7
    attn_drop: float = 0.5
    drop_path: float = 0.2
    mlp_ratio: float = 4.0
    in_channels: int = 3

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "Config":
        """Upstream configuration for ``dataset``: its persons, and (8,12) joint windows over two persons' 48 points
        (NTU) or (8,6) over one person's 24 (HDM05)."""
        layout = layouts.get_dataset(dataset)
        values = dict(num_classes=layout.num_classes, num_people=layout.num_persons,
                      partition_sizes=NTU_PARTITIONS if layout.num_persons == 2 else OTHER_PARTITIONS)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self):
        num_points = len(layouts.SKATEFORMER_JOINTS) * self.num_people
        if len(self.partition_sizes) != 4 or self.num_heads % 8:
            raise ValueError("SkateFormer needs 4 partition sizes and num_heads divisible by 8")
        for p0, p1 in self.partition_sizes:
            if num_points % p1:
                raise ValueError(f"{num_points} joints cannot be cut into windows of {p1} joints")
        frames = layouts.SKATEFORMER_FRAMES // 2 ** (len(self.depths) - 1)
        if any(frames % p0 for p0, _ in self.partition_sizes):
            raise ValueError(f"the last stage's {frames} frames cannot be cut into the partition sizes")

    @property
    def channels(self) -> tuple[int, ...]:
        """Stage widths: upstream's scaled by ``width``, rounded to multiples of 32 so every split stays exact."""
        return tuple(max(CHANNEL_QUANTUM, CHANNEL_QUANTUM * round(c * self.width / CHANNEL_QUANTUM))
                     for c in UPSTREAM_CHANNELS[:len(self.depths)])

    @property
    def embed_dim(self) -> int:
        """Stem output width; upstream's first stage has no projection, so it equals the first stage width."""
        return self.channels[0]

    @property
    def num_points(self) -> int:
        return len(layouts.SKATEFORMER_JOINTS) * self.num_people


def skateformer_input(x):
    """Upstream's Dataset transform in jnp (differentiable): pad T at the end to 64, gather the 24 joints.

    x: (N, 3, T ≤ 64, 25, M) → (N, 3, 64, 24, M). Upstream cannot handle T > 64 either (negative pad).
    """
    t = x.shape[2]
    if t > layouts.SKATEFORMER_FRAMES:
        raise ValueError(f"SkateFormer takes at most {layouts.SKATEFORMER_FRAMES} frames, got {t}")
    x = jnp.pad(x, ((0, 0), (0, 0), (0, layouts.SKATEFORMER_FRAMES - t), (0, 0), (0, 0)))
    return x[:, :, :, np.asarray(layouts.SKATEFORMER_JOINTS)]


def temporal_encoding(embed_dim: int, frames: int = layouts.SKATEFORMER_FRAMES) -> np.ndarray:
    """Upstream's sinusoidal ``te`` (T, C) in float32: sin at even, cos at odd channels of ``τ_t·ω_k``.

    Products are float32 as upstream; exp/sin/cos are evaluated in float64 and rounded, i.e. correctly rounded
    float32 values (torch's vectorised float32 exp/sin/cos differ from them by ≤ 1 ulp in a few entries).
    """
    tau = (np.float32(2) * np.arange(frames, dtype=np.float32) / np.float32(frames) - np.float32(1))
    exponent = np.arange(0, embed_dim, 2, dtype=np.float32) * np.float32(-(math.log(10000.0) / embed_dim))
    omega = np.exp(exponent.astype(np.float64)).astype(np.float32)
    angle = (tau[:, None] * omega[None, :]).astype(np.float64)
    te = np.zeros((frames, embed_dim), np.float32)
    te[:, 0::2], te[:, 1::2] = np.sin(angle), np.cos(angle)
    return te


def drop_path_rates(config: Config) -> list[float]:
    """Per-block DropPath rates, ``torch.linspace(0, drop_path, sum(depths))`` (float32 values, as upstream)."""
    return [float(r) for r in np.linspace(0.0, config.drop_path, sum(config.depths), dtype=np.float32)]


class Model(nnx.Module):
    """SkateFormer classifier. Call with x (N, 3, T ≤ 64, 25, M) → logits (N, K); M must equal ``num_people``.

    ``model.eval()`` disables attention dropout and DropPath and uses BN running statistics; in train mode pass
    ``rng_key`` (folded in per block).
    """

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.config = config
        c_in, embed = config.in_channels, config.embed_dim
        self.stem = nnx.List([conv2d(c_in, 2 * c_in, (1, 1), rngs=rngs), conv2d(2 * c_in, 3 * c_in, (1, 1), rngs=rngs),
                              conv2d(3 * c_in, embed, (1, 1), rngs=rngs)])
        self.joint_person_embedding = nnx.Param(trunc_normal_02(rngs.params(), (embed, config.num_points),
                                                                 jnp.float32))
        self.te = Constant(jnp.asarray(temporal_encoding(embed)))
        rates, stages, previous = iter(drop_path_rates(config)), [], embed
        for index, (depth, channels) in enumerate(zip(config.depths, config.channels)):
            blocks = []
            for j in range(depth):
                block_kwargs = dict(num_points=config.num_points, kernel_size=config.kernel_size,
                                    num_heads=config.num_heads, sizes=config.partition_sizes,
                                    attn_drop=config.attn_drop, drop_path=next(rates), mlp_ratio=config.mlp_ratio)
                blocks.append(SkateFormerBlockDS(previous if j == 0 else channels, channels,
                                                 downscale=j == 0 and index > 0, block_kwargs=block_kwargs, rngs=rngs))
            stages.append(SkateFormerStage(blocks))
            previous = channels
        self.stages = nnx.List(stages)
        self.head = nnx.Linear(previous, config.num_classes, rngs=rngs)

    def __call__(self, x, rng_key=None):
        """x: [N, C, T, 25, M] → logits [N, K]."""
        if x.shape[-1] != self.config.num_people:
            raise ValueError(f"this SkateFormer is built for M={self.config.num_people} persons, got M={x.shape[-1]}")
        batch_norm_training, stochastic = self.train_mode_layers()
        if stochastic and rng_key is None:
            raise ValueError("SkateFormer in train mode needs an rng_key for attention dropout and DropPath "
                             "(or call model.eval())")
        graphdef, state = nnx.split(self)
        logits, batch_stats = _pure_forward(graphdef, state, x, rng_key)
        if batch_norm_training:
            nnx.update(self, batch_stats)
        return logits

    def train_mode_layers(self) -> tuple[bool, bool]:
        """(some BatchNorm uses batch statistics, some dropout/DropPath is active): what train mode switched on."""
        nodes = [m for _, m in nnx.iter_graph(self)]
        batch_norm = any(isinstance(m, nnx.BatchNorm) and not m.use_running_average for m in nodes)
        stochastic = any(isinstance(m, (nnx.Dropout, DropPath)) and not m.deterministic and m.rate > 0 for m in nodes)
        return batch_norm, stochastic

    def forward(self, x, rng_key=None):
        """The un-jitted forward pass (``__call__`` runs it compiled through ``_pure_forward``)."""
        n, c = x.shape[:2]
        x = skateformer_input(x)
        h = jnp.transpose(x, (0, 2, 4, 3, 1)).reshape(n, layouts.SKATEFORMER_FRAMES, -1, c)  # (N, T, M·V, C)
        h = self.stem[2](jax.nn.gelu(self.stem[1](jax.nn.gelu(self.stem[0](h), approximate=False)),
                                     approximate=False))
        te = self.te[...].astype(h.dtype)
        h = h + te[:, None, :] * self.joint_person_embedding[...].T[None, :, :]
        block_index = 0
        for stage in self.stages:
            for block in stage.blocks:
                key = None if rng_key is None else jax.random.fold_in(rng_key, block_index)
                h = block(h, key)
                block_index += 1
        return self.head(h.mean(axis=(1, 2)))


@functools.partial(jax.jit, static_argnums=0)
def _pure_forward(graphdef, state, x, rng_key):
    """``Model.forward`` as one compiled program; returns the logits and the (possibly updated) BN statistics.

    Eager op-by-op dispatch of the ~1,500 small ops (16 window layouts) is many times slower to compile and run;
    a plain ``jax.jit`` (not ``nnx.jit``) nests inside a caller's ``jax.grad``/``jit`` without trace-level errors.
    """
    model = nnx.merge(graphdef, state)
    logits = model.forward(x, rng_key)
    return logits, nnx.state(model, nnx.BatchStat)
