"""Model zoo: ``create(name, dataset, ...)`` builds any registered architecture by name.

Every ``tasar_jax/models/<module>.py`` exports ``Config`` (frozen dataclass with ``for_dataset``) and ``Model``
(an NNX module mapping the common input x (N, 3, T, 25, M) to logits (N, K), called as ``model(x, rng_key=None)``;
model-specific input transforms live inside the model). Two-stream families (MS-G3D, 2s-AGCN) have a ``stream``
config field; their ensembles are ``streams.TwoStream``. Lookup is by name through ``importlib``; no import-time
registration.
"""

from __future__ import annotations

import dataclasses
import importlib
import types

import jax
import jax.numpy as jnp
from flax import nnx

from tasar_jax.models import streams
from tasar_jax.models.layers import num_parameters


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A registry entry: the module under ``tasar_jax.models`` plus how the name specialises it.

    Attributes:
      module: module name (``tasar_jax/models/<module>.py``).
      stream: ``joint``/``bone`` for single streams of a two-stream family, None otherwise.
      two_stream: True for the joint + bone ensembles (``streams.TwoStream``).
      upstream: the upstream ``-classifier`` name (checkpoint folder, key listings).
    """

    module: str
    stream: str | None = None
    two_stream: bool = False
    upstream: str = ""


# CLI name → registry entry (names as in the issue tracker and upstream's -classifier, lower-cased)
ARCHITECTURES = {
    "stgcn": Architecture("stgcn", upstream="STGCN"),
    "ctrgcn": Architecture("ctrgcn", upstream="CTRGCN"),
    "frhead": Architecture("frhead", upstream="FRHEAD"),
    "msg3d_joint": Architecture("msg3d", stream="joint", upstream="MSG3D_joint"),
    "msg3d_bone": Architecture("msg3d", stream="bone", upstream="MSG3D_bone"),
    "msg3d": Architecture("msg3d", two_stream=True, upstream="MSG3D"),
    "agcn_joint": Architecture("agcn", stream="joint", upstream="AGCN_joint"),
    "agcn_bone": Architecture("agcn", stream="bone", upstream="AGCN_bone"),
    "agcn": Architecture("agcn", two_stream=True, upstream="AGCN"),
    "sttformer": Architecture("sttformer", upstream="STTFormer"),
    "skateformer": Architecture("skateformer", upstream="SkateFormer"),
    "mlp": Architecture("mlp", upstream="3layerMLP"),
}

__all__ = ["ARCHITECTURES", "Architecture", "cast", "config_for", "create", "entry", "get", "num_parameters"]


def entry(name: str) -> Architecture:
    """The registry entry of ``name``; unknown names list the valid ones."""
    key = name.lower()
    if key not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; valid names: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[key]


def get(name: str) -> types.ModuleType:
    """Returns the module implementing architecture ``name`` (its ``Config`` and ``Model``)."""
    return importlib.import_module(f"tasar_jax.models.{entry(name).module}")


def config_for(name: str, dataset: str, **overrides):
    """The architecture's upstream configuration for ``dataset`` with ``overrides`` applied.

    For two-stream names this is the joint stream's config (the bone member differs only in ``stream``).
    """
    arch = entry(name)
    if arch.stream is not None or arch.two_stream:
        overrides = {"stream": arch.stream or "joint", **overrides}
    return get(name).Config.for_dataset(dataset, **overrides)


def create(name: str, dataset: str | None = None, *, config=None, seed: int = 0, **overrides) -> nnx.Module:
    """Builds architecture ``name`` for ``dataset`` (or from an explicit ``config``), initialised from ``seed``.

    Two-stream names build ``streams.TwoStream`` (joint member from ``seed``, bone member from ``seed + 1``).

    Examples:
      >>> model = create("stgcn", "hdm05", width=0.125)
      >>> model.config.num_classes
      65
    """
    arch, module = entry(name), get(name)
    if config is None:
        if dataset is None:
            raise ValueError("create() needs a dataset or a config")
        config = config_for(name, dataset, **overrides)
    elif overrides:
        raise ValueError("pass either config or keyword overrides, not both")
    if arch.two_stream:
        joint = dataclasses.replace(config, stream="joint")
        return streams.TwoStream(module.Model(joint, rngs=nnx.Rngs(seed)),
                                 module.Model(dataclasses.replace(config, stream="bone"), rngs=nnx.Rngs(seed + 1)))
    if arch.stream is not None and config.stream != arch.stream:
        raise ValueError(f"{name} is the {arch.stream} stream but the config says stream={config.stream!r}")
    return module.Model(config, rngs=nnx.Rngs(seed))


def cast(model: nnx.Module, dtype) -> nnx.Module:
    """A copy of ``model`` whose floating-point state (params, statistics, buffers) is cast to ``dtype``.

    Used for float64 parity checks (inside ``jax.enable_x64(True)``); integer state is left alone.
    """
    graph, state = nnx.split(model)
    state = jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, state)
    return nnx.merge(graph, state)
