"""SG-AdaHMC as a BlackJAX-style SG-MCMC kernel on pytrees (reference.md §4.2, quirk §7.31).

Same module pattern as ``blackjax.sgmcmc.sgnht``: a NamedTuple state, ``init(position)``, ``build_kernel(...)``
returning ``kernel(rng_key, state, grad_estimator, minibatch, step_size, temperature)`` and ``as_top_level_api``
returning a ``blackjax.base.SamplingAlgorithm``. As in BlackJAX, ``grad_estimator(position, minibatch)`` returns
the gradient of the **log density**; the kernel descends ``U = −log p``.

One step = ``num_integration_steps`` (L) inner iterations, per leaf with ``g = ∇U``, ``ε = step_size``::

    v ← v − v/τ + g²/τ
    m ← m − ε² g/√v − ε C m/√v + noise
    θ ← θ + m

``reference_quirks=True`` (upstream ``SGAdaHMC.step``): ``m = 0`` and ``v = 1e-5`` are re-initialised at every
inner iteration, the one gradient of the step is reused L times and the noise is ``T·(2ε³C/v − ε⁴)·ξ`` (linear in
T), so a step is ``Δθ = −L ε² g/√(5e-6 + g²/2) + T(2ε³C/v − ε⁴) Σ ξ_i``, added one inner increment at a time.

``reference_quirks=False`` (intended, the scale-adapted SGHMC the paper cites): ``m`` and ``v`` persist across inner
iterations and steps, the gradient is recomputed at every inner iteration on the same minibatch (as
``blackjax.sghmc``), the noise has variance ``T·max(2ε³C/v − ε⁴, 0)`` (standard deviation = its square root), and
the friction ``εC/√v`` is capped at 1 so that a small ``v`` cannot flip or blow up the momentum, and the carried
``v`` is floored at 5e-6, the smallest value upstream ever uses (it would otherwise halve on every zero gradient,
e.g. behind a closed ReLU, until ``1/√v`` overflows).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
from blackjax.base import SamplingAlgorithm

__all__ = ["SGAdaHMCState", "init", "inner_update", "integrate", "build_kernel", "as_top_level_api", "V_INIT"]

V_INIT = 1e-5  # upstream's initial (and, with the quirk, per-iteration) value of the preconditioner v
V_FLOOR = V_INIT / 2  # smallest v upstream ever uses (one update from V_INIT with g = 0); floor of the carried v


class SGAdaHMCState(NamedTuple):
    """Position, momentum and preconditioner ``v`` (same structure as the position)."""

    position: object
    momentum: object
    v: object


def init(position) -> SGAdaHMCState:
    """Zero momentum, ``v = 1e-5`` (upstream's initial state)."""
    momentum = jax.tree.map(jnp.zeros_like, position)
    v = jax.tree.map(lambda p: jnp.full_like(p, V_INIT), position)
    return SGAdaHMCState(position, momentum, v)


def inner_update(state: SGAdaHMCState, grad_u, noise, step_size, *, tau=2.0, friction=1.0, temperature=1e-5,
                 reference_quirks=False) -> SGAdaHMCState:
    """One inner iteration given ``grad_u = ∇U`` and standard-normal ``noise`` (both shaped like the position)."""
    eps = step_size

    def leaf(p, m, v, g, xi):
        if reference_quirks:
            m, v = jnp.zeros_like(p), jnp.full_like(p, V_INIT)
        v = v - (1.0 / tau) * v + (1.0 / tau) * (g * g)
        if not reference_quirks:  # a carried v halves on every zero gradient; 1/√v would overflow to inf·0 = NaN
            v = jnp.maximum(v, V_FLOOR)
        rs = 1.0 / jnp.sqrt(v)
        noise_var = 2 * eps**3 * rs * friction * rs - eps**4
        if reference_quirks:
            decay, scale = eps * rs * friction, temperature * noise_var
        else:
            decay, scale = jnp.minimum(eps * rs * friction, 1.0), jnp.sqrt(temperature * jnp.maximum(noise_var, 0.0))
        m = m - eps**2 * rs * g - decay * m + scale * xi
        return p + m, m, v

    treedef = jax.tree.structure(state.position)
    flat = [jax.tree.leaves(t) for t in (state.position, state.momentum, state.v, grad_u, noise)]
    p, m, v = (jax.tree.unflatten(treedef, list(col)) for col in zip(*(leaf(*args) for args in zip(*flat))))
    return SGAdaHMCState(p, m, v)


def _draw_noise(rng_key, position, num_steps):
    """Standard-normal noise shaped like the position with a leading ``num_steps`` axis (one draw, then split)."""
    flat, unravel = jax.flatten_util.ravel_pytree(position)
    draws = jax.random.normal(rng_key, (num_steps, flat.size), flat.dtype)
    return jax.vmap(unravel)(draws)


def integrate(rng_key, state: SGAdaHMCState, grad_u_fn: Callable, step_size, *, num_integration_steps=30, tau=2.0,
              friction=1.0, temperature=1e-5, reference_quirks=False, noise=None) -> SGAdaHMCState:
    """L inner iterations. ``grad_u_fn(position) → ∇U``; with ``reference_quirks`` it is called once (gradient
    reuse). ``noise`` (leaves with a leading L axis) replaces the draw from ``rng_key`` (e.g. recorded noise)."""
    if noise is None:
        noise = _draw_noise(rng_key, state.position, num_integration_steps)
    fixed = grad_u_fn(state.position) if reference_quirks else None

    def body(i, s):
        g = fixed if reference_quirks else grad_u_fn(s.position)
        xi = jax.tree.map(lambda n: n[i], noise)
        return inner_update(s, g, xi, step_size, tau=tau, friction=friction, temperature=temperature,
                            reference_quirks=reference_quirks)

    return jax.lax.fori_loop(0, num_integration_steps, body, state)


def build_kernel(num_integration_steps: int = 30, tau: float = 2.0, friction: float = 1.0,
                 reference_quirks: bool = False) -> Callable:
    """``kernel(rng_key, state, grad_estimator, minibatch, step_size, temperature=1e-5) → SGAdaHMCState``."""

    def kernel(rng_key, state: SGAdaHMCState, grad_estimator: Callable, minibatch, step_size,
               temperature=1e-5) -> SGAdaHMCState:
        def grad_u_fn(position):
            return jax.tree.map(jnp.negative, grad_estimator(position, minibatch))

        return integrate(rng_key, state, grad_u_fn, step_size, num_integration_steps=num_integration_steps,
                         tau=tau, friction=friction, temperature=temperature, reference_quirks=reference_quirks)

    return kernel


def as_top_level_api(grad_estimator: Callable, num_integration_steps: int = 30, tau: float = 2.0,
                     friction: float = 1.0, reference_quirks: bool = False) -> SamplingAlgorithm:
    """``SamplingAlgorithm(init(position, rng_key=None), step(rng_key, state, minibatch, step_size,
    temperature=1e-5))``, interchangeable with ``blackjax.sgnht``. Defaults: upstream's L 30, τ 2, C 1, T 1e-5."""
    kernel = build_kernel(num_integration_steps, tau, friction, reference_quirks)

    def init_fn(position, rng_key=None):
        del rng_key  # deterministic initial state; kept for signature compatibility with blackjax.sgnht
        return init(position)

    def step_fn(rng_key, state, minibatch, step_size, temperature=1e-5):
        return kernel(rng_key, state, grad_estimator, minibatch, step_size, temperature)

    return SamplingAlgorithm(init_fn, step_fn)
