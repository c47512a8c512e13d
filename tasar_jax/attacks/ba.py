"""BA, the Bayesian attack (reference.md §3.9): I-FGSM on the mean input gradient of ``n_models`` networks drawn
every iteration from the full-network SWAG posterior (``tasar_jax.posterior.full_swag``):

    θ_k = μ + scale·sqrt(clamp(s − μ², 1e-30) + 5e-30)·ξ_k,   G = mean_k ∇_x sign·CE(f_θk(x)),
    x ← project(x − α·G / mean|G|)

The draws replace the surrogate's ``nnx.Param`` leaves; its other state (batch-norm statistics) is the
surrogate's. The fool bookkeeping uses the surrogate itself (upstream: the original model).

    atk = BA(Surrogate.from_model(model), moments, iterations=200)     # moments: full_swag.SwagMoments
    x_adv = atk(key, x, y)

Decisions (docs/decisions.md B27–B29):
* B27 Draws per sample by default: sample b's networks come from its own key (``fold_in(keys[b], t)``), so its
  attack does not depend on the batch; this runs B single-sample forward/backward passes per draw (vmapped, with
  per-sample weights: the same FLOPs as one batch pass, B copies of the weights in memory).
  ``shared_draws=True`` is upstream's batch-shared draw (one batch pass per draw, cheaper), keyed by the first
  sample's key, so a sample's result then depends on its batch.
* B28 Upstream also back-propagates the original model's loss every iteration and never uses that gradient
  (§7.27): here only its forward runs, for the fool bookkeeping.
* B29 Two-stream ensembles: the draws cover every parameter of both streams and the gradients come from the drawn
  networks (intended). Upstream draws them but then attacks with the original ensemble, i.e. BA degenerates to
  I-FGSM there: use ``fgsm.IFGSM`` for that behaviour. Batch-norm statistics: see full_swag (B25).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tasar_jax.attacks import base, common
from tasar_jax.attacks.smart import PackedApply
from tasar_jax.posterior import full_swag

VAR_FLOOR = 1e-30  # clamp(s − μ², 1e-30)
VAR_JITTER = 5e-30  # upstream's beta


class BAState(NamedTuple):
    x: jax.Array


def posterior_std(mean, sqmean):
    """``sqrt(clamp(s − μ², 1e-30) + 5e-30)`` leaf-wise."""
    return jax.tree.map(lambda m, s: jnp.sqrt(jnp.maximum(s - jnp.square(m), VAR_FLOOR) + VAR_JITTER), mean, sqmean)


def draw(key, mean, std, scale: float):
    """One network ``μ + scale·std·ξ``, ``ξ ~ N(0, I)``: one normal vector cut into the leaves (a single
    generator call keeps the compiled program small)."""
    leaves, treedef = jax.tree.flatten(mean)
    sizes = [a.size for a in leaves]
    flat = jax.random.normal(key, (sum(sizes),), jnp.float32)
    cuts = np.cumsum(sizes)[:-1].tolist()
    noise = [z.reshape(a.shape).astype(a.dtype) for z, a in zip(jnp.split(flat, cuts), leaves)]
    return jax.tree.map(lambda m, s, z: m + scale * s * z, mean, std, jax.tree.unflatten(treedef, noise))


@dataclasses.dataclass(frozen=True)
class BASpec:
    """BA's hyper-parameters; ``params`` given to ``step`` are ``(model state, (mean, sqmean))`` (see ``BA``)."""

    config: base.AttackConfig = base.AttackConfig()
    n_models: int = 3
    scale: float = 1.5
    shared_draws: bool = False

    def init(self, x0, labels) -> BAState:
        return BAState(x0)

    def _gradient(self, inner, state, mean, std, x, labels, key):
        """``Σ_k ∇_x sign·CE`` over ``n_models`` draws from ``key`` (on the whole of ``x``)."""
        def one(total, k):
            theta = draw(k, mean, std, self.scale)
            g, _ = base.loss_gradient(inner, nnx.merge_state(state, theta), x, labels, self.config.sign)
            return total + g, None

        total, _ = jax.lax.scan(one, jnp.zeros_like(x), jax.random.split(key, self.n_models))
        return total

    def step(self, apply_fn, params, x0, labels, keys, state, t):
        model_state, (mean, sqmean) = params
        inner = apply_fn.apply_fn
        logits = inner(model_state, state.x)
        std = posterior_std(mean, sqmean)
        if self.shared_draws:
            g = self._gradient(inner, model_state, mean, std, state.x, labels, jax.random.fold_in(keys[0], t))
        else:
            per_sample = lambda k, xb, yb: self._gradient(  # noqa: E731
                inner, model_state, mean, std, xb[None], yb[None], jax.random.fold_in(k, t))[0]
            g = jax.vmap(per_sample)(keys, state.x, labels)
        # the mean over draws is a scale: mean-abs normalisation removes it
        return BAState(base.descend(self.config, state.x, x0, common.mean_abs_normalise(g))), logits


def BA(surrogate: base.Surrogate, swag, n_models: int = 3, scale: float = 1.5, shared_draws: bool = False,
       **config) -> base.Attack:
    """BA bound to ``surrogate`` (an NNX surrogate, ``Surrogate.from_model``) and ``swag`` (``SwagMoments`` of the
    same architecture: ``nnx.State`` or nested pure dicts as ``full_swag.load_swag`` gives). Keyword arguments
    besides are ``AttackConfig`` fields (or eps/steps/alpha)."""
    if not isinstance(surrogate.params, nnx.State):
        raise TypeError("BA needs an NNX surrogate (base.Surrogate.from_model(model))")
    template = surrogate.params.filter(nnx.Param)
    moments = tuple(full_swag.as_param_state(template, m) for m in (swag.mean, swag.sqmean))
    packed = base.Surrogate(PackedApply(surrogate.apply_fn), (surrogate.params, moments))
    cfg = base.AttackConfig(**base.canonical_kwargs(config))
    return base.Attack(packed, BASpec(cfg, int(n_models), float(scale), bool(shared_draws)))
