"""Attacks by name: the one place that turns a surrogate model, the artefacts an attack needs and its
hyper-parameters into a ``base.Attack`` (issue 15). The pipeline, the benchmark runner and the command line all
come through here, so what an attack needs is declared once, in its registry entry (``registry.ATTACKS``).

    artefacts = Artefacts(model=model, posterior=load_posterior(path)[0], motion={"ar1": ar1, "ar2": ar2},
                          dataset="hdm05")
    atk, extras = build("tasar", artefacts, iterations=50)
    result = atk.run(key, x, labels, extras=extras)
"""

from __future__ import annotations

import difflib
from typing import Any, NamedTuple

from tasar_jax.attacks import base, registry
from tasar_jax.models import streams

names, entry, needs, defaults = registry.names, registry.entry, registry.needs, registry.defaults
constructor, settings, upstream_settings = registry.constructor, registry.settings, registry.upstream_settings
hyper_names = registry.hyper_names


class Artefacts(NamedTuple):
    """What attacks take besides hyper-parameters; an entry's ``needs`` names the fields it must find set.

    Attributes:
      model: the surrogate, an eval-mode NNX model (one stream or a ``TwoStream``).
      members: the ensemble attacks' models, every member (the surrogate too, if it is one).
      swag: BA's ``(SWAG moments of the full network, the fine-tuned model they were collected around)``.
      posterior: TASAR's per-stream appended-head posterior (``load_posterior(...)[0]``), one per stream of ``model``.
      motion: TASAR's per-sample tvAR coefficients ``{"ar1": ..., "ar2": ...}`` (the run's extras).
      dataset: the dataset name; fills skeleton settings (SMART's and CIASA's ``parents``) unless given.
    """

    model: Any = None
    members: tuple = ()
    swag: tuple | None = None
    posterior: tuple | None = None
    motion: dict | None = None
    dataset: str | None = None


_WHAT = {"surrogate": "a surrogate model", "members": "ensemble members", "swag": "SWAG moments (tasar-jax finetune)",
         "posterior": "an appended-head posterior (tasar-jax posttrain)", "motion": "motion coefficients (tasar-jax "
         "motion)"}


def _positional(kind: str, a: Artefacts) -> tuple:
    """The constructor's positional arguments for an entry whose first need is ``kind``."""
    if kind == "surrogate":
        return (base.Surrogate.from_model(a.model),)
    if kind == "members":
        return ([base.Surrogate.from_model(m) for m in a.members],)
    if kind == "swag":
        moments, tuned = a.swag
        return base.Surrogate.from_model(tuned), moments
    if kind == "posterior":  # TASAR's heads take per-stream logits: (z,) or (z_J, z_B)
        posterior = streams.check_per_stream(a.posterior, "posterior")
        if len(posterior) != streams.num_streams(a.model):
            raise ValueError(f"a {len(posterior)}-stream posterior cannot drive a surrogate with "
                             f"{streams.num_streams(a.model)} stream(s)")
        return base.Surrogate.from_model(a.model, streams=True), posterior
    raise ValueError(f"no attack constructor takes {kind!r} as its positional arguments")


def check_settings(name: str, given: dict) -> None:
    """A ValueError naming the first setting attack ``name`` does not have, with the closest one it does."""
    accepted = registry.hyper_names(name)
    for key in given:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; it takes {', '.join(sorted(accepted))}"
            raise ValueError(f"{name} has no setting {key!r}{hint}")


def build(name: str, artefacts: Artefacts, **hyper) -> tuple[base.Attack, dict | None]:
    """``(attack, extras)``: attack ``name`` bound to ``artefacts`` with ``hyper`` over its defaults and preset;
    ``extras`` are the per-sample inputs its run takes (TASAR's motion coefficients) or None. A missing artefact
    the attack needs raises a ValueError naming it."""
    check_settings(name, hyper)
    required = needs(name, hyper)
    missing = [n for n in required if (n == "surrogate" and artefacts.model is None)
               or (n != "surrogate" and not getattr(artefacts, n))]
    if "posterior" in required and artefacts.model is None:
        missing.insert(0, "surrogate")
    if missing:
        raise ValueError(f"attack {name!r} needs {', '.join(_WHAT[n] for n in missing)}")
    if artefacts.dataset is not None:
        hyper = {**hyper, **registry.dataset_arguments(name, artefacts.dataset, hyper)}
    attack = registry.constructor(name)(*_positional(entry(name).needs[0], artefacts), **hyper)
    extras = {"ar1": artefacts.motion["ar1"], "ar2": artefacts.motion["ar2"]} if "motion" in required else None
    return attack, extras
