"""The transfer benchmark: config files (:mod:`.config`), resumable runner (:mod:`.runner`)."""

from tasar_jax.benchmark.config import AttackSpec, BenchmarkConfig, DataSpec, ModelSpec, parse
from tasar_jax.benchmark.runner import run_benchmark, write_outputs

__all__ = ["AttackSpec", "BenchmarkConfig", "DataSpec", "ModelSpec", "parse", "run_benchmark", "write_outputs"]
