"""Uncertainty of transfer success rates: Wilson intervals, exact McNemar tests on paired samples, Holm correction.

Every attack of one surrogate perturbs the same clean samples, so two attacks are compared sample by sample: of
the ``n`` samples, ``b`` fool the target only under attack A and ``c`` only under B. The exact McNemar test asks
whether ``b`` and ``c`` differ more than a fair coin would make them (two-sided binomial test of ``b`` among
``b + c`` at 1/2); the difference of the two rates, ``(b − c) / n``, gets Newcombe's hybrid score interval for
paired proportions (Newcombe 1998, method 10), which, like Wilson's interval for one rate, stays inside [−1, 1]
and behaves at 0 % and 100 %. Within a family of tests (all pairs of attacks on one surrogate and one target),
p-values are Holm-adjusted, so "significantly best" holds at the family-wise level ``alpha``.

Pure Python and NumPy on counts: the tables are small, and exact integer binomial sums need no SciPy.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np


class Interval(NamedTuple):
    low: float
    high: float


class PairedTest(NamedTuple):
    """Attack A vs B on the same ``n`` samples: ``a_only``/``b_only`` discordant counts, ``difference`` = rate A −
    rate B with its ``interval``, and the exact McNemar ``p_value`` (two-sided)."""

    n: int
    a_only: int
    b_only: int
    difference: float
    interval: Interval
    p_value: float


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a binomial proportion ``successes / n`` (NaNs when ``n = 0``)."""
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Interval(math.nan, math.nan)
    z, p = _z(confidence), successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: rounding must not leave [0, 1]
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs: ``min(1, 2 P(X ≤ min(b, c)))`` with
    ``X ~ Binomial(b + c, 1/2)``; 1 when there is no discordant pair."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b}, {c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))  # exact integers, then one division
    return min(1.0, 2 * tail / 2**n)


def paired_difference_interval(both: int, a_only: int, b_only: int, neither: int,
                               confidence: float = 0.95) -> Interval:
    """Newcombe's hybrid score interval (method 10) for the difference of two paired proportions, rate A − rate B,
    from the 2×2 table of the paired outcomes."""
    n = both + a_only + b_only + neither
    if n == 0:
        return Interval(math.nan, math.nan)
    p1, p2 = (both + a_only) / n, (both + b_only) / n
    l1, u1 = wilson_interval(both + a_only, n, confidence)
    l2, u2 = wilson_interval(both + b_only, n, confidence)
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = (both * neither - a_only * b_only) / math.sqrt(margins) if margins > 0 else 0.0
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = d + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return Interval(max(-1.0, low), min(1.0, high))


def paired_test(hits_a, hits_b, confidence: float = 0.95) -> PairedTest:
    """Compares two attacks' per-sample outcomes (boolean arrays over the same samples)."""
    a, b = np.asarray(hits_a, bool), np.asarray(hits_b, bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired outcomes need two 1-D arrays of the same length, got {a.shape} and {b.shape}")
    both, a_only, b_only = int(np.sum(a & b)), int(np.sum(a & ~b)), int(np.sum(~a & b))
    neither = a.size - both - a_only - b_only
    difference = (a_only - b_only) / a.size if a.size else math.nan
    return PairedTest(int(a.size), a_only, b_only, difference,
                      paired_difference_interval(both, a_only, b_only, neither, confidence),
                      mcnemar_exact(a_only, b_only))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given): ``max_{j ≤ i} min(1, (m − j + 1) p_(j))``."""
    p = np.asarray(p_values, float)
    if p.size == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def all_pairs(outcomes: dict, confidence: float = 0.95) -> list[dict]:
    """Every pair of ``{name: per-sample hits}`` compared (``paired_test``), with Holm-adjusted p-values over the
    family. Returns dicts with ``a``, ``b``, the test's fields and ``p_holm``."""
    tests = [(a, b, paired_test(outcomes[a], outcomes[b], confidence))
             for a, b in itertools.combinations(outcomes, 2)]
    adjusted = holm([t.p_value for _, _, t in tests])
    return [{"a": a, "b": b, "n": t.n, "a_only": t.a_only, "b_only": t.b_only, "difference": t.difference,
             "difference_low": t.interval.low, "difference_high": t.interval.high, "p_value": t.p_value,
             "p_holm": float(p)} for (a, b, t), p in zip(tests, adjusted)]


def significantly_best(outcomes: dict, pairs: list[dict], alpha: float = 0.05) -> str | None:
    """The attack with the highest rate if it beats every other one significantly (Holm-adjusted p < alpha)."""
    if len(outcomes) < 2:
        return None
    rates = {k: float(np.mean(v)) if len(v) else math.nan for k, v in outcomes.items()}
    best = max(rates, key=lambda k: -math.inf if math.isnan(rates[k]) else rates[k])
    mine = [p for p in pairs if best in (p["a"], p["b"])]
    wins = all(p["p_holm"] < alpha and (p["difference"] > 0) == (p["a"] == best) for p in mine)
    return best if mine and wins else None
