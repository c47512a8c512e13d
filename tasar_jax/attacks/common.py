"""Building blocks shared by the attacks: direction normalisation, ε-ball projection, fool bookkeeping,
surrogates as pure functions, pass counting, and the adversarial-set npz format.

Attacks see the surrogate as a pure ``apply_fn(params, x)`` returning logits ``z`` (N, K) — or the per-stream tuple
``(z,)`` / ``(z_J, z_B)`` that TASAR's heads need — so that one ``jax.vjp`` per iteration serves every loss that
depends on x only through z (reference.md §8).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tasar_jax.data.formats import DataFormatError, atomic_path
from tasar_jax.models.streams import stream_logits

# keeps a zero direction at zero instead of 0/0 = NaN; far below any float32 gradient scale that matters
TINY = 1e-30


def mean_abs_normalise(g):
    """``g / mean|g|`` per sample (over all axes but the first): upstream's L1-style direction normalisation."""
    axes = tuple(range(1, g.ndim))
    return g / (jnp.mean(jnp.abs(g), axis=axes, keepdims=True) + TINY)


def project_linf(x, x0, epsilon):
    """``x0 + clip(x − x0, −ε, ε)``: the element-wise L∞ ball around the clean batch (no data-range clip)."""
    return x0 + jnp.clip(x - x0, -epsilon, epsilon)


def fooled(predictions, labels, targeted: bool):
    """Per-sample success: prediction ≠ label (untargeted) or = target (targeted)."""
    return predictions == labels if targeted else predictions != labels


def group_all(flags, group_size: int | None):
    """True for every sample whose group (consecutive batch positions, ``group_size`` each) is all True."""
    if group_size is None:
        return jnp.zeros_like(flags)
    ids = jnp.arange(flags.shape[0]) // group_size
    per_group = jax.ops.segment_min(flags.astype(jnp.int32), ids, num_segments=-(-flags.shape[0] // group_size))
    return per_group[ids].astype(bool)


def surrogate_from_model(model: nnx.Module, *, streams: bool = False):
    """A frozen, eval-mode NNX model as ``(apply_fn, params)``: the logits (N, K) (a two-stream ensemble's summed
    logits), or with ``streams`` always the per-stream tuple (``models.streams.stream_logits``)."""
    model.eval()
    graph, state = nnx.split(model)

    def apply_fn(params, x):
        module = nnx.merge(graph, params)
        return stream_logits(module, x) if streams else module(x)

    return apply_fn, state


@dataclasses.dataclass(frozen=True)
class PerStream:
    """A single model's ``apply_fn`` returning its logits as the one-entry per-stream tuple ``(z,)`` TASAR's heads
    take (hashable: equal wrappers of one function share a compiled program)."""

    apply_fn: Callable

    def __call__(self, params, x):
        return (self.apply_fn(params, x),)


class PassCounter:
    """Counts traced surrogate forward and backward passes (``counting(apply_fn)`` wraps it in a custom VJP).

    The counts are taken while JAX traces, so for a ``lax.scan`` they are the passes per iteration of the compiled
    program; a backward traced under ``vmap`` counts once (one batched pass).
    """

    def __init__(self):
        self.forward = 0
        self.backward = 0
        self.backward_batched = 0

    def counting(self, apply_fn: Callable) -> Callable:
        counter = self

        @jax.custom_vjp
        def wrapped(params, x):
            counter.forward += 1
            return apply_fn(params, x)

        def fwd(params, x):
            counter.forward += 1
            out, vjp = jax.vjp(lambda x_: apply_fn(params, x_), x)
            return out, (vjp, params)

        def bwd(res, cot):
            vjp, params = res
            counter.backward += 1
            leaf = jax.tree.leaves(cot)[0]
            if isinstance(leaf, jax.core.Tracer) and "Batch" in type(leaf).__name__:
                counter.backward_batched += 1
            (gx,) = vjp(cot)
            return jax.tree.map(jnp.zeros_like, params), gx

        wrapped.defvjp(fwd, bwd)
        return wrapped


def random_targets(key, labels, num_classes: int, *, indices=None, exclude_true: bool = True):
    """Targets for a targeted attack, one uniform class per sample keyed by ``fold_in(key, index)``.

    Default: uniform over the classes other than the true one (a target equal to the label would count as an
    instant success). ``exclude_true=False`` draws from all classes, as upstream's ``randint(0, classNum)``.
    """
    labels = jnp.asarray(labels, jnp.int32)
    indices = jnp.arange(labels.shape[0]) if indices is None else jnp.asarray(indices)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, indices)
    if not exclude_true:
        return jax.vmap(lambda k: jax.random.randint(k, (), 0, num_classes))(keys)
    r = jax.vmap(lambda k: jax.random.randint(k, (), 0, num_classes - 1))(keys)
    return r + (r >= labels)


class AdversarialSet(NamedTuple):
    """An attacked set: clean ``x``, ``x_adv`` (same layout), ``labels`` (true classes, or the targets of a targeted
    attack, like upstream's ``flabels``), the surrogate's ``predictions`` on ``x_adv``, per-sample ``success``, and
    for targeted sets the ``true_labels``."""

    x: np.ndarray
    x_adv: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    success: np.ndarray
    true_labels: np.ndarray | None = None


def save_adversarial(path, adv: AdversarialSet) -> pathlib.Path:
    """Writes an ``AdversarialSet`` as a compressed npz (keys = field names), atomically."""
    extra = {} if adv.true_labels is None else {"true_labels": np.asarray(adv.true_labels, np.int64)}
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, x=np.asarray(adv.x, np.float32), x_adv=np.asarray(adv.x_adv, np.float32),
                                labels=np.asarray(adv.labels, np.int64),
                                predictions=np.asarray(adv.predictions, np.int64),
                                success=np.asarray(adv.success, bool), **extra)
    return pathlib.Path(path)


def load_adversarial(path) -> AdversarialSet:
    """Reads a file written by ``save_adversarial``; a missing key or shape mismatch is a ``DataFormatError``."""
    with np.load(path) as data:
        missing = set(AdversarialSet._fields[:5]) - set(data.files)
        if missing:
            raise DataFormatError(f"{path}: not an adversarial set, missing {sorted(missing)}")
        adv = AdversarialSet(*(data[k] if k in data.files else None for k in AdversarialSet._fields))
    n = adv.x.shape[0]
    if adv.x_adv.shape != adv.x.shape or any(a.shape != (n,) for a in adv[2:] if a is not None):
        raise DataFormatError(f"{path}: inconsistent shapes {[a.shape for a in adv]}")
    return adv
