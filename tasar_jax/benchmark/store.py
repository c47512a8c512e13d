"""Completion records of a resumable run: ``<run>/stages/<name>.json`` = ``{"inputs": ..., "result": ...}``.

A stage (data, a model, a surrogate's preparation, an attack cell, an evaluation cell) writes its outputs
atomically first and its record last, so a record exists only for a finished stage. A record is reused only if
its ``inputs`` (the stage's settings and those of everything it depends on) equal the current ones; a changed
config recomputes exactly the stages it affects.

Records are also keyed by content (docs/decisions.md E11): ``put(..., files=...)`` stores a SHA-256 of every output
file (a folder: every file in it) and adds their combined ``content`` digest to the result; ``get`` reuses a record
only while those files still hash the same, and a dependent stage puts ``identity(record)`` (inputs plus content)
in its own inputs. So a file replaced at the same path recomputes its stage and, through the changed digest, exactly
the stages that depend on it. Records written before fingerprints (no ``files``) are trusted as they are; records
of the earlier format (``"spec"`` for ``"inputs"``) are recomputed.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re

from tasar_jax.data.formats import atomic_path


def to_json(value):
    """JSON-normalised copy (tuples → lists, numpy scalars → Python), so inputs compare equal after a reload."""
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


def file_digest(path) -> str:
    """SHA-256 (hex) of a file's bytes, or of a folder's files (relative names and bytes, in sorted order);
    ``"missing"`` if nothing is there."""
    path = pathlib.Path(path)
    if path.is_file():
        files = [(path.name, path)]
    elif path.is_dir():
        files = sorted((f.relative_to(path).as_posix(), f) for f in path.rglob("*") if f.is_file())
    else:
        return "missing"
    sha = hashlib.sha256()
    for name, f in files:
        sha.update(name.encode() + b"\0")
        with open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        sha.update(b"\0")
    return sha.hexdigest()


def combined_digest(digests: dict) -> str:
    """One short digest of a ``{path: digest}`` map (the order of paths does not matter)."""
    return hashlib.sha256(json.dumps(sorted(digests.values())).encode()).hexdigest()[:16]


def identity(record: dict):
    """What a dependent stage keys on: the record's ``inputs`` and, once fingerprinted, its ``content`` digest."""
    return record["inputs"] if "content" not in record else {"inputs": record["inputs"], "content": record["content"]}


class Store:
    """Completion records under ``<run>/stages``; ``fresh=True`` ignores (but does not delete) old records."""

    def __init__(self, run_dir, *, fresh: bool = False):
        self.folder = pathlib.Path(run_dir) / "stages"
        self.fresh = fresh
        self.written: set[str] = set()

    def path(self, name: str) -> pathlib.Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9_.+-]", "_", name) + ".json")

    def get(self, name: str, inputs):
        """The recorded result of stage ``name`` if it finished with these ``inputs`` (in this run if ``fresh``)."""
        path = self.path(name)
        if (self.fresh and name not in self.written) or not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        if record.get("inputs") != to_json(inputs):
            return None
        if any(file_digest(f) != digest for f, digest in record.get("files", {}).items()):
            return None  # an output was replaced or removed since: recompute
        return record["result"]

    def put(self, name: str, inputs, result, files=()):
        """Records stage ``name`` as finished; ``files`` are its outputs (files or folders), fingerprinted."""
        digests = {str(f): file_digest(f) for f in files}
        if "missing" in digests.values():
            missing = [f for f, d in digests.items() if d == "missing"]
            raise FileNotFoundError(f"stage {name}: its output {missing[0]} was not written")
        result = {**result, "content": combined_digest(digests)} if files else result
        write_json(self.path(name), {"inputs": to_json(inputs), "result": to_json(result), "files": digests})
        self.written.add(name)
        return to_json(result)
