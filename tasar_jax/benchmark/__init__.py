"""The transfer benchmark: config files (:mod:`.config`), resumable runner (:mod:`.runner`)."""

from tasar_jax.benchmark.config import BenchmarkAttack, BenchmarkConfig, BenchmarkData, BenchmarkModel, parse
from tasar_jax.benchmark.runner import run_benchmark, write_outputs

__all__ = ["BenchmarkAttack", "BenchmarkConfig", "BenchmarkData", "BenchmarkModel", "parse", "run_benchmark",
           "write_outputs"]
