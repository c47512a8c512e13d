"""Key table for SkateFormer (upstream ``classifiers/skateformer/SkateFormer.py``): torch → NNX module path.

Only the stem differs: torch's ``ModuleList`` holds the GELUs too (``stem.0/2/4``); here the convs are
``stem.0/1/2``. Everything else (incl. the int64 ``relative_position_index`` buffers) keeps its name.
"""

KEY_TABLE = (
    (r"stem\.0", "stem.0"),
    (r"stem\.2", "stem.1"),
    (r"stem\.4", "stem.2"),
)
