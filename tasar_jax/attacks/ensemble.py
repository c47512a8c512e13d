"""Ensemble attacks: ENSEMBLE (reference.md §3.7) and SVRE (§3.8; Xiong et al., CVPR 2022).

ENSEMBLE descends with sign steps on ``sign·CE`` of the summed member logits (upstream's ``EnsembleModel``).
SVRE is the published stochastic variance-reduced ensemble attack: per outer iteration the ensemble gradient
``g_ens(x)`` and every member's ``g_k(x)``; then ``M`` inner steps, each drawing one member ``k`` and taking a sign
step on an inner momentum of ``g_k(x̃) − g_k(x) + g_ens(x)``; the outer momentum accumulates the normalised final
inner momentum and the iterate takes a sign step on it.

Both bind a combined surrogate (``combine``): ``apply_fn`` = ``SummedLogits`` of the member functions (a frozen,
hashable dataclass, so the jit cache keys on the members), ``params`` = the tuple of member params. The driver's
fool bookkeeping and final predictions use the summed logits.

Decisions (docs/decisions.md B16–B19):
* B16 (§7.26) upstream's SVRE is byte-for-byte ENSEMBLE; ``SVRE`` implements the published method by default and
  ``SVRE(..., upstream=True)`` returns ENSEMBLE.
* B17 SVRE's ensemble loss is CE of the mean member logits (the paper's equal weights, so ``g_ens`` has the scale
  of a member gradient, which the variance-reduction term needs); ENSEMBLE keeps upstream's summed logits. Member
  losses are per-sample CE summed over the batch. Defaults: ``M = 4·K`` inner steps, inner step = outer step, both
  momentum decays 1.0 (the paper's), L1 normalisation as mean-abs (the same up to a constant, and sign steps).
* B18 by default one member is drawn per inner step for every sample, as in the published algorithm, from
  ``fold_in(fold_in(key(draw_seed), t), m)``: the same sequence whatever the batching, and only the drawn member's
  gradient is computed (``lax.switch``): ``K + M`` member passes per outer iteration. ``shared_draws=False`` draws
  per sample from its own key instead (``fold_in(key, t)``, then ``m``), which with static shapes evaluates every
  member at each inner step and selects per sample: ``K·(M + 1)`` passes.
* B19 the inner iterate is projected onto the ε-ball around the clean input, as the outer one.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from tasar_jax import losses
from tasar_jax.attacks import base, common


class EnsembleState(NamedTuple):
    x: jax.Array


class SVREState(NamedTuple):
    x: jax.Array
    momentum: jax.Array


@dataclasses.dataclass(frozen=True)
class SummedLogits:
    """``apply_fn`` of an ensemble: ``Σ_k members[k](params[k], x)``."""

    members: tuple[Callable, ...]

    def __call__(self, params, x):
        return sum(f(p, x) for f, p in zip(self.members, params, strict=True))


def combine(surrogates: base.Surrogate | Sequence[base.Surrogate]) -> base.Surrogate:
    """One surrogate giving the summed member logits (``params`` = tuple of member params)."""
    if isinstance(surrogates, base.Surrogate):
        surrogates = [surrogates]
    surrogates = list(surrogates)
    if not surrogates or not all(isinstance(s, base.Surrogate) for s in surrogates):
        raise TypeError("ensemble attacks take a non-empty sequence of base.Surrogate")
    return base.Surrogate(SummedLogits(tuple(s.apply_fn for s in surrogates)), tuple(s.params for s in surrogates))


@dataclasses.dataclass(frozen=True)
class EnsembleSpec:
    """``x ← project(x − α·sign(∇_x sign·CE(Σ_k z_k(x))))``."""

    config: base.AttackConfig = base.AttackConfig()

    def init(self, x0, labels) -> EnsembleState:
        return EnsembleState(x0)

    def step(self, apply_fn, params, x0, labels, keys, state, t):
        g, logits = base.loss_gradient(apply_fn, params, state.x, labels, self.config.sign)
        return EnsembleState(base.descend(self.config, state.x, x0, jnp.sign(g))), logits


def _member_gradients(members, params, x, labels, sign):
    """Every member's ``∇_x Σ_b sign·CE(z_k)`` (K, B, ...), the mean-logit ensemble's gradient and the summed logits;
    one forward and one batched two-cotangent backward per member."""
    k = len(members)
    outs = [jax.vjp(lambda z, f=f, p=p: f(p, z), x) for f, p in zip(members, params, strict=True)]
    logits = [o[0] for o in outs]
    ce_cot = jax.grad(lambda z: sign * jnp.sum(losses.cross_entropy(z, labels)))
    ens_cot = ce_cot(sum(logits) / k) / k
    grads, ens = [], 0.0
    for (z, vjp) in outs:
        (g,) = jax.vmap(vjp)(jnp.stack([ce_cot(z), ens_cot]))
        grads.append(g[0])
        ens = ens + g[1]
    return jnp.stack(grads), ens, sum(logits)


def _member_gradient(member, params, x, labels, sign):
    """``∇_x Σ_b sign·CE(member(params, x))``: one member's forward and backward pass."""
    return jax.grad(lambda z: sign * jnp.sum(losses.cross_entropy(member(params, z), labels)))(x)


