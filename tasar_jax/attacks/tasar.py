"""The TASAR attack (reference.md §4.5–§4.7, paper.md §2.5–§2.8): Bayesian (posterior-head) gradients plus a
motion-dynamics term, normalised, with an L∞ step and projection.

Per iteration the surrogate runs **one** forward pass and **one** batched backward pass (§8): every loss of the
iteration depends on x only through the frozen base logits ``z = f(x)``, so one ``jax.vjp`` pulls back the stacked
cotangents ``u_ens = ∇_z ℓ(Σ_k head_k)`` (the deterministic K-head surrogate) and ``u_post = Σ_{k,s} ∇_z ℓ(θ_ks)``
(all K×S posterior draws at once, vmapped). ``TASARSpec`` (``init`` + ``step``) runs in the shared driver's jitted
``lax.scan`` (``base.run_attack``) like every other attack: the heads' posterior and the run's key are bound in the
params of ``AppendedApply`` (the classifier attacked), the motion coefficients and sample indices are per-sample
extras, and ``trace=True`` records the intermediates (g, ar_term, C, S, F_hat, C_hat, x_pre_projection).

Raw gradients are per-sample (the CE is summed over the batch, upstream takes the batch mean, i.e. 1/B of ours);
every direction is mean-abs normalised per sample, so the update is unchanged and independent of the batch.
The motion term is computed in float32 (upstream: float64 then cast; the difference is float32 rounding).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from tasar_jax import losses
from tasar_jax.attacks import base, common
from tasar_jax.models import streams
from tasar_jax.posterior import heads as H


@dataclasses.dataclass(frozen=True)
class TASARConfig(base.AttackConfig):
    """Attack hyper-parameters (defaults: upstream's README run, reference §4.8).

    Attributes (besides ``base.AttackConfig``'s iterations, epsilon, step_size, targeted, group_size):
      samples_per_head: posterior draws S per appended head (20). scale, beta: posterior std multiplier and jitter.
      posterior_weight, motion_weight: weights of F̂ and Ĉ in the temporal update (0.8 / 0.2).
      posterior_decay, momentum_decay: factors of the running sums S and Mom (§7.28: 1 = upstream's cumulative sums,
        which is also the paper's reconstructed algorithm; 0 resets S each iteration, i.e. a plain MC average).
      temporal: add the motion term (upstream ``--temporal``). group_size 8 with batch 8 = upstream's per-batch break.
      shared_draws: True = one set of posterior draws per iteration shared by the batch (upstream); False = draws
        per sample, keyed by its global index (results independent of the batch composition).
      bone_head_sees_joint: two-stream surrogates only, §7.15 (True = upstream's bug).
      dual_posterior: False = ablation without the dual (flatness-seeking SWAG) posterior: every draw is one of the
        plain SG-AdaHMC heads (``posterior.heads``), with no Gaussian around it.
      num_heads: ablation: use only the first ``num_heads`` appended heads (None = all of them).
    """

    samples_per_head: int = 20
    scale: float = 1.5
    beta: float = 1e-30
    posterior_weight: float = 0.8
    motion_weight: float = 0.2
    posterior_decay: float = 1.0
    momentum_decay: float = 1.0
    temporal: bool = True
    shared_draws: bool = False
    bone_head_sees_joint: bool = False
    dual_posterior: bool = True
    num_heads: int | None = None

    def problems(self) -> list[str]:
        out = super().problems()
        if not (isinstance(self.samples_per_head, numbers.Integral) and self.samples_per_head >= 1):
            out.append(f"samples_per_head must be an integer >= 1, got {self.samples_per_head!r}")
        for name in ("scale", "beta", "posterior_weight", "motion_weight"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
                out.append(f"{name} must be a finite number >= 0, got {value!r}")
        for name in ("posterior_decay", "momentum_decay"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and 0 <= value <= 1):
                out.append(f"{name} must be in [0, 1], got {value!r}")
        if self.num_heads is not None and not (isinstance(self.num_heads, numbers.Integral)
                                               and self.num_heads >= 1):
            out.append(f"num_heads must be None or an integer >= 1, got {self.num_heads!r}")
        return out

    @classmethod
    def upstream(cls, **overrides) -> "TASARConfig":
        """Upstream's behaviour: per-batch early stop (batch 8), shared draws, the §7.15 bone-head bug."""
        return cls(**{"group_size": 8, "shared_draws": True, "bone_head_sees_joint": True, **overrides})


class TASARState(NamedTuple):
    """Per-sample attack state: iterate ``x`` and the running sums ``posterior_sum`` (S) and ``momentum`` (Mom);
    the driver (``base.run_attack``) keeps the early-stop flags and iteration counts."""

    x: jax.Array
    posterior_sum: jax.Array
    momentum: jax.Array


def _one_model(cfg: TASARConfig, theta, z):
    """One appended model (a head draw per stream) on one sample's per-stream base logits z ((K,), ...)."""
    return H.appended_model(theta, z, bone_head_sees_joint=cfg.bone_head_sees_joint)


def _heads(posterior):
    return tuple(p.heads for p in posterior)


def ablated(posterior, cfg: TASARConfig):
    """The per-stream posterior the attack uses under ``cfg``'s ablation switches (``num_heads``,
    ``dual_posterior``)."""
    return tuple(_ablated(p, cfg) for p in streams.check_per_stream(posterior, "posterior"))


def _ablated(posterior: H.Posterior, cfg: TASARConfig) -> H.Posterior:
    available = jax.tree.leaves(posterior.heads)[0].shape[0]
    if cfg.num_heads is not None:
        if not 1 <= cfg.num_heads <= available:
            raise ValueError(f"num_heads={cfg.num_heads}, but the posterior has {available} appended heads")
        posterior = jax.tree.map(lambda a: a[:cfg.num_heads], posterior)
    if not cfg.dual_posterior:  # a point mass on each sampled head: std sqrt(max(h² − h², 1e-30) + beta) ≈ 0
        posterior = H.Posterior(posterior.heads, posterior.heads, jax.tree.map(jnp.square, posterior.heads))
    return posterior


def _num_heads(posterior) -> int:
    return jax.tree.leaves(posterior[0].heads)[0].shape[0]


def _draw(cfg: TASARConfig, key, posterior):
    """S draws of every head per stream, leaves (S·K, ...) (stream keys: ``streams.stream_keys``)."""
    def one(k, p):
        draws = H.sample_heads(k, p, cfg.samples_per_head, scale=cfg.scale, beta=cfg.beta)
        return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), draws)
    return tuple(one(k, p) for k, p in zip(streams.stream_keys(key, len(posterior)), posterior))


def _sample_losses(cfg: TASARConfig, stacked_heads, draws, z_b, y_b):
    """(ensemble objective, posterior objective summed over draws, ensemble logits) of one sample."""
    sign = 1.0 if cfg.targeted else -1.0
    ensemble = jnp.sum(jax.vmap(_one_model, in_axes=(None, 0, None))(cfg, stacked_heads, z_b), axis=0)
    post = jax.vmap(lambda th: losses.cross_entropy(_one_model(cfg, th, z_b), y_b))(draws)
    return sign * losses.cross_entropy(ensemble, y_b), sign * jnp.sum(post), ensemble


def _cotangents(cfg: TASARConfig, posterior, z, labels, draws):
    """Per-stream stacked cotangents (2, B, K): u_ens and u_post, plus the surrogate logits."""
    draw_axis = None if cfg.shared_draws else 0

    def objectives(z):
        ens, post, logits = jax.vmap(_sample_losses, in_axes=(None, None, draw_axis, 0, 0))(
            cfg, _heads(posterior), draws, z, labels)
        return (jnp.sum(ens), jnp.sum(post)), logits

    _, pullback, logits = jax.vjp(objectives, z, has_aux=True)
    (u_ens,) = pullback((jnp.ones(()), jnp.zeros(())))
    (u_post,) = pullback((jnp.zeros(()), jnp.ones(())))
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), u_ens, u_post)
    return stacked, logits


