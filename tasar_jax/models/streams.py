"""Joint and bone streams, and the two-stream ensembles upstream evaluates (MS-G3D, 2s-AGCN).

A bone stream sees bone vectors ``x − x[:, :, :, parents, :]`` (the root is its own parent, so its bone is zero);
the transform lives inside the model so that every model consumes the common joint-position input and input
gradients are always with respect to joint positions (reference.md §2.5, §2.6).

Streams are a type: per-stream values (a surrogate's logits for TASAR, a posterior, head parameters) are always a
tuple with one entry per stream — length 1 for a single model, 2 (joint, bone) for a ``TwoStream`` ensemble.
This module is the one place that tells the two kinds of model apart (``num_streams``, ``stream_logits``); the
rest of the package only looks at the length of a tuple.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

STREAMS = ("joint", "bone")


def bone_vectors(x, parents):
    """x (N, C, T, V, M) joint positions → bone vectors ``x − x[..., parents, :]`` of the same shape."""
    return x - x[:, :, :, jnp.asarray(parents), :]


def bone_lengths(x, parents, *, offset: float = 0.0, floor: float = 0.0):
    """Bone lengths ``sqrt(Σ_xyz (x_j − x_parent(j) + offset)² + floor)`` of clips (N, 3, T, V, M) → (N, T, V, M).

    The one definition for numpy (evaluated in x's dtype, e.g. the float64 metrics) and JAX arrays (attacks,
    defences); ``offset`` and ``floor`` are the guards the upstream losses add (SMART ``offset=1e-8``, BEAT
    ``floor=1e-10``), zero for the plain Euclidean length (the root's bone is 0)."""
    xp = np if isinstance(x, np.ndarray) else jnp
    bones = x - x[:, :, :, xp.asarray(parents), :] + offset
    return xp.sqrt(xp.sum(xp.square(bones), axis=1) + floor)


def stream_input(x, stream: str, parents):
    """The input a ``stream`` model computes from joint positions: ``x`` itself or its bone vectors."""
    if stream == "joint":
        return x
    if stream == "bone":
        return bone_vectors(x, parents)
    raise ValueError(f"unknown stream {stream!r}; valid: {', '.join(STREAMS)}")


class TwoStream(nnx.Module):
    """Sum of a joint-stream and a bone-stream model: ``f(x) = f_J(x) + f_B(x − x[parents])``.

    ``model_bone`` is a bone-stream model (it computes the bone vectors itself), so both members take joint
    positions. Attribute names match upstream's ``MSG3D_ensemble``/``AGCN_ensemble`` state_dict prefixes.
    ``config`` is the joint stream's config; the bone member uses the same with ``stream="bone"``.
    """

    def __init__(self, model_joint: nnx.Module, model_bone: nnx.Module):
        if model_joint.config.stream != "joint" or model_bone.config.stream != "bone":
            raise ValueError("TwoStream needs a joint-stream model and a bone-stream model, in that order")
        self.config = model_joint.config
        self.model_joint = model_joint
        self.model_bone = model_bone

    def stream_logits(self, x, rng_key=None):
        """Per-stream logits ``(z_J, z_B)``, each (N, K); TASAR's ensemble surrogate needs them separately."""
        keys = (None, None) if rng_key is None else (jax.random.fold_in(rng_key, 0), jax.random.fold_in(rng_key, 1))
        return self.model_joint(x, rng_key=keys[0]), self.model_bone(x, rng_key=keys[1])

    def __call__(self, x, rng_key=None):
        z_joint, z_bone = self.stream_logits(x, rng_key)
        return z_joint + z_bone


def num_streams(model) -> int:
    """1 for a single model, 2 for a ``TwoStream`` ensemble (the length of its per-stream tuples)."""
    return 2 if isinstance(model, TwoStream) else 1


def stream_logits(model, x) -> tuple:
    """Per-stream logits of any model: ``(z,)`` or, for a ``TwoStream``, ``(z_J, z_B)``; each (N, K)."""
    return model.stream_logits(x) if isinstance(model, TwoStream) else (model(x),)


def summed(per_stream):
    """The sum of a per-stream tuple, left to right (``z_J + z_B``, as ``TwoStream.__call__``; ``z`` for one)."""
    total = per_stream[0]
    for value in per_stream[1:]:
        total = total + value
    return total


def check_per_stream(value, what: str) -> tuple:
    """``value`` as a per-stream tuple; a clear error for anything that is not one (e.g. a bare posterior)."""
    if not isinstance(value, (tuple, list)) or len(value) not in (1, 2) or hasattr(value, "_fields"):
        raise TypeError(f"{what} must be a per-stream tuple of 1 or 2 entries ((one,) or (joint, bone)), "
                        f"got {type(value).__name__}")
    return tuple(value)


def stream_keys(key, count: int) -> tuple:
    """One PRNG key per stream: the key itself for a single stream, ``fold_in(key, i)`` for stream i of two."""
    return (key,) if count == 1 else tuple(jax.random.fold_in(key, i) for i in range(count))
