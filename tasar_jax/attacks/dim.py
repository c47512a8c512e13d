"""DIM, input diversity for skeletons (upstream ``-attacker Augment``, reference.md §3.6).

Every iteration each sample is augmented afresh: a random temporal crop (scale ``U(0.95, 1]``) linearly resized
back to ``T`` frames (torch ``F.interpolate`` bilinear, ``align_corners=False``), then with probability 0.5 a joint
corruption (15 indices drawn with replacement; with probability 0.5 zeroed, else their xyz multiplied by a random
``U(−1,1)`` 3×3 matrix), else a pose shear (``S = I + U(−1,1)`` with unit diagonal, ``p ← S·p``). The iterate takes
a sign step on the cross-entropy gradient at the augmented input.

Decisions (docs/decisions.md B13–B15):
* B13 (§7.25) corruption addresses joints by default (the augmentation's intent); ``corrupt_frames=True`` addresses
  frames 0..min(25, T)−1 as upstream does (it indexes the time axis).
* B14 (§7.25) the gradient is chained through the (linear) transform by default, ``∇_x L(f(A(x)))`` as in the
  published DIM; ``chain=False`` uses upstream's gradient w.r.t. the augmented tensor ``∇_{A(x)} L`` applied to x
  unchained. ``upstream=True`` in ``DIM`` sets both switches.
* B15 all randomness (crop scale and start, corruption-or-shear coin, indices, matrices) is drawn per sample from
  ``fold_in(per-sample key, t)``; upstream shares the crop and the coin across the batch, which would make a
  sample's attack depend on its batch. Any ``T`` (upstream hard-codes 60; minimum crop 0.8·T = 48 there) and any
  number of persons ``M``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from tasar_jax.attacks import base


class DIMState(NamedTuple):
    x: jax.Array


def crop_resize(x, start, length):
    """Frames ``start .. start+length−1`` of one sample (C, T, V, M) linearly resized back to T frames, with torch's
    ``F.interpolate(mode='bilinear', align_corners=False)`` sampling; ``start``/``length`` may be traced."""
    t = x.shape[1]
    scale = jnp.asarray(length, jnp.float32) / t
    src = jnp.maximum((jnp.arange(t, dtype=jnp.float32) + 0.5) * scale - 0.5, 0.0)
    i0 = jnp.minimum(jnp.floor(src).astype(jnp.int32), length - 1)
    i1 = jnp.minimum(i0 + 1, length - 1)
    lam = (src - i0).reshape(1, t, 1, 1)
    return (1 - lam) * jnp.take(x, start + i0, axis=1) + lam * jnp.take(x, start + i1, axis=1)


def crop_window(u, t: int, scale_low: float = 0.95, min_fraction: float = 0.8):
    """``(start, length)`` from two uniforms ``u``: ``length = clip(⌊T·s⌋, ⌊0.8·T⌋, T)`` with ``s ~ U(scale_low, 1]``,
    ``start ~ U{0..T−length}``."""
    s = 1.0 - u[0] * (1.0 - scale_low)
    length = jnp.clip(jnp.floor(t * s).astype(jnp.int32), int(min_fraction * t), t)
    return jnp.minimum(jnp.floor(u[1] * (t - length + 1)).astype(jnp.int32), t - length), length


def shear_matrix(u):
    """``I + U(−1,1)^{3×3}`` with the diagonal reset to 1, from 9 uniforms ``u``."""
    return jnp.fill_diagonal((2 * u[:9] - 1).reshape(3, 3), 1.0, inplace=False)


def shear(x, matrix):
    """``p ← S·p`` for every point of one sample (C=3, T, V, M)."""
    return jnp.einsum("dc,ctvm->dtvm", matrix, x)


def corrupt(x, u, count: int = 15, frames: bool = False):
    """``count`` joints (or, ``frames``, frames 0..min(25,T)−1 as upstream) drawn with replacement; with prob. 0.5
    zeroed, else their xyz multiplied by a ``U(−1,1)`` 3×3 matrix (``p ← Cᵀ·p``, upstream's row-vector product).
    ``u``: ``count + 10`` uniforms (indices, the zero-or-matrix coin, the matrix)."""
    axis = 1 if frames else 2
    n = min(25, x.shape[1]) if frames else x.shape[2]
    chosen = jnp.minimum(jnp.floor(u[:count] * n).astype(jnp.int32), n - 1)
    mask = jnp.zeros((x.shape[axis],), bool).at[chosen].set(True)
    mask = mask.reshape((1, -1, 1, 1) if frames else (1, 1, -1, 1))
    matrix = (2 * u[count + 1:count + 10] - 1).reshape(3, 3)
    replaced = jnp.where(u[count] < 0.5, 0.0, jnp.einsum("ctvm,cd->dtvm", x, matrix))
    return jnp.where(mask, replaced, x)


@dataclasses.dataclass(frozen=True)
class DIMSpec:
    """``x ← project(x − α·sign(g))`` with ``g = ∇_x L(f(A_t(x)))`` (``chain``) or ``∇_z L(f(z))|_{z=A_t(x)}``."""

    config: base.AttackConfig = base.AttackConfig()
    scale_low: float = 0.95
    min_fraction: float = 0.8
    corruption_prob: float = 0.5
    corrupted: int = 15
    chain: bool = True
    corrupt_frames: bool = False

    def init(self, x0, labels) -> DIMState:
        return DIMState(x0)

    def augment(self, x, key):
        """The random transform A of one sample (C, T, V, M) for ``key``."""
        u = jax.random.uniform(key, (self.corrupted + 22,))  # one draw: 2 crop, 1 coin, count + 10 corrupt, 9 shear
        start, length = crop_window(u[:2], x.shape[1], self.scale_low, self.min_fraction)
        x = crop_resize(x, start, length)
        corrupted = corrupt(x, u[3:self.corrupted + 13], self.corrupted, self.corrupt_frames)
        sheared = shear(x, shear_matrix(u[self.corrupted + 13:]))
        return jnp.where(u[2] < self.corruption_prob, corrupted, sheared)

    def augment_batch(self, x, keys, t):
        return jax.vmap(lambda xb, kb: self.augment(xb, jax.random.fold_in(kb, t)))(x, keys)

    def gradient(self, apply_fn, params, x, labels, keys, t):
        """The cross-entropy gradient at the augmented batch, chained to x or not (B14)."""
        if self.chain:
            transformed = lambda p, z: apply_fn(p, self.augment_batch(z, keys, t))  # noqa: E731
            return base.loss_gradient(transformed, params, x, labels, self.config.sign)[0]
        return base.loss_gradient(apply_fn, params, self.augment_batch(x, keys, t), labels, self.config.sign)[0]

    def step(self, apply_fn, params, x0, labels, keys, state, t):
        logits = apply_fn(params, state.x)
        g = self.gradient(apply_fn, params, state.x, labels, keys, t)
        return DIMState(base.descend(self.config, state.x, x0, jnp.sign(g))), logits


def DIM(surrogate: base.Surrogate, scale_low: float = 0.95, corruption_prob: float = 0.5, corrupted: int = 15,
        chain: bool = True, corrupt_frames: bool = False, upstream: bool = False, **config) -> base.Attack:
    """DIM bound to ``surrogate``; ``upstream=True`` = ``chain=False, corrupt_frames=True`` (B13, B14); keyword
    arguments are ``AttackConfig`` fields (or eps/steps/alpha)."""
    if upstream:
        chain, corrupt_frames = False, True
    cfg = base.AttackConfig(**base.canonical_kwargs(config))
    return base.Attack(surrogate, DIMSpec(cfg, scale_low, 0.8, corruption_prob, corrupted, chain, corrupt_frames))
