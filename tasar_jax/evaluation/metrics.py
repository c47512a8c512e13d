"""Transfer-attack metrics: success rates of adversarial sets on target models and perturbation statistics.

Conventions (paper.md §3.5; docs/decisions.md E1–E3):
* success (untargeted) = the model's argmax differs from the true label; (targeted) = it equals the target label.
* ``success_rate`` is over **all** attacked samples, as upstream reports it (its attacked samples are the ones the
  *surrogate* classifies correctly, never re-filtered by the target). ``success_rate_on_correct`` restricts to the
  samples the target itself classifies correctly when clean, so a weak target's own errors do not count as
  transfers; both are reported, with the target's ``clean_accuracy`` on the same clean samples.
* the white-box rate is the same measure on the surrogate, on the final adversarial examples (upstream logs the
  maximum over iterations of a per-batch rate instead; that number is kept in the attack log, not in the table).
"""

from __future__ import annotations

import numpy as np

from tasar_jax.data import layouts
from tasar_jax.models.streams import bone_lengths
from tasar_jax.prediction import Predictor  # noqa: F401  (re-exported: the one predictor)
from tasar_jax.prediction import predict as predict_logits


def success(predictions: np.ndarray, labels: np.ndarray, targeted: bool = False) -> np.ndarray:
    """Per-sample attack success: prediction ≠ label (untargeted) or = label (targeted: labels are targets)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return predictions == labels if targeted else predictions != labels


def _rate(flags: np.ndarray) -> float:
    return float(np.mean(flags)) if flags.size else float("nan")


def flags_text(flags: np.ndarray) -> str:
    """Per-sample booleans as a string of 0/1 (compact in JSON; ``report.outcomes`` reads it back)."""
    return "".join(np.where(np.asarray(flags, bool).ravel(), "1", "0"))


def transfer_metrics(adv_logits: np.ndarray, clean_logits: np.ndarray, true_labels: np.ndarray, *,
                     targeted: bool = False, target_labels: np.ndarray | None = None,
                     per_sample: bool = False) -> dict:
    """Metrics of one adversarial set on one model from its logits on the adversarial and clean samples.

    Args:
      adv_logits, clean_logits: (N, K) logits of the model on ``x_adv`` and on the clean ``x``.
      true_labels: (N,) true classes (clean accuracy, and untargeted success).
      targeted: success means predicting ``target_labels`` (required then).

    Returns:
      ``success_rate`` (all N samples), ``clean_accuracy``, ``success_rate_on_correct`` (samples the model gets
      right when clean; NaN if none), ``num_samples``, ``num_clean_correct``; with ``per_sample`` also ``hits``
      and ``clean_correct`` (``flags_text`` strings, for paired tests between attacks on the same samples).
    """
    true_labels = np.asarray(true_labels)
    if targeted and target_labels is None:
        raise ValueError("a targeted evaluation needs target_labels")
    goal = target_labels if targeted else true_labels
    hit = success(np.argmax(adv_logits, -1), goal, targeted)
    correct = np.argmax(clean_logits, -1) == true_labels
    out = {"success_rate": _rate(hit), "clean_accuracy": _rate(correct),
           "success_rate_on_correct": _rate(hit[correct]), "num_samples": int(true_labels.shape[0]),
           "num_clean_correct": int(correct.sum())}
    if per_sample:
        out.update(hits=flags_text(hit), clean_correct=flags_text(correct))
    return out


def evaluate_model(model, x: np.ndarray, x_adv: np.ndarray, true_labels: np.ndarray, *, targeted: bool = False,
                   target_labels: np.ndarray | None = None, batch_size: int = 256, per_sample: bool = False) -> dict:
    """``transfer_metrics`` of ``model`` (an NNX classifier or a ``Predictor``) on a clean/adversarial pair."""
    both = predict_logits(model, np.concatenate([x, x_adv]), batch_size)
    n = x.shape[0]
    return transfer_metrics(both[n:], both[:n], true_labels, targeted=targeted, target_labels=target_labels,
                            per_sample=per_sample)


def acceleration(x: np.ndarray) -> np.ndarray:
    """Second temporal difference (N, 3, T−2, V, M) of clips x (N, 3, T, V, M)."""
    x = np.asarray(x, np.float64)
    return x[:, :, 2:] - 2 * x[:, :, 1:-1] + x[:, :, :-2]


def perturbation_stats(x: np.ndarray, x_adv: np.ndarray, dataset: str) -> dict:
    """Size of the perturbation δ = x_adv − x, averaged over samples (max over samples for ``linf_max``).

    ``linf``: mean per-sample max |δ|; ``l2``: mean per-sample ‖δ‖₂; ``bone_length_change``: mean |Δ bone length|
    over bones, frames and persons present (non-zero clean bones); ``acceleration_change``: mean |Δ second
    temporal difference| (the quantities SMART's perceptual loss penalises).
    """
    x, x_adv = np.asarray(x, np.float64), np.asarray(x_adv, np.float64)
    delta = (x_adv - x).reshape(x.shape[0], -1)
    parents = layouts.get_dataset(dataset).parents_array
    bones, bones_adv = (bone_lengths(np.asarray(a, np.float64), parents) for a in (x, x_adv))
    present = bones > 0  # the root (its own parent) and absent second persons have no bone
    bone_change = np.abs(bones_adv - bones)[present]
    accel = np.abs(acceleration(x_adv) - acceleration(x))
    linf = np.abs(delta).max(axis=1) if delta.size else np.zeros(0)
    return {"linf": _mean(linf), "linf_max": float(linf.max()) if linf.size else float("nan"),
            "l2": _mean(np.linalg.norm(delta, axis=1)), "bone_length_change": _mean(bone_change),
            "acceleration_change": _mean(accel)}


def _mean(a: np.ndarray) -> float:
    return float(np.mean(a)) if a.size else float("nan")
