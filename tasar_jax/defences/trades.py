"""TRADES adversarial training (Zhang et al. 2019) for any registered classifier (reference.md §5.1, §7.32).

Per batch, in one jitted step: the model in **eval** mode runs the inner attack, a ``lax.scan`` of ``steps``
ascent steps ``x' ← Π_ε(x' + α·sign ∇ KL(f(x) ‖ f(x')))`` from ``x + U(−ε, ε)`` (upstream: ε = 0.01, α = 1e-4,
20 steps); then in **train** mode ``loss = CE(f(x), y) + β·KL(f(x) ‖ f(x'))/B`` (β = 6, KL summed over batch and
classes as torch ``KLDivLoss(size_average=False)``, gradients through both arguments), and one optimiser step of
the architecture's recipe (``training.make_optimizer``). Clean and robust test accuracy (robust: I-FGSM from
``tasar_jax.attacks`` on the current weights) are measured every ``eval_every`` epochs and after the last one.

Decisions (quirk: intended by default, upstream behind a switch):
* Upstream clamps every inner iterate to [0, 1] (§7.32), which destroys skeletons with negative coordinates;
  here there is no clamp. ``upstream_clamp=True`` reproduces it.
* Upstream's train-mode loss runs four forwards (``f(x')`` twice, ``f(x)`` twice; one result unused), so BatchNorm
  running statistics move four times per step and dropout masks differ between the CE logits and the KL target.
  Here ``f(x)`` and ``f(x')`` run once each in train mode (two BN updates, one dropout mask per input); no switch
  (the gradient of the loss is the same in eval-mode models and differs only by dropout noise otherwise).
* Upstream validates with SMART on a separate, stale classifier copy (§7.32) at epochs 0, 5, 10, … (never after
  the last); here I-FGSM (``AttackConfig`` defaults: α = 0.01, ε = the training ε) attacks the weights being
  trained, after epochs ``eval_every``, ``2·eval_every``, … and the last.
* The natural term is plain cross-entropy for every architecture (upstream's ``F.cross_entropy``), also where
  the recipe trains with label smoothing (SkateFormer); the optimiser and learning-rate schedule are the recipe's.
* Upstream keeps three files (best train loss, best clean, best robust accuracy). ``on_improve`` is called when
  the ``select`` metric improves: ``robust`` (default: robust accuracy, ties broken by clean accuracy) or
  ``clean``; ``trades_train`` returns the selected weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tasar_jax import fit, losses, training
from tasar_jax.attacks import base, fgsm

__all__ = ["TRADESConfig", "trades_loss", "kl_sum", "inner_attack", "robust_accuracy", "trades_train"]


@dataclasses.dataclass(frozen=True)
class TRADESConfig:
    """TRADES hyper-parameters (upstream defaults) and the robust-evaluation settings.

    Attributes:
      beta: weight of the KL term (6). epsilon: L∞ radius of the inner attack (``-cp``, 0.01).
      step_size: inner sign-step (1e-4, hard-coded upstream). steps: inner iterations (``--attackep``, 20).
      upstream_clamp: clamp inner iterates to [0, 1] as upstream (§7.32).
      eval_every: epochs between robust evaluations (upstream 5). eval_iterations: I-FGSM iterations.
      eval_epsilon / eval_step_size: I-FGSM ε (None: ``epsilon``) and step α (upstream attack default 0.01).
      select: ``robust`` or ``clean``: the accuracy that picks the returned weights and triggers ``on_improve``.
    """

    beta: float = 6.0
    epsilon: float = 0.01
    step_size: float = 1e-4
    steps: int = 20
    upstream_clamp: bool = False
    eval_every: int = 5
    eval_iterations: int = 20
    eval_epsilon: float | None = None
    eval_step_size: float = 0.01
    select: str = "robust"

    def __post_init__(self):
        if self.select not in ("robust", "clean"):
            raise ValueError(f"select must be robust or clean, got {self.select!r}")
        if self.epsilon <= 0 or self.steps < 0 or self.eval_every < 1:
            raise ValueError("epsilon must be positive, steps ≥ 0 and eval_every ≥ 1")


def kl_sum(logits_natural, logits_adv):
    """torch ``KLDivLoss(size_average=False)(log_softmax(adv), softmax(nat))``: ``Σ p_nat (log p_nat − log p_adv)``."""
    logp_nat = jax.nn.log_softmax(logits_natural, axis=-1)
    logp_adv = jax.nn.log_softmax(logits_adv, axis=-1)
    return jnp.sum(jnp.exp(logp_nat) * (logp_nat - logp_adv))


def inner_attack(apply_eval: Callable, x, key, cfg: TRADESConfig):
    """TRADES' KL sign-ascent from a uniform start in the ε-ball (``apply_eval(x) → logits``, eval mode)."""
    logits_nat = jax.lax.stop_gradient(apply_eval(x))

    def clamp(v):
        return jnp.clip(v, 0.0, 1.0) if cfg.upstream_clamp else v

    def body(x_adv, _):
        grad = jax.grad(lambda v: kl_sum(logits_nat, apply_eval(v)))(x_adv)
        x_adv = x_adv + cfg.step_size * jnp.sign(grad)
        return clamp(jnp.clip(x_adv, x - cfg.epsilon, x + cfg.epsilon)), None

    start = clamp(x + jax.random.uniform(key, x.shape, x.dtype, -cfg.epsilon, cfg.epsilon))
    x_adv, _ = jax.lax.scan(body, start, None, length=cfg.steps)
    return jax.lax.stop_gradient(x_adv)