def motion_term(g, ar1, ar2):
    """``a[:, :, τ] = AR1[τ]·g[τ+1] + AR2[τ]·g[τ+2]`` along time (axis 2), g = 0 beyond the last frame."""
    pad = [(0, 0)] * g.ndim
    pad[2] = (0, 2)
    gp = jnp.pad(g, pad)
    t = g.shape[2]
    return ar1.astype(g.dtype) * gp[:, :, 1:t + 1] + ar2.astype(g.dtype) * gp[:, :, 2:t + 2]


def init(x0) -> TASARState:
    """The state entering iteration 0: ``x = x0`` and zero running sums."""
    zeros = jnp.zeros_like(x0)
    return TASARState(x0, zeros, zeros)


def gradients(cfg: TASARConfig, apply_fn: Callable, params, posterior, x, labels, key, indices):
    """One surrogate forward + one batched backward: ``(g, Σ_{k,s} posterior gradients, surrogate logits)``.

    ``g = ∇_x ℓ(Σ_k head_k(f(x)))`` and the posterior sum come from one ``jax.vjp`` of ``f`` pulled back along the
    two stacked cotangents (vmapped), never one network pass per posterior draw (reference.md §8).
    """
    if cfg.shared_draws:
        draws = _draw(cfg, key, posterior)
    else:
        sample_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, indices)
        draws = jax.vmap(lambda k: _draw(cfg, k, posterior))(sample_keys)
    z, pullback = jax.vjp(lambda x_: apply_fn(params, x_), x)
    cot, logits = _cotangents(cfg, posterior, z, labels, draws)
    (grads,) = jax.vmap(pullback)(cot)
    return grads[0], grads[1], logits


