"""What every benchmark script shares: steady-state timing after a first (compiling) call, and the JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import numpy as np


def first_and_steady(fn, repeats: int) -> tuple[float, float, object]:
    """(first call seconds minus the median later call — compilation or warm-up —, median of ``repeats`` later
    calls, the last result). ``fn`` must wait for its own result (``block_until_ready``, a device sync)."""
    start = time.perf_counter()
    result = fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    steady = float(np.median(times))
    return max(first - steady, 0.0), steady, result


def median_seconds(fn, repeats: int, warmup: int = 0) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (``fn`` waits for its result)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def machine() -> str:
    """The CPU, its core count and, where torch is imported, torch's version and thread count."""
    text = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    torch = sys.modules.get("torch")
    return text if torch is None else f"{text}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def command(script: str, argv) -> str:
    """The command line that reproduces a run of ``experiments/<script>``."""
    return f"python experiments/{script} " + " ".join(argv if argv is not None else sys.argv[1:])


def write_json(path, result: dict) -> None:
    """Writes ``result`` to ``path`` atomically (a temporary file renamed) and says where."""
    from tasar_jax.data.formats import atomic_path

    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print(f"→ {path}")
