"""Key table for CTR-GCN (upstream ``classifiers/CTRGCN.py``): torch module path → NNX module path.

Only ``Sequential`` indices need renaming; ``convs.<i>``, ``branches.<i>`` (``nnx.List``), ``residual.conv/bn``
and bare parameters (``PA``, ``alpha``) already carry the torch names.
"""

KEY_TABLE = (
    (r"(l\d+\.gcn1\.down)\.0", r"\1.conv"),
    (r"(l\d+\.gcn1\.down)\.1", r"\1.bn"),
    (r"(l\d+\.tcn1\.branches\.\d+)\.0", r"\1.pointwise.conv"),
    (r"(l\d+\.tcn1\.branches\.\d+)\.1", r"\1.pointwise.bn"),
    (r"(l\d+\.tcn1\.branches\.\d+)\.3\.(conv|bn)", r"\1.temporal.\2"),
    (r"(l\d+\.tcn1\.branches\.\d+)\.4", r"\1.pool_bn"),
)
