"""Appended heads reproduce upstream's AppendedModel outputs, for single surrogates and two-stream ensembles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax.posterior import heads


def _stack(io, prefix):
    return heads.HeadParams(*(jnp.asarray(io[f"{prefix}{k}"]) for k in ("W1", "b1", "W2", "b2")))


def test_single_stream_heads_match_fixture(upstream):
    io = np.load(upstream / "appended_head.npz")
    stacked, z = _stack(io, ""), jnp.asarray(io["z"])
    per_head = jax.vmap(heads.appended_logits, in_axes=(0, None))(stacked, z)
    np.testing.assert_allclose(per_head, io["out_per_head"], atol=1e-5)
    np.testing.assert_allclose(heads.summed_appended_logits((stacked,), (z,)), io["out_sum"], atol=1e-5)
    grad_z = jax.grad(lambda z: jnp.sum(heads.summed_appended_logits((stacked,), (z,)) * io["cot"]))(z)
    np.testing.assert_allclose(grad_z, io["grad_z"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stem", ["MSG3D", "AGCN"])
def test_two_stream_heads_reproduce_the_bone_head_quirk(upstream, stem):
    io = np.load(upstream / f"{stem}_hdm05_io.npz")
    joint, bone = _stack(io, "app_joint_"), _stack(io, "app_bone_")
    z_joint, z_bone = jnp.asarray(io["logits_joint_stream"]), jnp.asarray(io["logits_bone_stream"])
    upstream_quirk = jax.vmap(lambda j, b: heads.appended_model((j, b), (z_joint, z_bone),
                                                                bone_head_sees_joint=True))(joint, bone)
    np.testing.assert_allclose(upstream_quirk, io["app_logits_per_head"], atol=1e-4)
    intended = jax.vmap(lambda j, b: heads.appended_model((j, b), (z_joint, z_bone)))(joint, bone)
    assert np.abs(np.asarray(intended) - io["app_logits_per_head"]).max() > 1e-2


def test_posterior_samples_have_the_swag_moments():
    k = 4
    mean = heads.HeadParams(jnp.ones((2, k, k)), jnp.zeros((2, k)), -jnp.ones((2, k, k)), jnp.full((2, k), 0.5))
    sqmean = jax.tree.map(lambda m: m**2 + 0.04, mean)  # variance 0.04
    draws = heads.sample_heads(jax.random.key(0), heads.Posterior(mean, mean, sqmean), 4000, scale=1.5)
    assert draws.w1.shape == (4000, 2, k, k)
    np.testing.assert_allclose(draws.w1.mean(0), mean.w1, atol=0.02)
    np.testing.assert_allclose(draws.b2.std(0), 1.5 * 0.2, rtol=0.05)
    degenerate = heads.Posterior(mean, mean, jax.tree.map(lambda m: m**2 - 1.0, mean))  # sq < μ²: clamped
    assert np.isfinite(heads.sample_heads(jax.random.key(1), degenerate, 3).w1).all()


def test_per_stream_values_must_be_tuples():
    """Streams are a type: a bare posterior, head stack or logits array is refused with a clear error."""
    k = 3
    stack = heads.HeadParams(jnp.zeros((2, k, k)), jnp.zeros((2, k)), jnp.zeros((2, k, k)), jnp.zeros((2, k)))
    z = jnp.ones((4, k))
    with pytest.raises(TypeError, match="per-stream tuple"):
        heads.summed_appended_logits(stack, (z,))
    with pytest.raises(TypeError, match="per-stream tuple"):
        heads.summed_appended_logits((stack,), z)
    np.testing.assert_array_equal(heads.summed_appended_logits((stack,), (z,)), 2 * z)  # zero heads: 2·ReLU(z)
    pair = heads.summed_appended_logits((stack, stack), (z, 2 * z))
    np.testing.assert_array_equal(pair, 2 * (z + 2 * z))
