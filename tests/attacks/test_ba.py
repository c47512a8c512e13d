"""BA and the full-network SWAG fine-tuning, on a tiny NNX classifier (batch norm + two linear layers).

BA is random by nature and upstream has no fixture for it (README B.5), so: the SWAG moments and the fine-tuning
are checked against their definitions, the attack against I-FGSM on the mean network at scale 0, against an
explicit composition of draws and gradients, and for determinism and batch independence (per-sample draws).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tasar_jax.attacks import ba, base, common, fgsm
from tasar_jax.data.formats import DataFormatError
from tasar_jax.posterior import full_swag

T, V, K, N = 6, 25, 5, 6


class Tiny(nnx.Module):
    def __init__(self, seed=0):
        rngs = nnx.Rngs(seed)
        self.bn = nnx.BatchNorm(3 * T * V, rngs=rngs)
        self.hidden = nnx.Linear(3 * T * V, 16, rngs=rngs)
        self.out = nnx.Linear(16, K, rngs=rngs)

    def __call__(self, x, rng_key=None):
        return self.out(jnp.tanh(self.hidden(self.bn(x.reshape(x.shape[0], -1)))))


def _data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, 0.5, (n, 3, T, V, 1)).astype(np.float32), rng.integers(0, K, n)


@pytest.fixture(scope="module")
def tuned():
    model = Tiny()
    x, y = _data(24)
    config = full_swag.FinetuneConfig(epochs=3, batch_size=8, swa_n=4)  # period ⌊3·3/4⌋ = 2: 5 collections
    tuned, moments = full_swag.finetune(model, x, y, config, jax.random.key(0), progress=False)
    return model, tuned, moments


def _leaves(state):
    return jax.tree.leaves(state)


def test_swag_collection_is_the_running_mean_of_params_and_squares():
    thetas = [{"w": jnp.asarray(np.random.default_rng(i).normal(size=(3, 2)), jnp.float32)} for i in range(3)]
    moments = full_swag.SwagMoments(thetas[0], thetas[0])  # the initial value has weight 0 (n = 0)
    for n, theta in enumerate(thetas):
        moments = full_swag.collect(moments, theta, n)
    stacked = np.stack([t["w"] for t in thetas])
    np.testing.assert_allclose(moments.mean["w"], stacked.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(moments.sqmean["w"], np.square(stacked).mean(0), rtol=1e-6, atol=1e-7)
    assert full_swag.FinetuneConfig(epochs=1, swa_n=300).period(5) == 1  # upstream: period 0, ZeroDivisionError


def test_finetune_moves_the_weights_and_gives_param_shaped_moments(tuned):
    model, tuned_model, moments = tuned
    params = nnx.state(model, nnx.Param)
    assert jax.tree.structure(moments.mean) == jax.tree.structure(params)
    for p, m, s in zip(_leaves(params), _leaves(moments.mean), _leaves(moments.sqmean)):
        assert m.shape == p.shape == s.shape
        assert float(jnp.min(s - jnp.square(m))) >= -1e-6 * max(1.0, float(jnp.max(jnp.abs(s))))
    tuned_params = nnx.state(tuned_model, nnx.Param)
    assert any(not np.allclose(a, b) for a, b in zip(_leaves(params), _leaves(tuned_params)))
    # the running statistics were updated, the input model was not touched
    assert not np.allclose(tuned_model.bn.mean.value, 0) and np.allclose(model.bn.mean.value, 0)
    # the mean lies between the first collected and the last weights: not equal to either
    assert any(not np.allclose(a, b) for a, b in zip(_leaves(moments.mean), _leaves(tuned_params)))


def test_save_and_load_round_trip(tuned, tmp_path):
    _, _, moments = tuned
    path = full_swag.save_swag(tmp_path / "swag.npz", moments, dataset="toy")
    loaded, meta = full_swag.load_swag(path)
    assert meta["dataset"] == "toy"
    template = moments.mean
    for a, b in zip(_leaves(moments.sqmean), _leaves(full_swag.as_param_state(template, loaded.sqmean))):
        np.testing.assert_array_equal(a, b)
    np.savez(tmp_path / "other.npz", w=np.zeros(2))
    with pytest.raises(DataFormatError, match="metadata"):
        full_swag.load_swag(tmp_path / "other.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match="readable"):
        full_swag.load_swag(tmp_path / "broken.npz")
    wrong = jax.tree.map(lambda a: a[..., :1] if a.ndim == 2 else a, loaded.mean)
    with pytest.raises(DataFormatError, match="shape"):
        full_swag.as_param_state(template, wrong)


def test_draws_have_the_posterior_spread(tuned):
    _, _, moments = tuned
    std = ba.posterior_std(moments.mean, moments.sqmean)
    theta = ba.draw(jax.random.key(0), moments.mean, std, 1.5)
    z = np.concatenate([((np.asarray(d) - m) / (1.5 * s)).ravel()
                        for d, m, s in zip(_leaves(theta), _leaves(moments.mean), _leaves(std))])
    assert z.size > 7000 and abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05  # standard normal ξ
    again = ba.draw(jax.random.key(0), moments.mean, std, 1.5)
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(theta), _leaves(again)))


def test_scale_zero_is_ifgsm_on_the_mean_network(tuned):
    _, tuned_model, moments = tuned
    sur = base.Surrogate.from_model(tuned_model)
    mean_model = nnx.merge(*nnx.split(tuned_model))
    nnx.update(mean_model, moments.mean)
    mean_sur = base.Surrogate.from_model(mean_model)
    x, _ = _data(seed=1)
    y = jnp.argmax(mean_sur.apply_fn(mean_sur.params, x), -1)
    ref = fgsm.IFGSM(mean_sur, iterations=3, epsilon=0.05).run(jax.random.key(0), x, y).x_adv
    # θ = μ exactly; the input gradients come from single-sample passes inside the draw loop, so equality holds to
    # float32 rounding (1 ulp seen)
    three = ba.BA(sur, moments, scale=0.0, iterations=3, epsilon=0.05).run(jax.random.key(0), x, y).x_adv
    np.testing.assert_allclose(three, ref, atol=5e-7, rtol=0)


def test_shared_step_is_the_mean_gradient_of_explicit_draws_and_per_sample_draws_use_own_keys(tuned):
    _, tuned_model, moments = tuned
    atk = ba.BA(base.Surrogate.from_model(tuned_model), moments, n_models=2, shared_draws=True, epsilon=0.05)
    (state, (mean, sqmean)), inner = atk.surrogate.params, atk.surrogate.apply_fn.apply_fn
    x, y = (jnp.asarray(a) for a in _data(seed=2))
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(5), jnp.arange(N))
    step = jax.jit(lambda spec, xs, ys, ks, t: spec.step(atk.surrogate.apply_fn, atk.surrogate.params, xs, ys, ks,
                                                          ba.BAState(xs), t)[0].x, static_argnums=0)
    t, b = 3, 4
    xb, yb = x[b:b + 1], y[b:b + 1]
    std = ba.posterior_std(mean, sqmean)
    grads = [base.loss_gradient(inner, nnx.merge_state(state, ba.draw(k, mean, std, 1.5)), xb, yb, -1.0)[0]
             for k in jax.random.split(jax.random.fold_in(keys[b], t), 2)]
    expected = base.descend(atk.config, xb, xb, common.mean_abs_normalise((grads[0] + grads[1]) / 2))
    np.testing.assert_allclose(step(atk.spec, xb, yb, keys[b:b + 1], t), expected, atol=1e-6)
    # per-sample draws: sample b of a batch = the shared-draw step on b alone with b's key
    full = step(ba.BASpec(atk.config, 2, 1.5, shared_draws=False), x, y, keys, t)
    np.testing.assert_allclose(full[b:b + 1], expected, atol=1e-6)
    assert not np.allclose(full[b - 1], full[b])


def test_ba_stays_in_the_ball_is_deterministic_and_independent_of_the_batch(tuned):
    _, tuned_model, moments = tuned
    atk = ba.BA(base.Surrogate.from_model(tuned_model), moments, iterations=3)
    x, y = _data(seed=3)
    full, again = atk.run(jax.random.key(1), x, y), atk.run(jax.random.key(1), x, y)
    perm = np.array([3, 1, 5, 0, 2, 4])  # same shape (one compilation), other neighbours for every sample
    part = atk.run(jax.random.key(1), x[perm], y[perm], indices=jnp.asarray(perm))
    np.testing.assert_array_equal(full.x_adv, again.x_adv)
    np.testing.assert_allclose(part.x_adv, full.x_adv[perm], atol=1e-6)
    assert np.abs(np.asarray(full.x_adv) - x).max() <= 0.01 + 1e-6 and np.isfinite(np.asarray(full.x_adv)).all()
    other = atk.run(jax.random.key(2), x, y)
    assert not np.array_equal(other.x_adv, full.x_adv)  # the draws depend on the key
    with pytest.raises(TypeError, match="NNX"):
        ba.BA(base.Surrogate(lambda p, x: x, {"w": jnp.zeros(1)}), moments)


def test_moments_of_a_model_with_integer_named_submodules_round_trip(tmp_path):
    """npz names cannot tell a list index from a dict key "0": loading must follow the model's own keys."""
    from tasar_jax import models

    params = nnx.state(models.create("mlp", "hdm05", hidden=8), nnx.Param)
    loaded, _ = full_swag.load_swag(full_swag.save_swag(tmp_path / "s.npz", full_swag.SwagMoments(params, params)))
    for a, b in zip(_leaves(params), _leaves(full_swag.as_param_state(params, loaded.mean))):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(DataFormatError, match="lack"):
        full_swag.as_param_state(params, {})
