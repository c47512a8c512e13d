"""TASAR post-training on precomputed surrogate logits: ``bayesian_train`` (§4.3) and ``dual_bayesian`` (§4.4).

The surrogate is frozen and deterministic in eval mode, so its logits ``z = f(x)`` are computed once
(``surrogate_logits``) and every loss is a function of ``z`` only; the K head chains run vmapped, one jitted
``lax.scan`` per epoch. Surrogate logits are a per-stream tuple; two-stream surrogates are post-trained per
stream (as upstream: ``<base>_joint``, ``<base>_bone``). Minibatches follow upstream's DataLoader (fresh shuffle
per head pass, last batch partial; the partial batch is padded and masked so that every batch has one static shape).
"""

from __future__ import annotations

import dataclasses
import warnings
from functools import partial
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

from tasar_jax import fit, losses, prediction
from tasar_jax.posterior import sgadahmc
from tasar_jax.posterior.heads import HeadParams, Posterior, appended_logits

__all__ = ["PostTrainConfig", "BayesianTrainResult", "DualBayesianResult", "surrogate_logits", "init_heads",
           "bayesian_train", "dual_bayesian", "flat_gradient", "swag_period", "head_accuracy"]


@dataclasses.dataclass(frozen=True)
class PostTrainConfig:
    """Upstream defaults (README / BayesianClassifier.py). ``sampler``: 'sgadahmc' | 'sghmc' | 'sgld' (blackjax)."""

    epochs: int = 5
    batch_size: int = 32
    lr: float = 2e-3
    num_integration_steps: int = 30
    tau: float = 2.0
    friction: float = 1.0
    temperature: float = 1e-5
    sampler: str = "sgadahmc"
    shuffle: bool = True
    reference_quirks: bool = False
    rho: float = 0.1  # dual_bayesian: sharpness-probe radius (hard-coded upstream)
    lam: float = 1e-3  # dual_bayesian: flatness weight (--lam)
    swa_start: int = 0
    swa_n: int = 300
    burn_in_epochs: int = 0  # upstream --burnIn: plain sampler epochs first, without selection or SWAG


BURN_IN_STREAM = 0x6275726E  # folded into the key for burn-in batches, so burn_in_epochs=0 changes nothing else


class BayesianTrainResult(NamedTuple):
    heads: HeadParams  # best-test-accuracy head per chain (leading axis K)
    best_accuracy: np.ndarray  # (K,)
    accuracy: np.ndarray  # (epochs, K) test accuracy after each epoch


class DualBayesianResult(NamedTuple):
    posterior: Posterior  # heads = the given (bayesian_train) heads; mean/sqmean = SWAG moments
    heads: HeadParams  # the dual-trained heads (not used by the attack, as upstream)
    num_snapshots: np.ndarray  # (K,) SWAG counter per head after the run
    accuracy: np.ndarray  # (epochs, K)


def surrogate_logits(model, x, batch_size: int = 64) -> tuple[np.ndarray, ...]:  # model: or a Predictor
    """Frozen eval-mode per-stream logits of ``model`` on ``x`` (N,3,T,V,M), ``batch_size`` samples per device a
    chunk: ``(z,)``, or ``(z_J, z_B)`` for a two-stream ensemble; each (N, K) (``prediction.Predictor``)."""
    return tuple(prediction.predict(model, x, batch_size, streams=True))


def init_heads(key, num_heads: int, num_classes: int) -> HeadParams:
    """PyTorch's default ``Linear(K,K)`` init (weights and biases ``U(±1/√K)``), stacked on a leading head axis."""
    bound = 1.0 / np.sqrt(num_classes)
    shapes = ((num_heads, num_classes, num_classes), (num_heads, num_classes)) * 2
    keys = jax.random.split(key, 4)
    return HeadParams(*(jax.random.uniform(k, s, jnp.float32, -bound, bound) for k, s in zip(keys, shapes)))


def _ce(head, z, y, mask):
    nll = losses.cross_entropy(appended_logits(head, z), y)
    return jnp.sum(nll * mask) / jnp.sum(mask)


@jax.jit
def head_accuracy(heads: HeadParams, z, y):
    """Accuracy of every stacked head's appended model on (z, y): (K,)."""
    pred = jax.vmap(lambda h: jnp.argmax(appended_logits(h, z), -1))(heads)
    return jnp.mean(pred == y[None], axis=1)


