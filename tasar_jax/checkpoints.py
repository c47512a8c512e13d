"""Model checkpoints: orbax-saved NNX state plus JSON metadata, written atomically (host code).

A checkpoint is a directory::

    <dir>/metadata.json   architecture, dataset, config, class names, accuracy, history, provenance, and
                          ``state``: the name of the state folder (absent: ``state``)
    <dir>/state*/         orbax StandardCheckpointer tree: params, BatchNorm statistics and buffers

A new checkpoint is written in a folder beside its destination and renamed into place. Replacing an existing one
has no moment without a loadable checkpoint at the path (docs/decisions.md T9): the new state goes into a fresh
``state-<token>`` folder inside the directory, then one atomic rename of ``metadata.json`` switches to it, then the
old state folder is removed. A writer killed at any point leaves the old or the new checkpoint, never neither;
an unreferenced ``state-*`` folder left by a killed writer is removed by the next save.
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
from tasar_jax.data.formats import atomic_path, process_umask

FORMAT = "tasar-jax-checkpoint"
FORMAT_VERSION = 1


def _savable_state(model: nnx.Module):
    return nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.RngState)))


def _write_state(path: pathlib.Path, model: nnx.Module) -> None:
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, jax.device_get(_savable_state(model)))
    checkpointer.wait_until_finished()
    checkpointer.close()


def _write_metadata(directory: pathlib.Path, meta: dict) -> None:
    """Atomic rewrite of ``metadata.json`` (temp file in the same folder, then one rename)."""
    with atomic_path(directory / "metadata.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2, default=_json_default))


def _state_name(meta: dict) -> str:
    name = meta.get("state", "state")
    if not isinstance(name, str) or "/" in name or not name.startswith("state"):
        raise ValueError(f"metadata names an invalid state folder {name!r}")
    return name


def save(directory, model: nnx.Module, *, architecture: str, dataset: str, **metadata) -> pathlib.Path:
    """Saves ``model`` (any registered architecture) and its metadata to ``directory``; a crash leaves the previous
    checkpoint (if any) or the new one, complete (module docstring)."""
    directory = pathlib.Path(directory).absolute()
    directory.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": architecture, "dataset": dataset,
            "config": dataclasses.asdict(model.config), **metadata}
    try:
        old_state = _state_name(read_metadata(directory))
    except ValueError:
        old_state = None
    if old_state is None:  # nothing loadable there: build the whole directory beside it, then rename it in
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        os.chmod(tmp, 0o777 & ~process_umask())
        try:
            _write_state(tmp / "state", model)
            _write_metadata(tmp, {**meta, "state": "state"})
            if directory.exists():  # not a checkpoint (or a damaged one): moved aside, then removed
                aside = directory.with_name(f".{directory.name}.old-{os.getpid()}")
                os.replace(directory, aside)
                shutil.rmtree(aside, ignore_errors=True)
            os.replace(tmp, directory)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return directory
    new_state = f"state-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        _write_state(directory / new_state, model)
        _write_metadata(directory, {**meta, "state": new_state})  # the switch: one rename
    except BaseException:
        shutil.rmtree(directory / new_state, ignore_errors=True)
        raise
    for stale in directory.glob("state*"):  # the replaced state and any left by a killed writer
        if stale.name != new_state:
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
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
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: corrupt metadata: not a JSON object")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tasar-jax checkpoint (format {meta.get('format')!r})")
    missing = [k for k in ("architecture", "dataset", "config") if k not in meta]
    if missing:
        raise ValueError(f"{path}: incomplete metadata, no {', '.join(map(repr, missing))}")
    return meta


def update_metadata(directory, **fields) -> dict:
    """Adds or replaces metadata fields of an existing checkpoint (atomic rewrite of metadata.json)."""
    meta = read_metadata(directory)
    meta.update(fields)
    _write_metadata(pathlib.Path(directory), meta)
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
    state_path = directory / _state_name(meta)
    module = models.get(meta["architecture"])
    config = module.Config(**{k: _tupled(v) for k, v in meta["config"].items()})
    model = models.create(meta["architecture"], config=config)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _savable_state(model))
    checkpointer = ocp.StandardCheckpointer()
    try:
        _check_stored_shapes(checkpointer, state_path, abstract)
        restored = checkpointer.restore(state_path, abstract)
    except Exception as err:  # orbax raises several types for damaged or mismatched trees
        raise ValueError(f"{directory}: cannot restore the model state: {err}") from err
    finally:
        checkpointer.close()
    state = nnx.state(model, nnx.Not(nnx.RngState))
    nnx.replace_by_pure_dict(state, restored)
    nnx.update(model, state)
    return model, meta
