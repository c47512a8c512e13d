"""The one cross-entropy: training, post-training, defences, attacks and the loss landscape all use it."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cross_entropy(logits, labels, label_smoothing: float = 0.0):
    """Per-sample cross-entropy of ``logits`` (..., K) with integer ``labels`` (...): ``logsumexp(z) − z[y]``.

    ``label_smoothing`` > 0 scores against ``(1 − s)·onehot + s/K`` instead (timm's smoothed CE, as the upstream
    recipes that smooth use). Callers take the mean (training, torch's ``CrossEntropyLoss``) or the sum (attacks:
    per-sample gradients, independent of the batch).
    """
    if label_smoothing == 0.0:
        return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    num_classes = logits.shape[-1]
    targets = (1.0 - label_smoothing) * jax.nn.one_hot(labels, num_classes, dtype=logits.dtype)
    targets = targets + label_smoothing / num_classes
    return -jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1)