def flat_gradient(head, batch, rho=0.1, lam=1e-3):
    """Upstream's flatness gradient (§4.4): ``g``, ``g'`` at ``θ + ρ g/(‖g‖+1e-20)`` (global norm), combined
    ``g + (λ/ρ)(g' − g)``. Returns (combined, dict of the parts, the perturbation ``ρ g/(‖g‖+1e-20)``)."""
    loss, g = jax.value_and_grad(_ce)(head, *batch)
    norm = jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(g)))
    gamma = rho / (norm + 1e-20)
    delta = jax.tree.map(lambda t: gamma * t, g)
    loss_p, g_p = jax.value_and_grad(_ce)(jax.tree.map(jnp.add, head, delta), *batch)
    combined = jax.tree.map(lambda a, b: a + (lam / rho) * (b - a), g, g_p)
    parts = dict(grad=g, grad_perturbed=g_p, grad_norm=norm, loss=loss, loss_perturbed=loss_p)
    return combined, parts, delta


def swag_period(epochs: int, num_batches: int, swa_start: int, swa_n: int) -> int:
    """``P = ⌊(E − swa_start)·nb / swa_n⌋``. Upstream crashes for P = 0 (§7.29); here P = 0 falls back to 1
    (a snapshot after every step, i.e. as many snapshots as there are steps, fewer than swa_n) with a warning."""
    period = ((epochs - swa_start) * num_batches) // swa_n
    if period <= 0:
        warnings.warn(f"SWAG period (E − swa_start)·nb // swa_n = 0 (E={epochs}, nb={num_batches}, swa_n={swa_n}); "
                      "taking a snapshot after every step instead", stacklevel=2)
        period = 1
    return period


def _batches(key, n, batch_size, shuffle):
    """Indices (nb, bs) of one DataLoader pass (last batch padded with index 0) and the mask of real entries."""
    nb = -(-n // batch_size)
    order = jax.random.permutation(key, n) if shuffle else jnp.arange(n)
    pad = nb * batch_size - n
    idx = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)]).reshape(nb, batch_size)
    mask = (jnp.arange(nb * batch_size) < n).astype(jnp.float32).reshape(nb, batch_size)
    return idx, mask


def _sampler(cfg: PostTrainConfig, grad_estimator):
    """(init, step(rng, state, minibatch), position) of the configured sampler."""
    if cfg.sampler == "sgadahmc":
        alg = sgadahmc.as_top_level_api(grad_estimator, cfg.num_integration_steps, cfg.tau, cfg.friction,
                                        cfg.reference_quirks)
        return alg.init, lambda k, s, b: alg.step(k, s, b, cfg.lr, cfg.temperature), lambda s: s.position
    if cfg.sampler == "sghmc":
        alg = blackjax.sghmc(grad_estimator, num_integration_steps=cfg.num_integration_steps)
    elif cfg.sampler == "sgld":
        alg = blackjax.sgld(grad_estimator)
    else:
        raise ValueError(f"unknown sampler {cfg.sampler!r}: use 'sgadahmc', 'sghmc' or 'sgld'")
    return alg.init, lambda k, s, b: alg.step(k, s, b, cfg.lr, cfg.temperature), lambda s: s


def _step_cfg(cfg: PostTrainConfig) -> PostTrainConfig:
    """The fields a jitted epoch depends on (the rest zeroed so that runs differing only there share a compile)."""
    return dataclasses.replace(cfg, epochs=0, batch_size=0, shuffle=False, swa_start=0, swa_n=0)


def _loglik_grad(head, batch):
    return jax.tree.map(jnp.negative, jax.grad(_ce)(head, *batch))


@partial(jax.jit, static_argnames=("cfg",))
def _bayes_epoch(keys, states, z, y, idx, mask, cfg):
    _, step, _ = _sampler(cfg, _loglik_grad)

    def chain(key, state, idx, mask):
        def body(state, inp):
            k, i, m = inp
            return step(k, state, (z[i], y[i], m)), None

        return jax.lax.scan(body, state, (jax.random.split(key, idx.shape[0]), idx, mask))[0]

    return jax.vmap(chain)(keys, states, idx, mask)


def _head_status(record: dict) -> str:
    return "test " + " ".join(f"{a:.1%}" for a in record["test_accuracy"]) if "test_accuracy" in record else ""


@partial(jax.jit, static_argnames=("num_heads", "n", "batch_size", "shuffle"))
def _epoch_batches(key, ep, num_heads, n, batch_size, shuffle):
    """Per-head batch orders and per-head sampler keys of epoch ``ep`` (a function of ``key`` and ``ep`` only)."""
    key_batches, key_steps = jax.random.split(jax.random.fold_in(key, ep))
    idx, mask = jax.vmap(lambda k: _batches(k, n, batch_size, shuffle))(jax.random.split(key_batches, num_heads))
    return idx, mask, jax.random.split(key_steps, num_heads)


