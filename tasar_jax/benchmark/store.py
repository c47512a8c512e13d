"""Completion records of a resumable run: ``<run>/stages/<name>.json`` = ``{"spec": ..., "result": ...}``.

A stage (data, a model, a surrogate's preparation, an attack cell, an evaluation cell) writes its outputs
atomically first and its record last, so a record exists only for a finished stage. A record is reused only if
its ``spec`` (the stage's settings and those of everything it depends on) equals the current one; a changed
config recomputes exactly the stages it affects.
"""

from __future__ import annotations

import json
import pathlib
import re

from tasar_jax.data.formats import atomic_path


def to_json(value):
    """JSON-normalised copy (tuples → lists, numpy scalars → Python), so specs compare equal after a reload."""
    return json.loads(json.dumps(value, default=_default))


def _default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path, value) -> pathlib.Path:
    with atomic_path(path, suffix=".json") as tmp:
        pathlib.Path(tmp).write_text(json.dumps(value, indent=2, default=_default, allow_nan=True))
    return pathlib.Path(path)


class Store:
    """Completion records under ``<run>/stages``; ``fresh=True`` ignores (but does not delete) old records."""

    def __init__(self, run_dir, *, fresh: bool = False):
        self.folder = pathlib.Path(run_dir) / "stages"
        self.fresh = fresh
        self.written: set[str] = set()

    def path(self, name: str) -> pathlib.Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9_.+-]", "_", name) + ".json")

    def get(self, name: str, spec):
        """The recorded result of stage ``name`` if it finished with this ``spec`` (in this run if ``fresh``)."""
        path = self.path(name)
        if (self.fresh and name not in self.written) or not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        return record["result"] if record.get("spec") == to_json(spec) else None

    def put(self, name: str, spec, result):
        write_json(self.path(name), {"spec": to_json(spec), "result": to_json(result)})
        self.written.add(name)
        return to_json(result)
