"""The interface every attack shares: a surrogate as a pure function, an attack as a frozen dataclass of
hyper-parameters with ``init`` + ``step``, and one jitted ``lax.scan`` driver doing the bookkeeping upstream's
common loop does (reference.md §3.0): fool flags on the iterate entering each iteration, early stop by groups of
samples, the final iterate, the surrogate's predictions on it.

    atk = MIFGSM(surrogate, epsilon=0.01, iterations=200)      # eps= / steps= are accepted as aliases
    x_adv = atk(key, x, y)                                     # or atk.run(key, x, y) for the full AttackResult

An attack spec has a ``config`` (an ``AttackConfig``) and implements ``init(x0, labels) -> state`` (a pytree with
the iterate as ``state.x`` and the batch axis first on every leaf) and
``step(apply_fn, params, x0, labels, keys, state, t, **extras) -> (state, logits[, intermediates])``, where
``logits`` are the surrogate's on the iterate entering iteration ``t`` and ``keys`` are per-sample PRNG keys
(``fold_in(key, global index)``), so random attacks do not depend on how samples are batched; ``intermediates``
(optional, a dict of per-sample arrays) is what a run with ``trace=True`` records besides the logits, fool flags
and next iterate. The spec must be hashable (it is a static jit argument); arrays an attack needs besides the
surrogate (posteriors, SWAG moments) travel in ``params``, per-sample ones (motion coefficients) in ``extras``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tasar_jax import losses, scale
from tasar_jax.attacks import common


class Surrogate(NamedTuple):
    """A frozen classifier as ``apply_fn(params, x) -> logits (N, K)`` with its ``params`` (any pytree)."""

    apply_fn: Callable
    params: Any

    @classmethod
    def from_model(cls, model, *, streams: bool = False) -> "Surrogate":
        """Eval-mode NNX model → surrogate; two-stream ensembles give summed logits unless ``streams``."""
        return cls(*common.surrogate_from_model(model, streams=streams))


class AttackResult(NamedTuple):
    """``x_adv`` (final iterate), surrogate ``logits``/``predictions``/``success`` on it, ``iterations`` applied
    per sample, ``fooled_iters`` (n, B): success on the iterate entering each iteration (upstream's fool
    rate bookkeeping), and with ``trace=True`` the per-iteration ``trace`` (n, B, ...): ``logits``, ``fooled``,
    ``x_next`` and the spec's own intermediates."""

    x_adv: jax.Array
    logits: jax.Array
    predictions: jax.Array
    success: jax.Array
    iterations: jax.Array
    fooled_iters: jax.Array
    trace: dict | None = None


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """Hyper-parameters every attack has (upstream defaults, reference.md §3.0).

    Attributes:
      epsilon: L∞ radius around the clean input (``-cp``). step_size: step α (0.01, hard-coded upstream).
      iterations: attack iterations (upstream ``--epochs``, README 200).
      targeted: labels are target classes; success = prediction equals them.
      group_size: a group of consecutive batch positions stops once all its samples are fooled (upstream stops a
        whole batch: group size = batch size); None runs every iteration for every sample.
    """

    epsilon: float = 0.01
    step_size: float = 0.01
    iterations: int = 200
    targeted: bool = False
    group_size: int | None = None

    def __post_init__(self):
        problems = self.problems()
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with the settings (empty when they are valid); subclasses add their own checks."""
        out = [f"{name} must be a finite number > 0, got {value!r}"
               for name, value in (("epsilon", self.epsilon), ("step_size", self.step_size))
               if not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0)]
        if not (isinstance(self.iterations, numbers.Integral) and self.iterations >= 1):
            out.append(f"iterations must be an integer >= 1, got {self.iterations!r}")
        if self.group_size is not None and not (isinstance(self.group_size, numbers.Integral)
                                                and self.group_size >= 1):
            out.append(f"group_size must be None or an integer >= 1, got {self.group_size!r}")
        return out

    @property
    def sign(self) -> float:
        """Upstream descends on ``−CE`` (untargeted) or ``+CE`` (targeted): the loss is ``sign · CE``."""
        return 1.0 if self.targeted else -1.0


ALIASES = {"eps": "epsilon", "steps": "iterations", "alpha": "step_size"}


def canonical_kwargs(kwargs: dict) -> dict:
    """Maps the short names ``eps``, ``steps``, ``alpha`` to the config field names."""
    out = {}
    for name, value in kwargs.items():
        field = ALIASES.get(name, name)
        if field in out:
            raise TypeError(f"{name!r} given twice (also as {field!r})")
        out[field] = value
    return out


def loss_gradient(apply_fn, params, x, labels, sign: float):
    """``(∇_x Σ_b sign·CE(f(x_b), y_b), logits)``: one forward and one backward.

    Per-sample (summed) CE: upstream's batch-mean gradient is 1/B of it; every normalised direction is the same.
    """
    def objective(x_):
        logits = apply_fn(params, x_)
        return sign * jnp.sum(losses.cross_entropy(logits, labels)), logits

    grad, logits = jax.grad(objective, has_aux=True)(x)
    return grad, logits


def descend(cfg: AttackConfig, x, x0, direction):
    """``project(x − α·direction)`` onto the ε-ball around ``x0``."""
    return common.project_linf(x - cfg.step_size * direction, x0, cfg.epsilon)


def _freeze(active, new, old):
    keep = lambda a: active.reshape((-1,) + (1,) * (a.ndim - 1))  # noqa: E731
    return jax.tree.map(lambda n, o: jnp.where(keep(n), n, o), new, old)


@functools.partial(jax.jit, static_argnames=("spec", "apply_fn", "trace"))
def _run(spec, apply_fn, params, x0, labels, key, indices, extras, trace=False):
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, indices)
    cfg = spec.config

    def body(carry, t):
        state, active, iterations = carry
        new_state, logits, *intermediates = spec.step(apply_fn, params, x0, labels, keys, state, t, **extras)
        fooled = common.fooled(jnp.argmax(logits, -1), labels, cfg.targeted)
        active = active & ~common.group_all(fooled, cfg.group_size)
        new_state = _freeze(active, new_state, state)
        record = {"fooled": fooled}
        if trace:
            record.update(*intermediates, logits=logits, x_next=new_state.x)
        return (new_state, active, iterations + active), record

    b = x0.shape[0]
    carry = (spec.init(x0, labels), jnp.ones((b,), bool), jnp.zeros((b,), jnp.int32))
    (state, _, iterations), records = jax.lax.scan(body, carry, jnp.arange(cfg.iterations))
    x_adv = state.x
    logits = apply_fn(params, x_adv)
    predictions = jnp.argmax(logits, -1)
    return AttackResult(x_adv, logits, predictions, common.fooled(predictions, labels, cfg.targeted), iterations,
                        records["fooled"], records if trace else None)


def check_batch(x, labels, num_classes: int | None = None):
    """Validated float32 batch (N, 3, T, V, M) and int32 labels (N,): clear errors for bad shapes and values."""
    x = jnp.asarray(x, jnp.float32)
    labels = jnp.asarray(labels, jnp.int32)
    if x.ndim != 5:
        raise ValueError(f"attacks take x in the layout (N, 3, T, V, M); got shape {x.shape}")
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {labels.shape}")
    if isinstance(x, jax.core.Tracer) or isinstance(labels, jax.core.Tracer):
        return x, labels  # values are unknown while tracing: the caller checks concrete inputs
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError("x contains NaN or inf")
    if num_classes is not None and bool(jnp.any((labels < 0) | (labels >= num_classes))):
        raise ValueError(f"labels out of range [0, {num_classes})")
    return x, labels


def run_attack(spec, surrogate: Surrogate, key, x, labels, *, indices=None, extras: dict | None = None,
               trace: bool = False) -> AttackResult:
    """Runs ``spec`` on the batch inside one jitted scan. ``indices``: global sample indices (default
    ``arange(N)``) keying the per-sample randomness; ``extras``: per-sample arrays passed to ``step``; ``trace``:
    also return every iteration's logits, fool flags, next iterate and the spec's intermediates."""
    x, labels = check_batch(x, labels)
    indices = jnp.arange(x.shape[0]) if indices is None else jnp.asarray(indices)
    return _run(spec, surrogate.apply_fn, surrogate.params, x, labels, key, indices, extras or {}, trace)


DEFAULT_BATCH_SIZE = 16


class BatchedResult(NamedTuple):
    """Numpy results of ``run_in_batches``: final iterates, surrogate predictions and success per sample, and the
    batch-averaged fool rate per iteration (upstream's per-iteration bookkeeping, over all samples)."""

    x_adv: np.ndarray
    predictions: np.ndarray
    success: np.ndarray
    fool_rate_per_iteration: np.ndarray


def run_in_batches(atk: "Attack", key, x, labels, batch_size: int | None = None, *, extras: dict | None = None,
                   memory_budget: int | str | None = None, mesh=None, progress: bool = False,
                   description: str = "attack") -> BatchedResult:
    """``atk.run`` over a whole set (any number of samples) in fixed-size chunks sharded over a device mesh.

    Args:
      batch_size: samples per device in one chunk (the last chunk is padded, so every chunk has one shape and
        one compilation). With ``memory_budget`` it is at most this; with neither, ``DEFAULT_BATCH_SIZE``.
      memory_budget: bytes (or ``"4G"``) of one device's memory the attack may use: sizes the chunks
        (``scale.per_device_batch_for_budget``).
      mesh: the devices (default: every device of every process, ``scale.data_mesh()``); samples are sharded over
        it, the surrogate replicated.
      extras: per-sample arrays (N, ...) that travel with x.

    Samples keep their global index (per-sample keys), so results depend neither on the chunking nor on the
    number of devices (bitwise for a given ``batch_size``; ``tasar_jax.scale``).
    """
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x  # memory-mapped arrays stay on disk
    labels = np.asarray(labels)
    if x.ndim != 5 or labels.shape != (x.shape[0],):
        raise ValueError(f"attacks take x (N, 3, T, V, M) and labels (N,); got {x.shape} and {labels.shape}")
    if not all(np.isfinite(x[i:i + 4096]).all() for i in range(0, x.shape[0], 4096)):
        raise ValueError("x contains NaN or inf")
    mesh = scale.data_mesh() if mesh is None else mesh
    per_device_limit = -(-x.shape[0] // mesh.size)
    inputs = (x, labels, dict(extras or {}))

    def attack_chunk(chunk, indices):
        x_, labels_, extras_ = chunk
        r = atk.run(key, x_, labels_, indices=indices, extras=extras_)
        return r.x_adv, r.predictions, r.success, r.fooled_iters.T

    if memory_budget is not None:
        fitted = scale.per_device_batch_for_budget(attack_chunk, inputs, scale.parse_bytes(memory_budget),
                                                   limit=per_device_limit)
        batch_size = fitted if batch_size is None else min(batch_size, fitted)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    x_adv, predictions, success, fooled = scale.map_in_chunks(attack_chunk, inputs, per_device_batch=batch_size,
                                                             mesh=mesh, progress=progress, description=description)
    rates = fooled.mean(axis=0) if fooled.size else np.zeros(0)
    return BatchedResult(x_adv, predictions, success, rates)


class Attack:
    """An attack spec bound to a surrogate: ``atk(key, x, y) -> x_adv``; ``atk.run`` gives the ``AttackResult``."""

    def __init__(self, surrogate: Surrogate, spec):
        self.surrogate = surrogate
        self.spec = spec

    @property
    def config(self) -> AttackConfig:
        return self.spec.config

    def run(self, key, x, labels, *, indices=None, extras: dict | None = None, trace: bool = False) -> AttackResult:
        return run_attack(self.spec, self.surrogate, key, x, labels, indices=indices, extras=extras, trace=trace)

    def __call__(self, key, x, labels, **kwargs) -> jax.Array:
        return self.run(key, x, labels, **kwargs).x_adv

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"
