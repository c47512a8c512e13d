"""Wilson intervals, exact McNemar, Newcombe's paired-difference interval and Holm, against hand-computed values."""

import math

import numpy as np
import pytest

from tasar_jax.evaluation import stats

Z = 1.959963984540054  # the 97.5 % normal quantile


def test_wilson_matches_the_closed_form_at_0_50_and_100_percent():
    upper = Z**2 / (10 + Z**2)  # 0 of 10: [0, z²/(n + z²)]
    assert stats.wilson_interval(0, 10) == (0.0, pytest.approx(upper, abs=1e-12))
    assert stats.wilson_interval(10, 10) == (pytest.approx(1 - upper, abs=1e-12), 1.0)
    assert upper == pytest.approx(0.2775, abs=1e-4)
    low, high = stats.wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    low, high = stats.wilson_interval(81, 263)  # (2·81 + z² ∓ z·sqrt(4·81·182/263 + z²)) / (2(263 + z²))
    root = Z * math.sqrt(4 * 81 * 182 / 263 + Z**2)
    assert low == pytest.approx((2 * 81 + Z**2 - root) / (2 * (263 + Z**2)), abs=1e-12)
    assert high == pytest.approx((2 * 81 + Z**2 + root) / (2 * (263 + Z**2)), abs=1e-12)


def test_wilson_edge_cases_and_bad_counts():
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))
    assert stats.wilson_interval(3, 10, confidence=0.99)[0] < stats.wilson_interval(3, 10)[0]
    with pytest.raises(ValueError, match="successes <= n"):
        stats.wilson_interval(11, 10)
    with pytest.raises(ValueError, match="confidence"):
        stats.wilson_interval(1, 10, confidence=1.0)


def test_mcnemar_exact_binomial_tails():
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(0, 5) == 2 / 32
    assert stats.mcnemar_exact(9, 1) == stats.mcnemar_exact(1, 9) == 2 * (1 + 10) / 1024
    assert stats.mcnemar_exact(3, 3) == 1.0  # capped
    assert stats.mcnemar_exact(0, 200) < 1e-59 and stats.mcnemar_exact(0, 200) > 0  # no float overflow
    with pytest.raises(ValueError):
        stats.mcnemar_exact(-1, 2)


def test_holm_step_down():
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1, monotone
    assert stats.holm([]).size == 0


def test_paired_interval_without_correlation_is_newcombes_independent_formula():
    # a table with both·neither = a_only·b_only, so the correlation term phi is exactly 0
    both, a_only, b_only, neither = 2, 2, 4, 4
    n = 12
    l1, u1 = stats.wilson_interval(4, n)
    l2, u2 = stats.wilson_interval(6, n)
    d = 4 / n - 6 / n
    low, high = stats.paired_difference_interval(both, a_only, b_only, neither)
    assert low == pytest.approx(d - math.hypot(4 / n - l1, u2 - 6 / n), abs=1e-12)
    assert high == pytest.approx(d + math.hypot(u1 - 4 / n, 6 / n - l2), abs=1e-12)


def test_paired_interval_is_antisymmetric_and_shrinks_with_concordance():
    low, high = stats.paired_difference_interval(30, 12, 4, 54)
    assert stats.paired_difference_interval(30, 4, 12, 54) == (pytest.approx(-high), pytest.approx(-low))
    assert low < 0.08 < high  # the difference (12 − 4) / 100 lies inside
    assert stats.paired_difference_interval(0, 0, 0, 10) == (pytest.approx(-0.2775, abs=1e-4),
                                                             pytest.approx(0.2775, abs=1e-4))
    concordant, independent = stats.paired_difference_interval(40, 5, 5, 50), stats.paired_difference_interval(
        20, 25, 25, 30)  # the same marginals (45 %, 45 %), positively vs negatively correlated
    assert concordant[1] - concordant[0] < independent[1] - independent[0]


def test_paired_interval_covers_the_true_difference_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    p_both, p_a, p_b = 0.3, 0.15, 0.05  # true difference 0.10, correlated outcomes
    covered = 0
    for _ in range(2000):
        cells = rng.multinomial(120, [p_both, p_a, p_b, 1 - p_both - p_a - p_b])
        low, high = stats.paired_difference_interval(*cells)
        covered += low <= 0.10 <= high
    assert 0.93 <= covered / 2000 <= 0.975


def test_paired_test_counts_and_all_pairs_with_best():
    a = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 1] * 10, bool)  # 90 %
    b = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 1] * 10, bool)  # 20 %
    c = np.array([1, 1, 0, 0, 1, 1, 1, 0, 0, 1] * 10, bool)  # 60 %
    t = stats.paired_test(a, b)
    assert (t.n, t.a_only, t.b_only, t.difference) == (100, 70, 0, 0.7)
    assert t.p_value == 2 / 2**70 and t.interval.low < 0.7 < t.interval.high
    pairs = stats.all_pairs({"a": a, "b": b, "c": c})
    assert [(p["a"], p["b"]) for p in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    np.testing.assert_allclose([p["p_holm"] for p in pairs], stats.holm([p["p_value"] for p in pairs]))
    assert stats.significantly_best({"a": a, "b": b, "c": c}, pairs) == "a"
    close = {"a": a, "c": np.where(np.arange(100) == 0, False, a)}  # one sample apart: not significant
    assert stats.significantly_best(close, stats.all_pairs(close)) is None
    with pytest.raises(ValueError, match="same length"):
        stats.paired_test(a, b[:50])
