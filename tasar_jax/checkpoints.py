"""Model checkpoints: orbax-saved NNX state plus JSON metadata, written atomically (host code).

A checkpoint is a directory::

    <dir>/metadata.json   architecture, dataset, config, class names, accuracy, history, provenance
    <dir>/state/          orbax StandardCheckpointer tree: params, BatchNorm statistics and buffers

The whole directory is first written beside its destination and then renamed into place, so a crash never
leaves a half-written checkpoint, and an existing checkpoint is replaced only once the new one is complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import tempfile

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from tasar_jax import models

FORMAT = "tasar-jax-checkpoint"
FORMAT_VERSION = 1


def _savable_state(model: nnx.Module):
    return nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.RngState)))


def save(directory, model: nnx.Module, *, architecture: str, dataset: str, **metadata) -> pathlib.Path:
    """Saves ``model`` (any registered architecture) and its metadata to ``directory``, atomically."""
    directory = pathlib.Path(directory).absolute()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    os.chmod(tmp, 0o755)
    try:
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "architecture": architecture,
            "dataset": dataset,
            "config": dataclasses.asdict(model.config),
            **metadata,
        }
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(tmp / "state", jax.device_get(_savable_state(model)))
        checkpointer.wait_until_finished()
        checkpointer.close()
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_metadata(directory) -> dict:
    """The ``metadata.json`` of a checkpoint; raises ValueError naming the problem if it is not a checkpoint."""
    path = pathlib.Path(directory) / "metadata.json"
    if not path.is_file():
        raise ValueError(f"{directory}: not a tasar-jax checkpoint (no metadata.json)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt metadata: {err}") from err
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tasar-jax checkpoint (format {meta.get('format')!r})")
    return meta


def update_metadata(directory, **fields) -> dict:
    """Adds or replaces metadata fields of an existing checkpoint (atomic rewrite of metadata.json)."""
    meta = read_metadata(directory)
    meta.update(fields)
    path = pathlib.Path(directory) / "metadata.json"
    tmp = path.with_name(f".metadata.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=_json_default))
    os.replace(tmp, path)
    return meta


def _check_stored_shapes(checkpointer, path, abstract) -> None:
    """Compares the stored array shapes with the model's before reading any data (clear error, no partial read)."""
    def shapes(tree):
        leaves = jax.tree_util.tree_leaves_with_path(tree)
        return {".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path): tuple(v.shape)
                for path, v in leaves}

    stored, wanted = shapes(checkpointer.metadata(path).item_metadata), shapes(abstract)
    problems = [f"{k}: stored {stored.get(k)} vs model {v}" for k, v in wanted.items() if stored.get(k) != v]
    problems += [f"{k}: stored but not in the model" for k in stored.keys() - wanted.keys()]
    if problems:
        raise ValueError(f"state does not match the metadata's model: {'; '.join(problems[:8])}"
                         + (f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""))


def _tupled(value):
    """JSON lists back to (nested) tuples: configs are frozen, hashable dataclasses (NNX static attributes)."""
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def load(directory) -> tuple[nnx.Module, dict]:
    """Restores ``(model, metadata)`` from a checkpoint directory written by :func:`save`."""
    directory = pathlib.Path(directory).absolute()
    meta = read_metadata(directory)
    module = models.get(meta["architecture"])
    config = module.Config(**{k: _tupled(v) for k, v in meta["config"].items()})
    model = models.create(meta["architecture"], config=config)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _savable_state(model))
    checkpointer = ocp.StandardCheckpointer()
    try:
        _check_stored_shapes(checkpointer, directory / "state", abstract)
        restored = checkpointer.restore(directory / "state", abstract)
    except Exception as err:  # orbax raises several types for damaged or mismatched trees
        raise ValueError(f"{directory}: cannot restore the model state: {err}") from err
    finally:
        checkpointer.close()
    state = nnx.state(model, nnx.Not(nnx.RngState))
    nnx.replace_by_pure_dict(state, restored)
    nnx.update(model, state)
    return model, meta
