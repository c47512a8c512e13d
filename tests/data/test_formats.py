"""Loaders and writers of the upstream on-disk formats, against the data-format fixtures, and bad input."""

import os

import numpy as np
import pytest

from tasar_jax.data import formats


@pytest.mark.parametrize("dataset", ["hdm05", "ntu60"])
def test_loader_reproduces_upstream_batches(upstream, dataset):
    x, labels = formats.load_dataset_file(upstream / f"data_{dataset}_classTest.npz", dataset)
    batch = np.load(upstream / f"data_{dataset}_batch.npz")
    assert x.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(x, batch["x"])
    np.testing.assert_array_equal(labels, batch["y"])
    np.testing.assert_array_equal(formats.skateformer_input(x), batch["x_skateformer"])


def test_hdm05_is_joint_major(upstream):
    clips = np.load(upstream / "data_hdm05_classTest.npz")["clips"]
    x, _ = formats.load_dataset_file(upstream / "data_hdm05_classTest.npz", "hdm05")
    # column 3j + c of frame t is coordinate c of joint j
    assert x[1, 2, 7, 11, 0] == np.float32(clips[1, 7, 3 * 11 + 2])
    np.testing.assert_array_equal(formats.common_to_clips(x, "hdm05"), clips.astype(np.float32))


@pytest.mark.parametrize("dataset", ["hdm05", "ntu60", "ntu120"])
def test_save_load_round_trip(tmp_path, dataset):
    m = 1 if dataset == "hdm05" else 2
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 60, 25, m)).astype(np.float32)
    labels = np.array([0, 3, 1, 2])
    path = formats.save_dataset_file(tmp_path / "f.npz", x, labels, dataset)
    with np.load(path) as data:
        assert sorted(data.files) == ["classes", "clips"]
        assert data["clips"].dtype == (np.float64 if dataset == "hdm05" else np.float32)
    x2, labels2 = formats.load_dataset_file(path, dataset)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(labels2, labels)
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]  # no temporary files left behind


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


GOOD = dict(clips=np.zeros((3, 60, 75)), classes=np.array([0, 1, 2]))


@pytest.mark.parametrize("arrays, message", [
    (dict(clips=GOOD["clips"]), "missing key"),
    (dict(classes=GOOD["classes"]), "missing key"),
    (dict(clips=np.zeros((3, 60, 74)), classes=GOOD["classes"]), "must have shape"),
    (dict(clips=np.zeros((3, 60)), classes=GOOD["classes"]), "must have shape"),
    (dict(clips=np.zeros((0, 60, 75)), classes=np.zeros(0, int)), "no samples"),
    (dict(clips=GOOD["clips"], classes=np.array([0, 1, 65])), "labels must lie in"),
    (dict(clips=GOOD["clips"], classes=np.array([0, -1, 2])), "labels must lie in"),
    (dict(clips=GOOD["clips"], classes=np.array([0.0, 1.0, 2.0])), "labels must be integers"),
    (dict(clips=GOOD["clips"], classes=np.array([0, 1])), "expected labels of shape"),
    (dict(clips=np.zeros((3, 60, 75), dtype=np.int64), classes=GOOD["classes"]), "floating point"),
])
def test_bad_hdm05_files_name_the_problem(tmp_path, arrays, message):
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(formats.DataFormatError, match=message) as err:
        formats.load_dataset_file(path, "hdm05")
    assert "bad.npz" in str(err.value)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected(tmp_path, value):
    clips = np.zeros((3, 3, 60, 25, 2), np.float32)
    clips[1, 0, 5, 3, 0] = value
    path = _write(tmp_path / "nan.npz", clips=clips, classes=np.array([0, 1, 2]))
    with pytest.raises(formats.DataFormatError, match="NaN/inf values in 1 samples"):
        formats.load_dataset_file(path, "ntu60")


def test_wrong_person_count_and_layout(tmp_path):
    path = _write(tmp_path / "m1.npz", clips=np.zeros((2, 3, 60, 25, 1), np.float32), classes=np.array([0, 1]))
    with pytest.raises(formats.DataFormatError, match="M=2"):
        formats.load_dataset_file(path, "ntu60")
    with pytest.raises(formats.DataFormatError, match=r"\(N, T, 75\)"):
        formats.load_dataset_file(path, "hdm05")


def test_class_count_is_checked_per_dataset(tmp_path):
    clips = np.zeros((2, 3, 60, 25, 2), np.float32)
    path = _write(tmp_path / "c.npz", clips=clips, classes=np.array([0, 100]))
    assert formats.load_dataset_file(path, "ntu120")[1].tolist() == [0, 100]
    with pytest.raises(formats.DataFormatError, match=r"\[0, 60\)"):
        formats.load_dataset_file(path, "ntu60")


def test_truncated_and_garbage_files(tmp_path, upstream):
    raw = (upstream / "data_hdm05_classTest.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not an archive at all")
    for name in ("trunc.npz", "garbage.npz"):
        with pytest.raises(formats.DataFormatError, match="truncated or corrupt"):
            formats.load_dataset_file(tmp_path / name, "hdm05")
    with pytest.raises(formats.DataFormatError, match="no such file"):
        formats.load_dataset_file(tmp_path / "absent.npz", "hdm05")
    with pytest.raises(ValueError, match="unknown dataset"):
        formats.load_dataset_file(upstream / "data_hdm05_classTest.npz", "kinetics")


def test_npy_batches(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((2, 3, 60, 25, 1), np.float64))
    assert formats.load_array(tmp_path / "ok.npy").dtype == np.float32
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 60, 24, 1)))
    with pytest.raises(formats.DataFormatError, match="V=25"):
        formats.load_array(tmp_path / "bad.npy")
    np.save(tmp_path / "rank.npy", np.zeros((2, 60, 75)))
    with pytest.raises(formats.DataFormatError, match=r"\(N, 3, T, 25, M\)"):
        formats.load_array(tmp_path / "rank.npy")


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with formats.atomic_path(tmp_path / "out.npz") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_files_follow_the_process_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        with formats.atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == mode
