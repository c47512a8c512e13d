"""One check of the current accelerator (GPU if present, else CPU), written to one JSON: device information, parity
of the converted upstream checkpoints with the golden fixtures (``jax_default_matmul_precision='highest'``,
float32 and float64), the TASAR benchmark against PyTorch (on CUDA when there is a GPU), attack throughput and
FLOP rate, and the TV-AR and head post-training benchmarks.

Every section runs in its own ``try``: a failure is recorded in the JSON (``status``, ``error``, traceback) and
the next section runs. The JSON is rewritten atomically after every section, so a run killed by a timeout still
leaves the finished sections. Sections start only while ``--budget-s`` seconds (from the start) are not used up;
the throughput section stops starting new batch sizes at its own share of the budget. Workloads are sized so that
the whole run fits in about 240 s on one H100 including compilation; ``--quick`` shrinks everything for a CPU
smoke test.

Parity needs ``<fixtures>/upstream/{STGCN,CTRGCN}_hdm05.pth.xz`` and ``..._hdm05_io.npz`` (``PARITY_MODELS``);
``--fixtures`` defaults to ``$TASAR_FIXTURES``, else ``<repo>/.fixtures``, else ``<repo>/../shared/fixtures``;
without them the section is skipped with the list of missing files.

Run: ``PYTHONUNBUFFERED=1 python experiments/gpu_check.py --out gpu_check.json [--quick] [--fixtures DIR]
[--sections device,parity,...] [--section-args 'throughput=--batches 8,128'] [--budget-s 240]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import time
import traceback

import jax

REPO = pathlib.Path(__file__).resolve().parents[1]
SECTIONS = ("device", "parity", "bench_tasar", "throughput", "posttrain", "tvar", "throughput_highest")
# parity cases: name -> (upstream checkpoint stems, io fixture stem), as experiments.parity.MODELS
PARITY_MODELS = {"stgcn": (("STGCN",), "STGCN"), "ctrgcn": (("CTRGCN",), "CTRGCN")}
# seconds kept free for the sections after throughput (posttrain, tvar) when sizing its time limit
RESERVE_AFTER_THROUGHPUT_S = 80.0

# benchmark modules and their arguments per mode; --section-args NAME=ARGS replaces a section's list
MODULES = {"bench_tasar": "bench_tasar", "throughput": "bench_throughput", "tvar": "bench_tvar",
           "posttrain": "bench_posttrain", "throughput_highest": "bench_throughput"}
ARGS = {
    "gpu": {"bench_tasar": "--batch 8 --iterations 10 --repeats 3 --torch-device cuda",
            "throughput": "--batches 1,8,32,128 --iterations 5 --repeats 3 --largest-first --flops-batch 8",
            "tvar": "--samples 256 --loop-series 30 --repeats 1 --series-per-call 4096 --series-per-step 4096",
            "posttrain": "--samples 256 --epochs 1 --repeats 2 --torch-device cuda",
            "throughput_highest": "--attacks tasar --batches 128 --iterations 5 --repeats 3 --precision highest "
                                  "--flops-batch 8"},
    "cpu": {"bench_tasar": "--batch 4 --iterations 2 --repeats 2",
            "throughput": "--batches 1,4 --iterations 2 --repeats 2",
            "tvar": "--samples 16 --loop-series 10 --repeats 1",
            "posttrain": "--samples 64 --test-samples 16 --epochs 1 --repeats 1",
            "throughput_highest": None},  # the CPU backend computes float32 dots in full precision anyway
    "quick": {"bench_tasar": "--width 0.125 --frames 16 --batch 2 --iterations 1 --samples-per-head 2 --repeats 1",
              "throughput": "--arch mlp --attacks ifgsm --batches 1,2 --iterations 1 --repeats 1",
              "tvar": "--samples 2 --loop-series 2 --frames 16 --no-profile --repeats 1",
              "posttrain": "--width 0.125 --samples 8 --test-samples 4 --epochs 1 --batch 4 --repeats 1 "
                           "--no-intended",
              "throughput_highest": None},
}


class Clock:
    """Seconds since the start, for progress lines and the budget."""

    def __init__(self):
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} +{self.elapsed():6.1f} s] {message}", flush=True)


def on_gpu() -> bool:
    return jax.default_backend() == "gpu"


def package_versions(names=("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax",
                            "orbax-checkpoint", "blackjax", "numpy", "scipy", "tensorstore", "treescope", "torch")):
    """Installed versions (None when a package is missing)."""
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def command_output(command: list[str], timeout: float = 20.0) -> str | None:
    """stdout of a command, or None when it is missing or fails."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def device_info() -> dict:
    """Versions, devices, XLA settings, torch's view of CUDA and ``nvidia-smi``."""
    device = jax.devices()[0]
    info = {"python": sys.version, "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "packages": package_versions(), "backend": jax.default_backend(), "device_kind": device.device_kind,
            "devices": [str(d) for d in jax.devices()], "device_count": jax.device_count(),
            "env": {k: v for k, v in os.environ.items() if k.startswith(("XLA_", "JAX_", "TF_", "CUDA_"))},
            "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
            "git_commit": (command_output(["git", "rev-parse", "HEAD"]) or "").strip() or None,
            "nvidia_smi": command_output(["nvidia-smi"])}
    try:
        import torch

        info["torch_cuda"] = {"available": torch.cuda.is_available(), "cuda": torch.version.cuda,
                              "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    except ImportError:
        info["torch_cuda"] = None
    return info


def fixtures_dir(given: str | None) -> pathlib.Path:
    """``--fixtures``, else ``$TASAR_FIXTURES``, else ``<repo>/.fixtures`` if present, else ``../shared/fixtures``."""
    if given:
        return pathlib.Path(given)
    if os.environ.get("TASAR_FIXTURES"):
        return pathlib.Path(os.environ["TASAR_FIXTURES"])
    local = REPO / ".fixtures"
    return local if local.is_dir() else REPO.parent / "shared" / "fixtures"


def parity_files(names) -> list[str]:
    """Fixture files (relative to the fixtures folder) that parity of ``names`` reads."""
    files = []
    for name in names:
        stems, io_stem = PARITY_MODELS[name]
        files += [f"upstream/{s}_hdm05.pth.xz" for s in stems] + [f"upstream/{io_stem}_hdm05_io.npz"]
    return files


def parity(fixtures: pathlib.Path, names) -> dict:
    """float32 / float64 errors of each converted checkpoint against its fixture, at 'highest' matmul precision."""
    from experiments import parity as parity_script

    missing = [f for f in parity_files(names) if not (fixtures / f).is_file()]
    if missing:
        return {"status": "skipped", "reason": f"fixtures not found under {fixtures}: {missing}"}
    previous = jax.config.jax_default_matmul_precision
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        return {"precision": "highest", "fixtures": str(fixtures),
                "models": {name: parity_script.measure(name, *PARITY_MODELS[name], fixtures / "upstream")
                           for name in names}}
    finally:
        jax.config.update("jax_default_matmul_precision", previous)


def benchmark(module: str, argv: list[str]) -> dict:
    """``experiments.<module>.main(argv)`` (a failure, an import error included, is its section's record)."""
    return importlib.import_module(f"experiments.{module}").main(argv)


def jsonable(value):
    """numpy scalars and arrays, paths and other objects to JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def write(result: dict, out: str | None) -> None:
    if out:
        from tasar_jax.data.formats import atomic_path

        with atomic_path(out, suffix=".json") as tmp:
            tmp.write_text(json.dumps(result, indent=2, default=jsonable))


def section_args(mode: str, overrides: list[str]) -> dict:
    """Argument lists per benchmark section for ``mode``, with ``NAME=ARGS`` overrides."""
    table = dict(ARGS[mode])
    for item in overrides:
        name, sep, text = item.partition("=")
        if not sep or name not in table:
            raise ValueError(f"--section-args wants NAME=ARGS with NAME in {sorted(table)}, got {item!r}")
        table[name] = text
    return {name: None if text is None else shlex.split(text) for name, text in table.items()}


def throughput_limit(clock: Clock, budget: float, quick: bool, sections) -> float:
    """The throughput section's own time limit: what the budget leaves after keeping a reserve for the later
    sections that will run (posttrain, tvar)."""
    later = any(name in sections for name in ("posttrain", "tvar"))
    reserve = RESERVE_AFTER_THROUGHPUT_S if later and not quick else 0.0
    return max(5.0, budget - clock.elapsed() - reserve)


def run_section(name: str, fn, result: dict, clock: Clock, out: str | None) -> None:
    """Runs one section, records its outcome and duration, and writes the JSON."""
    clock.log(f"{name}: start")
    start = time.monotonic()
    try:
        value = fn()
        status = value.pop("status", "ok") if isinstance(value, dict) and "status" in value else "ok"
        entry = {"status": status, "result": value}
    except BaseException as error:  # noqa: BLE001 - recorded, the check goes on (SystemExit from argparse too)
        if isinstance(error, KeyboardInterrupt):
            raise
        entry = {"status": "error", "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    entry["seconds"] = time.monotonic() - start
    result["sections"][name] = entry
    write(result, out)
    clock.log(f"{name}: {entry['status']} ({entry['seconds']:.1f} s)"
              + (f" {entry.get('error') or entry['result'].get('reason', '')}" if entry["status"] != "ok" else ""))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="the JSON file (rewritten after every section)")
    parser.add_argument("--quick", action="store_true", help="tiny workloads (CPU smoke test)")
    parser.add_argument("--fixtures", default=None, help="folder holding upstream/ (see the module docstring)")
    parser.add_argument("--parity-models", default=None, help="comma-separated (default: stgcn,ctrgcn; quick: stgcn)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--section-args", action="append", default=[], metavar="NAME=ARGS",
                        help="replace a benchmark section's arguments (repeatable)")
    parser.add_argument("--budget-s", type=float, default=240.0, help="start no section after this many seconds")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown sections {unknown}; choose from {SECTIONS}")
    names = (args.parity_models or ("stgcn" if args.quick else "stgcn,ctrgcn")).split(",")
    if any(n not in PARITY_MODELS for n in names):
        raise ValueError(f"--parity-models: choose from {sorted(PARITY_MODELS)}, got {names}")
    mode = "quick" if args.quick else ("gpu" if on_gpu() else "cpu")
    bench = section_args(mode, args.section_args)
    clock = Clock()
    result = {"mode": mode, "device": f"{jax.devices()[0].device_kind} ({jax.default_backend()})",
              "budget_s": args.budget_s, "section_args": bench, "sections": {}}
    clock.log(f"gpu_check: {result['device']}, mode {mode}, sections {sections}")

    jobs = {"device": device_info,
            "parity": lambda: parity(fixtures_dir(args.fixtures), names),
            "throughput": lambda: benchmark(MODULES["throughput"], bench["throughput"] + (
                [] if "--time-limit-s" in bench["throughput"]  # a limit given in --section-args wins
                else ["--time-limit-s", f"{throughput_limit(clock, args.budget_s, args.quick, sections):.0f}"]))}
    for name in ("bench_tasar", "tvar", "posttrain", "throughput_highest"):
        jobs[name] = lambda name=name: benchmark(MODULES[name], bench[name])
    for name in SECTIONS:
        if name not in sections:
            continue
        if name in bench and bench[name] is None:
            result["sections"][name] = {"status": "skipped", "reason": f"not run in mode {mode}"}
        elif clock.elapsed() > args.budget_s:
            result["sections"][name] = {"status": "skipped", "reason": f"budget of {args.budget_s:.0f} s used"}
        else:
            run_section(name, jobs[name], result, clock, args.out)
            continue
        write(result, args.out)
        clock.log(f"{name}: {result['sections'][name]['reason']}")
    result["total_s"] = clock.elapsed()
    write(result, args.out)
    clock.log(f"done in {result['total_s']:.1f} s" + (f" → {args.out}" if args.out else ""))
    return result


if __name__ == "__main__":
    if str(REPO) not in sys.path:  # run as a script from a checkout that is not pip-installed (the GPU machine)
        sys.path.insert(0, str(REPO))
    main()
