"""TASAR's post-trained surrogate: appended Bayesian heads on the logits of a frozen classifier.

``heads`` holds the head parameters and their forward pass (the shared contract of post-training and attacks).
"""

from tasar_jax.posterior.heads import (
    HeadParams,
    Posterior,
    appended_logits,
    appended_logits_two_stream,
    head_apply,
    sample_heads,
    summed_appended_logits,
)

__all__ = ["HeadParams", "Posterior", "appended_logits", "appended_logits_two_stream", "head_apply",
           "sample_heads", "summed_appended_logits"]
