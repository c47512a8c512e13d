"""TASAR iterations in PyTorch, for the speed comparison of ``experiments/bench_tasar.py`` (not a library).

Two implementations of the same iteration (reference.md §4.5–§4.7, the update of ``tasar_jax.attacks.tasar``):

* ``upstream_structure``: upstream's loop structure (§8): the K-head surrogate re-runs the base network once per
  head for the ensemble gradient, and every one of the K×S posterior draws runs its own forward and backward
  pass through the base network — K·(S+1) forward and backward passes per iteration;
* ``single_vjp``: one base forward per iteration; both cotangents (the ensemble's and the sum over all draws)
  are computed on the logits and pulled back through the network in one batched backward
  (``torch.autograd.grad(..., is_grads_batched=True)``), the structure the JAX attack uses.

Heads are ``(w1, b1, w2, b2)`` tensors with a leading head axis (torch Linear layout), like ``HeadParams``.
Everything runs on the device of the tensors it is given (CPU or CUDA); posterior noise is drawn there too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def appended(theta, z):
    """``ReLU(z) + ReLU(W2 (W1 ReLU(z) + b1) + b2)`` for one head (tensors without the head axis)."""
    w1, b1, w2, b2 = theta
    h = F.relu(z)
    return h + F.relu((h @ w1.T + b1) @ w2.T + b2)


def head(heads, k):
    return tuple(a[k] for a in heads)


def draw(mean, sqmean, scale, beta=1e-30, generator=None):
    """One posterior draw of every head: ``μ + scale·sqrt(max(s − μ², 1e-30) + β)·ξ``."""
    return tuple(m + scale * torch.sqrt(torch.clamp(s - m * m, min=1e-30) + beta)
                 * torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
                 for m, s in zip(mean, sqmean))


def motion_term(g, ar1, ar2):
    """``AR1[τ]·g[τ+1] + AR2[τ]·g[τ+2]`` along time, zero beyond the last frame."""
    gp = F.pad(g, (0, 0, 0, 0, 0, 2))  # pads the time axis (dim 2 of N, C, T, V, M) at its end
    t = g.shape[2]
    return ar1 * gp[:, :, 1:t + 1] + ar2 * gp[:, :, 2:t + 2]


def _normalise(g):
    return g / (g.abs().mean(dim=tuple(range(1, g.ndim)), keepdim=True) + 1e-30)


def update(state, x0, g, post, ar1, ar2, num_draws, step=0.01, epsilon=0.01):
    """Running sums, normalisation (0.8 / 0.2), step and ε-projection; ``state = (x, S, Mom)``."""
    x, s_sum, mom = state
    mom = g + mom + motion_term(g, ar1, ar2)
    s_sum = s_sum + post
    direction = 0.8 * _normalise(s_sum / num_draws) + 0.2 * _normalise(mom)
    x = x0 + torch.clamp(x - step * direction - x0, -epsilon, epsilon)
    return x.detach(), s_sum, mom


def upstream_structure(model, heads, mean, sqmean, state, x0, labels, ar1, ar2, samples, scale=1.5):
    """One iteration the way upstream runs it: K·(S+1) base forward and backward passes."""
    x = state[0].detach().requires_grad_(True)
    k_heads = heads[0].shape[0]
    ensemble = sum(appended(head(heads, k), model(x)) for k in range(k_heads))  # one base pass per head
    (g,) = torch.autograd.grad(-F.cross_entropy(ensemble, labels, reduction="sum"), x)
    post = torch.zeros_like(x)
    for k in range(k_heads):
        for _ in range(samples):
            theta = draw(head(mean, k), head(sqmean, k), scale)
            xs = state[0].detach().requires_grad_(True)
            (gs,) = torch.autograd.grad(-F.cross_entropy(appended(theta, model(xs)), labels, reduction="sum"), xs)
            post = post + gs
    return update(state, x0, g, post, ar1, ar2, k_heads * samples)


def single_vjp(model, heads, mean, sqmean, state, x0, labels, ar1, ar2, samples, scale=1.5):
    """One iteration with one base forward and one batched backward for both cotangents."""
    x = state[0].detach().requires_grad_(True)
    z = model(x)
    zd = z.detach().requires_grad_(True)
    k_heads = heads[0].shape[0]
    ensemble = sum(appended(head(heads, k), zd) for k in range(k_heads))
    (u_ens,) = torch.autograd.grad(-F.cross_entropy(ensemble, labels, reduction="sum"), zd)
    thetas = [draw(head(mean, k), head(sqmean, k), scale) for k in range(k_heads) for _ in range(samples)]
    stacked = tuple(torch.stack(leaves) for leaves in zip(*thetas))  # (K·S, ...) per leaf
    logits = torch.vmap(appended, in_dims=(0, None))(stacked, zd)  # (K·S, B, classes)
    loss = -F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.repeat(len(thetas)), reduction="sum")
    (u_post,) = torch.autograd.grad(loss, zd)
    (grads,) = torch.autograd.grad(z, x, grad_outputs=torch.stack([u_ens, u_post]), is_grads_batched=True)
    return update(state, x0, grads[0], grads[1], ar1, ar2, k_heads * samples)
