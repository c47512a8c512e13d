"""The project's one host loop: epochs of a jitted step, scheduled evaluation, keep-the-best selection, progress.

Classifier training, TRADES, BEAT, SWAG fine-tuning and post-training all run through ``fit``; they differ in what
one epoch does (``run_epoch``), in what is evaluated (``evaluate``) and in what is kept (``snapshot``), not in the
loop. Selection is upstream's: a snapshot is kept when its score is strictly better than the best so far. A score
is a number or a tuple (compared lexicographically, e.g. robust then clean accuracy) or an array of per-head
scores, each head kept on its own (posterior heads, BEAT heads).

    result = fit.fit(state, run_epoch, epochs=30, evaluate=evaluate, snapshot=copy_weights)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tasar_jax.progress import bar as progress_bar

__all__ = ["Fit", "EpochBar", "fit", "minibatch_pass", "keep_improved"]


class Fit(NamedTuple):
    state: Any  # after the last epoch
    best: Any  # the kept snapshot (``None`` when nothing was evaluated)
    best_score: Any
    history: list[dict]  # one record per epoch: run_epoch's, plus evaluate's metrics on evaluation epochs


class EpochBar:
    """What one epoch sees of the progress display: ``bar.track(batches)`` draws an inner bar that is removed at
    the end of the epoch; ``bar.status(text)`` sets its status text."""

    def __init__(self, progress, description: str):
        self._progress, self._description, self._task = progress, description, None

    def track(self, items: Sequence) -> Iterable:
        self.close()  # one inner bar at a time (an epoch may make several passes, e.g. one per head)
        self._task = self._progress.add_task(self._description, total=len(items), status="")
        for item in items:
            yield item
            self._progress.update(self._task, advance=1)

    def status(self, text: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, status=text)

    def close(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None


def minibatch_pass(step: Callable, x: np.ndarray, y: np.ndarray, batches: Sequence[np.ndarray],
                   bar: EpochBar | None = None, *, counts: Sequence[str] = ("correct",)) -> dict:
    """Runs ``step(x_b, y_b, b) -> {name: scalar}`` over the index ``batches`` (b: the batch's number in the pass)
    and returns each value's per-sample mean over the pass: batch means are weighted by the batch's size,
    ``counts`` (numbers of samples, e.g. ``correct``) are summed. Values are read back after each batch, as the
    bar shows them."""
    sums, n = {}, 0
    for b, idx in enumerate(bar.track(batches) if bar is not None else batches):
        out = step(jnp.asarray(x[idx]), jnp.asarray(y[idx]), b)
        for name, value in out.items():
            sums[name] = sums.get(name, 0) + (int(value) if name in counts else float(value) * len(idx))
        n += len(idx)
        if bar is not None:
            bar.status(_status({k: v / n for k, v in sums.items()}))
    return {name: value / n for name, value in sums.items()}


def _greater(score, best) -> Any:
    """Strict improvement: a bool for numbers and tuples, a per-head bool array for arrays."""
    if best is None:
        return True if np.ndim(score) == 0 or isinstance(score, tuple) else np.ones(np.shape(score), bool)
    return score > best if isinstance(score, tuple) else np.asarray(score) > np.asarray(best)


def keep_improved(best, current, improved: np.ndarray):
    """``current``'s rows where ``improved`` (per head, along the leading axis), ``best``'s elsewhere."""
    improved = np.asarray(improved)
    return jax.tree.map(lambda b, c: jnp.where(improved.reshape(improved.shape + (1,) * (c.ndim - 1)), c, b),
                        best, current)


def fit(state, run_epoch: Callable, *, epochs: int, evaluate: Callable | None = None, every: int = 1,
        snapshot: Callable = lambda state: state, best=None, best_score=None,
        on_improve: Callable | None = None, status: Callable[[dict], str] | None = None,
        resume: Fit | None = None, after_epoch: Callable[[Fit], None] | None = None,
        progress: bool = True, description: str = "train") -> Fit:
    """Runs ``epochs`` epochs and keeps the best snapshot.

    Args:
      state: whatever ``run_epoch`` carries (a trainer, sampler states, ...).
      run_epoch: ``(state, epoch, bar) -> (state, record)``, one pass over the data; ``bar`` is an ``EpochBar``.
      evaluate: ``state -> (score, metrics)``, run after epochs ``every, 2·every, ...`` and the last; ``metrics``
        (a dict) joins that epoch's record. Without it nothing is selected.
      snapshot: ``state -> tree`` kept on improvement; it must not alias buffers the next epoch donates.
      best, best_score: the starting point (default: none, so the first evaluation is kept); per-head scores
        start from an array (upstream's heads start from accuracy 0 and need to beat it).
      on_improve: ``(best, record, improved)`` after each improvement; ``improved`` is the per-head mask for
        array scores, ``True`` otherwise.
      status: ``record -> text`` for the epoch bar (default: the record's numbers).
      resume: a ``Fit`` saved after some epochs (``after_epoch``): the run continues from there, and ends as the
        uninterrupted run would where ``run_epoch`` depends only on the state and the epoch number.
      after_epoch: called with the ``Fit`` so far after every epoch (e.g. to save it).
    """
    history = []
    if resume is not None:
        state, best, best_score, history = resume.state, resume.best, resume.best_score, list(resume.history)
    with progress_bar(progress, status=True) as bars:
        task = bars.add_task(description, total=epochs, completed=len(history), status="")
        for epoch in range(len(history), epochs):
            epoch_bar = EpochBar(bars, f"  epoch {epoch + 1}")
            state, record = run_epoch(state, epoch, epoch_bar)
            epoch_bar.close()
            record = {"epoch": epoch + 1, **record}
            if evaluate is not None and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
                score, metrics = evaluate(state)
                record.update(metrics)
                improved = _greater(score, best_score)
                if np.any(improved):
                    if np.ndim(improved) == 0:
                        best, best_score, improved = snapshot(state), score, True
                    else:
                        best = keep_improved(best, snapshot(state), improved)
                        best_score = np.where(improved, score, best_score)
                    if on_improve is not None:
                        on_improve(best, record, improved)
            history.append(record)
            bars.update(task, advance=1, status=(status or _status)(record))
            if after_epoch is not None:
                after_epoch(Fit(state, best, best_score, history))
    return Fit(state, best, best_score, history)


def _status(record: dict) -> str:
    """``loss 0.1234  train 81.2%  test 79.0%``: accuracies (and a pass's ``correct`` share) as percentages, other
    numbers to 4 digits."""
    parts = []
    for name, value in record.items():
        if name in ("epoch", "learning_rate") or np.ndim(value) != 0:
            continue
        if name.endswith("accuracy") or name == "correct":
            parts.append(f"{'acc' if name == 'correct' else name.removesuffix('_accuracy')} {value:.1%}")
        else:
            parts.append(f"{name} {value}" if isinstance(value, (int, np.integer)) else f"{name} {value:.4f}")
    return "  ".join(parts)
