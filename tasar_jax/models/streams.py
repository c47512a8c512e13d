"""Joint and bone streams, and the two-stream ensembles upstream evaluates (MS-G3D, 2s-AGCN).

A bone stream sees bone vectors ``x − x[:, :, :, parents, :]`` (the root is its own parent, so its bone is zero);
the transform lives inside the model so that every model consumes the common joint-position input and input
gradients are always with respect to joint positions (reference.md §2.5, §2.6).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

STREAMS = ("joint", "bone")


def bone_vectors(x, parents):
    """x (N, C, T, V, M) joint positions → bone vectors ``x − x[..., parents, :]`` of the same shape."""
    return x - x[:, :, :, jnp.asarray(parents), :]


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
