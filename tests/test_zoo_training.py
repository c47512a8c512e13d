"""Every architecture trains for one epoch on the synthetic dataset from the CLI (tiny widths), without NaN."""

import numpy as np
import pytest

from tasar_jax import checkpoints, cli, models

# one run per model family; ensembles train both streams through TwoStream
ZOO = ["stgcn", "ctrgcn", "frhead", "msg3d_bone", "agcn", "sttformer", "skateformer", "mlp"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    assert cli.main(["data", "synth", "--out", str(root), "--dataset", "ntu60", "--train-per-class", "2",
                     "--test-per-class", "1", "--seed", "3", "--classes", "0-18"]) == 0
    return root


# 19 classes × 2 samples: batch 19 gives two full batches, so the train step compiles once per model
@pytest.mark.parametrize("arch", ZOO)
def test_one_epoch_from_the_cli(arch, data_root, tmp_path):
    width = [] if arch == "mlp" else ["--width", "0.125"]
    out = tmp_path / arch
    assert cli.main(["train", "--model", arch, "--dataset", "ntu60", "--data", str(data_root), "--out", str(out),
                     "--epochs", "1", "--batch-size", "19", *width]) == 0
    meta = checkpoints.read_metadata(out)
    (record,) = meta["history"]
    assert np.isfinite(record["loss"]) and 0.0 <= record["test_accuracy"] <= 1.0
    model, meta = checkpoints.load(out)
    assert meta["architecture"] == arch and models.num_parameters(model) == meta["num_parameters"]
