"""Attack names → constructors, imported lazily (each attack lives in its own module).

Every constructor returns a ``base.Attack`` (``atk(key, x, y) -> x_adv``; ``atk.run(...) -> AttackResult``).
``needs`` says what the constructor takes besides keyword hyper-parameters: ``surrogate`` (one
``base.Surrogate``), ``surrogates`` (a sequence of them, for the ensemble attacks), ``swag`` (a surrogate plus the
SWAG moments of its full network, BA) or ``posterior`` (a surrogate plus appended-head posterior, TASAR).
"""

from __future__ import annotations

import importlib
from typing import Callable, NamedTuple


class UnknownAttackError(KeyError, ValueError):
    """An attack name the registry does not know (a ``ValueError`` too, so the CLI reports it as bad input)."""

    def __str__(self) -> str:
        return str(self.args[0])


class AttackEntry(NamedTuple):
    target: str  # "module:function" under tasar_jax.attacks
    needs: str
    upstream: str  # the ``-attacker`` name upstream uses
    description: str


ATTACKS: dict[str, AttackEntry] = {
    "fgsm": AttackEntry("fgsm:IFGSM", "surrogate", "FGSM", "I-FGSM, mean-abs normalised steps"),
    "mifgsm": AttackEntry("fgsm:MIFGSM", "surrogate", "MI-FGSM", "momentum I-FGSM (decay 0.1 as upstream)"),
    "smart": AttackEntry("smart:SMART", "surrogate", "SMART", "class + perceptual (bone, acceleration) loss"),
    "ciasa": AttackEntry("smart:CIASA", "surrogate", "CIASA", "SMART plus a bone-direction discriminator"),
    "mig": AttackEntry("mig:MIG", "surrogate", "MIG", "momentum integrated gradients (20 scales)"),
    "dim": AttackEntry("dim:DIM", "surrogate", "Augment", "input diversity: crop-resize, corruption, shear"),
    "ensemble": AttackEntry("ensemble:ENSEMBLE", "surrogates", "ENSEMBLE", "sign steps on summed member logits"),
    "svre": AttackEntry("ensemble:SVRE", "surrogates", "SVRE", "stochastic variance-reduced ensemble"),
    "ba": AttackEntry("ba:BA", "swag", "BA", "Bayesian attack: SWAG over the full surrogate"),
    "tasar": AttackEntry("tasar:TASAR", "posterior", "TASAR", "post-trained Bayesian heads + motion dynamics"),
}


def names() -> tuple[str, ...]:
    return tuple(ATTACKS)


def entry(name: str) -> AttackEntry:
    try:
        return ATTACKS[name.lower()]
    except KeyError:
        raise UnknownAttackError(f"unknown attack {name!r}; known: {', '.join(ATTACKS)}") from None


def dataset_arguments(name: str, dataset: str, given: dict) -> dict:
    """The keyword arguments of attack ``name`` that come from the dataset's skeleton (SMART/CIASA ``parents``),
    unless ``given`` sets them."""
    import inspect

    from tasar_jax.data import layouts

    params = inspect.signature(constructor(name)).parameters
    spec = layouts.get_dataset(dataset)
    values = {"parents": spec.parents, "dataset": dataset}
    return {k: v for k, v in values.items() if k in params and k not in given}


def constructor(name: str) -> Callable:
    """The constructor function of attack ``name`` (e.g. ``constructor("mifgsm")(surrogate, iterations=50)``)."""
    module, function = entry(name).target.split(":")
    return getattr(importlib.import_module(f"tasar_jax.attacks.{module}"), function)
