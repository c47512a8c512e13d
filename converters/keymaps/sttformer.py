"""Key table for STTFormer (upstream ``classifiers/sttformer/``): torch module path → NNX module path.

Upstream's ``nn.Sequential`` members (conv at index 0, BatchNorm at index 1) become named attributes; the bare
parameters ``alphas``/``att0s`` and the ``pes.pe`` buffer keep their torch names and shapes.
"""

KEY_TABLE = (
    (r"input_map\.0", "input_map_conv"),
    (r"input_map\.1", "input_map_bn"),
    (r"blocks\.(\d+)\.(out_nets|ff_net|out_nett|ress|rest)\.0", r"blocks.\1.\2_conv"),
    (r"blocks\.(\d+)\.(out_nets|ff_net|out_nett|ress|rest)\.1", r"blocks.\1.\2_bn"),
)
