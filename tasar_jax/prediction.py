"""Model to logits, in one place: an NNX classifier's eval-mode logits, jitted once per model and run in fixed-size
chunks sharded over the devices (``tasar_jax.scale``). Training, gathering, post-training, the defences, the
evaluation and the benchmark all predict through it."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from tasar_jax import scale
from tasar_jax.models import streams as stream_tools


def chunked(apply_fn, state: tuple, x, batch_size: int, *, mesh=None):
    """``apply_fn(*state, chunk)`` over x in chunks of ``batch_size`` samples per device of ``mesh`` (default: every
    device), the last chunk padded so that one compilation serves every chunk."""
    return scale.map_in_chunks(lambda chunk, _: apply_fn(*state, chunk), x, per_device_batch=max(1, batch_size),
                               mesh=mesh)


class Predictor:
    """``Predictor(model)(x) -> (N, K)``: the model's eval-mode logits, jitted once; ``streams=True`` gives the
    per-stream tuple ``(z,)`` or ``(z_J, z_B)`` (``models.streams``). Chunks hold ``batch_size`` samples per device,
    or as many as ``memory_budget`` (bytes or ``"4G"`` of one device's memory) allows, sized on the first call."""

    def __init__(self, model, batch_size: int = 256, *, streams: bool = False,
                 memory_budget: int | str | None = None, mesh=None):
        model.eval()
        graph, self.state = nnx.split(model)
        forward = stream_tools.stream_logits if streams else (lambda m, x: m(x))
        self.apply = jax.jit(lambda state, x: forward(nnx.merge(graph, state), x))
        self.batch_size, self.memory_budget, self.mesh = batch_size, memory_budget, mesh
        self._chunk = lambda chunk, _: self.apply(self.state, chunk)  # one function: one compilation per shape

    def __call__(self, x: np.ndarray):
        x = np.asarray(x, np.float32)
        if self.memory_budget is not None:
            fitted = scale.per_device_batch_for_budget(self._chunk, x, scale.parse_bytes(self.memory_budget))
            self.batch_size, self.memory_budget = min(self.batch_size, fitted), None
        return scale.map_in_chunks(self._chunk, x, per_device_batch=max(1, self.batch_size), mesh=self.mesh)


def predict(model, x: np.ndarray, batch_size: int = 256, *, streams: bool = False, mesh=None):
    """Eval-mode logits (N, K) of an NNX classifier (switched to eval mode) or a ``Predictor`` on x (N, 3, T, V, M)."""
    predictor = model if isinstance(model, Predictor) else Predictor(model, batch_size, streams=streams, mesh=mesh)
    return predictor(x)