def _burn_in(key, states, z, y, cfg: PostTrainConfig, progress: bool):
    """Upstream's ``--burnIn`` epochs: plain (likelihood-gradient) sampler passes of every head, nothing kept."""
    key = jax.random.fold_in(key, BURN_IN_STREAM)
    num_heads = jax.tree.leaves(states)[0].shape[0]

    def run_epoch(states, ep, bar):
        idx, mask, skeys = _epoch_batches(key, ep, num_heads, z.shape[0], cfg.batch_size, cfg.shuffle)
        return _bayes_epoch(skeys, states, z, y, idx, mask, _step_cfg(cfg)), {}

    return fit.fit(states, run_epoch, epochs=cfg.burn_in_epochs, progress=progress and cfg.burn_in_epochs > 0,
                   description="burn-in").state


def bayesian_train(key, z_train, y_train, z_test, y_test, cfg: PostTrainConfig = PostTrainConfig(), *,
                   heads: HeadParams | None = None, num_heads: int = 3, progress: bool = False) -> BayesianTrainResult:
    """K independent SG-AdaHMC chains on appended heads (vmapped). After each epoch every head is evaluated on the
    test set and kept when its accuracy is strictly greater than its best so far (initial 0, as upstream). A head
    that never beats 0 (upstream writes no file, §7.30) falls back to its last-epoch value."""
    z_train, y_train = jnp.asarray(z_train, jnp.float32), jnp.asarray(y_train, jnp.int32)
    z_test, y_test = jnp.asarray(z_test, jnp.float32), jnp.asarray(y_test, jnp.int32)
    key_init, key_run = jax.random.split(key)
    if heads is None:
        heads = init_heads(key_init, num_heads, z_train.shape[1])
    num_heads = jax.tree.leaves(heads)[0].shape[0]
    init, _, position = _sampler(cfg, _loglik_grad)
    states = _burn_in(key_run, jax.vmap(init)(heads), z_train, y_train, cfg, progress)

    def run_epoch(states, ep, bar):
        idx, mask, skeys = _epoch_batches(key_run, ep, num_heads, z_train.shape[0], cfg.batch_size, cfg.shuffle)
        return _bayes_epoch(skeys, states, z_train, y_train, idx, mask, _step_cfg(cfg)), {}

    def evaluate(states):
        acc = np.asarray(head_accuracy(position(states), z_test, y_test))
        return acc, {"test_accuracy": acc}

    result = fit.fit(states, run_epoch, epochs=cfg.epochs, evaluate=evaluate, snapshot=position, best=heads,
                     best_score=np.zeros(num_heads), status=_head_status, progress=progress,
                     description="bayesian_train")
    best, best_acc = result.best, result.best_score
    ever = best_acc > 0  # strict improvements from 0
    if not ever.all():
        warnings.warn(f"heads {np.flatnonzero(~ever).tolist()} never reached a test accuracy > 0; "
                      "keeping their last-epoch parameters", stacklevel=2)
        best = fit.keep_improved(position(result.state), best, ever)
    history = [r["test_accuracy"] for r in result.history]
    return BayesianTrainResult(best, best_acc, np.asarray(history).reshape(cfg.epochs, num_heads))


def _swag_update(mean, sqmean, theta, n):
    """``μ ← μ·n/(n+1) + θ/(n+1)``, ``s ← s·n/(n+1) + θ²/(n+1)`` (upstream's arithmetic order)."""
    a, b = n / (n + 1.0), 1.0 / (n + 1.0)
    return (jax.tree.map(lambda m, t: m * a + b * t, mean, theta),
            jax.tree.map(lambda s, t: s * a + b * (t * t), sqmean, theta))


