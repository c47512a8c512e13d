"""Attack names → constructors, imported lazily (each attack lives in its own module).

Every constructor returns a ``base.Attack`` (``atk(key, x, y) -> x_adv``; ``atk.run(...) -> AttackResult``).
``needs`` names the artefacts an attack takes besides keyword hyper-parameters (fields of ``build.Artefacts``); its
first entry says what the constructor's positional arguments are: ``surrogate`` (one ``base.Surrogate``),
``members`` (a sequence of them, for the ensemble attacks), ``swag`` (the SWAG-fine-tuned surrogate plus the SWAG
moments of its full network, BA) or ``posterior`` (a per-stream surrogate plus its appended-head posterior, TASAR);
``motion`` (TASAR's per-sample tvAR coefficients) travels as the run's extras and is needed only while the attack's
``temporal`` setting is on. ``build.build`` is the one place that turns artefacts into constructor arguments.

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
    needs: tuple[str, ...]  # artefacts (build.Artefacts fields), the constructor's positional kind first
    upstream: str  # the ``-attacker`` name upstream uses
    description: str
    preset: tuple[tuple[str, Any], ...] = ()  # keyword arguments the constructor gets unless the caller sets them


_TASAR = ("posterior", "motion")  # the heads' posterior; the tvAR coefficients while ``temporal`` is on

ATTACKS: dict[str, AttackEntry] = {
    "fgsm": AttackEntry("fgsm:IFGSM", ("surrogate",), "FGSM", "I-FGSM, mean-abs normalised steps"),
    "mifgsm": AttackEntry("fgsm:MIFGSM", ("surrogate",), "MI-FGSM", "momentum I-FGSM (decay 0.1 as upstream)"),
    "smart": AttackEntry("smart:SMART", ("surrogate",), "SMART", "class + perceptual (bone, acceleration) loss"),
    "ciasa": AttackEntry("smart:CIASA", ("surrogate",), "CIASA", "SMART plus a bone-direction discriminator"),
    "mig": AttackEntry("mig:MIG", ("surrogate",), "MIG", "momentum integrated gradients (20 scales)"),
    "dim": AttackEntry("dim:DIM", ("surrogate",), "Augment", "input diversity: crop-resize, corruption, shear"),
    "ensemble": AttackEntry("ensemble:ENSEMBLE", ("members",), "ENSEMBLE", "sign steps on summed member logits"),
    "svre": AttackEntry("ensemble:SVRE", ("members",), "SVRE", "stochastic variance-reduced ensemble"),
    "ba": AttackEntry("ba:BA", ("swag",), "BA", "Bayesian attack: SWAG over the full surrogate"),
    "tasar": AttackEntry("tasar:TASAR", _TASAR, "TASAR", "post-trained Bayesian heads + motion dynamics"),
    "tasar_no_motion": AttackEntry("tasar:TASAR", _TASAR, "TASAR", "ablation: TASAR without the motion term",
                                   (("temporal", False),)),
    "tasar_no_dual": AttackEntry("tasar:TASAR", _TASAR, "TASAR",
                                 "ablation: the plain SG-AdaHMC heads, no SWAG/flatness posterior",
                                 (("dual_posterior", False),)),
    "tasar_mean": AttackEntry("tasar:TASAR", _TASAR, "TASAR", "ablation: scale 0, the SWAG mean only",
                              (("scale", 0.0),)),
    "tasar_one_head": AttackEntry("tasar:TASAR", _TASAR, "TASAR", "ablation: only the first appended head",
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
    layout = layouts.get_dataset(dataset)
    values = {"parents": layout.parents, "dataset": dataset}
    return {k: v for k, v in values.items() if k in params and k not in given}


def hyper_names(name: str) -> frozenset[str]:
    """The keyword arguments attack ``name`` accepts: its constructor's own, every ``AttackConfig`` field and alias,
    TASAR's config fields for the posterior attacks, and SMART's for CIASA (which passes them on)."""
    import dataclasses
    import inspect

    from tasar_jax.attacks import base

    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    own = {p.name for p in inspect.signature(constructor(name)).parameters.values() if p.kind in named}
    out = (own - {"surrogate", "surrogates", "swag", "posterior"}) | set(base.ALIASES)  # the positional inputs
    out |= {f.name for f in dataclasses.fields(base.AttackConfig)}
    if entry(name).needs[0] == "posterior":
        from tasar_jax.attacks.tasar import TASARConfig

        out |= {f.name for f in dataclasses.fields(TASARConfig)}
    if entry(name).target == "smart:CIASA":
        out |= hyper_names("smart")
    return frozenset(out)


def settings(name: str, given: dict) -> dict:
    """The keyword arguments attack ``name`` runs with: its preset, overridden by ``given``."""
    return {**dict(entry(name).preset), **given}


def needs(name: str, given: dict) -> tuple[str, ...]:
    """The artefacts attack ``name`` with settings ``given`` needs: its entry's, without ``motion`` while its
    ``temporal`` setting is off (TASAR without the motion term)."""
    temporal = bool(settings(name, given).get("temporal", True))
    return tuple(n for n in entry(name).needs if n != "motion" or temporal)


def defaults(name: str) -> dict:
    """Every hyper-parameter attack ``name`` accepts (``hyper_names``, aliases aside) with the value it runs with when
    not given: the constructor's keyword defaults, the config dataclass's field defaults, then the entry's preset.
    ``None`` where the default depends on the inputs (e.g. SVRE's ``inner_steps``, SMART's ``torso``)."""
    import dataclasses
    import inspect

    from tasar_jax.attacks import base

    out = {f.name: f.default for f in dataclasses.fields(base.AttackConfig)}
    if entry(name).needs[0] == "posterior":
        from tasar_jax.attacks.tasar import TASARConfig

        out.update({f.name: f.default for f in dataclasses.fields(TASARConfig)})
    if entry(name).target == "smart:CIASA":
        out.update(defaults("smart"))
    ctor = constructor(name)
    own = inspect.signature(ctor.func if isinstance(ctor, functools.partial) else ctor).parameters.values()
    out.update({p.name: p.default for p in own if p.default is not inspect.Parameter.empty})
    out.update(entry(name).preset)
    return {k: v for k, v in out.items() if k in hyper_names(name) and k not in base.ALIASES}


def upstream_settings(name: str) -> dict:
    """The settings that make attack ``name`` behave as upstream's code (the CLI's ``--upstream``): TASAR's
    per-batch early stop, shared draws and §7.15 bone head; ``upstream=True`` where the constructor has it."""
    if entry(name).needs[0] == "posterior":
        from tasar_jax.attacks.tasar import TASARConfig

        reference = TASARConfig.upstream()
        return {k: getattr(reference, k) for k in ("group_size", "shared_draws", "bone_head_sees_joint")}
    return {"upstream": True} if "upstream" in hyper_names(name) else {}


def constructor(name: str) -> Callable:
    """The constructor function of attack ``name`` (e.g. ``constructor("mifgsm")(surrogate, iterations=50)``),
    with the entry's preset bound (keyword arguments, so a caller's own value still wins)."""
    item = entry(name)
    module, function = item.target.split(":")
    ctor = getattr(importlib.import_module(module if "." in module else f"tasar_jax.attacks.{module}"), function)
    return functools.partial(ctor, **dict(item.preset)) if item.preset else ctor
