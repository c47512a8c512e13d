"""CTR-GCN shapes, modes, parameter counts, graph and the topology refinement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tasar_jax import models
from tasar_jax.models import ctrgcn
from tasar_jax.models.layers import Constant
from tests.conftest import random_batch


@pytest.mark.parametrize("dataset, expected", [("hdm05", 1_447_807), ("ntu60", 1_446_672), ("ntu120", 1_462_092)])
def test_upstream_parameter_counts(dataset, expected):
    model = nnx.eval_shape(lambda: models.create("ctrgcn", dataset))
    assert models.num_parameters(model) == expected


@pytest.fixture(scope="module")
def tiny():
    """Tiny NTU model (M = 2); tests that change its state work on ``nnx.clone`` copies."""
    return models.create("ctrgcn", "ntu60", width=0.125, num_classes=7)


@pytest.fixture(scope="module")
def tiny_hdm05():
    return models.create("ctrgcn", "hdm05", width=0.125, num_classes=7)


@pytest.mark.parametrize("name, persons", [("tiny_hdm05", 1), ("tiny", 2)])
def test_shapes_and_persons(name, persons, request):
    model = request.getfixturevalue(name)
    model.eval()
    assert model.data_bn.mean.shape == (persons * 25 * 3,)
    assert model(jnp.asarray(random_batch(3, t=16, m=persons))).shape == (3, 7)
    with pytest.raises(ValueError, match="num_persons"):
        model(jnp.asarray(random_batch(1, t=16, m=3 - persons)))


def test_data_bn_channel_order_is_person_joint_coordinate(tiny):
    """Shifting data-BN channel m·75 + v·3 + c must shift exactly coordinate c of joint v of person m."""
    model = nnx.clone(tiny)
    model.eval()
    m, v, c = 1, 7, 2
    model.data_bn.bias.set_value(model.data_bn.bias[...].at[m * 75 + v * 3 + c].add(1.0))
    x = jnp.zeros((1, 3, 4, 25, 2))
    h = model.normalised_input(x).reshape(1, 2, 4, 25, 3)
    expected = np.zeros((1, 2, 4, 25, 3))
    expected[:, m, :, v, c] = 1.0
    np.testing.assert_allclose(h, expected, atol=1e-6)


def test_ntu_spatial_graph():
    a = ctrgcn.ntu_spatial_graph()
    assert a.shape == (3, 25, 25) and a.dtype == np.float32
    np.testing.assert_array_equal(a[0], np.eye(25))
    # inward: child 0-based 0 (spine base) → parent 1 (mid spine) gives A[1, 0]; columns with edges sum to one
    assert a[1, 1, 0] == 1.0 and a[2, 0, 1] == 1.0
    # inward: each child has one parent, so norm(inward) is binary; outward columns split over the children
    np.testing.assert_array_equal(a[1], (a[1] > 0).astype(np.float32))
    assert a[1].sum() == 24
    np.testing.assert_array_equal(np.nonzero(a[2][:, 20])[0], [1, 2, 4, 8])  # spine shoulder has 4 children
    np.testing.assert_allclose(a[2][[1, 2, 4, 8], 20], 0.25)


def test_hdm05_uses_the_ntu_graph(tiny_hdm05):
    np.testing.assert_array_equal(tiny_hdm05.l1.gcn1.PA[...], ctrgcn.ntu_spatial_graph())


def test_structure_strides_and_residuals(tiny_hdm05):
    model = tiny_hdm05
    assert [u.residual_mode for u in model.units] == ["none"] + ["identity"] * 3 + [
        "conv", "identity", "identity", "conv", "identity", "identity"]
    assert [u.tcn1.branches[0].temporal.conv.strides[0] for u in model.units] == list(ctrgcn.UPSTREAM_STRIDES)
    assert [b.temporal.conv.kernel_dilation for b in model.l3.tcn1.branches[:2]] == [(1, 1), (2, 1)]
    assert model.l1.gcn1.has_down and not model.l2.gcn1.has_down and model.l5.gcn1.has_down
    # relation channels: 8 for the 3-coordinate input, C/8 afterwards
    assert model.l1.gcn1.convs[0].conv1.out_features == 8 and model.l2.gcn1.convs[0].conv1.out_features == 1
    np.testing.assert_allclose(model.l2.gcn1.bn.scale[...], 1e-6)


def test_ctrgc_with_zero_alpha_is_a_plain_graph_convolution():
    """alpha = 0 (its initial value) leaves only A: z[t,u] = Σ_v A[u,v] conv3(x)[t,v]."""
    layer = ctrgcn.CTRGC(16, 6, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 5, 25, 16))
    a = jnp.asarray(ctrgcn.ntu_spatial_graph()[1])
    expected = jnp.einsum("uv,ntvc->ntuc", a, layer.conv3(x))
    np.testing.assert_allclose(layer(x, a, jnp.zeros((1,))), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(layer(x, a, jnp.ones((1,))), expected, atol=1e-3)


def test_temporal_length_is_halved_twice(tiny):
    tiny.eval()
    h = tiny.normalised_input(jnp.asarray(random_batch(3, t=16, m=2)))
    lengths = []
    for unit in tiny.units:
        h = unit(h)
        lengths.append(h.shape[1])
    assert lengths == [16] * 4 + [8] * 3 + [4] * 3


def test_eval_is_deterministic_and_leaves_statistics(tiny):
    tiny.eval()
    x = jnp.asarray(random_batch(3, t=16, m=2))
    before = jax.tree.map(np.asarray, nnx.state(tiny, nnx.BatchStat))
    np.testing.assert_array_equal(tiny(x), tiny(x))
    after = nnx.state(tiny, nnx.BatchStat)
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, after))


def test_train_mode_is_finite_and_updates_statistics(tiny_hdm05):
    model = nnx.clone(tiny_hdm05)
    x = jnp.asarray(random_batch(4, t=16))
    before = np.asarray(model.data_bn.mean[...]), np.asarray(model.l10.tcn1.branches[2].pool_bn.var[...])
    model.train()
    logits = model(x, rng_key=jax.random.key(0))
    assert np.isfinite(logits).all()
    assert not np.allclose(before[0], model.data_bn.mean[...])
    assert not np.allclose(before[1], model.l10.tcn1.branches[2].pool_bn.var[...])
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))


def test_non_adaptive_graph_is_a_constant():
    fixed = nnx.eval_shape(lambda: models.create("ctrgcn", "hdm05", width=0.125, adaptive=False))
    adaptive = nnx.eval_shape(lambda: models.create("ctrgcn", "hdm05", width=0.125))
    assert models.num_parameters(adaptive) - models.num_parameters(fixed) == 10 * 3 * 25 * 25
    assert isinstance(fixed.l3.gcn1.A, Constant) and not hasattr(fixed.l3.gcn1, "PA")


def test_config_round_trips_through_asdict():
    import dataclasses

    config = ctrgcn.Config.for_dataset("ntu120", width=0.5)
    assert ctrgcn.Config(**dataclasses.asdict(config)) == config
    assert config.num_persons == 2 and config.channels == (32,) * 4 + (64,) * 3 + (128,) * 3
    hash(config)
