"""Key table for the three-layer MLP (upstream ``classifiers/ThreeLayerMLP.py``): names already match."""

KEY_TABLE = ()

# Upstream checkpoints were trained with a ReLU on the logits (reference.md §7.17).
CONFIG_OVERRIDES = {"relu_logits": True}
