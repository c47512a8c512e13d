"""BEAT / EBMA: post-train Bayesian energy-based adversarial training of appended heads (reference.md §5.2).

The base classifier is frozen in eval mode; K appended heads (``posterior.heads``, ``h + head(h)`` on
``h = ReLU(f(x))``) are sampled by SG-AdaHMC (``posterior.sgadahmc``), heads one after another inside each epoch
as upstream. For head i and a batch (x, y), in one jitted step:

* reference bone lengths of x; ``x_s``: SGLD from ``U(−1, 1)``, 10 steps of
  ``x ← x + 0.05·∇ Σ_b logsumexp F(x_b) + √(2·0.05)·5e-3·ξ``;
* ``x̃``: SGLD from ``x + U(−0.05, 0.05)``, 10 steps ascending ``−(CE(F(x̃), y) + 1e-3·L_m(x, x̃))``, with
  ``L_m`` = MSE of bone lengths to the reference + Σ_{k=1..3} MSE of k-th temporal differences;
* ``loss_i = 0.3·(−(E_i(x) − E_i(x_s))) + 0.1·(CE(f_i(x̃), y) + 1e-3·L_m) + 1·CE(f_i(x), y)``; one SG-AdaHMC
  step (lr 0.1, L 30, τ 2, C 1, T 1e-5) of head i.

The SGLD chains need input gradients through the base (one forward + VJP per step); the loss needs only the
base logits of x, x_s and x̃, computed once per step and shared by the loss and the sampler's inner iterations.
After each head's pass its test accuracy is measured on precomputed test logits; a head is kept when it strictly
improves (upstream's ``<i>_minValLossAppendedModel_adtrained.pth``).

Decisions (intended by default; upstream behind a switch):
* §7.33: upstream's SGLD for x_s and x̃ uses F = the sum of all heads, and its energy term uses the mean of all
  logits ``E(x) = mean f_i(x)``. Default: F = f_i (head i samples its own model) and ``E(x) = logsumexp f_i(x)``
  averaged over the batch (the JEM energy the method describes). ``reference_quirks=True`` reproduces upstream.
* SG-AdaHMC: ``sampler_quirks`` (default: same as ``reference_quirks``) selects upstream's re-initialised,
  gradient-reusing step (§7.31) or the intended scale-adapted SGHMC (``posterior.sgadahmc``).
* The replay buffer is never filled upstream, so x_s always starts from ``U(−1, 1)``; no buffer here, no switch.
* Upstream starts from fresh heads (and, following its README, a random base); here the base is the given trained
  model and the heads are fresh (PyTorch ``Linear`` init) unless given. Two-stream ensembles are not supported
  (upstream's ensemble wrapper has no optimisers either): post-train each stream.
* The x̃ chain descends the CE (it samples ``p(x̃ | x, y)``, confidently classified points near x), as upstream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tasar_jax import fit, losses, training
from tasar_jax.attacks import base, common
from tasar_jax.models import streams
from tasar_jax.posterior import io, posttrain, sgadahmc
from tasar_jax.posterior.heads import HeadParams, Posterior, appended_logits, summed_appended_logits

__all__ = ["BEATConfig", "BEATResult", "motion_loss", "energy", "sgld", "head_loss", "beat_train",
           "defended_surrogate", "save_heads"]

LENGTH_FLOOR = 1e-10  # upstream adds it under the square root of every bone length


@dataclasses.dataclass(frozen=True)
class BEATConfig:
    """Upstream defaults (README ``-ep 80 -lr 0.1 -bs 64``, argparse EBMA flags, SGAdaHMC config of §4.1)."""

    epochs: int = 80
    batch_size: int = 64
    lr: float = 0.1
    num_integration_steps: int = 30
    tau: float = 2.0
    friction: float = 1.0
    temperature: float = 1e-5
    sgld_steps: int = 10
    sgld_lr: float = 0.05
    sgld_std: float = 5e-3
    perturb: float = 0.05
    x_weight: float = 0.3
    x_tilde_weight: float = 0.1
    clf_weight: float = 1.0
    drv_weight: float = 1e-3
    drv_order: int = 3
    reference_quirks: bool = False
    sampler_quirks: bool | None = None
    seed: int = 0

    @property
    def sgadahmc_quirks(self) -> bool:
        return self.reference_quirks if self.sampler_quirks is None else self.sampler_quirks


class BEATResult(NamedTuple):
    heads: HeadParams  # best-test-accuracy head per chain (leading axis K)
    best_accuracy: np.ndarray  # (K,)
    final_heads: HeadParams  # the chains' last positions
    history: list  # one record per (epoch, head): losses and test accuracy


def motion_loss(x, x_tilde, reference_lengths, parents, order: int = 3):
    """``L_m``: MSE of x̃'s bone lengths to the reference + Σ_{k=1..order} MSE of k-th temporal differences."""
    loss = jnp.mean(jnp.square(streams.bone_lengths(x_tilde, parents, floor=LENGTH_FLOOR) - reference_lengths))
    for _ in range(order):
        x, x_tilde = jnp.diff(x, axis=2), jnp.diff(x_tilde, axis=2)
        loss = loss + jnp.mean(jnp.square(x - x_tilde))
    return loss


