"""FR-Head: the CTR-GCN backbone, the four (unused) contrastive blocks and the key-driven config."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tasar_jax.converters.keymaps import frhead as frhead_keys
from tasar_jax import models
from tasar_jax.models import ctrgcn, frhead
from tests.conftest import random_batch


def test_upstream_parameter_counts():
    """NTU120 train-time module 1,999,048 = CTR-GCN 1,462,092 + ren_*; the ren_* blocks (536,956 parameters) do
    not depend on the dataset, so with CTR-GCN's per-dataset counts (test_ctrgcn) this fixes every §2.12 count."""
    train_module = nnx.eval_shape(lambda: models.create("frhead", "ntu120"))
    assert models.num_parameters(train_module) == 1_999_048
    contrastive = sum(models.num_parameters(getattr(train_module, name)) for name, *_ in frhead.CONTRASTIVE_LEVELS)
    assert contrastive == 1_984_763 - 1_447_807 == 1_983_628 - 1_446_672 == 536_956
    assert 1_999_048 - contrastive == 1_462_092


@pytest.fixture(scope="module")
def tiny():
    """Tiny HDM05 training-time module (with ren_*); state-changing tests use ``nnx.clone`` copies."""
    return models.create("frhead", "hdm05", width=0.125, num_classes=7, seed=3)


def test_backbone_is_ctrgcn(tiny):
    assert issubclass(frhead.Model, ctrgcn.Model) and issubclass(frhead.Config, ctrgcn.Config)
    assert isinstance(tiny.l1, ctrgcn.TCNGCNUnit) and isinstance(tiny.l1.gcn1, ctrgcn.UnitGCN)


def test_contrastive_block_shapes(tiny):
    """Upstream sizes: 64 frames at ren_low, halved at ren_mid, quartered at ren_high/ren_fin; h = 256, V = 25."""
    channels = tiny.config.channels
    for name, unit, temporal in (("ren_low", 0, 4), ("ren_mid", 4, 8), ("ren_high", 7, 16), ("ren_fin", 9, 16)):
        block = getattr(tiny, name)
        assert block.spatio_squeeze.conv.kernel.shape == (1, 1, channels[unit], 10)
        assert block.tempor_squeeze.conv.kernel.shape == (1, 1, channels[unit], temporal)
        assert block.spatio_cl_net.cl_fc.kernel.shape == (250, 256)
        assert block.tempor_cl_net.cl_fc.kernel.shape == (256, 256)


def test_blocks_do_not_change_the_logits(tiny):
    """Same seed → identical backbone (the ren_* blocks are built after it) and they are never called."""
    without = models.create("frhead", "hdm05", width=0.125, num_classes=7, seed=3, contrastive_blocks=False)
    plain = models.create("ctrgcn", "hdm05", width=0.125, num_classes=7, seed=3)
    assert not any(hasattr(without, name) for name, *_ in frhead.CONTRASTIVE_LEVELS)
    x = jnp.asarray(random_batch(3, t=16))
    for model in (tiny, without, plain):
        model.eval()
    logits = tiny(x)
    assert logits.shape == (3, 7)
    np.testing.assert_array_equal(logits, without(x))
    np.testing.assert_array_equal(logits, plain(x))


def test_two_persons():
    model = models.create("frhead", "ntu60", width=0.125, num_classes=7)
    model.eval()
    assert model(jnp.asarray(random_batch(3, t=16, m=2))).shape == (3, 7)


def test_train_mode_updates_backbone_statistics_only(tiny):
    model = nnx.clone(tiny)
    ren_mean = np.asarray(model.ren_mid.spatio_squeeze.bn.mean[...])
    data_mean = np.asarray(model.data_bn.mean[...])
    model.train()
    assert np.isfinite(model(jnp.asarray(random_batch(4, t=16)))).all()
    assert not np.allclose(data_mean, model.data_bn.mean[...])
    np.testing.assert_array_equal(ren_mean, model.ren_mid.spatio_squeeze.bn.mean[...])  # upstream: never called


def test_config_from_state_dict_detects_the_contrastive_blocks():
    assert frhead_keys.config_from_state_dict({"fc.weight": 0, "ren_low.spatio_cl_net.cl_fc.bias": 0}) == {
        "contrastive_blocks": True}
    assert frhead_keys.config_from_state_dict({"fc.weight": 0, "l1.gcn1.PA": 0}) == {"contrastive_blocks": False}


def test_config_round_trips_through_asdict():
    config = frhead.Config.for_dataset("ntu60", contrastive_blocks=False)
    assert frhead.Config(**dataclasses.asdict(config)) == config
    assert config.num_persons == 2 and config.contrastive_frames == 64