def update(cfg: TASARConfig, state: TASARState, x0, g, post_grad, ar, num_heads: int):
    """The rest of an iteration (§4.7 steps 2–5) from the raw gradients: running sums, normalisation, step and
    projection (early stopping is the driver's). Returns the new state and the per-iteration intermediates."""
    a = motion_term(g, *ar) if ar is not None else jnp.zeros_like(g)
    momentum = g + cfg.momentum_decay * state.momentum + a
    posterior_sum = cfg.posterior_decay * state.posterior_sum + post_grad
    f = posterior_sum / (num_heads * cfg.samples_per_head)
    f_hat, c_hat = common.mean_abs_normalise(f), common.mean_abs_normalise(momentum)
    direction = cfg.posterior_weight * f_hat + cfg.motion_weight * c_hat if cfg.temporal else f_hat
    x_pre = state.x - cfg.step_size * direction
    x_new = common.project_linf(x_pre, x0, cfg.epsilon)
    intermediates = {"g": g, "ar_term": a, "C": momentum, "S": posterior_sum, "F_hat": f_hat, "C_hat": c_hat,
                     "x_pre_projection": x_pre}
    return TASARState(x_new, posterior_sum, momentum), intermediates


@dataclasses.dataclass(frozen=True)
class AppendedApply:
    """The classifier TASAR attacks, as the driver's ``apply_fn``: the surrogate's per-stream logits (``streams``,
    ``Surrogate.from_model(model, streams=True).apply_fn``) through the K appended heads, summed. Its params are
    ``(surrogate params, per-stream posterior, key)``: the heads and the attack's key are bound inputs."""

    streams: Callable
    config: TASARConfig

    def __call__(self, packed, x):
        params, posterior, _ = packed
        z = self.streams(params, x)
        return jax.vmap(lambda z_b: jnp.sum(jax.vmap(_one_model, in_axes=(None, 0, None))(
            self.config, _heads(posterior), z_b), axis=0))(z)


@dataclasses.dataclass(frozen=True)
class TASARSpec:
    """TASAR as an attack spec for the shared driver. Iteration t draws the posterior samples from
    ``fold_in(key, t)`` (shared draws) or ``fold_in(fold_in(key, t), index)`` per sample (K5), ``key`` being the run's
    key bound in the params and ``index`` the per-sample extra that ``TASAR.run`` adds."""

    config: TASARConfig
    num_heads: int

    def init(self, x0, labels) -> TASARState:
        return init(x0)

    def step(self, apply_fn: AppendedApply, params, x0, labels, keys, state, t, *, index, ar1=None, ar2=None):
        surrogate_params, posterior, key = params
        g, post_grad, logits = gradients(self.config, apply_fn.streams, surrogate_params, posterior, state.x, labels,
                                         jax.random.fold_in(key, t), index)
        ar = None if ar1 is None else (ar1, ar2)
        new_state, intermediates = update(self.config, state, x0, g, post_grad, ar, self.num_heads)
        return new_state, logits, intermediates