def energy(logits, reference_quirks: bool = False):
    """The ``log p(x)`` surrogate of a batch: mean logsumexp (intended) or upstream's mean of all logits."""
    return jnp.mean(logits) if reference_quirks else jnp.mean(jax.nn.logsumexp(logits, axis=-1))


def sgld(key, x0, grad_log_density: Callable, steps: int, lr: float, std: float):
    """``steps`` of ``x ← x + lr·∇log p(x) + √(2·lr)·std·ξ`` (upstream's SGLD; no gradient flows out)."""
    def body(x, k):
        x = x + lr * grad_log_density(x) + np.sqrt(2 * lr) * std * jax.random.normal(k, x.shape, x.dtype)
        return x, None

    x, _ = jax.lax.scan(body, x0, jax.random.split(key, steps))
    return jax.lax.stop_gradient(x)


def _ce(logits, labels):
    return losses.cross_entropy(logits, labels).mean()


def head_loss(head: HeadParams, z, z_samples, z_tilde, labels, motion, cfg: BEATConfig):
    """Head i's BEAT loss on the frozen base logits of x, x_s and x̃; returns (loss, parts)."""
    logits = appended_logits(head, z)
    energy_gap = energy(logits, cfg.reference_quirks) - energy(appended_logits(head, z_samples), cfg.reference_quirks)
    ce_tilde = _ce(appended_logits(head, z_tilde), labels)
    ce = _ce(logits, labels)
    loss = cfg.x_weight * -energy_gap + cfg.x_tilde_weight * (ce_tilde + cfg.drv_weight * motion) + cfg.clf_weight * ce
    return loss, {"loss": loss, "energy_gap": energy_gap, "ce_tilde": ce_tilde, "motion": motion, "ce": ce}


