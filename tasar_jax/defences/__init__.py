"""Defences of the benchmark (reference.md §5): TRADES adversarial training of any registered classifier and
BEAT, post-train Bayesian energy-based adversarial training of appended heads on a frozen base."""

from tasar_jax.defences import beat, trades
from tasar_jax.defences.beat import (
    BEATConfig,
    BEATResult,
    DefendedModel,
    beat_train,
    defended_surrogate,
    save_heads,
)
from tasar_jax.defences.trades import TRADESConfig, robust_accuracy, trades_loss, trades_train

__all__ = ["BEATConfig", "BEATResult", "DefendedModel", "TRADESConfig", "beat", "beat_train", "defended_surrogate",
           "robust_accuracy", "save_heads", "trades", "trades_loss", "trades_train"]
