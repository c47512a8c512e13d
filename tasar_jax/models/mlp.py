"""The three-layer MLP baseline of RobustBenchHAR (``classifiers/ThreeLayerMLP.py``), in Flax NNX.

``Flatten → Linear(3·T·V·M, 512) → ReLU → Linear(512, 512) → ReLU → Linear(512, K) [→ ReLU]``, flattening the
common layout (N, 3, T, V, M) in C order (input index ``c·T·V·M + t·V·M + v·M + m``).

Upstream applies a ReLU to the logits (quirk, reference.md §7.17); ``Config.relu_logits`` reproduces it and is
set by the converter for upstream checkpoints, while new models default to plain logits (docs/decisions.md).
"""

from __future__ import annotations

import dataclasses

import jax
from flax import nnx

from tasar_jax.data import layouts


@dataclasses.dataclass(frozen=True)
class Config:
    """MLP hyper-parameters. ``hidden`` = 512 upstream; ``relu_logits`` reproduces the upstream ReLU on logits."""

    num_classes: int
    num_frames: int = layouts.NUM_FRAMES
    num_persons: int = 1
    hidden: int = 512
    relu_logits: bool = False

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "Config":
        layout = layouts.get_dataset(dataset)
        values = dict(num_classes=layout.num_classes, num_persons=layout.num_persons)
        values.update(overrides)
        return cls(**values)


class Model(nnx.Module):
    """Three-layer MLP. Call with x (N, 3, T, V, M) → logits (N, K)."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.config = config
        in_features = layouts.NUM_CHANNELS * config.num_frames * layouts.NUM_JOINTS * config.num_persons
        self.mlpstack = nnx.Dict({
            "0": nnx.Linear(in_features, config.hidden, rngs=rngs),
            "2": nnx.Linear(config.hidden, config.hidden, rngs=rngs),
            "4": nnx.Linear(config.hidden, config.num_classes, rngs=rngs),
        })

    def __call__(self, x, rng_key=None):
        """x: [N, C, T, V, M] → logits [N, K]. ``rng_key`` is unused (no stochastic layers)."""
        h = x.reshape(x.shape[0], -1)
        h = jax.nn.relu(self.mlpstack["0"](h))
        h = jax.nn.relu(self.mlpstack["2"](h))
        h = self.mlpstack["4"](h)
        return jax.nn.relu(h) if self.config.relu_logits else h
