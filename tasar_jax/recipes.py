"""Upstream training recipes per architecture (reference.md §2.0, routine ``train``), as ``TrainConfig``s.

Batch 64 and 80 epochs as in the upstream README (``-lr 0.1 -ep 80 -bs 64``). Streams and ensembles of a family
share its recipe. Upstream STTFormer hard-codes lr 0.1 and ignores ``-lr`` (quirk §7.16); here 0.1 is the
default and ``--lr`` overrides it (docs/decisions.md).
"""

from __future__ import annotations

import dataclasses

from tasar_jax import models
from tasar_jax.training import TrainConfig

_SGD_STEP = {"optimizer": "sgd", "schedule": "step", "learning_rate": 0.1, "epochs": 80, "batch_size": 64}

RECIPES = {
    "stgcn": TrainConfig(**_SGD_STEP, weight_decay=1e-4, milestones=(10, 40)),
    "ctrgcn": TrainConfig(**_SGD_STEP, weight_decay=4e-4, milestones=(35, 55), warmup_epochs=5),
    "frhead": TrainConfig(**_SGD_STEP, weight_decay=4e-4, milestones=(35, 55), warmup_epochs=5),
    "msg3d": TrainConfig(**_SGD_STEP, weight_decay=5e-4, milestones=(30, 40)),
    "agcn": TrainConfig(**_SGD_STEP, weight_decay=1e-4, milestones=(30, 40)),
    "sttformer": TrainConfig(**_SGD_STEP, weight_decay=4e-4, milestones=(60, 80), warmup_epochs=5),
    "skateformer": TrainConfig(optimizer="adamw", schedule="cosine", learning_rate=1e-3, weight_decay=0.1,
                               warmup_epochs=25, warmup_init_lr=1e-7, min_lr=1e-5, label_smoothing=0.1,
                               milestones=(), epochs=80, batch_size=64),
    "mlp": TrainConfig(**_SGD_STEP, weight_decay=1e-4, milestones=(10, 40)),
}


def recipe(arch: str, **overrides) -> TrainConfig:
    """The upstream recipe of ``arch`` (any registered name) with ``overrides`` (None values ignored)."""
    base = RECIPES[models.entry(arch).module]
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
