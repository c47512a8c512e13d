"""SWAG-diagonal over a whole classifier, collected while fine-tuning it with a sharpness-aware gradient: the
posterior of the Bayesian attack (BA, reference.md §3.9; upstream's ``finetune`` routine, §6).

Per batch: ``g = ∇_θ CE`` (train mode), probe ``θ' = θ + ρ·g/(‖g‖ + 1e-20)``, ``g' = ∇_θ CE(θ')``, step SGD
(momentum 0.9, weight decay 5e-4) with ``ĝ = g + (λ/ρ)(g' − g)``; every ``P = ⌊(E − swa_start)·nb / swa_n⌋``
batches ``μ ← n/(n+1)·μ + θ/(n+1)``, ``s ← n/(n+1)·s + θ²/(n+1)``, ``n ← n + 1`` (n from 0).

    model, moments = finetune(model, x_train, y_train, FinetuneConfig(), jax.random.key(0))
    save_swag("swag.npz", moments, dataset="hdm05")

Decisions (docs/decisions.md B25, B26):
* B25 Batch-norm statistics: the returned model carries the fine-tuned statistics (both forwards of a batch run in
  train mode and update them, as upstream); upstream's BA keeps the pre-finetune statistics in its mean model
  (§7.27) — attack with the original model to reproduce it (``BA(Surrogate.from_model(original), moments)``).
* B26 ``E·nb < swa_n`` makes upstream's collection period 0 (ZeroDivisionError); here the period is at least 1
  (collect after every batch). The probe keeps θ itself (upstream subtracts the probe again, a rounding-level
  difference); dropout in the probe forward uses its own key.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from tasar_jax import fit, losses, training
from tasar_jax.data.formats import DataFormatError, atomic_path

FORMAT_VERSION = 1


class SwagMoments(NamedTuple):
    """First and second moments of the ``nnx.Param`` leaves (pytrees shaped like the model's Param state)."""

    mean: nnx.State
    sqmean: nnx.State


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Upstream ``finetune`` defaults (``-ep 20 -lr 0.01``, ``--lam 1e-3``, ``--swa_start 0``, ``--swa_n 300``).

    Attributes:
      rho: sharpness probe radius; lam: weight of the probe gradient (``ĝ = g + (lam/rho)(g' − g)``).
      swa_start: first collecting epoch; swa_n: collections planned over the run.
    """

    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    rho: float = 0.1
    lam: float = 1e-3
    swa_start: int = 0
    swa_n: int = 300
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0 or self.swa_n < 1:
            raise ValueError("epochs, batch_size, learning_rate and swa_n must be positive")

    def period(self, batches_per_epoch: int) -> int:
        return max(1, (self.epochs - self.swa_start) * batches_per_epoch // self.swa_n)


def _global_norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(a)) for a in jax.tree.leaves(tree)))


def make_train_step(graph, config: FinetuneConfig, optimizer):
    """The pure sharpness-aware SGD step ``(params, rest, opt_state, x, y, key) -> (..., loss)``."""

    def loss_fn(params, rest, x, labels, key):
        model = nnx.merge(graph, params, rest, copy=True)
        logits = model(x, rng_key=key)
        return losses.cross_entropy(logits, labels).mean(), nnx.state(model, nnx.Not(nnx.Param))

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(params, rest, opt_state, x, labels, key):
        (loss, rest), g = grad_fn(params, rest, x, labels, key)
        shift = config.rho / (_global_norm(g) + 1e-20)
        probe = jax.tree.map(lambda p, gi: p + shift * gi, params, g)
        (_, rest), g_probe = grad_fn(probe, rest, x, labels, jax.random.fold_in(key, 1))
        g_hat = jax.tree.map(lambda a, b: a + (config.lam / config.rho) * (b - a), g, g_probe)
        updates, opt_state = optimizer.update(g_hat, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss

    return step


@jax.jit
def collect(moments: SwagMoments, params, n):
    """One SWAG collection with ``n`` models collected so far."""
    w = n / (n + 1.0)
    mean = jax.tree.map(lambda m, p: m * w + p / (n + 1.0), moments.mean, params)
    sqmean = jax.tree.map(lambda s, p: s * w + jnp.square(p) / (n + 1.0), moments.sqmean, params)
    return SwagMoments(mean, sqmean)


def finetune(model: nnx.Module, x_train, y_train, config: FinetuneConfig = FinetuneConfig(), key=None, *,
             progress: bool = True) -> tuple[nnx.Module, SwagMoments]:
    """Fine-tunes ``model`` (a copy; train mode inside) and returns the eval-mode fine-tuned model and the SWAG
    moments of its ``nnx.Param`` leaves. ``key`` drives dropout (default: ``key(config.seed)``); the batch order
    comes from ``config.seed`` as in ``training.train``."""
    key = jax.random.key(config.seed) if key is None else key
    x_train, y_train = np.asarray(x_train, np.float32), np.asarray(y_train, np.int32)
    model = nnx.clone(model)
    model.train()
    graph, params, rest = nnx.split(model, nnx.Param, ...)
    optimizer = optax.chain(optax.add_decayed_weights(config.weight_decay),
                            optax.sgd(config.learning_rate, momentum=config.momentum))
    opt_state = optimizer.init(params)
    step = jax.jit(make_train_step(graph, config, optimizer))
    nb = -(-x_train.shape[0] // config.batch_size)
    period = config.period(nb)

    def run_epoch(state, epoch, bar):
        def one(x, y, b):  # one SAM step, then a SWAG collection every ``period`` steps after ``swa_start``
            nonlocal state
            params, rest, opt_state, moments, n = state
            params, rest, opt_state, loss = step(params, rest, opt_state, x, y, jax.random.fold_in(key, epoch * nb + b))
            if epoch + 1 > config.swa_start and ((epoch - config.swa_start) * nb + b) % period == 0:
                moments, n = collect(moments, params, n), n + 1
            state = params, rest, opt_state, moments, n
            return {"loss": loss}

        batches = training.epoch_batches(x_train.shape[0], config.batch_size, config.seed, epoch)
        means = fit.minibatch_pass(one, x_train, y_train, batches, bar)
        return state, {"loss": means["loss"], "collected": state[-1]}

    start = (params, rest, opt_state, SwagMoments(params, jax.tree.map(jnp.square, params)), 0)
    params, rest, _, moments, _ = fit.fit(start, run_epoch, epochs=config.epochs, progress=progress,
                                          description="finetune (SWAG)").state
    model.eval()
    return nnx.merge(nnx.graphdef(model), params, rest), moments


# ---- files -------------------------------------------------------------------------------------------------------


def _flat(state: nnx.State) -> dict[str, np.ndarray]:
    return {"/".join(str(k) for k in path): np.asarray(getattr(v, "value", v))
            for path, v in nnx.to_flat_state(state)}


def save_swag(path, moments: SwagMoments, **meta) -> pathlib.Path:
    """Writes ``moments`` as an npz (``mean/<param path>``, ``sqmean/<param path>``, JSON ``metadata``), atomically."""
    arrays = {f"{group}/{k}": v for group, state in zip(SwagMoments._fields, moments) for k, v in _flat(state).items()}
    meta = {"format_version": FORMAT_VERSION, **meta}
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, metadata=np.asarray(json.dumps(meta)), **arrays)
    return pathlib.Path(path)


def _nested(flat: dict[str, np.ndarray]) -> dict:
    out: dict = {}
    for name, value in flat.items():
        *parents, leaf = (int(k) if k.isdigit() else k for k in name.split("/"))
        node = out
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = jnp.asarray(value)
    return out


def load_swag(path) -> tuple[SwagMoments, dict]:
    """Reads ``save_swag``'s file: ``(moments as nested pure dicts, metadata)``; ``as_param_state`` puts them into
    a model's Param state."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataFormatError(f"{path}: not a readable npz: {err}") from err
    with data:
        if "metadata" not in data.files:
            raise DataFormatError(f"{path}: not a SWAG file (no metadata)")
        meta = json.loads(str(data["metadata"]))
        groups = {g: {k[len(g) + 1:]: data[k] for k in data.files if k.startswith(g + "/")}
                  for g in SwagMoments._fields}
    if set(groups["mean"]) != set(groups["sqmean"]) or not groups["mean"]:
        raise DataFormatError(f"{path}: mean and sqmean entries differ or are empty")
    return SwagMoments(_nested(groups["mean"]), _nested(groups["sqmean"])), meta


def _keyed_like(pure, like, path=()):
    """``pure`` with every key spelled as in ``like``: file names cannot tell a list index 0 from a dict key "0"."""
    if not isinstance(like, dict):
        return pure
    lookup = {str(k): v for k, v in pure.items()} if isinstance(pure, dict) else {}
    missing = [str(k) for k in like if str(k) not in lookup]
    if missing:
        raise DataFormatError(f"SWAG moments lack {'/'.join(map(str, path))}/{{{', '.join(missing)}}} of the model")
    return {k: _keyed_like(lookup[str(k)], v, path + (k,)) for k, v in like.items()}


def as_param_state(template: nnx.State, tree) -> nnx.State:
    """``tree`` (an ``nnx.State`` or a nested pure dict) as a copy of ``template`` (a Param state); shapes checked."""
    pure = tree.to_pure_dict() if isinstance(tree, nnx.State) else tree
    pure = _keyed_like(pure, template.to_pure_dict())
    state = jax.tree.map(lambda a: a, template)
    nnx.replace_by_pure_dict(state, pure)
    for (path, a), b in zip(nnx.to_flat_state(template), jax.tree.leaves(state)):
        if getattr(a, "value", a).shape != b.shape:
            raise DataFormatError(f"SWAG moment {'/'.join(map(str, path))}: shape {b.shape}, model {a.value.shape}")
    return state
