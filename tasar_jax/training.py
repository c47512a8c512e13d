"""Supervised training, evaluation and prediction of the surrogate classifiers.

The recipe is upstream's ``train`` routine (reference.md §2.0, ST-GCN row): SGD with momentum 0.9, Nesterov,
weight decay 1e-4 on every parameter, learning rate 0.1 × 0.1 at epochs 10 and 40, batch 64, cross-entropy,
shuffled batches with the last partial batch kept, test accuracy after every epoch and the best-test-accuracy
weights kept. The step functions are pure: the NNX model is split into a graph definition and state once, and
the jitted step maps state to state. Shuffling and dropout keys derive from one seed, so a run is reproducible.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from tasar_jax import fit, losses, prediction
from tasar_jax.data import formats
from tasar_jax.prediction import predict  # noqa: F401  (training.predict: the one model-to-logits path)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (defaults: upstream ST-GCN recipe, 80 epochs as in the upstream README).

    Per-architecture upstream recipes are in ``tasar_jax.recipes``.

    Attributes:
      optimizer: ``sgd`` (torch SGD with momentum, Nesterov, coupled weight decay) or ``adamw`` (torch AdamW,
        decoupled weight decay).
      schedule: ``step`` (× ``decay_factor`` at each epoch milestone, after an optional linear warm-up of
        ``warmup_epochs`` epochs: ``lr·(e+1)/W`` in epoch e < W, upstream CTR-GCN / STTFormer) or ``cosine``
        (timm ``CosineLRScheduler`` stepped per batch: linear warm-up from ``warmup_init_lr`` over
        ``warmup_epochs`` epochs, then cosine from ``learning_rate`` to ``min_lr`` over all steps; SkateFormer).
      label_smoothing: cross-entropy label smoothing (timm ``LabelSmoothingCrossEntropy``; SkateFormer 0.1).
    """

    epochs: int = 80
    batch_size: int = 64
    learning_rate: float = 0.1
    milestones: tuple[int, ...] = (10, 40)
    decay_factor: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    optimizer: str = "sgd"
    schedule: str = "step"
    warmup_epochs: int = 0
    warmup_init_lr: float = 1e-7
    min_lr: float = 1e-5
    label_smoothing: float = 0.0
    eval_batch_size: int = 256
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be sgd or adamw, got {self.optimizer!r}")
        if self.schedule not in ("step", "cosine"):
            raise ValueError(f"schedule must be step or cosine, got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs, batch_size and learning_rate must be positive")


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int) -> Callable:
    """The learning rate as a function of the optimizer step (jnp-traceable; also callable with ints)."""
    base = config.learning_rate

    def step_schedule(step):
        epoch = jnp.asarray(step) // steps_per_epoch
        passed = sum(jnp.where(epoch >= m, 1.0, 0.0) for m in config.milestones)
        decayed = base * config.decay_factor ** passed
        if config.warmup_epochs <= 0:
            return decayed
        return jnp.where(epoch < config.warmup_epochs, base * (epoch + 1) / config.warmup_epochs, decayed)

    def cosine_schedule(step):
        total, warmup = config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch
        step = jnp.asarray(step)
        cosine = config.min_lr + 0.5 * (base - config.min_lr) * (1 + jnp.cos(jnp.pi * step / total))
        if warmup <= 0:
            return cosine
        return jnp.where(step < warmup, config.warmup_init_lr + step * (base - config.warmup_init_lr) / warmup, cosine)

    return step_schedule if config.schedule == "step" else cosine_schedule


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """torch ``SGD(lr, momentum, nesterov, weight_decay)`` or ``AdamW(lr, weight_decay)`` with the schedule.

    torch SGD adds ``weight_decay · θ`` to the gradient before momentum and applies the learning rate after it,
    which is exactly ``add_decayed_weights`` followed by ``sgd`` here; torch AdamW's ``θ ← θ(1 − lr·wd)`` then the
    Adam step equals optax ``adamw`` (β = 0.9, 0.999, ε = 1e-8 in both).
    """
    schedule = learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "adamw":
        return optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=config.weight_decay)
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay),
        optax.sgd(schedule, momentum=config.momentum, nesterov=config.nesterov),
    )


def classification_loss(label_smoothing: float = 0.0) -> Callable:
    """The plain objective: cross-entropy of the train-mode logits (``Trainer``'s default)."""

    def loss(forward, x, labels, key, eval_forward):
        logits = forward(x, key)
        return losses.cross_entropy(logits, labels, label_smoothing).mean(), logits

    return loss


