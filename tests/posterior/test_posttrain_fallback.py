"""``bayesian_train``'s fallback for a head that never reaches a test accuracy > 0: its last-epoch parameters, as
the docstring and the warning say (it used to return the initial heads; found by the post-training benchmark test,
issue 16 item 5)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from tasar_jax.posterior import posttrain as pt
from tasar_jax.posterior.heads import appended_logits

NUM_CLASSES, NUM_HEADS = 6, 3


def _data():
    """Toy surrogate logits (64 training, 16 test clips) and training labels."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(80, NUM_CLASSES)).astype(np.float32)
    return z[:64], rng.integers(0, NUM_CLASSES, 64), z[64:]


def test_head_that_never_beats_zero_accuracy_keeps_its_last_epoch_parameters():
    """Same key and training data in both runs, so training is identical; only the test set differs. Run 1 repeats
    every test clip with each of the K labels (every head scores exactly 1/K > 0, the trained heads come back); run 2
    labels every clip with a class no trained head predicts (accuracy 0 for every head: the fallback), so it must
    return run 1's heads."""
    z, y, z_test = _data()
    cfg = pt.PostTrainConfig(epochs=1, batch_size=16, temperature=0.0, reference_quirks=True)
    initial = pt.init_heads(jax.random.key(1), NUM_HEADS, NUM_CLASSES)
    every_label = np.tile(np.arange(NUM_CLASSES), len(z_test))
    trained = pt.bayesian_train(jax.random.key(2), z, y, np.repeat(z_test, NUM_CLASSES, axis=0), every_label, cfg,
                                heads=initial)
    np.testing.assert_allclose(trained.best_accuracy, np.full(NUM_HEADS, 1 / NUM_CLASSES))
    assert not np.allclose(trained.heads.w1, initial.w1)  # training moved the heads
    predicted = np.asarray(jax.vmap(lambda h: jnp.argmax(appended_logits(h, z_test), -1))(trained.heads))
    unreachable = np.array([min(set(range(NUM_CLASSES)) - set(predicted[:, i])) for i in range(len(z_test))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallback = pt.bayesian_train(jax.random.key(2), z, y, z_test, unreachable, cfg, heads=initial)
    assert any("never reached" in str(w.message) for w in caught)
    np.testing.assert_array_equal(fallback.best_accuracy, np.zeros(NUM_HEADS))
    for got, want in zip(fallback.heads, trained.heads):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
