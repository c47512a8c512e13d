"""Model zoo: ``create(name, dataset, ...)`` builds any registered architecture by name.

Every ``tasar_jax/models/<module>.py`` exports ``Config`` (frozen dataclass with ``for_dataset``) and ``Model``
(an NNX module mapping x (N, 3, T, V, M) to logits (N, K)). Lookup is by name through ``importlib``; no
import-time registration.
"""

from __future__ import annotations

import importlib
import types

import jax
import jax.numpy as jnp
from flax import nnx

from tasar_jax.models.layers import num_parameters

# CLI/upstream name → module name under tasar_jax.models
ARCHITECTURES = {
    "stgcn": "stgcn",
    "mlp": "mlp",
}

__all__ = ["ARCHITECTURES", "cast", "config_for", "create", "get", "num_parameters"]


def get(name: str) -> types.ModuleType:
    """Returns the module implementing architecture ``name``; unknown names list the valid ones."""
    key = name.lower()
    if key not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; valid names: {', '.join(ARCHITECTURES)}")
    return importlib.import_module(f"tasar_jax.models.{ARCHITECTURES[key]}")


def config_for(name: str, dataset: str, **overrides):
    """The architecture's upstream configuration for ``dataset`` with ``overrides`` applied."""
    return get(name).Config.for_dataset(dataset, **overrides)


def create(name: str, dataset: str | None = None, *, config=None, seed: int = 0, **overrides) -> nnx.Module:
    """Builds architecture ``name`` for ``dataset`` (or from an explicit ``config``), initialised from ``seed``.

    Examples:
      >>> model = create("stgcn", "hdm05", width=0.125)
      >>> model.config.num_classes
      65
    """
    module = get(name)
    if config is None:
        if dataset is None:
            raise ValueError("create() needs a dataset or a config")
        config = module.Config.for_dataset(dataset, **overrides)
    elif overrides:
        raise ValueError("pass either config or keyword overrides, not both")
    return module.Model(config, rngs=nnx.Rngs(seed))


def cast(model: nnx.Module, dtype) -> nnx.Module:
    """A copy of ``model`` whose floating-point state (params, statistics, buffers) is cast to ``dtype``.

    Used for float64 parity checks (inside ``jax.enable_x64(True)``); integer state is left alone.
    """
    graph, state = nnx.split(model)
    state = jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, state)
    return nnx.merge(graph, state)
