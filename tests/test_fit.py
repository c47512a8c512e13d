"""The one host loop: evaluation schedule, strict keep-the-best selection (numbers, tuples, per-head arrays)."""

import jax.numpy as jnp
import numpy as np

from tasar_jax import fit


def _counting_epoch(state, epoch, bar):
    return state + 1, {"loss": 1.0 / (epoch + 1)}


def test_scalar_scores_keep_the_first_strict_best_and_follow_the_schedule():
    scores = {2: 0.5, 4: 0.7, 6: 0.7, 7: 0.6}  # state after epoch e is e; evaluated after 2, 4, 6 and the last (7)
    improved = []
    result = fit.fit(0, _counting_epoch, epochs=7, every=2,
                     evaluate=lambda s: (scores[s], {"test_accuracy": scores[s]}),
                     on_improve=lambda best, record, mask: improved.append((best, record["epoch"], mask)),
                     progress=False)
    assert result.state == 7 and result.best == 4 and result.best_score == 0.7  # the tie at epoch 6 is not kept
    assert [r["epoch"] for r in result.history if "test_accuracy" in r] == [2, 4, 6, 7]
    assert improved == [(2, 2, True), (4, 4, True)]
    assert result.history[0] == {"epoch": 1, "loss": 1.0}


def test_tuple_scores_compare_lexicographically():
    scores = {1: (0.2, 0.9), 2: (0.3, 0.1), 3: (0.3, 0.2), 4: (0.3, 0.2)}
    result = fit.fit(0, _counting_epoch, epochs=4, evaluate=lambda s: (scores[s], {}), progress=False)
    assert result.best == 3 and result.best_score == (0.3, 0.2)


def test_array_scores_keep_each_head_on_its_own():
    def run_epoch(state, epoch, bar):
        return state + 1.0, {}

    accuracy = {1.0: [0.5, 0.0], 2.0: [0.4, 0.0], 3.0: [0.6, 0.2]}  # head 1 only beats 0 at epoch 3
    start = jnp.zeros((2, 3))
    seen = []
    result = fit.fit(start, run_epoch, epochs=3, evaluate=lambda s: (np.array(accuracy[float(s[0, 0])]), {}),
                     best=start - 1.0, best_score=np.zeros(2), progress=False,
                     on_improve=lambda best, record, mask: seen.append(mask.tolist()))
    np.testing.assert_array_equal(result.best, [[3.0] * 3, [3.0] * 3])
    np.testing.assert_array_equal(result.best_score, [0.6, 0.2])
    assert seen == [[True, False], [True, True]]
    partial = fit.fit(start, run_epoch, epochs=2, evaluate=lambda s: (np.array(accuracy[float(s[0, 0])]), {}),
                      best=start - 1.0, best_score=np.zeros(2), progress=False)
    np.testing.assert_array_equal(partial.best, [[1.0] * 3, [-1.0] * 3])  # head 1 never improved: start kept


def test_minibatch_pass_weights_means_by_batch_size_and_sums_counts():
    x, y = np.arange(5.0), np.arange(5)
    batches = [np.array([0, 1, 2]), np.array([3, 4])]
    calls = []

    def step(xb, yb, b):
        calls.append((b, xb.tolist()))
        return {"loss": jnp.mean(xb), "correct": jnp.sum(yb % 2)}

    means = fit.minibatch_pass(step, x, y, batches)
    assert calls == [(0, [0.0, 1.0, 2.0]), (1, [3.0, 4.0])]
    assert means == {"loss": 2.0, "correct": 2 / 5}


def test_the_progress_display_runs_and_removes_inner_bars():
    def run_epoch(state, epoch, bar):
        for _ in range(2):  # two passes (e.g. two heads): one inner bar at a time
            for _ in bar.track(range(3)):
                bar.status("working")
        return state, {"loss": 0.25, "train_accuracy": 0.5, "collected": 3}

    result = fit.fit(0, run_epoch, epochs=2, progress=True)
    assert fit._status(result.history[-1]) == "loss 0.2500  train 50.0%  collected 3"
