"""TASAR ablations: registry attacks that are TASAR with one ``TASARConfig`` switch, and what each switch does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax.attacks import base, registry, tasar
from tasar_jax.posterior import heads as H

from .test_tasar import _batch, _posterior, _stream_apply, _tiny_apply, _tiny_params

SWITCHES = {"tasar_no_motion": {"temporal": False}, "tasar_no_dual": {"dual_posterior": False},
            "tasar_mean": {"scale": 0.0}, "tasar_one_head": {"num_heads": 1}}
CFG = dict(iterations=4, epsilon=0.05, step_size=0.01, samples_per_head=3, temporal=False)


@pytest.mark.parametrize("name", sorted(SWITCHES))
def test_ablation_is_tasar_with_one_switch(name):
    atk = registry.constructor(name)(base.Surrogate(_stream_apply, _tiny_params()), _posterior())
    assert atk.config == tasar.TASARConfig(**SWITCHES[name])
    assert registry.entry(name).needs == ("posterior", "motion") and registry.settings(name, {}) == SWITCHES[name]


def test_a_configured_hyper_parameter_wins_over_the_preset():
    atk = registry.constructor("tasar_mean")(base.Surrogate(_stream_apply, _tiny_params()), _posterior(), scale=2.0)
    assert atk.config.scale == 2.0
    assert registry.settings("tasar_no_motion", {"temporal": True}) == {"temporal": True}


def _run(post, **cfg):
    x = _batch()
    labels = jnp.argmax(_tiny_apply(_tiny_params(), x), -1)  # the same labels whatever the posterior
    return tasar.tasar_attack(_stream_apply, _tiny_params(), post, x, labels, jax.random.key(5),
                              tasar.TASARConfig(**{**CFG, **cfg}))


def test_one_head_attacks_as_a_posterior_of_that_head():
    post = _posterior(k_app=3)
    first = jax.tree.map(lambda a: a[:1], post)
    np.testing.assert_allclose(_run(post, num_heads=1).x_adv, _run(first).x_adv, atol=1e-5)  # a step is 0.01
    assert not np.array_equal(_run(post, num_heads=1).x_adv, _run(post).x_adv)


def test_without_the_dual_posterior_every_draw_is_a_sampled_head():
    (post,) = _posterior(spread=0.3)
    moved = (H.Posterior(post.heads, jax.tree.map(lambda a: a + 1.0, post.mean), post.sqmean),)  # SWAG mean moved
    plain = _run(moved, dual_posterior=False).x_adv  # ignores the SWAG moments
    np.testing.assert_allclose(plain, _run((H.Posterior(post.heads, post.heads, post.sqmean),), scale=0.0).x_adv,
                               atol=1e-5)  # float32 rounding of two compilations; a step is 0.01
    assert not np.allclose(plain, _run(moved).x_adv, atol=1e-4)
    (ablated,) = tasar.ablated(moved, tasar.TASARConfig(dual_posterior=False))
    draws = H.sample_heads(jax.random.key(0), ablated, 4)
    np.testing.assert_allclose(draws.w1, np.broadcast_to(post.heads.w1, draws.w1.shape), atol=1e-6)


def test_scale_zero_draws_the_swag_mean():
    (post,) = _posterior(spread=0.3)
    draws = H.sample_heads(jax.random.key(0), post, 5, scale=0.0)
    np.testing.assert_array_equal(draws.b2, np.broadcast_to(post.mean.b2, draws.b2.shape))


def test_more_heads_than_the_posterior_has_is_refused():
    with pytest.raises(ValueError, match="num_heads=4, but the posterior has 2"):
        _run(_posterior(k_app=2), num_heads=4)
    two = _posterior(k_app=2, seed=1) + _posterior(k_app=2, seed=2)
    sliced = tasar.ablated(two, tasar.TASARConfig(num_heads=1))
    assert [p.heads.w1.shape[0] for p in sliced] == [1, 1]
