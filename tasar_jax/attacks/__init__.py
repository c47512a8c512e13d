"""Adversarial attacks on skeleton classifiers. TASAR (:mod:`.tasar`) and shared helpers (:mod:`.common`)."""

from tasar_jax.attacks.common import (
    AdversarialSet,
    PassCounter,
    load_adversarial,
    mean_abs_normalise,
    project_linf,
    save_adversarial,
    surrogate_from_model,
)
from tasar_jax.attacks.tasar import (
    TASARConfig,
    TASARResult,
    TASARState,
    fool_rates,
    gradients,
    init,
    motion_term,
    step,
    tasar_attack,
    update,
)

__all__ = [
    "AdversarialSet", "PassCounter", "TASARConfig", "TASARResult", "TASARState", "fool_rates", "gradients", "init",
    "load_adversarial", "mean_abs_normalise", "motion_term", "project_linf", "save_adversarial", "step",
    "surrogate_from_model", "tasar_attack", "update",
]
