"""Evaluation of adversarial sets on target models (:mod:`.metrics`) and benchmark reports (:mod:`.report`)."""

from tasar_jax.evaluation.metrics import (
    Predictor,
    acceleration,
    bone_lengths,
    evaluate_model,
    perturbation_stats,
    predict_logits,
    success,
    transfer_metrics,
)

__all__ = ["Predictor", "acceleration", "bone_lengths", "evaluate_model", "perturbation_stats", "predict_logits",
           "success", "transfer_metrics"]
