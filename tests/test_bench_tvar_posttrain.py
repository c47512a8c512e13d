"""Smoke tests of the TV-AR and head post-training benchmark scripts at tiny workloads: the returned keys, and that
the two implementations each script compares compute the same thing (timings are not checked)."""

import math

import pytest

from experiments import bench_posttrain, bench_tvar

TVAR_KEYS = {"device", "samples", "frames", "series", "fits", "vectorised_s", "vectorised_compile_s", "per_series_s",
             "per_series_measured_s", "per_series_looped", "per_series_extrapolated", "per_series_compile_s",
             "speedup_vectorised_vs_per_series", "cv_evaluations_per_fit", "max_abs_bw_diff", "max_abs_coef_diff",
             "nan_pattern_equal"}
POSTTRAIN_KEYS = {"device", "torch_device", "samples", "epochs", "heads", "batch", "jax_logits_s",
                  "jax_logits_compile_s", "jax_train_s", "jax_train_compile_s", "jax_total_s", "torch_s",
                  "speedup_total", "speedup_train_only", "network_passes", "initial_loss_jax", "initial_loss_torch",
                  "final_loss_jax", "final_loss_torch"}


def test_tvar_vectorised_equals_per_series(tmp_path):
    out = tmp_path / "tvar.json"
    r = bench_tvar.main(["--samples", "1", "--frames", "10", "--loop-series", "5", "--no-profile",
                         "--out", str(out)])
    assert TVAR_KEYS <= r.keys() and out.exists()
    assert r["series"] == 75 and r["fits"] == 150 and r["per_series_looped"] == 5 and r["per_series_extrapolated"]
    assert r["per_series_s"] == pytest.approx(r["per_series_measured_s"] * 75 / 5)
    assert r["max_abs_bw_diff"] <= 1e-10 and r["max_abs_coef_diff"] <= 1e-10 and r["nan_pattern_equal"]


def test_tvar_loop_indices_spread_and_bad_input():
    idx = bench_tvar.loop_indices(100, 5)
    assert idx[0] == 0 and idx[-1] == 99 and len(idx) == 5
    assert len(bench_tvar.loop_indices(10, 0)) == 10
    with pytest.raises(ValueError, match="frames"):
        bench_tvar.main(["--samples", "1", "--frames", "3"])


def test_posttrain_paths_agree(tmp_path):
    out = tmp_path / "posttrain.json"
    r = bench_posttrain.main(["--width", "0.125", "--samples", "16", "--test-samples", "8", "--epochs", "1",
                              "--heads", "2", "--batch", "8", "--repeats", "1", "--no-intended", "--torch-threads", "1",
                              "--out", str(out)])
    assert POSTTRAIN_KEYS <= r.keys() and out.exists()
    assert r["jax_logits_match_library"] and r["jax_intended_train_s"] is None and r["torch_threads"] == 1
    assert r["network_passes"] == {"jax_forward": 3, "torch_forward": 6, "torch_backward": 4}
    # same converted weights and initial heads: the same initial loss up to float32 rounding
    assert r["initial_loss_jax"] == pytest.approx(r["initial_loss_torch"], rel=1e-4)
    for key in ("final_loss_jax", "final_loss_torch"):
        assert math.isfinite(r[key]) and r[key] == pytest.approx(r["initial_loss_jax"], rel=0.05)


def test_posttrain_bad_input():
    with pytest.raises(ValueError, match="epochs"):
        bench_posttrain.main(["--epochs", "0"])
    with pytest.raises(ValueError, match="torch-device"):
        bench_posttrain.main(["--torch-device", "tpu"])
