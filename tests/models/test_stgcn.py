"""ST-GCN shapes, modes, parameter counts and the model registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tasar_jax import models
from tests.conftest import random_batch


@pytest.mark.parametrize("dataset, expected", [("hdm05", 3_100_117), ("ntu60", 3_098_832), ("ntu120", 3_114_252)])
def test_upstream_parameter_counts(dataset, expected):
    model = nnx.eval_shape(lambda: models.create("stgcn", dataset))
    assert models.num_parameters(model) == expected


@pytest.fixture(scope="module")
def tiny():
    return models.create("stgcn", "ntu60", width=0.125, num_classes=7)


def test_shapes_and_persons(tiny):
    tiny.eval()
    for m in (1, 2):
        assert tiny(jnp.asarray(random_batch(3, t=16, m=m))).shape == (3, 7)


def test_time_is_downsampled_twice():
    model = models.create("stgcn", "hdm05", width=0.125)
    strides = [b.tcn_conv.strides for b in model.st_gcn_networks]
    assert [s[0] for s in strides] == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert [b.residual_mode for b in model.st_gcn_networks] == ["none"] + ["identity"] * 3 + [
        "conv", "identity", "identity", "conv", "identity", "identity"]


def test_eval_is_deterministic_and_leaves_statistics(tiny):
    tiny.eval()
    x = jnp.asarray(random_batch(4, t=16, m=2))
    before = jax.tree.map(np.asarray, nnx.state(tiny, nnx.BatchStat))
    np.testing.assert_array_equal(tiny(x), tiny(x))
    after = nnx.state(tiny, nnx.BatchStat)
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, after))


def test_train_mode_uses_dropout_and_updates_statistics():
    model = models.create("stgcn", "hdm05", width=0.125, dropout=0.5)
    x = jnp.asarray(random_batch(4, t=16))
    mean_before = np.asarray(model.data_bn.mean[...])
    model.train()
    a = model(x, rng_key=jax.random.key(0))
    b = model(x, rng_key=jax.random.key(1))
    assert not np.allclose(a, b)  # dropout masks differ
    assert not np.allclose(mean_before, model.data_bn.mean[...])
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))


def test_edge_importance_switch():
    with_ei = models.create("stgcn", "hdm05", width=0.125)
    without = models.create("stgcn", "hdm05", width=0.125, edge_importance=False)
    assert models.num_parameters(with_ei) - models.num_parameters(without) == 10 * 3 * 25 * 25


def test_registry_errors():
    with pytest.raises(ValueError, match="valid names: stgcn"):
        models.create("resnet", "hdm05")
    with pytest.raises(ValueError, match="unknown dataset"):
        models.create("stgcn", "kinetics")


def test_mlp_baseline_shapes():
    model = models.create("mlp", "ntu60", hidden=16)
    assert model(jnp.asarray(random_batch(2, m=2))).shape == (2, 60)
    assert models.create("mlp", "hdm05").config.relu_logits is False