def _pick(stacked, index):
    """``stacked[index[b], b]`` for every sample b (stacked: (K, B, ...))."""
    return jnp.take_along_axis(stacked, index.reshape((1, -1) + (1,) * (stacked.ndim - 2)), axis=0)[0]


@dataclasses.dataclass(frozen=True)
class SVRESpec:
    """Published SVRE (module docstring); ``members`` are the member ``apply_fn``s, ``params`` their tuple."""

    members: tuple[Callable, ...]
    config: base.AttackConfig = base.AttackConfig()
    inner_steps: int = 12
    inner_step_size: float | None = None
    decay: float = 1.0
    inner_decay: float = 1.0
    shared_draws: bool = True
    draw_seed: int = 0

    def init(self, x0, labels) -> SVREState:
        return SVREState(x0, jnp.zeros_like(x0))

    def draw(self, keys, t, m):
        """The member used at inner step ``m`` of outer iteration ``t``: one for the batch (``shared_draws``, a
        scalar) or one per sample (a vector)."""
        pick = lambda key: jax.random.randint(jax.random.fold_in(jax.random.fold_in(key, t), m), (), 0,  # noqa: E731
                                              len(self.members))
        return pick(jax.random.key(self.draw_seed)) if self.shared_draws else jax.vmap(pick)(keys)

    def step(self, apply_fn, params, x0, labels, keys, state, t):
        cfg, sign = self.config, self.config.sign
        beta = cfg.step_size if self.inner_step_size is None else self.inner_step_size
        at_x, g_ens, logits = _member_gradients(self.members, params, state.x, labels, sign)

        branches = [lambda z, f=f, p=p: _member_gradient(f, p, z, labels, sign)
                    for f, p in zip(self.members, params, strict=True)]

        def inner(m, carry):
            x_in, g_in = carry
            chosen = self.draw(keys, t, m)
            if self.shared_draws:  # only the drawn member's pass runs
                reduced = jax.lax.switch(chosen, branches, x_in) - at_x[chosen] + g_ens
            else:
                at_inner, _, _ = _member_gradients(self.members, params, x_in, labels, sign)
                reduced = _pick(at_inner, chosen) - _pick(at_x, chosen) + g_ens
            g_in = self.inner_decay * g_in + common.mean_abs_normalise(reduced)
            return common.project_linf(x_in - beta * jnp.sign(g_in), x0, cfg.epsilon), g_in

        _, g_inner = jax.lax.fori_loop(0, self.inner_steps, inner, (state.x, jnp.zeros_like(state.x)))
        momentum = self.decay * state.momentum + common.mean_abs_normalise(g_inner)
        return SVREState(base.descend(cfg, state.x, x0, jnp.sign(momentum)), momentum), logits


def ENSEMBLE(surrogates: Sequence[base.Surrogate], **config) -> base.Attack:
    """Sign steps on the summed member logits; keyword arguments are ``AttackConfig`` fields (or eps/steps/alpha)."""
    return base.Attack(combine(surrogates), EnsembleSpec(base.AttackConfig(**base.canonical_kwargs(config))))


def SVRE(surrogates: Sequence[base.Surrogate], inner_steps: int | None = None, inner_step_size: float | None = None,
         decay: float = 1.0, inner_decay: float = 1.0, shared_draws: bool = True, draw_seed: int = 0,
         upstream: bool = False, **config) -> base.Attack:
    """Published SVRE over the members (``inner_steps`` default 4·K, ``inner_step_size`` default the step size;
    ``shared_draws``/``draw_seed``: B18); ``upstream=True`` gives upstream's SVRE, i.e. ``ENSEMBLE`` (B16)."""
    if upstream:
        return ENSEMBLE(surrogates, **config)
    surrogate = combine(surrogates)
    members = surrogate.apply_fn.members
    steps = 4 * len(members) if inner_steps is None else int(inner_steps)
    cfg = base.AttackConfig(**base.canonical_kwargs(config))
    return base.Attack(surrogate, SVRESpec(members, cfg, steps, inner_step_size, decay, inner_decay,
                                           bool(shared_draws), int(draw_seed)))
