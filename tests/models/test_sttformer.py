"""STTFormer shapes, modes, parameter counts, tuple layout, attention algebra and the positional buffer."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tasar_jax import models
from tasar_jax.models import sttformer
from tests.conftest import random_batch

TINY = dict(width=0.125, num_classes=7)


@pytest.mark.parametrize("dataset, expected", [("hdm05", 6_234_873), ("ntu60", 6_233_588), ("ntu120", 6_249_008)])
def test_upstream_parameter_counts(dataset, expected):
    model = nnx.eval_shape(lambda: models.create("sttformer", dataset))
    assert models.num_parameters(model) == expected


@pytest.fixture(scope="module")
def tiny():
    return models.create("sttformer", "ntu60", **TINY)


def test_config_classes_widths_and_json_round_trip():
    assert [sttformer.Config.for_dataset(d).num_classes for d in ("hdm05", "ntu60", "ntu120")] == [65, 60, 120]
    assert sttformer.Config.for_dataset("hdm05", num_classes=10).num_classes == 10  # override allowed (decision)
    config = sttformer.Config.for_dataset("ntu60")
    assert config.blocks == tuple(sttformer.UPSTREAM_BLOCKS) and (config.num_tuples, config.num_columns) == (10, 150)
    tiny_blocks = sttformer.Config.for_dataset("hdm05", width=0.1).blocks
    assert all(c_in % 2 == 0 and c_out % 2 == 0 and qkv >= 1 for c_in, c_out, qkv in tiny_blocks)
    back = sttformer.Config(**json.loads(json.dumps(dataclasses.asdict(config))))
    assert back == config and hash(back) == hash(config)
    with pytest.raises(ValueError, match="multiple of len_parts"):
        sttformer.Config(num_classes=3, num_frames=50)


def test_shapes_for_one_and_two_persons(tiny):
    tiny.eval()
    for m in (1, 2):
        logits = tiny(jnp.asarray(random_batch(2, t=12, m=m)))
        assert logits.shape == (2, 7) and np.isfinite(logits).all()
    with pytest.raises(ValueError, match="divisible by len_parts"):
        tiny(jnp.asarray(random_batch(1, t=10)))


def test_qkv_channels_follow_heads_and_width(tiny):
    for block, (c_in, c_out, qkv) in zip(tiny.blocks, tiny.config.blocks):
        assert block.to_qkvs.kernel.shape == (1, 1, c_in, 2 * 3 * qkv)
        assert block.out_nets_conv.kernel.shape == (1, 5, 3 * c_in, c_out)
        assert block.out_nett_conv.kernel.shape == (3, 1, c_out, c_out)
        assert block.att0s.shape == (1, 3, 150, 150) and block.pes.pe.shape == (1, c_in, 10, 150)
    assert [b.has_residual_convs for b in tiny.blocks] == [False, False, True, False, True, False, False, False]


def test_tuples_group_six_consecutive_frames(tiny):
    x = np.zeros((1, 3, 12, 25, 2), np.float32)
    x[0, 1, 7, 4, 1] = 1.0  # frame 7 = tuple 1, frame-in-tuple 1; joint 4; person 1
    h = np.asarray(tiny.to_tuples(jnp.asarray(x)))
    assert h.shape == (2, 2, 150, 3)
    assert np.argwhere(h).tolist() == [[1, 1, 1 * 25 + 4, 1]]


def test_attention_and_head_stacking_match_torch_layout_formula(tiny):
    """Re-derive one block's attention output with the upstream (N, C, T, V) einsums in numpy."""
    block = tiny.blocks[2]
    x = jax.random.normal(jax.random.key(0), (2, 2, 150, block.to_qkvs.in_features))
    heads, qkv, t = 3, block.qkv_dim, x.shape[1]
    xt = np.transpose(np.asarray(x), (0, 3, 1, 2))  # N C T V
    qk = np.asarray(block.to_qkvs(x + block.pes(t)))
    qk = np.transpose(qk, (0, 3, 1, 2)).reshape(2, 2 * heads, qkv, t, 150)
    scores = np.einsum("nhctu,nhctv->nhuv", qk[:, :heads], qk[:, heads:]) / (qkv * t)
    expected = np.tanh(scores) * np.asarray(block.alphas[...]) + np.asarray(block.att0s[...])
    attention = np.asarray(block.attention(x))
    np.testing.assert_allclose(attention, expected, rtol=1e-5, atol=1e-5)
    stacked = np.einsum("nctu,nhuv->nhctv", xt, expected).reshape(2, heads * xt.shape[1], t, 150)
    ours = np.einsum("ntuc,nhuv->ntvhc", np.asarray(x), attention).reshape(2, t, 150, -1)
    np.testing.assert_allclose(np.transpose(ours, (0, 3, 1, 2)), stacked, rtol=1e-4, atol=1e-4)