def trades_loss(cfg: TRADESConfig) -> Callable:
    """The TRADES objective for ``training.Trainer``: ``CE(f(x), y) + β·KL(f(x) ‖ f(x'))/N`` with x' the inner
    attack on the eval-mode model at the step's starting weights (held constant). Plain CE, as upstream (no label
    smoothing)."""

    def loss(forward, x, labels, key, eval_forward):
        key_start, key_model = jax.random.split(key)
        x_adv = inner_attack(eval_forward, x, key_start, cfg)
        logits = forward(x, jax.random.fold_in(key_model, 0))
        logits_adv = forward(x_adv, jax.random.fold_in(key_model, 1))
        robust = kl_sum(logits, logits_adv) / x.shape[0]
        return losses.cross_entropy(logits, labels).mean() + cfg.beta * robust, logits

    return loss


def robust_accuracy(surrogate: base.Surrogate, x: np.ndarray, labels: np.ndarray, *, epsilon: float,
                    iterations: int, step_size: float = 0.01, batch_size: int = 256, seed: int = 0) -> dict:
    """Clean and I-FGSM robust accuracy of ``surrogate`` on ``(x, labels)`` (``base.run_in_batches``: fixed-size
    padded chunks over the devices).

    Clean accuracy comes from the attack's fool flags on the clean input. Robust accuracy counts every sample
    (clean-misclassified ones too), as upstream's TRADES validation does.
    """
    if iterations < 1:
        raise ValueError("the robust evaluation needs at least one attack iteration")
    attack = fgsm.IFGSM(surrogate, epsilon=epsilon, iterations=iterations, step_size=step_size)
    n = x.shape[0]
    result = base.run_in_batches(attack, jax.random.key(seed), x, labels, max(1, min(batch_size, n)))
    clean = round((1.0 - float(result.fool_rate_per_iteration[0])) * n) / n  # fool flags of the clean input
    return {"clean_accuracy": clean, "robust_accuracy": float(np.mean(result.predictions == labels))}


def trades_train(model: nnx.Module, train_data, test_data, train_config: training.TrainConfig,
                 trades_config: TRADESConfig = TRADESConfig(), *,
                 on_improve: Callable[[nnx.Module, dict], None] | None = None, progress: bool = True,
                 description: str = "TRADES") -> tuple[nnx.Module, list[dict]]:
    """TRADES-trains ``model`` and returns ``(selected_model, history)`` (cf. ``training.train``).

    Batches, shuffling, keys and the learning-rate schedule are ``training.train``'s. Every record has the epoch,
    loss, train accuracy, learning rate and, on evaluation epochs, ``test_accuracy`` and ``robust_accuracy``.
    ``on_improve(model, record)`` is called when ``trades_config.select`` improves (e.g. to write a checkpoint).
    """
    x_train, y_train = (np.asarray(a) for a in train_data)
    x_test, y_test = (np.asarray(a) for a in test_data)
    cfg = trades_config
    steps_per_epoch = -(-x_train.shape[0] // train_config.batch_size)
    trainer = training.Trainer(model, train_config, steps_per_epoch, loss=trades_loss(cfg))
    graph = trainer.eval_graph
    apply_fn = lambda state, x: nnx.merge(graph, *state)(x)  # noqa: E731  (one function: one compilation)

    def evaluate(t: training.Trainer):
        acc = robust_accuracy(base.Surrogate(apply_fn, (t.params, t.rest)), x_test, y_test,
                              epsilon=cfg.eval_epsilon or cfg.epsilon, iterations=cfg.eval_iterations,
                              step_size=cfg.eval_step_size, batch_size=train_config.eval_batch_size,
                              seed=train_config.seed)
        score = (acc["robust_accuracy"], acc["clean_accuracy"]) if cfg.select == "robust" else (acc["clean_accuracy"],)
        return score, {"test_accuracy": acc["clean_accuracy"], "robust_accuracy": acc["robust_accuracy"]}

    result = fit.fit(trainer, training.epoch_runner(train_config, x_train, y_train, steps_per_epoch),
                     epochs=train_config.epochs, evaluate=evaluate, every=cfg.eval_every,
                     snapshot=training.Trainer.weights,
                     on_improve=None if on_improve is None else lambda best, record, _: on_improve(
                         trainer.model(), record),
                     progress=progress, description=description)
    return nnx.merge(trainer.eval_graph, *result.best), result.history