class TASAR(base.Attack):
    """TASAR bound to a surrogate giving per-stream logits (``Surrogate.from_model(m, streams=True)``) and its
    per-stream appended-head posterior, run by the shared driver; the motion coefficients travel as per-sample
    ``extras={"ar1": ..., "ar2": ...}`` ((N, 3, T, V, M), or (N, 3, T, V)), needed when ``temporal``. Keyword
    arguments are ``TASARConfig`` fields (or aliases)."""

    def __init__(self, surrogate: base.Surrogate, posterior, **config):
        cfg = TASARConfig(**base.canonical_kwargs(config))
        self.posterior = ablated(streams.check_per_stream(posterior, "posterior"), cfg)
        # the classifier attacked; run() binds its own key in place of this placeholder
        packed = (surrogate.params, self.posterior, jax.random.key(0))
        super().__init__(base.Surrogate(AppendedApply(surrogate.apply_fn, cfg), packed),
                         TASARSpec(cfg, _num_heads(self.posterior)))

    def run(self, key, x, labels, *, indices=None, extras: dict | None = None, trace: bool = False
            ) -> base.AttackResult:
        extras = dict(extras or {})
        unknown = set(extras) - {"ar1", "ar2"}
        if unknown:
            raise TypeError(f"TASAR takes the extras ar1 and ar2, not {sorted(unknown)}")
        if self.config.temporal and "ar1" not in extras:
            raise ValueError("the temporal attack needs the AR1/AR2 motion coefficients (or temporal=False)")
        x = jnp.asarray(x, jnp.float32)
        for name, value in extras.items():
            value = jnp.asarray(value)
            extras[name] = value[..., None] if value.ndim == x.ndim - 1 else value
            if tuple(extras[name].shape) != tuple(x.shape):
                raise ValueError(f"TASAR: {name} has shape {tuple(value.shape)} but the clips {tuple(x.shape)}; the "
                                 "motion coefficients must be those of these clips")
        extras["index"] = jnp.arange(x.shape[0]) if indices is None else jnp.asarray(indices)
        bound = base.Surrogate(self.surrogate.apply_fn, (*self.surrogate.params[:2], key))
        return base.run_attack(self.spec, bound, key, x, labels, indices=extras["index"], extras=extras, trace=trace)


def tasar_attack(apply_fn: Callable, params: Any, posterior, x, labels, key, config: TASARConfig = TASARConfig(), *,
                 ar1=None, ar2=None, indices=None, trace: bool = False) -> base.AttackResult:
    """Attacks the batch ``x`` (N, 3, T, V, M) with labels (true classes, or targets if ``config.targeted``):
    ``TASAR(Surrogate(apply_fn, params), posterior, config).run(...)``.

    Args:
      apply_fn, params: the frozen surrogate as a pure function returning per-stream logits
        (``Surrogate.from_model(model, streams=True)``): ``(z,)``, or ``(z_J, z_B)`` for a two-stream ensemble.
      posterior: the per-stream tuple of ``heads.Posterior`` (stacked bayesianTrain heads + SWAG moments):
        ``(posterior,)``, or ``(joint, bone)`` for a two-stream surrogate.
      key: PRNG key; iteration t draws from ``fold_in(key, t)`` (shared) or ``fold_in(fold_in(key, t), indices[i])``.
      ar1, ar2: motion coefficients (N, 3, T, V, M) or (N, 3, T, V); needed when ``config.temporal``.
      indices: global sample indices (default ``arange(N)``) so that draws do not depend on the batching.
      trace: also return every per-iteration intermediate (g, ar_term, C, S, F_hat, C_hat, x_pre_projection, x_next).
    """
    atk = TASAR(base.Surrogate(apply_fn, params), posterior, **dataclasses.asdict(config))
    extras = {} if ar1 is None else {"ar1": ar1, "ar2": ar2}
    return atk.run(key, x, labels, indices=indices, extras=extras, trace=trace)


def fool_rates(fooled_iters) -> jax.Array:
    """Batch fool rate (%) per iteration, upstream's bookkeeping (before each iteration's update)."""
    return 100.0 * jnp.mean(fooled_iters.astype(jnp.float32), axis=-1)
