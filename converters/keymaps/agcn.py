"""Key table for 2s-AGCN streams (upstream ``twosgcn/agcn.py``): torch module path → NNX module path.

Units ``l1``…``l10``, ``gcn1``/``tcn1``/``residual``, ``conv_a/b/d.<k>``, ``PA``, ``data_bn`` and ``fc`` keep their
upstream names; only the ``down`` Sequential is split into named modules. The fixed graph ``A`` is not in upstream
checkpoints (a ``layers.Constant`` rebuilt from the config). The ensemble ``agcn`` uses this table under the
``model_joint.``/``model_bone.`` prefixes.
"""

KEY_TABLE = (
    (r"(l\d+\.gcn1)\.down\.0", r"\1.down_conv"),
    (r"(l\d+\.gcn1)\.down\.1", r"\1.down_bn"),
)