@partial(jax.jit, static_argnames=("cfg",))
def _dual_epoch(keys, carry, z, y, idx, mask, collect, cfg):
    """One epoch of all heads: flatness-regularised sampler steps; SWAG snapshots where ``collect[b]`` (nb,)."""
    def grad_estimator(head, batch):
        return jax.tree.map(jnp.negative, flat_gradient(head, batch, cfg.rho, cfg.lam)[0])

    _, step, position = _sampler(cfg, grad_estimator)
    quirk_step = cfg.reference_quirks and cfg.sampler == "sgadahmc"

    def chain(key, carry, idx, mask):
        def body(carry, inp):
            state, mean, sqmean, n = carry
            k, i, m, c = inp
            batch = (z[i], y[i], m)
            if quirk_step:  # arithmetic restore θ' − ρg/‖g‖ and one gradient for all inner steps, as upstream
                combined, _, delta = flat_gradient(state.position, batch, cfg.rho, cfg.lam)
                perturbed = jax.tree.map(jnp.add, state.position, delta)
                state = state._replace(position=jax.tree.map(jnp.subtract, perturbed, delta))
                state = sgadahmc.integrate(k, state, lambda _: combined, cfg.lr,
                                           num_integration_steps=cfg.num_integration_steps, tau=cfg.tau,
                                           friction=cfg.friction, temperature=cfg.temperature, reference_quirks=True)
            else:
                state = step(k, state, batch)
            new_mean, new_sq = _swag_update(mean, sqmean, position(state), n)
            mean, sqmean = (jax.tree.map(lambda a, b: jnp.where(c, a, b), new, old)
                            for new, old in ((new_mean, mean), (new_sq, sqmean)))
            return (state, mean, sqmean, n + c), None

        return jax.lax.scan(body, carry, (jax.random.split(key, idx.shape[0]), idx, mask, collect))[0]

    return jax.vmap(chain)(keys, carry, idx, mask)


def dual_bayesian(key, heads: HeadParams, z_train, y_train, z_test=None, y_test=None,
                  cfg: PostTrainConfig = PostTrainConfig(), *, progress: bool = False) -> DualBayesianResult:
    """Flatness-regularised sampling from the ``bayesian_train`` heads with diagonal SWAG moments (§4.4).

    Default: per-head snapshot counters, ``mean = θ``, ``sqmean = θ²`` at the start. ``cfg.reference_quirks``:
    one counter shared by all heads in upstream's order (epoch → head → batch) and ``sqmean = θ`` at the start
    (§7.29), plus upstream's SG-AdaHMC and arithmetic parameter restore. Snapshots are taken after the step of
    batch b of epoch ep when ``ep ≥ swa_start`` and ``((ep − swa_start)·nb + b) mod P == 0``."""
    z_train, y_train = jnp.asarray(z_train, jnp.float32), jnp.asarray(y_train, jnp.int32)
    heads = jax.tree.map(jnp.asarray, heads)
    num_heads, n = jax.tree.leaves(heads)[0].shape[0], z_train.shape[0]
    nb = -(-n // cfg.batch_size)
    period = swag_period(cfg.epochs, nb, cfg.swa_start, cfg.swa_n)
    init, _, position = _sampler(cfg, _loglik_grad)
    sq0 = heads if cfg.reference_quirks else jax.tree.map(jnp.square, heads)
    carry = (_burn_in(key, jax.vmap(init)(heads), z_train, y_train, cfg, progress), heads, sq0,
             jnp.zeros((num_heads,), jnp.int32))
    shared = 0  # upstream's one snapshot counter (reference_quirks)

    def run_epoch(carry, ep, bar):
        nonlocal shared
        collect = np.array([ep + 1 > cfg.swa_start and ((ep - cfg.swa_start) * nb + b) % period == 0
                            for b in range(nb)])
        if cfg.reference_quirks:  # head i's pass starts after heads 0..i−1 have used the shared counter
            carry = carry[:3] + (jnp.asarray(shared + np.arange(num_heads) * collect.sum(), jnp.int32),)
            shared += num_heads * int(collect.sum())
        idx, mask, skeys = _epoch_batches(key, ep, num_heads, n, cfg.batch_size, cfg.shuffle)
        carry = _dual_epoch(skeys, carry, z_train, y_train, idx, mask, jnp.asarray(collect), _step_cfg(cfg))
        if z_test is None:
            return carry, {}
        return carry, {"test_accuracy": np.asarray(head_accuracy(position(carry[0]), jnp.asarray(z_test),
                                                                  jnp.asarray(y_test)))}

    result = fit.fit(carry, run_epoch, epochs=cfg.epochs, status=_head_status, progress=progress,
                     description="dual_bayesian")
    carry, history = result.state, [r["test_accuracy"] for r in result.history if "test_accuracy" in r]
    state, mean, sqmean, counts = carry
    accuracy = np.asarray(history).reshape(len(history), num_heads)
    return DualBayesianResult(Posterior(heads, mean, sqmean), position(state), np.asarray(counts), accuracy)