def test_positional_embedding_is_a_column_sinusoid():
    pe = sttformer.positional_embedding(8, 3, 150)
    assert pe.dtype == np.float32 and pe.shape == (1, 8, 3, 150)
    np.testing.assert_array_equal(pe[:, :, 0], pe[:, :, 2])  # identical for every tuple
    np.testing.assert_array_equal(pe[0, 0::2, 0, 0], 0.0)
    np.testing.assert_array_equal(pe[0, 1::2, 0, 0], 1.0)
    np.testing.assert_allclose(pe[0, 0, 0], np.sin(np.arange(150)), atol=1e-6)  # d_0 = 1
    np.testing.assert_allclose(pe[0, 7, 0, 5], np.cos(5 * 10000.0 ** (-6 / 8)), atol=1e-6)
    with pytest.raises(ValueError, match="even channel count"):
        sttformer.positional_embedding(5, 1, 150)


def test_positional_buffer_matches_upstream_checkpoint(upstream):
    """Our float32 construction vs the exact buffers upstream saved: equal up to ~1 ulp of torch's float32 exp/sin/cos.

    torch evaluates exp/sin/cos with ≈1-ulp vectorised kernels, we round float64 results once; a 1-ulp difference
    in a frequency grows to ≤ 149 ulps of that frequency in the angle (column 149), hence the 1e-5 bound.
    """
    pytest.importorskip("torch")  # the optional extra; the project's own reader must import whenever torch does
    from tasar_jax.converters import torch_io
    state_dict = torch_io.read_state_dict(upstream / "STTFormer_hdm05.pth.xz")
    fresh = nnx.eval_shape(lambda: models.create("sttformer", "hdm05"))
    for i, (c_in, _, _) in enumerate(fresh.config.blocks):
        ours, theirs = sttformer.positional_embedding(c_in, 10, 150), state_dict[f"blocks.{i}.pes.pe"]
        assert ours.dtype == theirs.dtype == np.float32 and ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() <= 1e-5
        assert np.mean(ours == theirs) > 0.75


def test_fresh_model_carries_the_buffer(tiny):
    np.testing.assert_array_equal(tiny.blocks[3].pes.pe[...], sttformer.positional_embedding(16, 10, 150))
    assert not nnx.state(tiny, nnx.Param).filter(lambda path, _: "pe" in path)


def test_eval_is_deterministic_and_leaves_statistics(tiny):
    tiny.eval()
    x = jnp.asarray(random_batch(2, t=12, m=2))
    before = jax.tree.map(np.asarray, nnx.state(tiny, nnx.BatchStat))
    np.testing.assert_array_equal(tiny(x), tiny(x))
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, nnx.state(tiny, nnx.BatchStat)))


def test_train_mode_updates_statistics(tiny):
    model = nnx.clone(tiny)
    x = jnp.asarray(random_batch(2, t=12, m=2))
    mean_before = np.asarray(model.blocks[7].out_nett_bn.mean[...])
    model.train()
    logits = model(x, rng_key=jax.random.key(0))
    assert np.isfinite(logits).all()
    assert not np.allclose(mean_before, model.blocks[7].out_nett_bn.mean[...])
    model.eval()
    assert not np.allclose(model(x), logits)  # running statistics differ from batch statistics
