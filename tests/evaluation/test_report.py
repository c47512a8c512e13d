"""Transfer tables with uncertainty: Wilson cells, bold significantly best attacks, paired differences, CSV."""

import csv

import numpy as np
import pytest

from tasar_jax.evaluation import metrics, report, stats


def _cell(attack, target, hits, correct=None, surrogate="s"):
    hits = np.asarray(hits, bool)
    correct = np.ones_like(hits) if correct is None else np.asarray(correct, bool)
    return {"surrogate": surrogate, "attack": attack, "method": attack, "target": target, "targeted": False,
            "success_rate": float(hits.mean()), "clean_accuracy": float(correct.mean()),
            "success_rate_on_correct": float(hits[correct].mean()) if correct.any() else float("nan"),
            "num_samples": hits.size, "num_clean_correct": int(correct.sum()),
            "hits": metrics.flags_text(hits), "clean_correct": metrics.flags_text(correct)}


N = 200
RNG = np.random.default_rng(0)
STRONG, WEAK = RNG.uniform(size=N) < 0.6, RNG.uniform(size=N) < 0.2
NEAR = STRONG.copy()
NEAR[:3] = ~NEAR[:3]  # three samples apart from STRONG
CORRECT = np.arange(N) % 4 != 0
CELLS = [_cell("tasar", "t", STRONG, CORRECT), _cell("fgsm", "t", WEAK, CORRECT), _cell("mig", "t", NEAR, CORRECT),
         _cell("tasar", "u", STRONG), _cell("fgsm", "u", WEAK), _cell("tasar", "s", np.ones(N, bool))]


def test_cells_show_the_rate_and_the_larger_side_of_the_wilson_interval():
    header, rows = report.table_rows(CELLS)
    k = int(STRONG.sum())
    low, high = stats.wilson_interval(k, N)
    assert rows[0][header.index("t")] == f"{100 * k / N:.1f} ± {100 * max(k / N - low, high - k / N):.1f}"
    assert rows[0][header.index("s")] == f"100.0 ± {100 * (1 - stats.wilson_interval(N, N).low):.1f}*"
    assert rows[1][header.index("s")] == "–"


def test_bold_only_where_the_best_attack_beats_every_other_significantly():
    header, rows = report.table_rows(CELLS, style="markdown")
    (tasar, fgsm, _, _), t, u = rows, header.index("t"), header.index("u")
    assert not tasar[t].startswith("**")  # column t: MIG is three samples from TASAR, no significant winner
    assert tasar[u].startswith("**") and tasar[u].endswith("**")  # column u: TASAR vs FGSM only, 60 % vs 20 %
    assert not fgsm[u].startswith("**")
    _, plain = report.table_rows(CELLS)
    assert not any("**" in c for row in plain for c in row)
    pairs, best = report.paired_comparisons(CELLS)
    assert best == {("s", "tasar", "u")}
    t_pairs = [p for p in pairs if p["target"] == "t"]
    assert len(t_pairs) == 3
    np.testing.assert_allclose([p["p_holm"] for p in t_pairs], stats.holm([p["p_value"] for p in t_pairs]))


def test_each_surrogate_block_ends_with_its_denominators():
    header, rows = report.table_rows(CELLS)
    assert header[2:5] == ["t", "u", "s"] and rows[-1] == ["s", "n", "200", "200", "200", ""]
    rows = report.table_rows(CELLS, "success_rate_on_correct")[1]
    assert rows[-1] == ["s", "n", str(int(CORRECT.sum())), "200", "200", ""]
    fewer = CELLS + [{**_cell("dim", "t", STRONG[:64], CORRECT[:64])}]
    assert report.table_rows(fewer)[1][-1][2] == "64–200"


def test_on_correct_comparisons_use_only_the_targets_correct_samples():
    pairs, _ = report.paired_comparisons(CELLS, "success_rate_on_correct")
    tf = next(p for p in pairs if (p["target"], p["a"], p["b"]) == ("t", "tasar", "fgsm"))
    assert tf["n"] == int(CORRECT.sum())
    assert tf["a_only"] == int((STRONG & ~WEAK & CORRECT).sum())


def test_cells_without_per_sample_flags_still_get_intervals_but_no_tests():
    bare = [{k: v for k, v in c.items() if k not in ("hits", "clean_correct")} for c in CELLS]
    assert report.paired_comparisons(bare) == ([], set())
    enriched = report.with_intervals(bare)
    low, high = stats.wilson_interval(int(WEAK.sum()), N)
    assert enriched[1]["success_rate_low"] == pytest.approx(low) and enriched[1]["success_rate_high"] == high
    assert enriched[0]["clean_accuracy_low"] == stats.wilson_interval(int(CORRECT.sum()), N).low
    legacy = [{"surrogate": "s", "attack": "a", "target": "t", "success_rate": 0.25}]  # no counts: just the rate
    assert report.table_rows(legacy)[1][0][2] == "25.0"


def test_differences_against_the_reference_and_csv_files(tmp_path):
    pairs, _ = report.paired_comparisons(CELLS)
    text = report.differences_markdown(pairs, "tasar")
    assert "| surrogate | tasar minus | t | u |" in text
    d = 100 * (STRONG.mean() - WEAK.mean())
    assert f"| s | fgsm | {d:+.1f} (" in text and "†" in text
    mig_line = next(line for line in text.splitlines() if "| mig |" in line)
    assert "†" not in mig_line and mig_line.endswith("| – |")  # MIG attacked t only
    report.write_csv(tmp_path / "p.csv", pairs, report.PAIR_FIELDS)
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == len(pairs) and set(rows[0]) == set(report.PAIR_FIELDS)
    report.write_csv(tmp_path / "c.csv", report.with_intervals(CELLS))
    first = next(csv.DictReader(open(tmp_path / "c.csv")))
    assert float(first["success_rate_low"]) < float(first["success_rate"]) < float(first["success_rate_high"])
    png = report.heatmap(CELLS, tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
