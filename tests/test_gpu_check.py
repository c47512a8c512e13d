"""Smoke tests of the device check script and the throughput benchmark on CPU, at tiny workloads (no timings are
asserted: benchmarks are scripts)."""

from __future__ import annotations

import argparse
import importlib
import json
import shlex

import jax
import pytest

from experiments import bench_throughput, gpu_check


def test_quick_check_records_every_section_and_writes_json(tmp_path):
    out = tmp_path / "check.json"
    result = gpu_check.main(["--quick", "--sections", "device,parity,throughput,throughput_highest",
                             "--section-args", "throughput=--arch mlp --attacks ifgsm --batches 2 --iterations 2",
                             "--fixtures", str(tmp_path / "absent"), "--budget-s", "600", "--out", str(out)])
    on_disk = json.loads(out.read_text())
    sections = on_disk["sections"]
    assert set(sections) == {"device", "parity", "throughput", "throughput_highest"} == set(result["sections"])
    assert sections["device"]["status"] == "ok"
    assert sections["device"]["result"]["packages"]["jax"] == jax.__version__
    # parity without fixtures: skipped, naming the files it needs
    assert sections["parity"]["status"] == "skipped"
    assert "upstream/STGCN_hdm05.pth.xz" in sections["parity"]["result"]["reason"]
    assert sections["throughput_highest"]["status"] == "skipped"  # only on a GPU
    throughput = sections["throughput"]["result"]
    assert sections["throughput"]["status"] == "ok" and throughput["skipped"] == []
    assert [(r["attack"], r["batch"]) for r in throughput["rows"]] == [("ifgsm", 2)]
    per_example = throughput["flops_per_example_iteration"]["ifgsm"]
    assert per_example["step"] > per_example["forward"] > 0  # a step is a forward plus a backward
    assert per_example["step_lowered"] > per_example["forward_lowered"] > 0
    for row in throughput["rows"]:
        assert row["flops_per_attack_batch"] == pytest.approx(
            row["batch"] * (throughput["iterations"] * per_example["step"] + per_example["forward"]))
        assert row["attacks_per_s"] > 0 and row["executable_memory_bytes"]["argument"] > 0


def test_failing_section_is_recorded_and_the_next_one_runs(tmp_path):
    out = tmp_path / "check.json"
    gpu_check.main(["--quick", "--sections", "device,bench_tasar", "--section-args", "bench_tasar=--no-such-flag",
                    "--budget-s", "600", "--out", str(out)])
    sections = json.loads(out.read_text())["sections"]
    assert sections["bench_tasar"]["status"] == "error"
    assert "SystemExit" in sections["bench_tasar"]["error"]  # argparse's exit is caught, not fatal
    assert sections["device"]["status"] == "ok"


def test_used_budget_skips_sections(tmp_path):
    out = tmp_path / "check.json"
    result = gpu_check.main(["--quick", "--sections", "device,throughput", "--budget-s", "-1", "--out", str(out)])
    assert {s["status"] for s in result["sections"].values()} == {"skipped"}
    assert json.loads(out.read_text())["sections"]["device"]["reason"].startswith("budget")


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown sections"):
        gpu_check.main(["--sections", "device,nope"])
    with pytest.raises(ValueError, match="NAME=ARGS"):
        gpu_check.section_args("cpu", ["throughput"])
    with pytest.raises(ValueError, match="positive integers"):
        bench_throughput.parse_ints("8,0")
    with pytest.raises(ValueError, match="unknown attack"):
        bench_throughput.attack_programs("nope", None, None)


def test_missing_benchmark_module_is_an_error():
    """The project's own modules are imported plainly (its section records the error; no silent 'not available')."""
    with pytest.raises(ModuleNotFoundError, match="no_such_benchmark"):
        gpu_check.benchmark("no_such_benchmark", [])


def test_parity_files_and_device_peaks():
    assert gpu_check.parity_files(["stgcn", "ctrgcn"]) == [
        "upstream/STGCN_hdm05.pth.xz", "upstream/STGCN_hdm05_io.npz",
        "upstream/CTRGCN_hdm05.pth.xz", "upstream/CTRGCN_hdm05_io.npz"]
    assert bench_throughput.device_peak("NVIDIA H100 80GB HBM3") == {"fp32": 67e12, "tf32": 495e12}
    assert bench_throughput.device_peak("NVIDIA H100 PCIe")["fp32"] == 51e12
    assert bench_throughput.device_peak("cpu") is None


def test_throughput_time_limit_skips_configurations(tmp_path):
    out = tmp_path / "throughput.json"
    result = bench_throughput.main(["--arch", "mlp", "--batches", "2,1", "--time-limit-s", "-1", "--out", str(out)])
    assert result["rows"] == [] and result["flops_per_example_iteration"] == {}
    assert result["skipped"] == ["tasar batch 1: time limit", "ifgsm batch 1: time limit",
                                 "tasar batch 2: time limit", "ifgsm batch 2: time limit"]
    assert json.loads(out.read_text())["skipped"] == result["skipped"]


def test_schedule_runs_every_attack_at_one_batch_before_the_next():
    assert bench_throughput.schedule([8, 1, 32], ["tasar", "ifgsm"], largest_first=True) == [
        (32, "tasar"), (32, "ifgsm"), (8, "tasar"), (8, "ifgsm"), (1, "tasar"), (1, "ifgsm")]
    assert bench_throughput.schedule([8, 1], ["ifgsm"], largest_first=False) == [(1, "ifgsm"), (8, "ifgsm")]


def test_torch_device_without_cuda_is_a_clear_error():
    torch = pytest.importorskip("torch")
    from experiments import bench_tasar

    device, sync = bench_tasar.torch_device("cpu")
    assert device.type == "cpu" and sync() is None
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            bench_tasar.torch_device("cuda")


class _Parsed(Exception):
    pass


@pytest.mark.parametrize("mode", sorted(gpu_check.ARGS))
def test_every_mode_passes_arguments_its_benchmarks_accept(mode, monkeypatch):
    """Each benchmark's own parser accepts the argument list gpu_check gives it (stopped right after parsing)."""
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise _Parsed(parse(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    for name, text in gpu_check.ARGS[mode].items():
        if text is None:
            continue
        module = importlib.import_module(f"experiments.{gpu_check.MODULES[name]}")
        with pytest.raises(_Parsed):
            module.main(shlex.split(text))
