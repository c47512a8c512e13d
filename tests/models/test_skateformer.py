"""SkateFormer: parameter counts, input transform, window partitions, relative-position buffers, modes."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tasar_jax import models
from tasar_jax.data import formats
from tasar_jax.models import skateformer, skateformer_layers
from tests.conftest import random_batch

TINY = dict(width=0.25, depths=(1, 1))  # channels (32, 64), one downsampling block


@pytest.mark.parametrize("dataset, expected", [("hdm05", 3_400_472), ("ntu60", 3_616_083), ("ntu120", 3_627_663)])
def test_upstream_parameter_counts(dataset, expected):
    model = nnx.eval_shape(lambda: models.create("skateformer", dataset))
    assert models.num_parameters(model) == expected


def test_dataset_configs_and_width():
    ntu, hdm = models.config_for("skateformer", "ntu60"), models.config_for("skateformer", "hdm05")
    assert (ntu.num_people, ntu.partition_sizes) == (2, ((8, 4), (8, 12), (8, 4), (8, 12)))
    assert (hdm.num_people, hdm.partition_sizes, hdm.num_classes) == (1, ((8, 4), (8, 6), (8, 4), (8, 6)), 65)
    assert hdm.channels == (96, 192, 192, 192) and hdm.embed_dim == 96
    assert dataclasses.replace(hdm, width=0.25).channels == (32, 64, 64, 64)
    assert dataclasses.replace(hdm, width=0.1).channels == (32, 32, 32, 32)
    assert skateformer.Config(**dataclasses.asdict(ntu)) == ntu and hash(ntu)
    with pytest.raises(ValueError, match="cannot be cut"):
        skateformer.Config(num_classes=5, partition_sizes=((8, 5),) * 4)


def test_drop_path_rates_are_linear():
    rates = skateformer.drop_path_rates(models.config_for("skateformer", "hdm05"))
    np.testing.assert_allclose(rates, np.linspace(0, 0.2, 8), rtol=1e-6)
    model = nnx.eval_shape(lambda: models.create("skateformer", "hdm05"))
    got = [b.transformer.drop_path.rate for s in model.stages for b in s.blocks]
    assert got == rates


def test_input_transform_matches_numpy_and_routes_gradients():
    x = random_batch(2, t=60, m=2)
    np.testing.assert_array_equal(skateformer.skateformer_input(jnp.asarray(x)), formats.skateformer_input(x))
    grad = jax.grad(lambda x: jnp.sum(skateformer.skateformer_input(x) ** 2))(jnp.asarray(x))
    touched = np.abs(np.asarray(grad)).sum(axis=(0, 1, 2, 4)) > 0
    assert touched.tolist() == [v != 20 for v in range(25)]  # joint 20 is dropped
    with pytest.raises(ValueError, match="at most 64 frames"):
        skateformer.skateformer_input(jnp.zeros((1, 3, 65, 25, 1)))


def test_temporal_encoding_is_upstreams_float32_sinusoid():
    te = skateformer.temporal_encoding(96)
    assert te.dtype == np.float32 and te.shape == (64, 96)
    tau = 2 * np.arange(64) / 64 - 1
    omega = np.exp(-np.arange(0, 96, 2) * math.log(10000.0) / 96)
    np.testing.assert_allclose(te[:, 0::2], np.sin(tau[:, None] * omega), atol=1e-6)
    np.testing.assert_allclose(te[:, 1::2], np.cos(tau[:, None] * omega), atol=1e-6)


@pytest.mark.parametrize("kind", [1, 2, 3, 4])
def test_window_partitions(kind):
    t, v, (p0, p1) = 16, 12, (4, 3)
    strides = skateformer_layers.PARTITION_STRIDES[kind - 1]
    grid = np.stack(np.meshgrid(np.arange(t), np.arange(v), indexing="ij"), axis=-1)[None]  # (1, T, V, 2) = (t, v)
    windows = np.asarray(skateformer_layers.partition(jnp.asarray(grid), (p0, p1), strides))
    assert windows.shape == ((t // p0) * (v // p1), p0 * p1, 2)
    frames, joints = windows[..., 0].reshape(-1, p0, p1), windows[..., 1].reshape(-1, p0, p1)
    step_t, step_v = (t // p0 if strides[0] else 1), (v // p1 if strides[1] else 1)
    np.testing.assert_array_equal(np.diff(frames, axis=1), step_t)  # frames advance along p0
    np.testing.assert_array_equal(np.diff(joints, axis=2), step_v)  # joints advance along p1
    back = skateformer_layers.reverse(jnp.asarray(windows), (1, t, v), (p0, p1), strides)
    np.testing.assert_array_equal(back, grid)


def test_type_1_bias_tiles_like_upstream():
    attn = skateformer_layers.MultiHeadSelfAttention(1, 4, (8, 4), 0.0, rngs=nnx.Rngs(0))
    table = np.asarray(attn.relative_position_bias_table[...])
    idx = skateformer_layers.relative_position_index(8)
    rows = np.arange(32) % 8  # upstream's repeat tiles the (P0, P0) bias: token n reads frame n mod P0
    np.testing.assert_array_equal(attn.bias(), np.transpose(table[idx[rows][:, rows]], (2, 0, 1)))


def test_relative_position_index_matches_checkpoint(upstream):
    pytest.importorskip("torch")  # the optional extra; the project's own reader must import whenever torch does
    from tasar_jax.converters import torch_io
    sd = torch_io.read_state_dict(upstream / "SkateFormer_hdm05.pth.xz")
    buffers = {k: v for k, v in sd.items() if k.endswith("relative_position_index")}
    assert len(buffers) == 32
    expected = skateformer_layers.relative_position_index(8)
    assert expected[0].tolist() == list(range(7, -1, -1)) and expected[:, 0].tolist() == list(range(7, 15))
    for value in buffers.values():
        assert value.dtype == np.int64
        np.testing.assert_array_equal(value, expected)
    model = models.create("skateformer", "hdm05", **TINY)  # P0 = 8 as upstream: same buffers
    ours = [a.relative_position_index[...] for s in model.stages for b in s.blocks for a in b.transformer.attention]
    assert len(ours) == 8
    for value in ours:
        np.testing.assert_array_equal(value, expected)


@pytest.fixture(scope="module")
def tiny_pair():
    return (models.create("skateformer", "hdm05", num_classes=5, **TINY),
            models.create("skateformer", "ntu60", num_classes=7, **TINY))


def test_shapes_and_persons(tiny_pair):
    single, double = tiny_pair
    single.eval(), double.eval()
    assert single(jnp.asarray(random_batch(3, t=20, m=1))).shape == (3, 5)
    assert double(jnp.asarray(random_batch(2, t=64, m=2))).shape == (2, 7)
    with pytest.raises(ValueError, match="built for M=1"):
        single(jnp.asarray(random_batch(1, t=20, m=2)))


def test_eval_is_deterministic_and_leaves_statistics(tiny_pair):
    model = tiny_pair[0]
    model.eval()
    x = jnp.asarray(random_batch(2, t=20))
    before = jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat))
    np.testing.assert_array_equal(model(x), model(x, rng_key=jax.random.key(3)))
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat)))


def test_train_mode_is_stochastic_and_updates_statistics(tiny_pair):
    model = tiny_pair[0]
    x = jnp.asarray(random_batch(4, t=20))
    bn = model.stages[1].blocks[0].downsample.bn
    mean_before = np.asarray(bn.mean[...])
    model.train()
    try:
        a = model(x, rng_key=jax.random.key(0))
        b = model(x, rng_key=jax.random.key(1))
        c = model(x, rng_key=jax.random.key(1))
        assert not np.allclose(a, b)  # attention dropout / DropPath masks differ
        np.testing.assert_array_equal(b, c)  # same key, same masks; train-mode BN uses batch statistics
        assert not np.allclose(mean_before, bn.mean[...])
        with pytest.raises(ValueError, match="rng_key"):
            model(x)
    finally:
        model.eval()
