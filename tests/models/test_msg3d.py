"""MS-G3D: graph constructions, window unfolding, shapes, modes, streams and parameter counts."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tasar_jax import models
from tasar_jax.data import layouts
from tasar_jax.models import msg3d, msg3d_layers, streams
from tests.conftest import random_batch

TINY = dict(width=0.0625, num_classes=7)  # channels 6/12/24


@pytest.mark.parametrize("dataset, expected", [("hdm05", 3_196_370), ("ntu60", 3_194_595), ("ntu120", 3_217_695)])
def test_upstream_parameter_counts(dataset, expected):
    model = nnx.eval_shape(lambda: models.create("msg3d_joint", dataset))
    assert models.num_parameters(model) == expected


@pytest.mark.parametrize("layout", ["hdm05", "ntu-rgb+d"])
def test_binary_adjacency_is_the_symmetric_edge_set(layout):
    a = msg3d_layers.binary_adjacency(layout)
    assert a.dtype == np.float32 and (a == a.T).all() and np.trace(a) == 0
    assert a.sum() == 2 * len(layouts.get_skeleton(layout).edges) == 48
    i, j = (10, 11) if layout == "hdm05" else (1, 20)  # HDM05 pairs are 0-based, NTU's 1-based (2, 21)
    assert a[i, j] == a[j, i] == 1


def test_k_adjacency_partitions_joints_by_hop_distance():
    a = msg3d_layers.binary_adjacency("hdm05")
    hops = [msg3d_layers.k_adjacency(a, k, with_self=False) for k in range(1, 13)]
    np.testing.assert_array_equal(hops[0], a)
    np.testing.assert_array_equal(msg3d_layers.k_adjacency(a, 0), np.eye(25))
    total = np.eye(25) + sum(hops)
    assert total.max() == 1  # every pair at exactly one distance
    assert total[19, 24] == 1 and total[4, 19] == 0  # hand to hand: 12 hops; foot to hand: 13, beyond 13 scales
    np.testing.assert_array_equal(msg3d_layers.k_adjacency(a, 2, with_self=True), hops[1] + np.eye(25))


def test_normalized_scales_are_float32_symmetric_and_degree_scaled():
    a = msg3d_layers.binary_adjacency("hdm05")
    powers = msg3d_layers.gcn_scales("hdm05", 13)
    assert powers.shape == (325, 25) and powers.dtype == np.float32
    np.testing.assert_array_equal(powers[:25], np.eye(25))
    one_hop = powers[25:50]
    deg = a.sum(1) + 1
    np.testing.assert_allclose(one_hop, (a + np.eye(25)) / np.sqrt(np.outer(deg, deg)), rtol=1e-7)
    for w, rows in ((3, 450), (5, 750)):
        scales = msg3d_layers.g3d_scales("hdm05", 6, w)
        assert scales.shape == (rows, 25 * w) and scales.dtype == np.float32
        block = scales[:25 * w]
        np.testing.assert_array_equal(block, np.eye(25 * w))
        np.testing.assert_allclose(scales, np.concatenate([s.T for s in np.split(scales, 6)]), atol=0)


def test_inverse_square_roots_are_correctly_rounded():
    a = np.ones((7, 7), np.float32)  # degree 7: float32 np.power(7, -0.5) is off by one ulp on some CPUs
    expected = np.float32(7.0 ** -0.5).astype(np.float64) ** 2
    np.testing.assert_array_equal(msg3d_layers.normalize_adjacency(a), np.full((7, 7), expected, np.float32))


@pytest.mark.parametrize("window, stride, t", [(3, 1, 7), (5, 1, 7), (3, 2, 8), (5, 2, 7)])
def test_unfold_windows_matches_a_direct_construction(window, stride, t):
    x = np.random.default_rng(0).standard_normal((2, t, 4, 3)).astype(np.float32)
    out = np.asarray(msg3d_layers.unfold_windows(jnp.asarray(x), window, stride))
    pad = (window - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (0, 0), (0, 0)))
    num_windows = (t - 1) // stride + 1
    expected = np.zeros((2, num_windows, window * 4, 3), np.float32)
    for tw in range(num_windows):
        for k in range(window):
            expected[:, tw, k * 4:(k + 1) * 4] = xp[:, tw * stride + k]
    np.testing.assert_array_equal(out, expected)


def test_max_pool_pads_with_minus_infinity():
    x = -jnp.arange(1.0, 6.0).reshape(1, 5, 1, 1)
    np.testing.assert_array_equal(msg3d_layers.max_pool_time(x, 1).ravel(), [-1, -1, -2, -3, -4])
    np.testing.assert_array_equal(msg3d_layers.max_pool_time(x, 2).ravel(), [-1, -2, -4])


def forward(model, x):
    """Jitted call: one XLA compile per model structure is much cheaper here than op-by-op eager dispatch."""
    return _jitted_forward(model, jnp.asarray(x))


_jitted_forward = nnx.jit(lambda model, x: model(x))


@pytest.fixture(scope="module")
def tiny_pair():
    ensemble = models.create("msg3d", "hdm05", **TINY)
    assert isinstance(ensemble, streams.TwoStream)
    ensemble.eval()
    return ensemble.model_joint, ensemble.model_bone


@pytest.fixture(scope="module")
def tiny_bone_ntu():
    model = models.create("msg3d_bone", "ntu60", **TINY)
    model.eval()
    return model


def test_config_channels_and_json_round_trip():
    config = msg3d.Config.for_dataset("ntu60", stream="bone")
    assert config.channels == (96, 192, 384) and config.num_persons == 2 and config.parents == layouts.NTU_PARENTS
    assert msg3d.Config.for_dataset("hdm05", width=0.0625).channels == (6, 12, 24)
    back = msg3d.Config(**json.loads(json.dumps(dataclasses.asdict(config))))
    assert back == config and hash(back) == hash(config)
    with pytest.raises(ValueError, match="unknown stream"):
        msg3d.Config(num_classes=3, stream="motion")


def test_shapes_for_one_and_two_persons(tiny_pair, tiny_bone_ntu):
    joint, bone = tiny_pair
    assert (joint.config.stream, bone.config.stream) == ("joint", "bone")
    assert forward(joint, random_batch(2, t=12, m=1)).shape == (2, 7)
    assert tiny_bone_ntu.data_bn.scale.shape == (150,)
    assert forward(tiny_bone_ntu, random_batch(1, t=12, m=2)).shape == (1, 7)


def _stage_outputs(model, h):
    outputs = []
    for gcn3d, sgcn, tcn in model.stages():
        s = h
        for layer in sgcn:
            s = layer(s)
        h = tcn(jax.nn.relu(s + gcn3d(h)))
        outputs.append(h)
    return outputs


def test_time_is_downsampled_twice(tiny_pair):
    joint, _ = tiny_pair
    graph, state = nnx.split(joint)
    outputs = jax.eval_shape(lambda st: _stage_outputs(nnx.merge(graph, st), jnp.zeros((2, 12, 25, 3))), state)
    assert [o.shape[1:] for o in outputs] == [(12, 25, 6), (6, 25, 12), (3, 25, 24)]


def test_eval_is_deterministic_and_leaves_statistics(tiny_pair):
    joint, _ = tiny_pair
    x = random_batch(2, t=12)
    before = jax.tree.map(np.asarray, nnx.state(joint, nnx.BatchStat))
    np.testing.assert_array_equal(forward(joint, x), forward(joint, x))
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, nnx.state(joint, nnx.BatchStat)))


def test_train_mode_is_finite_and_updates_statistics(tiny_pair):
    model, _ = tiny_pair
    before = np.asarray(model.tcn3.branches[5].bn_in.mean[...])
    model.train()
    try:
        assert np.isfinite(forward(model, random_batch(2, t=12))).all()
        assert not np.allclose(before, model.tcn3.branches[5].bn_in.mean[...])
    finally:
        model.eval()


def test_bone_stream_is_translation_invariant(tiny_pair, tiny_bone_ntu):
    offset = np.asarray([0.3, -0.2, 0.5], np.float32)[None, :, None, None, None]
    x = random_batch(1, t=12, m=2)
    np.testing.assert_allclose(forward(tiny_bone_ntu, x + offset), forward(tiny_bone_ntu, x), atol=1e-5)
    joint, _ = tiny_pair
    x = random_batch(2, t=12)
    assert not np.allclose(forward(joint, x + offset), forward(joint, x), atol=1e-3)
