"""``attacks.build``: attacks by name from a model, its artefacts and hyper-parameters — the same attack as its
constructor, missing artefacts named, settings checked, defaults read from the constructors and config classes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax import models
from tasar_jax.attacks import base, build, registry
from tasar_jax.data import layouts
from tasar_jax.posterior import heads as H

K = 4


@pytest.fixture(scope="module")
def mlps():
    return [models.create("mlp", "hdm05", hidden=8, num_classes=K, seed=s) for s in (0, 1)]


def _batch():
    return jnp.asarray(np.random.default_rng(0).uniform(-0.5, 0.5, (3, 3, 60, 25, 1)), jnp.float32)


def _posterior():
    rng = np.random.default_rng(1)
    shapes = ((2, K, K), (2, K), (2, K, K), (2, K))
    hp = H.HeadParams(*(jnp.asarray(rng.normal(0, 0.2, s), jnp.float32) for s in shapes))
    return (H.Posterior(hp, hp, jax.tree.map(lambda a: a**2 + 0.05**2, hp)),)


@pytest.mark.parametrize("name", ["fgsm", "smart", "ensemble"])
def test_build_gives_the_constructors_attack(mlps, name):
    x, key = _batch(), jax.random.key(0)
    labels = jnp.arange(3) % K
    artefacts = build.Artefacts(model=mlps[0], members=tuple(mlps), dataset="hdm05")
    atk, extras = build.build(name, artefacts, iterations=3)
    surrogates = [base.Surrogate.from_model(m) for m in mlps]
    first = surrogates if name == "ensemble" else surrogates[0]
    more = {"parents": layouts.get_dataset("hdm05").parents} if name == "smart" else {}
    direct = registry.constructor(name)(first, iterations=3, **more)
    assert extras is None
    np.testing.assert_array_equal(atk(key, x, labels), direct(key, x, labels))


def test_tasar_gets_its_posterior_and_motion_as_extras(mlps):
    ar = {"ar1": np.full((3, 3, 60, 25, 1), 0.5), "ar2": np.zeros((3, 3, 60, 25, 1))}
    atk, extras = build.build("tasar", build.Artefacts(model=mlps[0], posterior=_posterior(), motion=ar),
                              iterations=2, samples_per_head=2)
    assert set(extras) == {"ar1", "ar2"} and atk.config.samples_per_head == 2 and len(atk.posterior) == 1
    assert atk.run(jax.random.key(0), _batch(), jnp.zeros(3, jnp.int32), extras=extras).x_adv.shape == (3, 3, 60, 25, 1)
    atk, extras = build.build("tasar_no_motion", build.Artefacts(model=mlps[0], posterior=_posterior()))
    assert extras is None and not atk.config.temporal  # without the motion term no coefficients are needed


def test_missing_artefacts_and_unknown_settings_are_named(mlps):
    with pytest.raises(ValueError, match="needs an appended-head posterior"):
        build.build("tasar", build.Artefacts(model=mlps[0], motion={"ar1": 0, "ar2": 0}))
    with pytest.raises(ValueError, match="needs motion coefficients"):
        build.build("tasar", build.Artefacts(model=mlps[0], posterior=_posterior()))
    with pytest.raises(ValueError, match="needs ensemble members"):
        build.build("svre", build.Artefacts(model=mlps[0]))
    with pytest.raises(ValueError, match="needs SWAG moments"):
        build.build("ba", build.Artefacts(model=mlps[0]))
    with pytest.raises(ValueError, match="2-stream posterior cannot drive"):
        build.build("tasar_no_motion", build.Artefacts(model=mlps[0], posterior=_posterior() * 2))
    with pytest.raises(ValueError, match="no setting 'n_model'; did you mean 'n_models'"):
        build.build("ba", build.Artefacts(model=mlps[0]), n_model=2)


def test_defaults_come_from_the_constructors_and_configs():
    assert build.defaults("ba") == {"epsilon": 0.01, "step_size": 0.01, "iterations": 200, "targeted": False,
                                    "group_size": None, "n_models": 3, "scale": 1.5, "shared_draws": False}
    assert build.defaults("tasar")["samples_per_head"] == 20 and build.defaults("tasar")["scale"] == 1.5
    assert build.defaults("tasar_mean")["scale"] == 0.0  # the ablation's preset
    assert build.defaults("mig")["ig_steps"] == 20 and build.defaults("mifgsm")["decay"] == 0.1
    assert build.upstream_settings("tasar") == {"group_size": 8, "shared_draws": True, "bone_head_sees_joint": True}
    assert build.upstream_settings("dim") == {"upstream": True} and build.upstream_settings("fgsm") == {}
    assert build.needs("tasar", {}) == ("posterior", "motion") and build.needs("tasar", {"temporal": False}) == (
        "posterior",)
