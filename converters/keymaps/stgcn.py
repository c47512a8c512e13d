"""Key table for ST-GCN (upstream ``classifiers/STGCN.py``): torch module path → NNX module path."""

KEY_TABLE = (
    (r"st_gcn_networks\.(\d+)\.tcn\.0", r"st_gcn_networks.\1.tcn_bn_in"),
    (r"st_gcn_networks\.(\d+)\.tcn\.2", r"st_gcn_networks.\1.tcn_conv"),
    (r"st_gcn_networks\.(\d+)\.tcn\.3", r"st_gcn_networks.\1.tcn_bn_out"),
    (r"st_gcn_networks\.(\d+)\.residual\.0", r"st_gcn_networks.\1.residual_conv"),
    (r"st_gcn_networks\.(\d+)\.residual\.1", r"st_gcn_networks.\1.residual_bn"),
)
