"""Tests of the procedurally generated (embedded default) skeleton dataset and its stick-figure preview."""

from __future__ import annotations

import numpy as np
import pytest

from tasar_jax.data import layouts, show, synthetic

K = len(synthetic.ACTIONS)


@pytest.fixture(scope="module")
def ntu_small():
    return synthetic.generate("ntu60", 2, seed=3, split="train")


@pytest.fixture(scope="module")
def hdm_small():
    return synthetic.generate("hdm05", 2, seed=3, split="train")


def _bone_lengths(x: np.ndarray, dataset: str) -> np.ndarray:
    """Bone lengths (N, T, V) of the first person; the root's own bone is zero."""
    parents = np.asarray(layouts.get_dataset(dataset).parents)
    return np.linalg.norm(x[..., 0] - x[:, :, :, parents, 0], axis=1)


def test_action_list():
    assert K >= 12
    assert len(set(synthetic.ACTIONS)) == K
    for name in ("wave", "clap", "punch", "kick", "squat", "jump", "walk in place", "bow", "raise both arms",
                 "turn", "sit down", "handshake"):
        assert name in synthetic.ACTIONS
    assert synthetic.ACTIONS.index("wave") == 0


@pytest.mark.parametrize("dataset,persons", [("hdm05", 1), ("ntu60", 2), ("ntu120", 2)])
def test_shapes_dtypes_labels(dataset, persons):
    x, labels = synthetic.generate(dataset, 1, seed=0)
    assert x.shape == (K, 3, layouts.NUM_FRAMES, layouts.NUM_JOINTS, persons)
    assert x.dtype == np.float32 and labels.dtype == np.int64
    assert sorted(labels.tolist()) == list(range(K))
    assert np.isfinite(x).all()


def test_deterministic_and_splits_differ(ntu_small):
    x, labels = ntu_small
    x2, labels2 = synthetic.generate("ntu60", 2, seed=3, split="train")
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(labels, labels2)
    x_test, labels_test = synthetic.generate("ntu60", 2, seed=3, split="test")
    np.testing.assert_array_equal(labels, labels_test)
    assert np.abs(x - x_test).mean() > 0.01
    x_seed, _ = synthetic.generate("ntu60", 2, seed=4, split="train")
    assert np.abs(x - x_seed).mean() > 0.01


def test_sample_independent_of_count(ntu_small):
    x, _ = ntu_small
    x1, _ = synthetic.generate("ntu60", 1, seed=3, split="train")
    np.testing.assert_array_equal(x[:K], x1)


def test_centred_upright_human_sized(ntu_small, hdm_small):
    for (x, _), root, head in ((ntu_small, 0, 3), (hdm_small, 10, 14)):
        np.testing.assert_allclose(x[:, :, 0, root, 0], 0.0, atol=0.03)
        height = x[:, 1, 0, head, 0] - x[:, 1, 0, :, 0].min(axis=1)
        assert np.median(height) > 1.3 and np.median(height) < 1.9
        assert (x[:, 1, :, head, 0] > x[:, 1, :, root, 0]).mean() > 0.95


@pytest.mark.parametrize("dataset", ["ntu60", "hdm05"])
def test_bone_lengths_constant_in_time_and_vary_across_subjects(dataset, ntu_small, hdm_small):
    x, _ = ntu_small if dataset == "ntu60" else hdm_small
    lengths = _bone_lengths(x, dataset)
    parents = layouts.get_dataset(dataset).parents
    bones = [j for j, p in enumerate(parents) if j != p]
    # within a sequence: only the ~5 mm sensor noise
    assert lengths[:, :, bones].std(axis=1).max() < 0.02
    # across subjects: ~10 % body variation on the long bones
    mean_len = lengths[:, :, bones].mean(axis=1)
    long = mean_len.mean(axis=0) > 0.2
    rel_spread = mean_len.std(axis=0) / mean_len.mean(axis=0)
    assert (rel_spread[long] > 0.02).all()


def test_second_person(ntu_small):
    x, labels = ntu_small
    two = np.array([synthetic.ACTIONS[k] in synthetic.TWO_PERSON_ACTIONS for k in labels])
    assert two.any()
    assert (x[~two, ..., 1] == 0).all()
    for n in np.flatnonzero(two):
        assert np.abs(x[n, ..., 1]).min(axis=(0, 1)).max() > 0  # partner present
        # partner faces the first person: right hands meet at some point
        gap = np.linalg.norm(x[n, :, :, 11, 0] - x[n, :, :, 11, 1], axis=0)
        assert gap.min() < 0.1
        assert np.linalg.norm(x[n, [0, 2], 0, 0, 1]) > 0.5


@pytest.mark.parametrize("dataset", ["hdm05", "ntu60"])
def test_written_files(tmp_path, dataset):
    paths = synthetic.write_dataset(tmp_path, dataset, num_per_class_train=2, num_per_class_test=1, seed=5)
    assert set(paths) == {"train", "test"}
    assert paths["train"] == tmp_path / dataset / "classTrain.npz"
    assert paths["test"] == tmp_path / dataset / "classTest.npz"
    assert sorted(p.name for p in (tmp_path / dataset).iterdir()) == ["classTest.npz", "classTrain.npz"]
    for split, count in (("train", 2), ("test", 1)):
        x, labels = synthetic.generate(dataset, count, seed=5, split=split)
        with np.load(paths[split]) as f:
            assert sorted(f.files) == ["classes", "clips"]
            clips, classes = f["clips"], f["classes"]
        assert classes.dtype == np.int64
        np.testing.assert_array_equal(classes, labels)
        if dataset == "hdm05":
            assert clips.dtype == np.float64 and clips.shape == (count * K, 60, 75)
            # joint-major: column 3 * j + c is coordinate c of joint j
            np.testing.assert_allclose(clips[:, :, 3 * 7 + 1], x[:, 1, :, 7, 0], atol=1e-6)
            np.testing.assert_allclose(clips.reshape(-1, 60, 25, 3).transpose(0, 3, 1, 2), x[..., 0], atol=1e-6)
        else:
            assert clips.dtype == np.float32 and clips.shape == (count * K, 3, 60, 25, 2)
            np.testing.assert_array_equal(clips, x)


@pytest.mark.parametrize("dataset", ["hdm05", "ntu60"])
def test_round_trip_with_formats_loader(tmp_path, dataset):
    formats = pytest.importorskip("tasar_jax.data.formats")
    if not hasattr(formats, "load_dataset_file"):
        pytest.skip("formats.load_dataset_file not available")
    paths = synthetic.write_dataset(tmp_path, dataset, num_per_class_train=1, num_per_class_test=1, seed=2)
    x, labels = synthetic.generate(dataset, 1, seed=2, split="test")
    loaded_x, loaded_labels = formats.load_dataset_file(paths["test"], dataset)
    np.testing.assert_allclose(np.asarray(loaded_x), x, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(loaded_labels), labels)


def test_bad_arguments():
    with pytest.raises(ValueError):
        synthetic.generate("ntu60", 1, seed=0, split="val")
    with pytest.raises(ValueError):
        synthetic.generate("kinetics", 1, seed=0)


@pytest.mark.parametrize("dataset", ["ntu60", "hdm05"])
def test_plot_written(tmp_path, dataset, ntu_small, hdm_small):
    x, labels = ntu_small if dataset == "ntu60" else hdm_small
    out = show.plot_sequences(x, labels, synthetic.ACTIONS, tmp_path / "fig" / "seq.png", dataset, num=3, frames=4)
    assert out.exists() and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["seq.png"]
