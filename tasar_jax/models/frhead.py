"""FR-Head (Zhou et al., 2023) on a CTR-GCN backbone, as wrapped by RobustBenchHAR (``classifiers/FRHEAD.py``).

The classifier is CTR-GCN unchanged (reference.md §2.4): same modules, same key names, same logits; this module
imports them from ``tasar_jax.models.ctrgcn``. What FR-Head adds upstream is a contrastive feature-refinement
loss computed by four ``ST_RenovateNet`` blocks (``ren_low`` after ``l1``, ``ren_mid`` after ``l5``,
``ren_high`` after ``l8``, ``ren_fin`` after ``l10``).

Upstream quirks and decisions (reference.md §7.12):

* Upstream builds the four contrastive blocks only in its training routines (``cl_mode='ST-Multi-Level'``), but
  its training loop calls ``model(X)`` without ``get_cl_loss``: the blocks never receive a gradient and never
  run, yet their (untrained) 72 entries are saved in every training checkpoint. The test/attack module is built
  without them and loads such a checkpoint non-strictly.
* Here ``Config.contrastive_blocks`` (default True, like the training-time module) builds the blocks as real NNX
  modules with upstream's shapes (``num_frame=64``, ``h_channel=256``) so training checkpoints load strictly;
  the converter switches it off for checkpoints without ``ren_*`` keys (the test/attack module's key set).
* The blocks hold parameters only: they are not called in ``__call__`` (upstream's inference path does not use
  them either), and the contrastive loss itself (``RenovateNet``'s prototype memory ``avg_f``, TP/FN/FP masks,
  score maps) is **not implemented** — upstream never trains with it. Training FR-Head here trains the CTR-GCN
  backbone with cross-entropy only, which is what upstream's ``train`` does.
* Backbone quirks (NTU graph for every dataset, BN inits, no dropout) are those of ``ctrgcn``.
"""

from __future__ import annotations

import dataclasses

from flax import nnx

from tasar_jax.models import ctrgcn
from tasar_jax.models.ctrgcn import ConvBN

# (block name, index of the backbone unit whose output it reads, temporal downsampling at that point)
CONTRASTIVE_LEVELS = (("ren_low", 0, 1), ("ren_mid", 4, 2), ("ren_high", 7, 4), ("ren_fin", 9, 4))


@dataclasses.dataclass(frozen=True)
class Config(ctrgcn.Config):
    """CTR-GCN's fields plus the contrastive blocks.

    Attributes:
      contrastive_blocks: build ``ren_low/mid/high/fin`` (upstream training-time module: True; test/attack: False).
      contrastive_frames: frame count the blocks are sized for (upstream ``num_frame=64``, not the data's 60).
      contrastive_hidden: embedding size of the contrastive heads (upstream ``h_channel=256``).
    """

    contrastive_blocks: bool = True
    contrastive_frames: int = 64
    contrastive_hidden: int = 256


class RenovateNet(nnx.Module):
    """Parameters of upstream ``RenovateNet``: the projection ``cl_fc`` (its loss is not implemented)."""

    def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
        self.cl_fc = nnx.Linear(in_features, hidden, rngs=rngs)


class STRenovateNet(nnx.Module):
    """Parameters of upstream ``ST_RenovateNet`` (spatial and temporal squeeze convs + two contrastive heads).

    Squeezes: 1×1 conv + BN (+ ReLU upstream) from C to ``hidden // V`` (spatial) and ``hidden // frames``
    (temporal) channels; heads: ``cl_fc`` on the flattened squeezed features.
    """

    def __init__(self, channels: int, frames: int, joints: int, hidden: int, *, rngs: nnx.Rngs):
        spatial, temporal = hidden // joints, hidden // frames
        self.spatio_cl_net = RenovateNet(spatial * joints, hidden, rngs=rngs)
        self.tempor_cl_net = RenovateNet(temporal * frames, hidden, rngs=rngs)
        self.spatio_squeeze = ConvBN(channels, spatial, rngs=rngs)
        self.tempor_squeeze = ConvBN(channels, temporal, rngs=rngs)


class Model(ctrgcn.Model):
    """FR-Head classifier: CTR-GCN's forward (x (N, 3, T, V, M) → logits (N, K)), plus the unused ``ren_*`` blocks."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        super().__init__(config, rngs=rngs)
        if config.contrastive_blocks:
            for name, unit_index, downsampling in CONTRASTIVE_LEVELS:
                block = STRenovateNet(config.channels[unit_index], config.contrastive_frames // downsampling,
                                      config.num_joints, config.contrastive_hidden, rngs=rngs)
                setattr(self, name, block)