def _pick(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


@partial(jax.jit, static_argnames=("apply_fn", "cfg", "parents"))
def _step(states, i, key, x, labels, base_params, apply_fn, cfg: BEATConfig, parents):
    """One BEAT step of head ``i`` (traced index into the stacked sampler states)."""
    heads_all = states.position

    def sampling_logits(v):
        z = apply_fn(base_params, v)
        return (summed_appended_logits((heads_all,), (z,)) if cfg.reference_quirks
                else appended_logits(_pick(heads_all, i), z))

    key_s0, key_s, key_t0, key_t, key_h = jax.random.split(key, 5)
    reference = streams.bone_lengths(x, parents, floor=LENGTH_FLOOR)
    lse = lambda v: jnp.sum(jax.nn.logsumexp(sampling_logits(v), axis=-1))  # noqa: E731
    x_samples = sgld(key_s, jax.random.uniform(key_s0, x.shape, x.dtype, -1.0, 1.0), jax.grad(lse), cfg.sgld_steps,
                     cfg.sgld_lr, cfg.sgld_std)
    log_cond = lambda v: -(_ce(sampling_logits(v), labels)  # noqa: E731
                           + cfg.drv_weight * motion_loss(x, v, reference, parents, cfg.drv_order))
    start = x + jax.random.uniform(key_t0, x.shape, x.dtype, -cfg.perturb, cfg.perturb)
    x_tilde = sgld(key_t, start, jax.grad(log_cond), cfg.sgld_steps, cfg.sgld_lr, cfg.sgld_std)
    z, z_samples, z_tilde = (apply_fn(base_params, v) for v in (x, x_samples, x_tilde))
    motion = motion_loss(x, x_tilde, reference, parents, cfg.drv_order)
    batch = (z, z_samples, z_tilde, labels, motion)

    def grad_log_density(head, minibatch):
        return jax.tree.map(jnp.negative, jax.grad(lambda h: head_loss(h, *minibatch, cfg)[0])(head))

    kernel = sgadahmc.build_kernel(cfg.num_integration_steps, cfg.tau, cfg.friction, cfg.sgadahmc_quirks)
    new_state = kernel(key_h, _pick(states, i), grad_log_density, batch, cfg.lr, cfg.temperature)
    states = jax.tree.map(lambda all_, one: all_.at[i].set(one), states, new_state)
    _, parts = head_loss(_pick(heads_all, i), *batch, cfg)
    return states, parts


def beat_train(model, train_data, test_data, config: BEATConfig = BEATConfig(), *, parents, heads=None,
               num_heads: int = 5, on_improve: Callable[[int, HeadParams, dict], None] | None = None,
               progress: bool = True) -> BEATResult:
    """BEAT post-training of appended heads on the frozen ``model`` (any single-stream classifier).

    Args:
      model: the trained base (NNX, used in eval mode and never changed).
      train_data, test_data: ``(x, labels)`` numpy pairs in the common layout.
      parents: the dataset's joint parents (``layouts.get_dataset(name).parents``) for the bone lengths.
      heads: initial stacked heads (default: ``num_heads`` fresh heads, upstream's argparse default 5).
      on_improve: ``(i, best_heads, record)`` whenever head i's test accuracy strictly improves.

    Returns:
      ``BEATResult`` with the best heads, their accuracies, the last positions and per-(epoch, head) records.
    """
    if streams.num_streams(model) != 1:
        raise ValueError("BEAT needs a single-stream base; post-train the joint and bone streams separately")
    cfg = config
    x_train, y_train = np.asarray(train_data[0], np.float32), np.asarray(train_data[1], np.int32)
    x_test, y_test = np.asarray(test_data[0], np.float32), np.asarray(test_data[1], np.int32)
    apply_fn, base_params = common.surrogate_from_model(model, streams=False)
    (z_test,) = (jnp.asarray(z) for z in posttrain.surrogate_logits(model, x_test))
    key = jax.random.key(cfg.seed)
    if heads is None:
        heads = posttrain.init_heads(jax.random.fold_in(key, 0x68656164), num_heads, z_test.shape[-1])
    heads = jax.tree.map(jnp.asarray, heads)
    num_heads = jax.tree.leaves(heads)[0].shape[0]
    parents = tuple(int(p) for p in parents)

    def run_epoch(states, epoch, bar):  # head after head, as upstream
        per_head = []
        for i in range(num_heads):
            pass_key = jax.random.fold_in(jax.random.fold_in(key, epoch), i)

            def one(x, y, b):
                nonlocal states
                states, parts = _step(states, jnp.int32(i), jax.random.fold_in(pass_key, b), x, y, base_params,
                                      apply_fn, cfg, parents)
                return parts

            batches = training.epoch_batches(x_train.shape[0], cfg.batch_size, cfg.seed, epoch * num_heads + i)
            per_head.append(fit.minibatch_pass(one, x_train, y_train, batches, bar, counts=()))
        return states, {"heads": per_head}

    def evaluate(states):  # head by head (one compiled accuracy for every head)
        acc = np.array([float(posttrain.head_accuracy(jax.tree.map(lambda a: a[i:i + 1], states.position), z_test,
                                                      y_test)[0]) for i in range(num_heads)])
        return acc, {"test_accuracy": acc}

    def head_record(record, i):
        return {"epoch": record["epoch"], "head": i, "test_accuracy": float(record["test_accuracy"][i]),
                **record["heads"][i]}

    def improved_heads(best, record, improved):
        for i in np.flatnonzero(improved):
            on_improve(int(i), best, head_record(record, int(i)))

    result = fit.fit(jax.vmap(sgadahmc.init)(heads), run_epoch, epochs=cfg.epochs, evaluate=evaluate,
                     snapshot=lambda states: states.position, best=heads,
                     best_score=np.zeros(num_heads), on_improve=None if on_improve is None else improved_heads,
                     status=lambda r: "test " + " ".join(f"{a:.1%}" for a in r["test_accuracy"]),
                     progress=progress, description="BEAT")
    history = [head_record(record, i) for record in result.history for i in range(num_heads)]
    return BEATResult(result.best, result.best_score, result.state.position, history)


class DefendedModel(nnx.Module):
    """A BEAT-defended classifier as one NNX module: the frozen base and its heads, ``Σ_k appended_k(base(x))``
    (upstream ``modelEval``); usable wherever a classifier is (evaluation, attacks)."""

    def __init__(self, base_model: nnx.Module, heads: HeadParams):
        self.base_model = base_model
        self.config = base_model.config
        self.w1, self.b1, self.w2, self.b2 = (nnx.Variable(jnp.asarray(leaf)) for leaf in heads)

    def __call__(self, x, rng_key=None):
        heads = HeadParams(self.w1.value, self.b1.value, self.w2.value, self.b2.value)
        return summed_appended_logits((heads,), (self.base_model(x),))


def defended_surrogate(model, heads: HeadParams) -> base.Surrogate:
    """The BEAT-defended classifier (upstream ``modelEval``: the sum of the appended models) as a surrogate."""
    apply_fn, state = common.surrogate_from_model(model, streams=False)
    return base.Surrogate(_SummedHeads(apply_fn), (state, heads))


@dataclasses.dataclass(frozen=True)
class _SummedHeads:
    """``apply_fn((base_params, heads), x) = Σ_k appended_k(f(x))`` (hashable: a static jit argument)."""

    base_apply: Callable

    def __call__(self, params, x):
        base_params, heads = params
        return summed_appended_logits((heads,), (self.base_apply(base_params, x),))


def save_heads(path, heads: HeadParams, **metadata):
    """Writes BEAT heads in the posterior npz format (``mean = heads``, ``sqmean = heads²``: zero variance)."""
    heads = jax.tree.map(np.asarray, heads)
    posterior = Posterior(heads, heads, jax.tree.map(np.square, heads))
    return io.save_posterior(path, (posterior,), defence="beat", **metadata)
