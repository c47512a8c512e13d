"""Key table for MS-G3D (upstream ``classifiers/MSG3D.py``, ``msg3d/model/*.py``): torch module path → NNX path.

Only indexed ``nn.Sequential`` children are renamed (``mlp.layers.0/1``, MS-TCN branch children, the G3D
``gcn3d.1`` graph conv after the parameter-free unfold); ``A_powers``/``A_scales`` are not in the state_dict.
The torch Conv3d ``out_conv`` weight (O, I, 1, w, 1) becomes the NNX kernel (1, w, 1, I, O) by the engine's rule.
"""

KEY_TABLE = (
    (r"(gcn3d\d\.gcn3d\.\d+)\.gcn3d\.1", r"\1.st_gcn"),
    (r"(gcn3d\d\.gcn3d\.\d+)\.gcn3d\.1\.mlp\.layers\.0", r"\1.st_gcn.mlp_conv"),
    (r"(gcn3d\d\.gcn3d\.\d+)\.gcn3d\.1\.mlp\.layers\.1", r"\1.st_gcn.mlp_bn"),
    (r"(sgcn\d\.0)\.mlp\.layers\.0", r"\1.mlp_conv"),
    (r"(sgcn\d\.0)\.mlp\.layers\.1", r"\1.mlp_bn"),
    (r"(.+\.branches\.\d+)\.0", r"\1.conv_in"),
    (r"(.+\.branches\.\d+)\.1", r"\1.bn_in"),
    (r"(.+\.branches\.\d+)\.3\.conv", r"\1.temporal_conv"),
    (r"(.+\.branches\.\d+)\.3\.bn", r"\1.temporal_bn"),
    (r"(.+\.branches\.\d+)\.4", r"\1.pool_bn"),
    (r"(.+)\.residual\.conv", r"\1.residual_conv"),
    (r"(.+)\.residual\.bn", r"\1.residual_bn"),
)
