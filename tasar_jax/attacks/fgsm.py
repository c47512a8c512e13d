"""I-FGSM and MI-FGSM (reference.md §3.1, §3.2): iterated, mean-abs normalised gradient steps on ``sign·CE``.

Decisions (docs/decisions.md K8, K9):
* MI-FGSM's momentum decay defaults to upstream's 0.1 (``decay=1.0`` is the published MI-FGSM); the raw gradient
  is accumulated without L1 normalisation, as upstream does (numbers match the fixtures).
* Upstream never resets the momentum between batches (§7.21), so a sample's attack depends on the batches before
  it. Here the momentum starts at zero for every sample (results independent of batching); no switch, since the
  cross-batch carry-over is an accident of where the variable is initialised, not a method.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from tasar_jax.attacks import base, common


class IterateState(NamedTuple):
    x: jax.Array


class MomentumState(NamedTuple):
    x: jax.Array
    momentum: jax.Array


@dataclasses.dataclass(frozen=True)
class IFGSMSpec:
    """``x ← project(x − α·ĝ)``, ``ĝ = g / mean|g|`` with ``g = ∇_x sign·CE``."""

    config: base.AttackConfig = base.AttackConfig()

    def init(self, x0, labels) -> IterateState:
        return IterateState(x0)

    def step(self, apply_fn, params, x0, labels, keys, state, t):
        g, logits = base.loss_gradient(apply_fn, params, state.x, labels, self.config.sign)
        return IterateState(base.descend(self.config, state.x, x0, common.mean_abs_normalise(g))), logits


@dataclasses.dataclass(frozen=True)
class MIFGSMSpec:
    """``m ← decay·m + g`` (raw g), ``x ← project(x − α·m / mean|m|)``."""

    config: base.AttackConfig = base.AttackConfig()
    decay: float = 0.1

    def init(self, x0, labels) -> MomentumState:
        return MomentumState(x0, jnp.zeros_like(x0))

    def step(self, apply_fn, params, x0, labels, keys, state, t):
        g, logits = base.loss_gradient(apply_fn, params, state.x, labels, self.config.sign)
        momentum = self.decay * state.momentum + g
        x = base.descend(self.config, state.x, x0, common.mean_abs_normalise(momentum))
        return MomentumState(x, momentum), logits


def IFGSM(surrogate: base.Surrogate, **config) -> base.Attack:
    """I-FGSM bound to ``surrogate``; keyword arguments are ``AttackConfig`` fields (or eps/steps/alpha)."""
    return base.Attack(surrogate, IFGSMSpec(base.AttackConfig(**base.canonical_kwargs(config))))


def MIFGSM(surrogate: base.Surrogate, decay: float = 0.1, **config) -> base.Attack:
    """MI-FGSM bound to ``surrogate`` (``decay`` 0.1 as upstream; 1.0 is the published method)."""
    return base.Attack(surrogate, MIFGSMSpec(base.AttackConfig(**base.canonical_kwargs(config)), decay))
