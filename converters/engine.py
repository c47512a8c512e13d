"""Generic PyTorch ``state_dict`` → Flax NNX converter driven by a declarative key table.

A torch key ``<module path>.<leaf>`` is mapped in two steps:

1. the module path is renamed by the first matching ``(regex, replacement)`` rule of the architecture's table
   (``converters/keymaps/<arch>.py``); unmatched paths stay as they are;
2. the leaf is resolved against the NNX module found at that path: ``Conv`` (``weight`` → ``kernel``,
   (O, I, kH, kW) → (kH, kW, I, O)), ``Linear`` (``weight`` → ``kernel``, transposed), ``BatchNorm``/``LayerNorm``
   (``weight`` → ``scale``, ``running_mean`` → ``mean``, ``running_var`` → ``var``; ``num_batches_tracked``
   dropped); any other key must name an NNX variable directly (buffers such as ST-GCN ``A``, bare parameters).
   ``layers.Constant`` variables (graph constants upstream keeps outside its state_dict) are never expected.

Missing, unexpected and shape-mismatched keys are collected and raised together in one error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np
from flax import nnx
from tasar_jax.converters.torch_io import CheckpointError

from tasar_jax.models.layers import Constant

KeyTable = Sequence[tuple[str, str]]

_NORM_LEAVES = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}
_DROPPED_LEAVES = {"num_batches_tracked"}


def _path_str(path) -> str:
    return ".".join(str(p) for p in path)


def _rename(module_path: str, table: KeyTable) -> str:
    for pattern, replacement in table:
        if re.fullmatch(pattern, module_path):
            return re.sub(pattern, replacement, module_path)
    return module_path


def _conv_kernel(w: np.ndarray) -> np.ndarray:
    """torch Conv{1,2,3}d weight (O, I, *k) → NNX kernel (*k, I, O)."""
    return np.transpose(w, tuple(range(2, w.ndim)) + (1, 0))


def plan(model: nnx.Module, state_dict: Mapping[str, np.ndarray], table: KeyTable):
    """Maps every torch key to ``(nnx_path, array)``; returns ``(assignments, problems)`` without mutating."""
    modules = {_path_str(p): node for p, node in nnx.iter_graph(model) if isinstance(node, nnx.Module)}
    variables = {_path_str(p): v for p, v in nnx.to_flat_state(nnx.state(model))}
    assignments, unexpected, mismatched, seen = {}, [], [], set()
    for key, value in state_dict.items():
        module_path, _, leaf = key.rpartition(".")
        target_module = _rename(module_path, table) if module_path else ""
        node = modules.get(target_module)
        value = np.asarray(value)
        torch_shape = tuple(value.shape)
        if leaf in _DROPPED_LEAVES and isinstance(node, (nnx.BatchNorm, nnx.LayerNorm)):
            continue
        if isinstance(node, nnx.Conv) and leaf in ("weight", "bias"):
            target, value = f"{target_module}.{'kernel' if leaf == 'weight' else 'bias'}", (
                _conv_kernel(value) if leaf == "weight" else value)
        elif isinstance(node, nnx.Linear) and leaf in ("weight", "bias"):
            target, value = f"{target_module}.{'kernel' if leaf == 'weight' else 'bias'}", (
                value.T if leaf == "weight" else value)
        elif isinstance(node, (nnx.BatchNorm, nnx.LayerNorm)) and leaf in _NORM_LEAVES:
            target = f"{target_module}.{_NORM_LEAVES[leaf]}"
        else:
            target = f"{target_module}.{leaf}" if target_module else leaf
        if target not in variables:
            unexpected.append(f"{key} (→ {target})")
            continue
        expected = tuple(variables[target].shape)
        if tuple(value.shape) != expected:
            mismatched.append(f"{key}: checkpoint {torch_shape} does not fit model {target} {expected}")
            seen.add(target)
            continue
        assignments[target] = (key, value)
    missing = [p for p, v in variables.items()
               if p not in assignments and p not in seen and not isinstance(v, (nnx.RngState, Constant))]
    return assignments, {"missing": missing, "unexpected": unexpected, "shape mismatch": mismatched}


def load_state_dict(model: nnx.Module, state_dict: Mapping[str, np.ndarray], table: KeyTable, *, source="checkpoint"):
    """Copies a torch ``state_dict`` into ``model`` in place (strict). Returns the model.

    Raises:
      CheckpointError: listing every missing, unexpected and shape-mismatched key at once; nothing is modified.
    """
    assignments, problems = plan(model, state_dict, table)
    if any(problems.values()):
        lines = [f"{source} does not fit {type(model).__module__}.{type(model).__name__}:"]
        for kind, keys in problems.items():
            if keys:
                lines.append(f"  {kind} ({len(keys)}): " + "; ".join(keys))
        raise CheckpointError("\n".join(lines))
    state = nnx.state(model)
    flat = dict(nnx.to_flat_state(state))
    for path, variable in flat.items():
        target = _path_str(path)
        if target in assignments:
            _, value = assignments[target]
            dtype = variable.get_value().dtype
            variable.set_value(jnp.asarray(value, dtype=dtype))
    nnx.update(model, state)
    return model
