"""DIM's transforms (random by nature, no fixture): the crop-resize against torch's F.interpolate, the shear, the
corruption's axis; the chained and unchained gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax import losses
from tasar_jax.attacks import base, dim, registry


def _sample(t=60, v=25, m=2, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(3, t, v, m)), jnp.float32)


def test_full_length_crop_is_the_identity():
    x = _sample()
    np.testing.assert_array_equal(dim.crop_resize(x, 0, 60), x)


@pytest.mark.parametrize("t, length, start", [(60, 57, 2), (60, 48, 12), (60, 59, 0), (30, 24, 5), (7, 5, 1)])
def test_crop_resize_matches_torch_interpolate(t, length, start):
    torch = pytest.importorskip("torch")
    x = _sample(t=t, m=2, seed=t + length)
    crop = torch.from_numpy(np.array(x)[:, start:start + length]).permute(0, 2, 3, 1).reshape(1, -1, length, 1)
    ref = torch.nn.functional.interpolate(crop, size=(t, 1), mode="bilinear", align_corners=False)
    ref = ref[0, :, :, 0].reshape(3, 25, 2, t).permute(0, 3, 1, 2).numpy()
    # both compute the source index in float32 (spacing 4e-6 near 60): measured ≤ 2.3e-5 apart on N(0,1) values
    np.testing.assert_allclose(jax.jit(dim.crop_resize)(x, start, length), ref, atol=5e-5)


def test_crop_window_respects_the_length_rules():
    keys = jax.random.split(jax.random.key(0), 400)
    for t in (60, 20):
        starts, lengths = jax.jit(jax.vmap(lambda k, t=t: dim.crop_window(jax.random.uniform(k, (2,)), t)))(keys)
        starts, lengths = np.asarray(starts), np.asarray(lengths)
        assert lengths.min() >= int(0.95 * t) - 1 and lengths.max() <= t and (starts >= 0).all()
        assert (starts + lengths <= t).all() and len(np.unique(starts)) > 1
        assert set(np.unique(lengths)) == ({57, 58, 59} if t == 60 else {19})  # ⌊T·s⌋, s ∈ (0.95, 1)
    _, lengths = jax.jit(jax.vmap(lambda k: dim.crop_window(jax.random.uniform(k, (2,)), 60, scale_low=0.1)))(keys)
    assert np.asarray(lengths).min() == 48  # upstream's minimum crop


def test_shear_keeps_the_diagonal_and_multiplies_every_point():
    s = dim.shear_matrix(jax.random.uniform(jax.random.key(3), (9,)))
    np.testing.assert_array_equal(np.diag(s), 1.0)
    off = np.asarray(s)[~np.eye(3, dtype=bool)]
    assert (np.abs(off) < 1).all() and np.abs(off).max() > 0
    x = _sample(t=5, v=4, m=2)
    np.testing.assert_allclose(dim.shear(x, s)[:, 2, 3, 1], np.asarray(s) @ np.asarray(x[:, 2, 3, 1]), rtol=1e-5)


@pytest.mark.parametrize("frames", [False, True])
def test_corruption_touches_only_the_chosen_axis(frames):
    x = _sample(t=40, v=25, m=2)
    for seed in range(6):
        out = np.asarray(dim.corrupt(x, jax.random.uniform(jax.random.key(seed), (25,)), 15, frames))
        changed = out != np.asarray(x)
        per_frame, per_joint = changed.any(axis=(0, 2, 3)), changed.any(axis=(0, 1, 3))
        if frames:  # upstream: whole frames among 0..24, every joint
            assert 0 < per_frame.sum() <= 15 and not per_frame[25:].any()
            assert np.array_equal(changed.any(axis=(0, 3)), np.repeat(per_frame[:, None], 25, axis=1))
        else:
            assert 0 < per_joint.sum() <= 15
            assert np.array_equal(changed.any(axis=(0, 3)), np.repeat(per_joint[None], 40, axis=0))


def _tiny(t=10, v=25, m=2, k=5):
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(0, 0.2, (3 * t * v * m, k)), jnp.float32)
    surrogate = base.Surrogate(lambda p, x: jnp.tanh(x.reshape(x.shape[0], -1) @ p), w)
    x = jnp.asarray(rng.uniform(-1, 1, (3, 3, t, v, m)), jnp.float32)
    return surrogate, x, jnp.asarray(rng.integers(0, k, 3), jnp.int32)


@pytest.mark.parametrize("chain", [True, False])
def test_step_is_a_sign_step_on_the_gradient_at_the_augmented_input(chain):
    surrogate, x, labels = _tiny()
    spec = dim.DIMSpec(base.AttackConfig(targeted=True), chain=chain)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(1), jnp.arange(3))
    step = jax.jit(lambda state: spec.step(surrogate.apply_fn, surrogate.params, x, labels, keys, state, 2))
    new, logits = step(spec.init(x, labels))

    def loss(z, b):
        return losses.cross_entropy(surrogate.apply_fn(surrogate.params, z[None]), labels[b][None])[0]

    @jax.jit
    def reference(z, key, b):
        if chain:
            return jax.grad(lambda z_: loss(spec.augment(z_, key), b))(z)
        return jax.grad(loss)(spec.augment(z, key), b)

    for b in range(3):
        g = reference(x[b], jax.random.fold_in(keys[b], 2), b)
        np.testing.assert_allclose(new.x[b], x[b] - 0.01 * jnp.sign(g), atol=1e-6)  # targeted: descend on CE
    np.testing.assert_allclose(logits, surrogate.apply_fn(surrogate.params, x), rtol=1e-6)
    assert not np.allclose(spec.augment(x[0], jax.random.key(0)), spec.augment(x[0], jax.random.key(1)))


def test_upstream_switch_and_any_length():
    surrogate, x, labels = _tiny(t=10, m=1, v=25)
    up = registry.constructor("dim")(surrogate, upstream=True, iterations=2)
    assert not up.spec.chain and up.spec.corrupt_frames
    r = up.run(jax.random.key(0), x, labels)
    assert np.isfinite(np.asarray(r.x_adv)).all() and np.abs(np.asarray(r.x_adv - x)).max() <= 0.01 + 1e-6
