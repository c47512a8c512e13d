"""Head post-training (``bayesianTrain``) in PyTorch with upstream's loop structure, for the speed comparison of
``experiments/bench_posttrain.py`` (not a library).

Structure (reference.md §4.3 and §8 "Training-side redundancy"): for every epoch and every head, one pass over the
shuffled training set; per batch the appended model ``ReLU(f(x)) + head(ReLU(f(x)))`` runs the frozen, eval-mode
base network forward, ``CE`` backward through it (the base parameters keep ``requires_grad=True``, so their
gradients are computed too, and accumulate since only the head's optimiser zeroes its gradients), then one
SG-AdaHMC step of the head (upstream's step: ``L`` inner iterations, state re-initialised every inner iteration).
After each head's pass the head is evaluated on the test set, again through the base network (with autograd on,
as upstream). A head is ``Sequential(Linear(K,K), Linear(K,K), ReLU)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def make_head(w1, b1, w2, b2) -> nn.Sequential:
    """Upstream's head module with the given weights (torch Linear layout ``W (out, in)``)."""
    k = w1.shape[0]
    head = nn.Sequential(nn.Linear(k, k), nn.Linear(k, k), nn.ReLU())
    with torch.no_grad():
        for layer, w, b in ((head[0], w1, b1), (head[1], w2, b2)):
            layer.weight.copy_(torch.as_tensor(w))
            layer.bias.copy_(torch.as_tensor(b))
    return head


def appended(model, head, x):
    """``h + head(h)`` with ``h = ReLU(model(x))`` (one base forward)."""
    h = F.relu(model(x))
    return h + head(h)


@torch.no_grad()
def sgadahmc_step(params, lr, steps=30, tau=2.0, friction=1.0, temperature=1e-5):
    """Upstream's ``SGAdaHMC.step`` on the current ``.grad``: momentum 0 and v = 1e-5 re-initialised in each of the
    ``steps`` inner iterations, fresh noise each time."""
    for _ in range(steps):
        for p in params:
            if p.grad is None:
                continue
            g = p.grad
            v = 1e-5 * torch.ones_like(p)
            v = v - v / tau + g * g / tau
            root = torch.sqrt(v)
            momentum = (-lr**2 * g / root + temperature * (2 * lr**3 * friction / (root * root) - lr**4)
                        * torch.randn_like(p))
            p.add_(momentum)


def test_accuracy(model, head, x, y, batch_size):
    """Upstream's per-head validation: base forward per test batch (autograd left on), argmax of the appended model."""
    wrong = 0
    for start in range(0, x.shape[0], batch_size):
        pred = torch.argmax(appended(model, head, x[start:start + batch_size]), dim=1)
        wrong += int(torch.sum(pred != y[start:start + batch_size]))
    return 1.0 - wrong / x.shape[0]


def bayesian_train(model, heads, x, y, x_test, y_test, *, epochs, batch_size, lr=2e-3, generator=None):
    """Trains ``heads`` (list of modules) in place, upstream's order (epoch → head → batch).

    Returns ``(losses, accuracy)``: mean training loss and test accuracy per epoch and head, lists of lists.
    """
    n = x.shape[0]
    losses, accuracy = [], []
    for _ in range(epochs):
        ep_loss, ep_acc = [], []
        for head in heads:
            order = torch.randperm(n, generator=generator).to(x.device)
            total, batches = 0.0, 0
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                loss = F.cross_entropy(appended(model, head, x[idx]), y[idx])
                head.zero_grad()
                loss.backward()
                sgadahmc_step(list(head.parameters()), lr)
                total, batches = total + float(loss.detach()), batches + 1
            ep_loss.append(total / batches)
            ep_acc.append(test_accuracy(model, head, x_test, y_test, batch_size))
        losses.append(ep_loss)
        accuracy.append(ep_acc)
    return losses, accuracy
