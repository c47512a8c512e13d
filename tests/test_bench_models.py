"""``experiments/bench_models.py`` writes its table for every model and dataset asked, with torch where a
reference module exists."""

import json

import pytest

from experiments import bench_models

pytest.importorskip("torch")


def test_bench_models_writes_one_row_per_model_and_dataset(tmp_path):
    out = tmp_path / "bench_models.json"
    result = bench_models.main(["--models", "stgcn,mlp", "--datasets", "hdm05,ntu60", "--batch", "2",
                                "--width", "0.125", "--repeats", "1", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(result)) and written["width"] == 0.125
    assert set(written["models"]) == {"stgcn", "mlp"}
    for arch, rows in written["models"].items():
        assert set(rows) == {"hdm05", "ntu60"}
        for row in rows.values():
            assert all(row["jax"][k] > 0 for k in ("forward_s", "input_gradient_s"))
            if arch == "mlp":  # no torch reference module
                assert row["torch"] is None and row["ratio"] is None
            else:
                assert row["ratio"]["input_gradient_s"] == pytest.approx(
                    row["torch"]["input_gradient_s"] / row["jax"]["input_gradient_s"])


def test_unknown_model_fails_before_running():
    with pytest.raises(ValueError, match="unknown architecture"):
        bench_models.main(["--models", "stgcn,nosuch"])
