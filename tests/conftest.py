"""Shared test helpers: the golden-fixture folder and small random batches."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# One persistent XLA compilation cache for the whole run: both xdist workers and every subprocess a test starts
# (CLI, multi-process sharding) reuse a program another process already compiled. Compilation is most of the
# suite's time on CPU. Set before any test module imports jax; ``TASAR_TEST_JAX_CACHE=`` (empty) turns it off.
_cache = os.environ.get("TASAR_TEST_JAX_CACHE", str(REPO_ROOT / ".pytest_cache" / "jax"))
if _cache:
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _cache)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")


def fixtures_dir() -> pathlib.Path:
    """``$TASAR_FIXTURES`` or ``../shared/fixtures`` relative to the repository root."""
    return pathlib.Path(os.environ.get("TASAR_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def upstream() -> pathlib.Path:
    """The folder of golden data produced by the upstream PyTorch code; a missing folder is an error."""
    path = fixtures_dir() / "upstream"
    if not path.is_dir():
        pytest.fail(f"golden fixtures not found at {path}; set TASAR_FIXTURES to the shared/fixtures folder")
    return path


def random_batch(n=2, t=60, m=1, seed=0) -> np.ndarray:
    """A smooth random skeleton batch (N, 3, T, 25, M), float32."""
    rng = np.random.default_rng(seed)
    time = np.linspace(0, 1, t)[None, None, :, None, None]
    offset = rng.uniform(-0.5, 0.5, (n, 3, 1, 25, m))
    wave = 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 2, (n, 3, 1, 25, m)) * time)
    return (offset + wave).astype(np.float32)
