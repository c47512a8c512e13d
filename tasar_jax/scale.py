"""Data parallelism and bounded memory: any per-sample computation (an attack, a prediction) over arbitrarily many
samples, in fixed-size chunks whose sample axis is sharded over a device mesh, with the weights replicated.

The same code path serves one CPU, one GPU, the 8 fake CPU devices of a test, and many hosts: ``data_mesh()``
spans every device of every process (``jax.distributed.initialize`` first on many hosts, see
``initialize_distributed``); ``jax.jit`` propagates the input sharding through the whole attack scan (no
hand-written collectives). Each process reads only the rows that land on its own devices
(``jax.make_array_from_callback``), so a memory-mapped array or a per-host slice of the data is enough.

Results do not depend on the number of devices: a chunk holds ``per_device_batch`` samples per device, so every
device runs the same compiled computation on the same shapes whatever the mesh size (bitwise equal,
``tests/test_scale.py``; on CPU at a fixed number of CPU devices per process, on which XLA:CPU's code generation
depends), and per-sample randomness is keyed by the global sample index. Changing
``per_device_batch`` itself changes the shapes XLA compiles for, and with them the summation order of some
reductions: results then agree to float32 rounding, not bitwise (decision S2).

``per_device_batch_for_budget`` sizes chunks from a memory budget: it compiles the computation once at a small
probe batch and reads XLA's buffer assignment (``compiled.memory_analysis()``).
"""

from __future__ import annotations

import functools
import re
from typing import Callable

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec

DATA_AXIS = "data"
PROBE_BATCH = 4
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def data_mesh(devices=None) -> jax.sharding.Mesh:
    """A one-axis mesh (``"data"``) over ``devices`` (default: every device of every process). Auto axis types,
    so plain indexing inside the models needs no sharding annotations (ecosystem.md §1.6)."""
    devices = list(jax.devices() if devices is None else devices)
    return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices)


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, *, cpu_devices: int | None = None) -> None:
    """``jax.distributed.initialize`` for multi-host runs (call before any other JAX work). With no arguments JAX
    detects the cluster (SLURM, TPU pods, ...). On CPU-only machines the collectives go through gloo, and
    ``cpu_devices`` sets the number of CPU devices per process (for tests: several processes on one machine)."""
    if cpu_devices is not None:
        jax.config.update("jax_num_cpu_devices", cpu_devices)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)


def parse_bytes(text: str | int | float) -> int:
    """``"24G"``, ``"512M"``, ``"1.5GiB"``, ``1e9`` → bytes (binary units)."""
    if isinstance(text, (int, float)):
        return int(text)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:I?B)?\s*", str(text).upper())
    if not match:
        raise ValueError(f"cannot read a memory size from {text!r} (examples: 512M, 4G, 1.5GiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _rows(arrays) -> int:
    sizes = {np.shape(a)[0] for a in jax.tree.leaves(arrays)}
    if len(sizes) != 1:
        raise ValueError(f"per-sample arrays disagree on the number of samples: {sorted(sizes)}")
    return sizes.pop()


def _global(array, rows: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """The rows ``rows`` of a host array as one global array sharded along its first axis; each process reads
    only the rows of its own devices."""
    shape = (len(rows),) + tuple(np.shape(array)[1:])
    return jax.make_array_from_callback(shape, sharding, lambda index: np.asarray(array[rows[index[0]]]))


def _to_host(array: jax.Array) -> np.ndarray:
    """A global array as numpy on every process (an all-gather across hosts, a plain copy within one)."""
    if jax.process_count() == 1 or array.is_fully_addressable:
        return np.asarray(array)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


@functools.lru_cache(maxsize=16)
def _sharded(fn: Callable, mesh: jax.sharding.Mesh):
    """``fn`` per device under ``shard_map``, jitted; cached per (function, mesh), so a caller that keeps its chunk
    function (``evaluation.Predictor``) compiles once for all its calls."""
    return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=PartitionSpec(DATA_AXIS), out_specs=PartitionSpec(DATA_AXIS),
                                 check_vma=False))


def map_in_chunks(fn: Callable, arrays, *, per_device_batch: int, mesh: jax.sharding.Mesh | None = None,
                  progress: bool = False, description: str = "samples"):
    """``fn(arrays_chunk, indices) -> outputs`` over all samples, in chunks of ``per_device_batch`` samples per
    device of ``mesh`` (default: ``data_mesh()``); returns the outputs (a pytree of per-sample arrays, batch axis
    first) concatenated as numpy arrays, on every process.

    ``arrays``: a pytree of host arrays (numpy, memory-mapped) with the sample axis first. ``indices`` are the
    global sample indices of the chunk (for per-sample keys). The last chunk is padded by repeating the last
    sample, so every chunk has one shape and one compilation; padded rows are dropped. A set smaller than one
    chunk is processed as one smaller chunk.
    """
    from tasar_jax.progress import bar as progress_bar

    mesh = data_mesh() if mesh is None else mesh
    n = _rows(arrays)
    if n == 0:
        raise ValueError("no samples to process")
    if per_device_batch < 1:
        raise ValueError(f"per_device_batch must be ≥ 1, got {per_device_batch}")
    per_device_batch = min(per_device_batch, -(-n // mesh.size))  # no chunk larger than the whole set
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    chunk = per_device_batch * mesh.size
    local = _sharded(fn, mesh)
    parts = []
    with progress_bar(progress and jax.process_index() == 0) as bar:
        task = bar.add_task(description, total=n)
        for start in range(0, n, chunk):
            positions = np.arange(start, start + chunk)
            rows = np.minimum(positions, n - 1)
            inputs = jax.tree.map(lambda a: _global(a, rows, sharding), arrays)
            outputs = local(inputs, _global(positions.astype(np.int32), np.arange(chunk), sharding))
            keep = min(chunk, n - start)
            parts.append(jax.tree.map(lambda o: _to_host(o)[:keep], outputs))
            bar.update(task, advance=keep)
    return jax.tree.map(lambda *p: np.concatenate(p), *parts)


def compiled_bytes(fn: Callable, arrays) -> int:
    """Bytes XLA assigns to one call of ``jax.jit(fn)(arrays, indices)`` on one device (arguments, outputs and
    temporaries), from the compiled executable's buffer assignment."""
    n = _rows(arrays)
    stats = jax.jit(fn).lower(arrays, np.arange(n, dtype=np.int32)).compile().memory_analysis()
    if stats is None:
        raise RuntimeError("this backend reports no memory analysis: give the batch size instead of a budget")
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
               - stats.alias_size_in_bytes)


def per_device_batch_for_budget(fn: Callable, arrays, budget_bytes: int, *, limit: int | None = None,
                                probe: int = PROBE_BATCH) -> int:
    """The largest per-device batch whose estimated footprint fits ``budget_bytes`` of one device's memory.

    Compiles ``fn`` once on ``probe`` samples (the first rows of ``arrays``, repeated if fewer) and charges the
    whole footprint to the samples (fixed costs included, so the estimate errs on the safe side). ``limit`` caps
    the result (e.g. the samples per device). Raises if not even one sample fits.
    """
    rows = np.arange(probe) % _rows(arrays)
    sample = jax.tree.map(lambda a: np.asarray(a[rows]), arrays)
    per_sample = compiled_bytes(fn, sample) / probe
    batch = int(budget_bytes // per_sample)
    if batch < 1:
        raise ValueError(f"the memory budget ({budget_bytes / 2**20:.0f} MiB) is below the estimated need of one "
                         f"sample ({per_sample / 2**20:.1f} MiB)")
    return batch if limit is None else max(1, min(batch, limit))
