"""Key table for FR-Head (upstream ``classifiers/FRHEAD.py``): CTR-GCN's table plus the contrastive blocks.

``config_from_state_dict`` reads off the keys whether the checkpoint is the training-time module (with the
four ``ren_*`` blocks, 894 entries) or the test/attack module (822 entries, CTR-GCN's key set).
"""

from tasar_jax.converters.keymaps import ctrgcn

KEY_TABLE = ctrgcn.KEY_TABLE + (
    (r"(ren_\w+\.(?:spatio|tempor)_squeeze)\.0", r"\1.conv"),
    (r"(ren_\w+\.(?:spatio|tempor)_squeeze)\.1", r"\1.bn"),
)


def config_from_state_dict(state_dict) -> dict:
    """``contrastive_blocks`` is on exactly when the checkpoint has ``ren_*`` entries."""
    return {"contrastive_blocks": any(key.startswith("ren_") for key in state_dict)}
