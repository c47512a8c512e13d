"""BEAT: the motion and energy terms against upstream's formulas, and a tiny end-to-end run of the head chains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax import models
from tasar_jax.data import layouts, synthetic
from tasar_jax.defences import beat
from tasar_jax.models import streams
from tasar_jax.posterior import load_posterior, summed_appended_logits, surrogate_logits

PARENTS = layouts.HDM05_PARENTS


def _upstream_motion_loss(x, x_tilde, ref_lengths, order=3):
    """Upstream ``xXTildeLoss`` in numpy: data reshaped to (B, T, 75, M) (joint-major), bones on (B, T, 25, 3, M)."""
    def native(a):
        a = a.transpose(0, 2, 3, 1, 4)
        return a.reshape(a.shape[0], a.shape[1], -1, a.shape[4])

    def lengths(a):
        j = native(a).reshape(a.shape[0], a.shape[2], -1, 3, a.shape[4])
        return np.sqrt(np.sum((j - j[:, :, list(PARENTS)]) ** 2, axis=-2) + 1e-10)

    loss = np.mean((lengths(x_tilde) - ref_lengths) ** 2)
    a, b = native(x), native(x_tilde)
    for _ in range(order):
        a, b = a[:, 1:] - a[:, :-1], b[:, 1:] - b[:, :-1]
        loss += np.mean((a - b) ** 2)
    return loss, lengths(x)


def test_motion_loss_matches_upstream_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 7, 25, 1))
    x_tilde = x + 0.05 * rng.normal(size=x.shape)
    _, ref = _upstream_motion_loss(x, x, np.zeros((2, 7, 25, 1)))
    expected, _ = _upstream_motion_loss(x, x_tilde, ref)
    np.testing.assert_allclose(streams.bone_lengths(jnp.asarray(x), PARENTS, floor=beat.LENGTH_FLOOR), ref,
                               rtol=1e-5)
    got = beat.motion_loss(jnp.asarray(x), jnp.asarray(x_tilde), jnp.asarray(ref), PARENTS)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_energy_intended_and_upstream():
    logits = jnp.asarray([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])
    np.testing.assert_allclose(beat.energy(logits), np.mean(np.log(np.exp(np.asarray(logits)).sum(-1))), rtol=1e-6)
    np.testing.assert_allclose(beat.energy(logits, reference_quirks=True), np.mean(np.asarray(logits)), rtol=1e-6)


def test_sgld_is_gradient_ascent_plus_scaled_noise():
    x0 = jnp.zeros((4, 3))
    out = beat.sgld(jax.random.key(0), x0, lambda x: -x + 1.0, steps=200, lr=0.05, std=0.0)
    np.testing.assert_allclose(out, np.ones((4, 3)), atol=1e-4)  # ∇log p of N(1, I), no noise → the mode
    noisy = beat.sgld(jax.random.key(0), jnp.zeros((20000,)), lambda x: 0.0 * x, steps=1, lr=0.05, std=5e-3)
    assert float(jnp.std(noisy)) == pytest.approx(np.sqrt(0.1) * 5e-3, rel=0.03)


@pytest.fixture(scope="module")
def tiny_run():
    (xtr, ytr), (xte, yte) = (synthetic.generate("hdm05", n, 0, split, range(19)) for n, split in ((4, "train"), (2, "test")))
    xtr, xte = xtr[:, :, ::6], xte[:, :, ::6]
    model = models.create("mlp", "hdm05", num_frames=10, hidden=32, num_classes=19, seed=0)
    cfg = beat.BEATConfig(epochs=2, batch_size=38, sgld_steps=2, num_integration_steps=3)
    heads0 = beat.posttrain.init_heads(jax.random.key(1), 2, 19)
    improved = []
    result = beat.beat_train(model, (xtr, ytr), (xte, yte), cfg, parents=PARENTS, heads=heads0, progress=False,
                             on_improve=lambda i, heads, rec: improved.append((i, rec["epoch"])))
    return model, heads0, result, improved, (xte, yte)


def test_beat_changes_heads_and_stays_finite(tiny_run):
    _, heads0, result, improved, _ = tiny_run
    for before, after in zip(heads0, result.final_heads):
        assert np.all(np.isfinite(after)) and after.shape == before.shape
        assert float(jnp.max(jnp.abs(after - before))) > 1e-4
    assert [(r["epoch"], r["head"]) for r in result.history] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    for record in result.history:
        assert all(np.isfinite(v) for v in record.values())
        assert record["motion"] > 0  # x̃ moved away from x
    assert result.best_accuracy.shape == (2,) and sorted({i for i, _ in improved}) == sorted(
        i for i in range(2) if result.best_accuracy[i] > 0)


def test_defended_surrogate_and_saved_heads(tiny_run, tmp_path):
    model, _, result, _, (x, _) = tiny_run
    surrogate = beat.defended_surrogate(model, result.heads)
    expected = summed_appended_logits((result.heads,), surrogate_logits(model, x[:4]))
    np.testing.assert_allclose(surrogate.apply_fn(surrogate.params, jnp.asarray(x[:4])), expected, rtol=1e-5,
                               atol=1e-5)
    beat.save_heads(tmp_path / "beat.npz", result.heads, dataset="hdm05")
    (posterior,), meta = load_posterior(tmp_path / "beat.npz")
    assert meta["defence"] == "beat" and meta["num_heads"] == 2
    np.testing.assert_array_equal(posterior.heads.w1, np.asarray(result.heads.w1))


def test_two_stream_base_is_refused():
    from tasar_jax import models

    two = models.create("agcn", "hdm05", width=0.125)  # a TwoStream ensemble
    with pytest.raises(ValueError, match="single-stream"):
        beat.beat_train(two, (None, None), (None, None), parents=PARENTS)
