"""Adversarial attacks on skeleton classifiers: the shared interface and driver (:mod:`.base`), the registry of the
ten attacks (:mod:`.registry`; one module per family: fgsm, mig, dim, smart, ensemble, ba, tasar), attacks by name
from a model and its artefacts (:mod:`.build`, what the pipeline, the runner and the CLI use) and shared
helpers (:mod:`.common`). TASAR's spec (``TASARSpec``) and building blocks (``gradients``, ``update``) are in
:mod:`.tasar`; nothing here is exported under a generic name that is one attack's."""

from tasar_jax.attacks import build, registry, tasar
from tasar_jax.attacks.base import Attack, AttackConfig, AttackResult, Surrogate, run_attack, run_in_batches
from tasar_jax.attacks.common import (
    AdversarialSet,
    PassCounter,
    load_adversarial,
    mean_abs_normalise,
    project_linf,
    save_adversarial,
    surrogate_from_model,
)
from tasar_jax.attacks.tasar import TASARConfig, tasar_attack

__all__ = [
    "Attack", "AttackConfig", "AttackResult", "Surrogate", "build", "registry", "run_attack", "run_in_batches",
    "AdversarialSet", "PassCounter", "TASARConfig", "load_adversarial", "mean_abs_normalise",
    "project_linf", "save_adversarial", "surrogate_from_model", "tasar", "tasar_attack",
]
