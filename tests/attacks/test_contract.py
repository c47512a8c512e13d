"""The contract every registered baseline attack keeps, on a tiny surrogate: the ε-ball, finite iterates,
determinism, independence from the batch composition, targeted mode, and the driver's early stop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasar_jax.attacks import base, fgsm, registry, tasar

T, V, K, N = 8, 25, 5, 4
ITERS = 4
SINGLE = [n for n, e in registry.ATTACKS.items() if e.needs == ("surrogate",)]
MULTI = [n for n, e in registry.ATTACKS.items() if e.needs == ("members",)]


def _apply(p, x):
    return jnp.tanh(x.reshape(x.shape[0], -1) @ p["w"]) @ p["v"]


def _surrogate(seed=0):
    rng = np.random.default_rng(seed)
    return base.Surrogate(_apply, {"w": jnp.asarray(rng.normal(0, 0.3, (3 * T * V, 16)), jnp.float32),
                                   "v": jnp.asarray(rng.normal(0, 1.0, (16, K)), jnp.float32)})


def _attack(name, **kw):
    arg = [_surrogate(0), _surrogate(1)] if name in MULTI else _surrogate(0)
    return registry.constructor(name)(arg, iterations=ITERS, **kw)


def _batch(n=N, seed=0, amplitude=1.0):
    rng = np.random.default_rng(seed)
    return amplitude * jnp.asarray(rng.uniform(-0.5, 0.5, (n, 3, T, V, 1)), jnp.float32)


def _labels(x):
    return jnp.argmax(_apply(_surrogate(0).params, x), -1)


@settings(max_examples=6, deadline=None)
@given(name=st.sampled_from(SINGLE + MULTI), seed=st.integers(0, 2**16), amplitude=st.sampled_from([0.0, 1.0, 50.0]),
       targeted=st.booleans())
def test_iterates_stay_in_the_eps_ball_and_finite(name, seed, amplitude, targeted):
    x = _batch(seed=seed, amplitude=amplitude)
    labels = jnp.asarray(np.random.default_rng(seed).integers(0, K, N), jnp.int32)
    r = _attack(name, targeted=targeted).run(jax.random.key(seed), x, labels)
    assert np.isfinite(np.asarray(r.x_adv)).all() and np.isfinite(np.asarray(r.logits)).all()
    assert np.abs(np.asarray(r.x_adv) - np.asarray(x)).max() <= 0.01 * (1 + 1e-6) + 1e-6


@pytest.mark.parametrize("name", SINGLE + MULTI)
def test_deterministic_and_independent_of_the_batch(name):
    atk, x = _attack(name), _batch()
    labels = _labels(x)
    full, again = atk.run(jax.random.key(7), x, labels), atk.run(jax.random.key(7), x, labels)
    part = atk.run(jax.random.key(7), x[2:], labels[2:], indices=jnp.arange(2, 4))
    np.testing.assert_array_equal(full.x_adv, again.x_adv)
    np.testing.assert_allclose(part.x_adv, full.x_adv[2:], atol=1e-6)
    assert full.fooled_iters.shape == (ITERS, N) and full.iterations.shape == (N,)


@pytest.mark.parametrize("name", SINGLE + MULTI)
def test_untargeted_and_targeted_attacks_move_the_surrogate(name):
    x = _batch(seed=3)
    labels = _labels(x)
    untargeted = _attack(name, epsilon=0.5, step_size=0.1).run(jax.random.key(0), x, labels)
    assert float(np.mean(np.asarray(untargeted.success))) >= 0.5, name
    targets = (labels + 1) % K
    targeted = _attack(name, epsilon=0.5, step_size=0.1, targeted=True).run(jax.random.key(0), x, targets)
    before = _apply(_surrogate(0).params, x)
    after = targeted.logits if name in SINGLE else _apply(_surrogate(0).params, targeted.x_adv)
    gain = jnp.take_along_axis(after - before, targets[:, None], 1)[:, 0]
    assert float(jnp.mean(gain)) > 0, name


def test_group_early_stop_freezes_fooled_groups():
    x = _batch()
    labels = _labels(x).at[0].add(1) % K  # sample 0 is "fooled" from the start
    atk = fgsm.IFGSM(_surrogate(), iterations=ITERS, group_size=1)
    r = atk.run(jax.random.key(0), x, labels)
    np.testing.assert_array_equal(r.x_adv[0], x[0])
    assert int(r.iterations[0]) == 0 and np.asarray(r.fooled_iters)[0, 0]


def test_bad_input_is_refused():
    atk = fgsm.IFGSM(_surrogate(), iterations=1)
    with pytest.raises(ValueError, match="layout"):
        atk(jax.random.key(0), jnp.zeros((2, 3, T, V)), jnp.zeros(2, jnp.int32))
    with pytest.raises(ValueError, match="NaN"):
        atk(jax.random.key(0), _batch().at[0, 0, 0, 0, 0].set(jnp.nan), jnp.zeros(N, jnp.int32))
    with pytest.raises(TypeError, match="twice"):
        fgsm.IFGSM(_surrogate(), eps=0.1, epsilon=0.2)


@pytest.mark.parametrize("bad, message", [
    (dict(epsilon=-0.01), "epsilon must be a finite number > 0"),
    (dict(epsilon=float("nan")), "epsilon must be a finite number > 0"),
    (dict(step_size=0.0), "step_size must be a finite number > 0"),
    (dict(iterations=-3), "iterations must be an integer >= 1"),
    (dict(iterations=2.5), "iterations must be an integer >= 1"),
    (dict(group_size=0), "group_size must be None or an integer >= 1"),
])
def test_attack_settings_are_validated(bad, message):
    with pytest.raises(ValueError, match=message):
        fgsm.IFGSM(_surrogate(), **bad)
    with pytest.raises(ValueError, match="TASARConfig: " + message):
        tasar.TASARConfig(**bad)


@pytest.mark.parametrize("bad, message", [
    (dict(samples_per_head=0), "samples_per_head must be an integer >= 1"),
    (dict(scale=-1.0), "scale must be a finite number >= 0"),
    (dict(posterior_decay=1.5), r"posterior_decay must be in \[0, 1\]"),
    (dict(num_heads=0), "num_heads must be None or an integer >= 1"),
])
def test_tasar_settings_are_validated(bad, message):
    with pytest.raises(ValueError, match=message):
        tasar.TASARConfig(**bad)
    assert tasar.TASARConfig(iterations=np.int64(3), epsilon=np.float32(0.02)).iterations == 3  # numpy scalars


# ---------------------------------------------------------------- every registered attack, built by name
# A tiny NNX MLP surrogate with everything any attack needs (members, SWAG moments, a posterior, motion), so that the
# ten attacks and the TASAR ablations all come through ``attacks.build`` and the one driver.

@pytest.fixture(scope="module")
def artefacts():
    import jax.tree_util as jtu
    from flax import nnx

    from tasar_jax import models
    from tasar_jax.attacks import build
    from tasar_jax.posterior import full_swag
    from tasar_jax.posterior import heads as H

    mlp = [models.create("mlp", "hdm05", num_frames=T, num_classes=K, hidden=16, seed=s) for s in (0, 1)]
    params = nnx.state(mlp[0], nnx.Param)
    moments = full_swag.SwagMoments(params, jtu.tree_map(lambda a: a**2 + 1e-4, params))
    rng = np.random.default_rng(2)
    shapes = ((2, K, K), (2, K), (2, K, K), (2, K))
    hp = H.HeadParams(*(jnp.asarray(rng.normal(0, 0.3, s), jnp.float32) for s in shapes))
    posterior = (H.Posterior(hp, hp, jax.tree.map(lambda a: a**2 + 0.05**2, hp)),)
    motion = {k: jnp.asarray(rng.uniform(-0.5, 0.5, (N, 3, T, V, 1)), jnp.float32) for k in ("ar1", "ar2")}
    return build.Artefacts(model=mlp[0], members=tuple(mlp), swag=(moments, mlp[0]), posterior=posterior,
                           motion=motion, dataset="hdm05")


def _built(name, artefacts, **kw):
    from tasar_jax.attacks import build

    return build.build(name, artefacts, iterations=ITERS, **kw)


def _sliced(extras, lo):
    return None if extras is None else {k: v[lo:] for k, v in extras.items()}


@pytest.mark.parametrize("name", registry.names())
def test_every_registered_attack_keeps_the_contract(name, artefacts):
    """The ε-ball, finite iterates and logits, determinism, independence from the batch composition, targeted
    mode and the driver's bookkeeping, for every name the registry has (TASAR, BA and the ablations included)."""
    x = _batch(seed=4)
    labels = jnp.asarray(np.random.default_rng(4).integers(0, K, N), jnp.int32)
    atk, extras = _built(name, artefacts)
    full, again = atk.run(jax.random.key(7), x, labels, extras=extras), atk.run(jax.random.key(7), x, labels,
                                                                             extras=extras)
    part = atk.run(jax.random.key(7), x[2:], labels[2:], indices=jnp.arange(2, 4), extras=_sliced(extras, 2))
    assert np.isfinite(np.asarray(full.x_adv)).all() and np.isfinite(np.asarray(full.logits)).all()
    assert np.abs(np.asarray(full.x_adv) - np.asarray(x)).max() <= 0.01 * (1 + 1e-6) + 1e-6
    np.testing.assert_array_equal(full.x_adv, again.x_adv)
    np.testing.assert_allclose(part.x_adv, full.x_adv[2:], atol=1e-6)
    assert full.fooled_iters.shape == (ITERS, N) and full.iterations.shape == (N,) and full.trace is None
    targeted, extras = _built(name, artefacts, targeted=True)
    r = targeted.run(jax.random.key(7), x, (labels + 1) % K, extras=extras, trace=True)
    assert r.trace["x_next"].shape == (ITERS, *x.shape) and r.trace["logits"].shape == (ITERS, N, K)
    np.testing.assert_array_equal(r.trace["fooled"], r.fooled_iters)
    np.testing.assert_array_equal(r.trace["x_next"][-1], r.x_adv)