class Trainer:
    """Holds the split model and the jitted train and predict steps for one architecture instance.

    ``loss(forward, x, labels, key, eval_forward) -> (loss, logits)`` is the objective (default:
    ``classification_loss``): ``forward(x, key)`` runs the train-mode model on the parameters being
    differentiated, ``eval_forward(x)`` the eval-mode model at the step's starting parameters, held constant (what
    TRADES attacks). The optimiser, schedule, state and prediction are the same for every objective.
    """

    def __init__(self, model: nnx.Module, config: TrainConfig, steps_per_epoch: int, loss: Callable | None = None):
        self.config = config
        self.loss = loss or classification_loss(config.label_smoothing)
        self.optimizer = make_optimizer(config, steps_per_epoch)
        model.train()
        self.train_graph, self.params, self.rest = nnx.split(model, nnx.Param, ...)
        model.eval()
        self.eval_graph = nnx.graphdef(model)
        self.opt_state = self.optimizer.init(self.params)
        self._train_step = jax.jit(self._make_train_step(), donate_argnums=(0, 1, 2))
        self._predict = jax.jit(self._make_predict())

    def _make_train_step(self):
        graph, eval_graph, optimizer, objective = self.train_graph, self.eval_graph, self.optimizer, self.loss

        def train_step(params, rest, opt_state, x, labels, rng_key):
            def eval_forward(v):
                return nnx.merge(eval_graph, params, rest, copy=True)(v)

            def loss_fn(params):
                model = nnx.merge(graph, params, rest, copy=True)
                loss, logits = objective(lambda v, key: model(v, rng_key=key), x, labels, rng_key, eval_forward)
                return loss, (logits, nnx.state(model, nnx.Not(nnx.Param)))

            (loss, (logits, new_rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            correct = jnp.sum(jnp.argmax(logits, -1) == labels)
            return params, new_rest, opt_state, loss, correct

        return train_step

    def _make_predict(self):
        graph = self.eval_graph

        def forward(params, rest, x):
            return nnx.merge(graph, params, rest)(x)

        return forward

    def train_step(self, x, labels, rng_key):
        self.params, self.rest, self.opt_state, loss, correct = self._train_step(
            self.params, self.rest, self.opt_state, x, labels, rng_key)
        return loss, correct

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Eval-mode logits (N, K) for x (N, 3, T, V, M), in padded fixed-size batches (one compilation)."""
        return prediction.chunked(self._predict, (self.params, self.rest), x,
                                  batch_size or self.config.eval_batch_size)

    def weights(self):
        """A copy of the current ``(params, rest)`` (the next step donates the originals)."""
        return jax.tree.map(lambda a: a.copy(), (self.params, self.rest))

    def model(self) -> nnx.Module:
        """The current weights as an eval-mode NNX model."""
        return nnx.merge(self.eval_graph, self.params, self.rest)


def _is_key(a) -> bool:
    return jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def save_progress(done: fit.Fit, path) -> None:
    """Writes a ``fit.Fit`` of a ``Trainer`` (after an epoch) atomically to ``path`` (``.npz``): the weights,
    optimiser state, selected weights, best score, history and the recipe."""
    trainer = done.state
    trees = {"current": (trainer.params, trainer.rest, trainer.opt_state), "best": done.best}
    arrays = {f"{name}/{i}": np.asarray(jax.random.key_data(a) if _is_key(a) else a)
              for name, tree in trees.items() for i, a in enumerate(jax.tree.leaves(tree))}
    text = json.dumps({"best_score": done.best_score, "history": done.history, "config": repr(trainer.config)})
    with formats.atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, progress=np.array(text), **arrays)


def saved_epochs(path) -> int:
    """How many epochs the ``save_progress`` file at ``path`` holds (0 if there is none)."""
    path = pathlib.Path(path)
    if not path.exists():
        return 0
    with np.load(path, allow_pickle=False) as f:
        return len(json.loads(str(f["progress"]))["history"])


def load_progress(trainer: Trainer, path) -> fit.Fit | None:
    """The ``fit.Fit`` written by ``save_progress``, with ``trainer``'s state restored from it; ``None`` if there
    is no file. A file of another recipe or model is an error naming it."""
    path = pathlib.Path(path)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as f:
        saved = json.loads(str(f["progress"]))
        if saved["config"] != repr(trainer.config):
            raise ValueError(f"{path} was saved by a run with another recipe ({saved['config']}); remove it")

        def load(name, like):
            leaves, treedef = jax.tree.flatten(like)
            names = [f"{name}/{i}" for i in range(len(leaves))]
            if sum(k.startswith(f"{name}/") for k in f.files) != len(leaves) or any(
                    f[n].shape != jax.random.key_data(a).shape if _is_key(a) else f[n].shape != a.shape
                    for n, a in zip(names, leaves)):
                raise ValueError(f"{path} holds another model's training state; remove it")
            return jax.tree.unflatten(treedef, [jax.random.wrap_key_data(f[n]) if _is_key(a) else jnp.asarray(f[n])
                                                for n, a in zip(names, leaves)])

        trainer.params, trainer.rest, trainer.opt_state = load("current", (trainer.params, trainer.rest,
                                                                           trainer.opt_state))
        best = load("best", (trainer.params, trainer.rest))
    return fit.Fit(trainer, best, saved["best_score"], saved["history"])


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose argmax equals the label."""
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int):
    """Shuffled index batches for one epoch (last partial batch kept, like a torch DataLoader)."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def train(model: nnx.Module, train_data, test_data, config: TrainConfig, *,
          on_improve: Callable[[nnx.Module, dict], None] | None = None, progress: bool = True,
          description: str = "train", resume_file=None) -> tuple[nnx.Module, list[dict]]:
    """Trains ``model`` and returns ``(best_model, history)``; ``best_model`` has the best test accuracy.

    Args:
      model: an NNX classifier taking x (N, 3, T, V, M) and ``rng_key``.
      train_data, test_data: ``(x, labels)`` numpy pairs in the common layout.
      config: the training recipe.
      on_improve: called with ``(model, record)`` whenever the test accuracy strictly improves (upstream keeps
        ``minValLossModel.pth`` the same way), e.g. to write a checkpoint.
      progress: show rich progress bars with loss and accuracy.
      resume_file: an ``.npz`` written after every epoch (weights, optimiser state, the selected weights and the
        history); if it exists, training continues from it and ends as the uninterrupted run would.

    Returns:
      The eval-mode model with the best test accuracy, and one record per epoch (loss, accuracies, lr).
    """
    x_train, y_train = (np.asarray(a) for a in train_data)
    x_test, y_test = (np.asarray(a) for a in test_data)
    steps_per_epoch = -(-x_train.shape[0] // config.batch_size)
    trainer = Trainer(model, config, steps_per_epoch)
    resume, after_epoch = None, None
    if resume_file is not None:
        resume = load_progress(trainer, resume_file)
        after_epoch = partial(save_progress, path=resume_file)
    result = fit.fit(trainer, epoch_runner(config, x_train, y_train, steps_per_epoch), epochs=config.epochs,
                     evaluate=lambda t: _test_accuracy(t, x_test, y_test), snapshot=Trainer.weights,
                     on_improve=None if on_improve is None else lambda best, record, _: on_improve(
                         trainer.model(), record),
                     resume=resume, after_epoch=after_epoch, progress=progress, description=description)
    return nnx.merge(trainer.eval_graph, *result.best), result.history


def epoch_runner(config: TrainConfig, x_train: np.ndarray, y_train: np.ndarray, steps_per_epoch: int) -> Callable:
    """``fit``'s epoch for a ``Trainer``: one shuffled minibatch pass; keys ``fold_in(key(seed), global step)``."""
    schedule = learning_rate_schedule(config, steps_per_epoch)
    base_key = jax.random.key(config.seed)

    def run_epoch(trainer, epoch, bar):
        batches = epoch_batches(x_train.shape[0], config.batch_size, config.seed, epoch)

        def step(x, y, b):
            loss, correct = trainer.train_step(x, y, jax.random.fold_in(base_key, epoch * steps_per_epoch + b))
            return {"loss": loss, "correct": correct}

        means = fit.minibatch_pass(step, x_train, y_train, batches, bar)
        return trainer, {"loss": means["loss"], "train_accuracy": means["correct"],
                         "learning_rate": float(schedule(epoch * steps_per_epoch))}

    return run_epoch


def _test_accuracy(trainer: Trainer, x_test, y_test):
    acc = accuracy(trainer.predict(x_test), y_test)
    return acc, {"test_accuracy": acc}

