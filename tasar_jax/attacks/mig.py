"""MIG, momentum integrated gradients (reference.md §3.5; Ma et al., ICCV 2023).

Per iteration the integrated gradient of the label's softmax probability is a Riemann sum over ``ig_steps`` scaled
copies ``(k/S)·x`` (zero baseline), all in one batched forward/backward pass of ``S·B`` samples; it is accumulated
into a momentum and the iterate takes a mean-abs normalised step on it (the benchmark's step rule, as upstream).

Decisions (docs/decisions.md B10–B12):
* B10 (§7.24, the missing ``(x − baseline)`` factor) kept missing by default: with a zero baseline and signed
  skeleton coordinates, ``x ⊙ ∇`` flips the gradient's sign wherever a coordinate is negative, so it is no descent
  direction (images, where IG comes from, are non-negative). Without it the direction is the exact gradient of the
  path-averaged probability ``mean_k p((k/S)·x)``, as upstream computes it (chain factor ``k/S`` included).
  ``input_factor=True`` gives the published integrated gradient ``x ⊙ mean_k ∇p(z)|_{z=(k/S)·x}``.
* B11 (§7.24) the published MI accumulation ``m ← μ·m + ig / mean|ig|`` and, when targeted, the target's softmax
  probability (the quantity the method integrates) by default; ``upstream=True`` accumulates the raw integrated
  gradient and uses the raw target logit, as upstream does (its extra ``/S`` is a constant factor, irrelevant to
  every normalised direction, and is not applied).
* B12 the per-sample loss is summed over the batch (upstream: batch mean), so a sample's integrated gradient does
  not depend on the batch size; upstream's ``momentum_raw`` is this momentum divided by ``S·B`` in upstream mode.
  Momentum starts at zero for every sample (upstream: reset per batch, decay 1.0).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from tasar_jax.attacks import base, common


class MIGState(NamedTuple):
    x: jax.Array
    momentum: jax.Array


def scaled_copies(x, steps: int, baseline=None):
    """``baseline + (k/S)·(x − baseline)`` for k = 1..S, stacked scale-major: (S·B, ...)."""
    baseline = jnp.zeros_like(x) if baseline is None else baseline
    alphas = jnp.arange(1, steps + 1, dtype=x.dtype) / steps
    copies = baseline[None] + alphas.reshape((-1,) + (1,) * x.ndim) * (x - baseline)[None]
    return copies.reshape((steps * x.shape[0],) + x.shape[1:])


@dataclasses.dataclass(frozen=True)
class MIGSpec:
    """``ig = mean_k ∇_x L((k/S)·x)``, ``m ← μ·m + ig (/ mean|ig|)``, ``x ← project(x − α·m / mean|m|)``.

    ``L`` = the label's softmax probability (untargeted, descended) or minus the target's probability (targeted;
    minus its raw logit in upstream mode).
    """

    config: base.AttackConfig = base.AttackConfig()
    decay: float = 1.0
    ig_steps: int = 20
    upstream: bool = False
    input_factor: bool = False

    def init(self, x0, labels) -> MIGState:
        return MIGState(x0, jnp.zeros_like(x0))

    def objective(self, logits, labels):
        """Summed per-sample loss on the scaled copies' logits (S·B, K) with labels repeated S times."""
        if self.config.targeted and self.upstream:
            scores = logits
        else:
            scores = jax.nn.softmax(logits, axis=-1)
        picked = jnp.take_along_axis(scores, labels[:, None], axis=-1)[:, 0]
        return (-1.0 if self.config.targeted else 1.0) * jnp.sum(picked)

    def integrated_gradient(self, apply_fn, params, x, labels):
        """The integrated gradient of every sample (zero baseline): one batched pass over the S·B scaled copies.

        Default: ``mean_k (k/S)·∇L(z)|_{z=(k/S)x}`` = ∇_x of the path-averaged loss (upstream's); with
        ``input_factor`` the published ``x ⊙ mean_k ∇L(z)|_{z=(k/S)x}``.
        """
        steps = self.ig_steps
        copies = scaled_copies(x, steps)
        grads = jax.grad(lambda z: self.objective(apply_fn(params, z), jnp.tile(labels, steps)))(copies)
        grads = grads.reshape((steps,) + x.shape)
        if self.input_factor:
            return x * jnp.mean(grads, axis=0)
        alphas = jnp.arange(1, steps + 1, dtype=x.dtype) / steps
        return jnp.tensordot(alphas, grads, axes=1) / steps

    def step(self, apply_fn, params, x0, labels, keys, state, t):
        logits = apply_fn(params, state.x)
        ig = self.integrated_gradient(apply_fn, params, state.x, labels)
        momentum = self.decay * state.momentum + (ig if self.upstream else common.mean_abs_normalise(ig))
        x = base.descend(self.config, state.x, x0, common.mean_abs_normalise(momentum))
        return MIGState(x, momentum), logits


def MIG(surrogate: base.Surrogate, decay: float = 1.0, ig_steps: int = 20, upstream: bool = False,
        input_factor: bool = False, **config) -> base.Attack:
    """MIG bound to ``surrogate``; ``upstream=True`` reproduces upstream (raw accumulation, raw target logit),
    ``input_factor=True`` multiplies by ``x − baseline`` (published IG, B10); keyword arguments are
    ``AttackConfig`` fields (or eps/steps/alpha)."""
    if upstream and input_factor:
        raise ValueError("upstream MIG has no (x - baseline) factor: upstream=True excludes input_factor=True")
    spec = MIGSpec(base.AttackConfig(**base.canonical_kwargs(config)), decay, ig_steps, upstream, input_factor)
    return base.Attack(surrogate, spec)
