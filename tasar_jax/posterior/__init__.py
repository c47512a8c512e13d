"""TASAR's post-trained surrogate: appended Bayesian heads on the logits of a frozen classifier.

``heads`` holds the head parameters and their forward pass (the shared contract of post-training and attacks);
``sgadahmc`` the SG-AdaHMC sampler as a BlackJAX algorithm; ``posttrain`` bayesianTrain and the Dual Bayesian
SWAG posterior on precomputed surrogate logits; ``io`` our posterior files.
"""

from tasar_jax.posterior import io, posttrain, sgadahmc
from tasar_jax.posterior.heads import (
    HeadParams,
    Posterior,
    appended_logits,
    appended_model,
    head_apply,
    sample_heads,
    summed_appended_logits,
)
from tasar_jax.posterior.io import load_posterior, save_posterior
from tasar_jax.posterior.posttrain import PostTrainConfig, bayesian_train, dual_bayesian, surrogate_logits

__all__ = ["HeadParams", "PostTrainConfig", "Posterior", "appended_logits", "appended_model",
           "bayesian_train", "dual_bayesian", "head_apply", "io", "load_posterior", "posttrain", "sample_heads",
           "save_posterior", "sgadahmc", "summed_appended_logits",
           "surrogate_logits"]
