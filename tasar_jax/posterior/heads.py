"""Appended heads (reference.md §4.1) and their diagonal-Gaussian posterior (§4.4, §4.5).

A head is upstream's ``Sequential(Linear(K,K), Linear(K,K), ReLU)`` applied to the ReLU-clipped logits ``h`` of
the frozen surrogate; an appended model outputs ``h + head(h)``. Weights keep PyTorch's layout ``W (out, in)``,
``y = h @ W.T + b``, so upstream files map one to one. K heads are stacked on a leading axis of every leaf, and the
surrogate prediction is the sum over heads.

Per-stream values are tuples (``tasar_jax.models.streams``): a posterior is ``(Posterior,)`` or ``(joint, bone)``.
Two-stream surrogates (MS-G3D, 2s-AGCN) have a joint head and a bone head per appended model, each post-trained on
its own stream. Upstream's attack feeds the bone head the *joint* logits (§7.15); the default here is the intended
model (bone head on bone logits), ``bone_head_sees_joint=True`` reproduces upstream.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from tasar_jax.models import streams


class HeadParams(NamedTuple):
    """One head (leaves (K,K) and (K,)) or a stack of heads (leading axis = head index)."""

    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    b2: jax.Array


class Posterior(NamedTuple):
    """Stacked heads and their SWAG moments (same structure): ``heads`` drive the prediction, ``mean`` and
    ``sqmean`` (first and second moments of the iterates) define the posterior ``N(μ, sq − μ²)`` per parameter."""

    heads: HeadParams
    mean: HeadParams
    sqmean: HeadParams


def head_apply(params: HeadParams, h):
    """``ReLU(W2 (W1 h + b1) + b2)`` for one head; h (..., K)."""
    return jax.nn.relu((h @ params.w1.T + params.b1) @ params.w2.T + params.b2)


def appended_logits(params: HeadParams, z):
    """One appended model on surrogate logits z (..., K): ``ReLU(z) + head(ReLU(z))``."""
    h = jax.nn.relu(z)
    return h + head_apply(params, h)


def appended_model(heads: tuple, z: tuple, *, bone_head_sees_joint: bool = False):
    """One appended model of a surrogate with per-stream logits ``z`` and one head per stream ``heads``:
    ``Σ_s ReLU(z_s) + head_s(ReLU(z_s))``, added left to right (``h_J + head_J(h_J) + h_B + head_B(h_B)``).
    ``bone_head_sees_joint`` feeds every head the first stream's ``h`` (upstream's §7.15 bug)."""
    heads, z = streams.check_per_stream(heads, "heads"), streams.check_per_stream(z, "surrogate logits")
    hidden = [jax.nn.relu(zs) for zs in z]
    total = None
    for params, h in zip(heads, hidden, strict=True):
        for term in (h, head_apply(params, hidden[0] if bone_head_sees_joint else h)):
            total = term if total is None else total + term
    return total


def summed_appended_logits(stacked: tuple, z: tuple, *, bone_head_sees_joint: bool = False):
    """Upstream ``modelEval``: the sum over the stacked heads (per-stream tuple, leading head axis) of their
    appended models on per-stream logits ``z``."""
    one = lambda heads: appended_model(heads, z, bone_head_sees_joint=bone_head_sees_joint)  # noqa: E731
    return jnp.sum(jax.vmap(one)(streams.check_per_stream(stacked, "heads")), axis=0)


def sample_heads(key, posterior: Posterior, num_samples: int, scale: float = 1.5, beta: float = 1e-30) -> HeadParams:
    """Draws ``θ = μ + scale·sqrt(max(sq − μ², 1e-30) + β)·ξ`` for every head: leaves (num_samples, K_app, ...).

    ``θ`` is upstream's per-parameter diagonal Gaussian (§4.5); all samples of all heads are drawn at once.
    """
    mean, sqmean = posterior.mean, posterior.sqmean
    leaves, treedef = jax.tree.flatten(mean)
    keys = jax.random.split(key, len(leaves))
    draws = []
    for k, mu, sq in zip(keys, leaves, jax.tree.leaves(sqmean)):
        std = jnp.sqrt(jnp.maximum(sq - mu**2, 1e-30) + beta)
        noise = jax.random.normal(k, (num_samples,) + mu.shape, mu.dtype)
        draws.append(mu + scale * std * noise)
    return jax.tree.unflatten(treedef, draws)
