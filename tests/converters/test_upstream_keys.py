"""Every architecture converts a state_dict with upstream's exact key set for every dataset, and runs with M persons.

The key listings (``shared/reference/keys/<STEM>_<dataset>.txt``) come from the upstream modules; the values here
are random, so this checks names, shapes and that the ntu60/ntu120 configurations build and run.
"""

import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("torch")
from tasar_jax import converters  # noqa: E402
from tasar_jax.data import layouts  # noqa: E402
from tests.conftest import fixtures_dir, random_batch  # noqa: E402

KEYS_DIR = fixtures_dir().parent / "reference" / "keys"

# (architecture, key-listing stem); MLP exists upstream for HDM05 only
LISTINGS = [
    ("stgcn", "STGCN"), ("ctrgcn", "CTRGCN"), ("frhead", "FRHEAD"), ("frhead", "FRHEAD-evalmodule"),
    ("msg3d_joint", "MSG3D_joint"), ("msg3d_bone", "MSG3D_bone"), ("msg3d", "MSG3D-ensemble"),
    ("agcn_joint", "AGCN_joint"), ("agcn_bone", "AGCN_bone"), ("agcn", "AGCN-ensemble"),
    ("sttformer", "STTFormer"), ("skateformer", "SkateFormer"),
]
CASES = [(a, s, d) for a, s in LISTINGS for d in ("hdm05", "ntu60", "ntu120")] + [("mlp", "ThreeLayerMLP", "hdm05")]


def read_listing(path):
    """``<key> [d0,d1,...]`` lines → ordered {key: shape}."""
    shapes = {}
    for line in path.read_text().splitlines():
        key, _, dims = line.strip().partition(" ")
        dims = dims.strip("[]")
        shapes[key] = tuple(int(d) for d in dims.split(",")) if dims else ()
    return shapes


def random_state_dict(shapes, seed=0):
    """Random float32 values (BatchNorm variances positive); integer buffers (``num_batches_tracked``, index
    tables) get zeros."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith(("num_batches_tracked", "relative_position_index")):
            out[key] = np.zeros(shape, np.int64)
        elif key.endswith("running_var"):
            out[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            out[key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    return out


@pytest.mark.parametrize("arch, stem, dataset", CASES, ids=[f"{a}-{s}-{d}" for a, s, d in CASES])
def test_upstream_key_set_converts_and_runs(arch, stem, dataset):
    listing = KEYS_DIR / f"{stem}_{dataset}.txt"
    if not listing.is_file():
        pytest.fail(f"key listing {listing} not found (set TASAR_FIXTURES to shared/fixtures)")
    model = converters.convert(arch, dataset, random_state_dict(read_listing(listing)), source=listing.name)
    model.eval()
    if dataset == "ntu120":  # conversion is the point here; one forward per architecture family is enough
        return
    spec = layouts.get_dataset(dataset)
    logits = np.asarray(model(jnp.asarray(random_batch(1, m=spec.num_persons))))
    assert logits.shape == (1, spec.num_classes)
    assert np.isfinite(logits).all()
