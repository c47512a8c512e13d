"""tasar-jax: TASAR transfer attacks on skeleton action recognisers, and the RobustBenchHAR benchmark, in JAX."""

__version__ = "0.1.0"
