"""Attack names → constructors, imported lazily (each attack lives in its own module).

Every constructor returns a ``base.Attack`` (``atk(key, x, y) -> x_adv``; ``atk.run(...) -> AttackResult``).
``needs`` says what the constructor takes besides keyword hyper-parameters: ``surrogate`` (one
``base.Surrogate``), ``surrogates`` (a sequence of them, for the ensemble attacks), ``swag`` (a surrogate plus the
SWAG moments of its full network, BA) or ``posterior`` (a surrogate plus appended-head posterior, TASAR).

The TASAR ablations are attacks of their own (``tasar_no_motion``, ``tasar_no_dual``, ``tasar_mean``,
``tasar_one_head``): each is TASAR with one ``TASARConfig`` switch preset, so a study config names them like any
other attack and a hyper-parameter given in the config still wins over the preset.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable, NamedTuple


class UnknownAttackError(KeyError, ValueError):
    """An attack name the registry does not know (a ``ValueError`` too, so the CLI reports it as bad input)."""

    def __str__(self) -> str:
        return str(self.args[0])


class AttackEntry(NamedTuple):
    target: str  # "module:function" under tasar_jax.attacks, or "package.module:function" anywhere
    needs: str
    upstream: str  # the ``-attacker`` name upstream uses
    description: str
    preset: tuple[tuple[str, Any], ...] = ()  # keyword arguments the constructor gets unless the caller sets them


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
    "tasar_no_motion": AttackEntry("tasar:TASAR", "posterior", "TASAR", "ablation: TASAR without the motion term",
                                   (("temporal", False),)),
    "tasar_no_dual": AttackEntry("tasar:TASAR", "posterior", "TASAR",
                                 "ablation: the plain SG-AdaHMC heads, no SWAG/flatness posterior",
                                 (("dual_posterior", False),)),
    "tasar_mean": AttackEntry("tasar:TASAR", "posterior", "TASAR", "ablation: scale 0, the SWAG mean only",
                              (("scale", 0.0),)),
    "tasar_one_head": AttackEntry("tasar:TASAR", "posterior", "TASAR", "ablation: only the first appended head",
                                  (("num_heads", 1),)),
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


def hyper_names(name: str) -> frozenset[str]:
    """The keyword arguments attack ``name`` accepts: its constructor's own, every ``AttackConfig`` field and alias,
    TASAR's config fields for the posterior attacks, and SMART's for CIASA (which passes them on)."""
    import dataclasses
    import inspect

    from tasar_jax.attacks import base

    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    own = {p.name for p in inspect.signature(constructor(name)).parameters.values() if p.kind in named}
    out = (own - {"surrogate", "surrogates", "swag", "posterior"}) | set(base.ALIASES)
    out |= {f.name for f in dataclasses.fields(base.AttackConfig)}
    if entry(name).needs == "posterior":
        from tasar_jax.attacks.tasar import TASARConfig

        out |= {f.name for f in dataclasses.fields(TASARConfig)}
    if entry(name).target == "smart:CIASA":
        out |= hyper_names("smart")
    return frozenset(out)


def settings(name: str, given: dict) -> dict:
    """The keyword arguments attack ``name`` runs with: its preset, overridden by ``given``."""
    return {**dict(entry(name).preset), **given}


def uses_motion(name: str, given: dict) -> bool:
    """Whether attack ``name`` with settings ``given`` needs the tvAR motion coefficients (TASAR's motion term)."""
    return entry(name).needs == "posterior" and bool(settings(name, given).get("temporal", True))


def constructor(name: str) -> Callable:
    """The constructor function of attack ``name`` (e.g. ``constructor("mifgsm")(surrogate, iterations=50)``),
    with the entry's preset bound (keyword arguments, so a caller's own value still wins)."""
    item = entry(name)
    module, function = item.target.split(":")
    ctor = getattr(importlib.import_module(module if "." in module else f"tasar_jax.attacks.{module}"), function)
    return functools.partial(ctor, **dict(item.preset)) if item.preset else ctor
