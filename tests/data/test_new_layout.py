"""A dataset with a file layout of its own is one ``Dataset`` entry (docs/extending.md): this test adds one — a
time-major layout, (N, T, V, 3, M) on disk — and uses it through the readers, a model and the command line."""

import numpy as np
import pytest

from tasar_jax import checkpoints, cli, models
from tasar_jax.data import formats, layouts
from tests.conftest import random_batch


class TimeMajor:
    """Stored ``clips`` (N, T, V, 3, M)."""

    name = "ntvcm"
    stored_dtype = np.float32

    @staticmethod
    def shape_text(num_persons: int) -> str:
        return f"(N, T, {layouts.NUM_JOINTS}, 3, {num_persons})"

    @staticmethod
    def accepts(shape) -> bool:
        return len(shape) == 5 and shape[2] == layouts.NUM_JOINTS and shape[3] == layouts.NUM_CHANNELS

    @staticmethod
    def persons(shape) -> int:
        return shape[4]

    @staticmethod
    def to_common(clips):
        return clips.transpose(0, 3, 1, 2, 4)

    @staticmethod
    def from_common(x):
        return x.transpose(0, 2, 3, 1, 4)


TOY = layouts.Dataset("toy", 4, 3, layouts.SKELETONS["ntu-rgb+d"], TimeMajor)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(layouts.DATASETS, "toy", TOY)
    return TOY


def _split(n, seed):
    x = random_batch(n, t=60, m=3, seed=seed)
    return x, np.arange(n) % TOY.num_classes


def test_files_round_trip_in_the_new_layout(toy, tmp_path):
    x, y = _split(6, seed=0)
    path = formats.save_dataset_file(tmp_path / "toy.npz", x, y, "toy")
    clips, _ = formats.read_raw(path, "toy")
    assert clips.shape == (6, 60, 25, 3, 3)  # stored time-major
    x_read, y_read = formats.load_dataset_file(path, "toy")
    np.testing.assert_array_equal(x_read, x)
    np.testing.assert_array_equal(y_read, y)
    assert layouts.dataset_for_stored_shape(clips.shape) == "toy"  # three persons: no other dataset fits
    formats.write_raw(tmp_path / "wrong.npz", x, y)  # common layout, not the toy one
    with pytest.raises(formats.DataFormatError, match=r"toy clips must have shape \(N, T, 25, 3, 3\)"):
        formats.read_raw(tmp_path / "wrong.npz", "toy")


def test_models_and_the_command_line_take_the_new_dataset(toy, tmp_path):
    model = models.create("stgcn", "toy", width=0.125)
    model.eval()
    assert model(random_batch(2, m=3)).shape == (2, toy.num_classes)
    for split, seed in (("classTrain.npz", 1), ("classTest.npz", 2)):
        formats.save_dataset_file(tmp_path / "data" / "toy" / split, *_split(8, seed), "toy")
    assert cli.main(["train", "--arch", "mlp", "--dataset", "toy", "--data", str(tmp_path / "data"),
                     "--out", str(tmp_path / "mlp"), "--epochs", "1", "--batch-size", "8"]) == 0
    meta = checkpoints.read_metadata(tmp_path / "mlp")
    assert meta["dataset"] == "toy" and meta["config"]["num_persons"] == 3
