"""Transfer metrics and reports on hand-made logits, clips and cells."""

import math

import numpy as np
import pytest

from tasar_jax.data import layouts
from tasar_jax.evaluation import metrics, report


def _logits(predictions, k=4):
    return np.eye(k)[np.asarray(predictions)] * 5.0


def test_untargeted_rates_all_and_on_clean_correct():
    labels = np.array([0, 1, 2, 3, 0])
    clean = _logits([0, 1, 0, 3, 1])  # correct on samples 0, 1, 3
    adv = _logits([1, 1, 2, 0, 1])  # fooled on 0, 3, 4
    m = metrics.transfer_metrics(adv, clean, labels)
    assert m["success_rate"] == pytest.approx(3 / 5)
    assert m["clean_accuracy"] == pytest.approx(3 / 5)
    assert m["success_rate_on_correct"] == pytest.approx(2 / 3)  # samples 0 and 3 of {0, 1, 3}
    assert (m["num_samples"], m["num_clean_correct"]) == (5, 3)


def test_targeted_rate_counts_hits_of_the_target_class():
    labels, targets = np.array([0, 1, 2]), np.array([3, 3, 1])
    adv = _logits([3, 2, 1])
    m = metrics.transfer_metrics(adv, _logits(labels), labels, targeted=True, target_labels=targets)
    assert m["success_rate"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        metrics.transfer_metrics(adv, adv, labels, targeted=True)


def test_no_clean_correct_sample_gives_nan_not_zero():
    labels = np.array([0, 1])
    m = metrics.transfer_metrics(_logits([1, 0]), _logits([1, 0]), labels)
    assert math.isnan(m["success_rate_on_correct"]) and m["success_rate"] == 1.0


def test_perturbation_stats_on_a_hand_made_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 6, 25, 1))
    shift = np.zeros_like(x)
    shift[:, 0, 3, 5] = 0.02  # one coordinate of joint 5 in frame 3
    stats = metrics.perturbation_stats(x, x + shift, "hdm05")
    assert stats["linf"] == pytest.approx(0.02) and stats["linf_max"] == pytest.approx(0.02)
    assert stats["l2"] == pytest.approx(0.02)
    # second differences at t = 1, 2, 3 change by δ, −2δ, δ: 4δ over 3·4·25 entries per sample
    assert stats["acceleration_change"] == pytest.approx(4 * 0.02 / (3 * 4 * 25))
    assert stats["bone_length_change"] > 0
    same = metrics.perturbation_stats(x, x, "hdm05")
    assert same["l2"] == 0 and same["bone_length_change"] == 0 and same["acceleration_change"] == 0


def test_bone_lengths_use_the_dataset_parents():
    x = np.zeros((1, 3, 1, 25, 1))
    parents = layouts.get_dataset("ntu60").parents_array
    x[0, 1, 0, 1] = 2.0  # joint 1 (parent 0) two units up
    lengths = metrics.bone_lengths(x, parents)
    assert lengths[0, 0, 1, 0] == pytest.approx(2.0) and lengths[0, 0, 0, 0] == 0


CELLS = [{"surrogate": s, "attack": a, "method": a, "target": t, "success_rate": v}
         for s, a, t, v in [("s", "fgsm", "s", 1.0), ("s", "fgsm", "t1", 0.2), ("s", "fgsm", "t2", 0.4),
                            ("s", "tasar", "s", 0.9), ("s", "tasar", "t1", 0.5), ("s", "tasar", "t2", None)]]


def test_table_layout_marks_white_box_and_averages_black_box_targets():
    header, rows = report.table_rows(CELLS)
    assert header == ["surrogate", "attack", "s", "t1", "t2", "average"]
    assert rows[0] == ["s", "fgsm", "100.0*", "20.0", "40.0", "30.0"]
    assert rows[1] == ["s", "tasar", "90.0*", "50.0", "–", "50.0"]  # missing cell: shown as –, not averaged
    text = report.markdown_table(CELLS, title="t")
    assert "| s | fgsm | 100.0* | 20.0 | 40.0 | 30.0 |" in text


def test_csv_and_heatmap_files(tmp_path):
    report.write_csv(tmp_path / "r.csv", CELLS)
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0].startswith("surrogate,attack,method,target,success_rate") and len(lines) == 7
    png = report.heatmap(CELLS, tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
