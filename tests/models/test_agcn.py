"""2s-AGCN: graphs (incl. upstream's shifted HDM05 graph), shapes, modes, parameter counts, streams, ensemble."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tasar_jax import models
from tasar_jax.data import layouts
from tasar_jax.models import agcn, streams
from tasar_jax.models.layers import Constant
from tests.conftest import random_batch


@pytest.mark.parametrize("dataset, expected", [("hdm05", 3_470_645), ("ntu60", 3_469_510), ("ntu120", 3_484_930)])
def test_upstream_parameter_counts(dataset, expected):
    model = nnx.eval_shape(lambda: models.create("agcn_joint", dataset))
    assert models.num_parameters(model) == expected
    assert model.data_bn.scale.shape == (layouts.get_dataset(dataset).num_persons * 75,)


def _edges(a):
    """Set of (i, j) with ``a[j, i] != 0`` (upstream's edge2mat convention)."""
    return {(int(i), int(j)) for j, i in zip(*np.nonzero(a))}


def test_upstream_shifted_hdm05_graph():
    a = agcn.spatial_graph("hdm05")
    assert a.dtype == np.float32 and a.shape == (3, 25, 25)
    np.testing.assert_array_equal(a[0], np.eye(25))
    inward, outward = _edges(a[1]), _edges(a[2])
    # (10, 0) − 1 → (9, −1) → (9, 24); (0, 1) − 1 → (−1, 0) → (24, 0); the real edge (10, 0) is absent
    assert {(9, 24), (24, 0), (9, 4), (9, 10), (22, 23)} <= inward
    assert (10, 0) not in inward and (23, 24) not in inward
    assert outward == {(j, i) for i, j in inward}
    assert inward == set(agcn.upstream_shifted_hdm05_edges()) and len(inward) == 24
    # after the shift joint 9 is the child in three edges (→ 10, 24, 4): column normalisation divides by 3
    assert a[1][24, 9] == pytest.approx(1 / 3) and a[1][0, 24] == pytest.approx(1.0)
    np.testing.assert_allclose(a[1].sum(axis=0)[a[1].sum(axis=0) > 0], 1.0, rtol=1e-6)


def test_corrected_hdm05_and_ntu_graphs():
    corrected = agcn.spatial_graph("hdm05", "corrected")
    assert _edges(corrected[1]) == set(layouts.HDM05_EDGES)
    assert (10, 0) in _edges(corrected[1]) and (9, 24) not in _edges(corrected[1])
    ntu = agcn.spatial_graph("ntu-rgb+d")
    assert _edges(ntu[1]) == set(layouts.NTU_EDGES) and ntu[2][1, 20] == 0.25
    with pytest.raises(ValueError, match="hdm05_graph"):
        agcn.Config(num_classes=3, hdm05_graph="fixed")


def test_graph_constant_is_outside_the_state_dict_and_follows_the_switch():
    shifted = models.create("agcn_joint", "hdm05", width=0.125)
    corrected = models.create("agcn_joint", "hdm05", width=0.125, hdm05_graph="corrected")
    assert isinstance(shifted.A, Constant) and shifted.A[...].dtype == jnp.float32
    np.testing.assert_array_equal(shifted.A[...], agcn.spatial_graph("hdm05"))
    np.testing.assert_array_equal(corrected.A[...], agcn.spatial_graph("hdm05", "corrected"))
    x = jnp.asarray(random_batch(4, t=16))
    shifted.eval(), corrected.eval()
    nnx.update(corrected, nnx.state(shifted, nnx.Param))  # same weights, different fixed graph → different logits
    assert not np.allclose(shifted(x), corrected(x))


def test_upstream_initialisation():
    model = models.create("agcn_joint", "hdm05", width=0.125)
    gcn = model.l2.gcn1
    np.testing.assert_array_equal(gcn.PA[...], np.full((3, 25, 25), 1e-6, np.float32))
    np.testing.assert_array_equal(gcn.bn.scale[...], np.full(8, 1e-6, np.float32))
    np.testing.assert_array_equal(model.l2.tcn1.bn.scale[...], np.ones(8, np.float32))
    assert gcn.inter_channels == 2 and gcn.conv_a[0].kernel.shape == (1, 1, 8, 2)
    assert float(jnp.std(model.fc.kernel[...])) == pytest.approx(np.sqrt(2 / 65), rel=0.2)


def test_config_round_trips_through_json():
    config = models.config_for("agcn_bone", "ntu60", width=0.25)
    assert config.stream == "bone" and config.parents == layouts.NTU_PARENTS and config.num_persons == 2
    back = agcn.Config(**json.loads(json.dumps(dataclasses.asdict(config))))
    assert back == config and hash(back) == hash(config)


@pytest.fixture(scope="module")
def tiny_ntu():
    return models.create("agcn_joint", "ntu60", width=0.125)


@pytest.mark.parametrize("dataset, m", [("hdm05", 1), ("ntu60", 2), ("ntu60-single", 1)])
def test_shapes_and_persons(dataset, m):
    overrides = {"num_persons": 1} if dataset == "ntu60-single" else {}
    model = models.create("agcn_bone", dataset.split("-")[0], width=0.125, **overrides)
    model.eval()
    logits = model(jnp.asarray(random_batch(4 // m, t=16, m=m)))
    assert logits.shape == (4 // m, model.config.num_classes) and np.isfinite(logits).all()


def test_wrong_person_count_is_rejected(tiny_ntu):
    with pytest.raises(ValueError, match="M=2 persons, got M=1"):
        tiny_ntu(jnp.asarray(random_batch(4, t=16, m=1)))


def test_time_is_downsampled_twice(tiny_ntu):
    assert [u.tcn1.conv.strides[0] for u in tiny_ntu.units] == list(agcn.UPSTREAM_STRIDES)
    assert [u.residual_mode for u in tiny_ntu.units] == ["none"] + ["identity"] * 3 + [
        "conv", "identity", "identity", "conv", "identity", "identity"]
    assert [u.gcn1.has_down for u in tiny_ntu.units] == [True, False, False, False, True] + [False] * 2 + [
        True, False, False]


def test_eval_is_deterministic_and_leaves_statistics(tiny_ntu):
    tiny_ntu.eval()
    x = jnp.asarray(random_batch(2, t=16, m=2))
    before = jax.tree.map(np.asarray, nnx.state(tiny_ntu, nnx.BatchStat))
    np.testing.assert_array_equal(tiny_ntu(x), tiny_ntu(x))
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, nnx.state(tiny_ntu, nnx.BatchStat)))


def test_train_mode_is_finite_and_updates_statistics():
    model = models.create("agcn_joint", "hdm05", width=0.125)
    x = jnp.asarray(random_batch(4, t=16))
    mean_before = np.asarray(model.data_bn.mean[...])
    gcn_var_before = np.asarray(model.l3.gcn1.bn.var[...])
    model.train()
    out = model(x)
    assert np.isfinite(out).all()
    assert not np.allclose(mean_before, model.data_bn.mean[...])
    assert not np.allclose(gcn_var_before, model.l3.gcn1.bn.var[...])
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))


def test_attention_is_a_softmax_over_source_joints():
    gcn = models.create("agcn_joint", "hdm05", width=0.125).l1.gcn1
    for conv in gcn.conv_a:  # sharpen the attention so that the two axes differ clearly
        conv.kernel.set_value(30 * conv.kernel[...])
    x = jnp.asarray(random_batch(4, t=16, m=1)).transpose(0, 2, 3, 1, 4)[..., 0]  # (N, T, V, 3)
    s = gcn.attention(x)
    assert s.shape == (4, 3, 25, 25)
    np.testing.assert_allclose(s.sum(axis=2), 1.0, rtol=1e-5)  # upstream Softmax(-2): columns sum to one
    assert not np.allclose(s.sum(axis=3), 1.0, rtol=1e-3)


def test_bone_stream_sees_bone_vectors():
    joint = models.create("agcn_joint", "hdm05", width=0.125, seed=3)
    bone = models.create("agcn_bone", "hdm05", width=0.125, seed=3)
    joint.eval(), bone.eval()
    x = jnp.asarray(random_batch(4, t=16))
    np.testing.assert_allclose(bone(x), joint(streams.bone_vectors(x, layouts.HDM05_PARENTS)), rtol=1e-5, atol=1e-6)


def test_ensemble_sums_the_streams():
    model = models.create("agcn", "hdm05", width=0.125)
    assert isinstance(model, streams.TwoStream) and model.model_bone.config.stream == "bone"
    model.eval()
    x = jnp.asarray(random_batch(4, t=16))
    z_joint, z_bone = model.stream_logits(x)
    np.testing.assert_allclose(model(x), z_joint + z_bone, rtol=1e-6)
