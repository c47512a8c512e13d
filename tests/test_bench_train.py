"""``experiments/bench_train.py`` keeps its JSON contract (issue 17) and times both sides on the same batch."""

import json

import pytest

from experiments import bench_train

pytest.importorskip("torch")


def test_bench_train_writes_the_contract(tmp_path):
    out = tmp_path / "bench_train.json"
    result = bench_train.main(["--batch", "2", "--widths", "0.125", "--warmup", "1", "--repeats", "1",
                               "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(result)) and {"device", "machine", "models", "by_width"} <= set(written)
    row = written["by_width"]["0.125"]
    assert set(row) == {"stgcn", "ctrgcn"} and written["models"] == {}  # "models" is full width only
    for times in row.values():
        assert times["jax_s_per_sample"] > 0 and times["torch_s_per_sample"] > 0
        assert times["ratio"] == pytest.approx(times["torch_s_per_sample"] / times["jax_s_per_sample"])
