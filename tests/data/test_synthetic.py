"""Tests of the procedurally generated (embedded default) skeleton dataset and its stick-figure preview."""

from __future__ import annotations

import numpy as np
import pytest

from tasar_jax.data import catalog, formats, kinematics, layouts, motions, show, synthetic

SUBSET = range(0, 60, 5)  # 12 classes: keeps the per-test sample counts small


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


@pytest.mark.parametrize("dataset,count,mutual", [("hdm05", 65, 0), ("ntu60", 60, 11), ("ntu120", 120, 26)])
def test_class_lists_have_the_real_sizes_and_mutual_proportions(dataset, count, mutual):
    names = synthetic.class_names(dataset)
    assert len(names) == count == layouts.get_dataset(dataset).num_classes and len(set(names)) == count
    assert sum(synthetic.is_two_person(dataset, k) for k in range(count)) == mutual


def test_class_names_line_up_with_the_real_lists():
    ntu60, ntu120, hdm = (synthetic.class_names(d) for d in ("ntu60", "ntu120", "hdm05"))
    assert ntu120[:60] == ntu60
    assert (ntu60[0], ntu60[7], ntu60[8], ntu60[22], ntu60[57], ntu60[59]) == (
        "drink water", "sitting down", "standing up (from sitting position)", "hand waving", "handshaking",
        "walking apart from each other")
    assert ntu120[119].startswith("finger-guessing") and ntu120[79] == "squat down"
    assert hdm == tuple(sorted(hdm, key=str.lower)) and hdm[0].startswith("cartwheel")
    # mutual actions sit where the real lists have them
    assert all(synthetic.is_two_person("ntu120", k) == (49 <= k <= 59 or k >= 105) for k in range(120))


def test_every_track_parses_and_bad_tracks_are_named():
    for dataset in catalog.CLASSES:
        assert len(synthetic._classes(dataset)) == len(synthetic.class_names(dataset))
    with pytest.raises(ValueError, match="unknown pose 'moonwalk'"):
        motions.parse_track("R moonwalk touch")
    with pytest.raises(ValueError, match="bad track"):
        motions.parse_track("X mouth touch")
    with pytest.raises(ValueError, match="window"):
        motions.parse_track("R mouth touch@0.8-0.2")


@pytest.mark.parametrize("dataset,persons", [("hdm05", 1), ("ntu60", 2), ("ntu120", 2)])
def test_shapes_dtypes_labels(dataset, persons):
    k = layouts.get_dataset(dataset).num_classes
    x, labels = synthetic.generate(dataset, 1, seed=0)
    assert x.shape == (k, 3, layouts.NUM_FRAMES, layouts.NUM_JOINTS, persons)
    assert x.dtype == np.float32 and labels.dtype == np.int64
    assert sorted(labels.tolist()) == list(range(k))
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


def test_sample_independent_of_count_and_of_the_class_subset(ntu_small):
    x, labels = ntu_small
    x1, _ = synthetic.generate("ntu60", 1, seed=3, split="train")
    np.testing.assert_array_equal(x[:60], x1)
    xs, ls = synthetic.generate("ntu60", 2, seed=3, split="train", classes="5,17-18")
    np.testing.assert_array_equal(ls, [5, 17, 18, 5, 17, 18])
    np.testing.assert_array_equal(xs, x[[5, 17, 18, 65, 77, 78]])
    for bad in ("3-x", [60], [1, 1], []):
        with pytest.raises(ValueError, match="class list"):
            synthetic.generate("ntu60", 1, seed=3, classes=bad)


def test_centred_upright_human_sized(ntu_small, hdm_small):
    for (x, labels), dataset, root, head in ((ntu_small, "ntu60", 0, 3), (hdm_small, "hdm05", 10, 14)):
        # centred on the first person's pelvis averaged over the clip
        np.testing.assert_allclose(x[:, :, :, root, 0].mean(axis=2), 0.0, atol=0.03)
        height = x[:, 1, 0, head, 0] - x[:, 1, 0, :, 0].min(axis=1)
        assert np.median(height) > 1.3 and np.median(height) < 1.9
        assert (x[:, 1, :, head, 0] > x[:, 1, :, root, 0]).mean() > 0.9


@pytest.mark.parametrize("dataset", ["ntu120", "hdm05"])
def test_bone_lengths_constant_within_a_clip_before_noise(dataset):
    order = [kinematics.INDEX[n] for n in layouts.get_dataset(dataset).skeleton.joint_names]
    parents = np.asarray(layouts.get_dataset(dataset).parents)
    bones = [j for j, p in enumerate(parents) if j != p]
    names = synthetic.class_names(dataset)
    for label in range(len(names)):
        clip = synthetic.sample(dataset, label, np.random.default_rng([7, label]), sensor=False)
        for w in clip["persons"]:
            v = w[:, order]
            length = np.linalg.norm(v[:, bones] - v[:, parents[bones]], axis=-1)  # (T, bones)
            rel = length.std(axis=0) / length.mean(axis=0)
            assert rel.max() <= 0.01, (names[label], rel.max())


def test_bone_lengths_vary_across_subjects_and_noise_is_small(hdm_small):
    x, _ = hdm_small
    lengths = _bone_lengths(x, "hdm05")
    parents = layouts.get_dataset("hdm05").parents
    bones = [j for j, p in enumerate(parents) if j != p]
    assert lengths[:, :, bones].std(axis=1).max() < 0.02  # within a clip: only the ~5 mm sensor noise
    mean_len = lengths[:, :, bones].mean(axis=1)
    long = mean_len.mean(axis=0) > 0.2
    rel_spread = mean_len.std(axis=0) / mean_len.mean(axis=0)
    assert (rel_spread[long] > 0.02).all()  # across subjects: ~10 % body variation


def test_joint_angles_stay_within_human_limits():
    lo, hi = kinematics.LIMITS[..., 0], kinematics.LIMITS[..., 1]
    assert (lo <= hi).all() and (kinematics.LIMITS[kinematics.INDEX["l_knee"], 0] == (0, 150)).all()
    for dataset in ("hdm05", "ntu120"):
        for label in range(len(synthetic.class_names(dataset))):
            for angles in synthetic.sample(dataset, label, np.random.default_rng([1, label]))["angles"]:
                assert (angles >= lo - 1e-9).all() and (angles <= hi + 1e-9).all()
                for name in kinematics.RIGID:
                    assert (angles[:, kinematics.INDEX[name]] == 0).all()
    # the limits are mirrored: a right elbow or knee bends like a left one, abduction flips sign
    r, l_ = kinematics.INDEX["r_shoulder"], kinematics.INDEX["l_shoulder"]
    np.testing.assert_array_equal(kinematics.LIMITS[r, 2], -kinematics.LIMITS[l_, 2, ::-1])


def test_every_posed_joint_moves_a_stored_joint():
    """A pose that rotates a joint without child bones moves nothing (the head's nod and shake once did)."""
    stored = sorted({kinematics.INDEX[n] for spec in layouts.DATASETS.values() for n in spec.skeleton.joint_names})
    rest = kinematics.forward_kinematics(kinematics.OFFSET, np.zeros((1, len(kinematics.JOINTS), 3)))[0]
    for name, (pos, neg) in motions.POSES.items():
        for joint, angle in {**neg, **pos}.items():
            if joint.startswith("_") or not any(angle):
                continue
            angles = np.zeros((1, len(kinematics.JOINTS), 3))
            angles[0, kinematics.INDEX[joint]] = 0.5 * np.asarray(angle)  # half-way: a full turn moves nothing
            moved = np.abs(kinematics.forward_kinematics(kinematics.OFFSET, angles)[0] - rest)[stored].max()
            assert moved > 1e-3, f"pose {name!r}: rotating {joint!r} moves no stored joint ({moved:.4f} m)"


def test_head_shake_and_nod_move_the_head_about_the_neck_base():
    t = np.linspace(0, 1, 60)
    head, neck, thorax = (kinematics.INDEX[n] for n in ("head", "neck", "thorax"))
    for pose, axis in (("head_shake", 0), ("nod", 2)):
        drive = motions.Drive.zeros(t.size)
        motions.apply_track(drive, motions.parse_track(f"C {pose} osc2"), t, 1.0)
        pos = kinematics.forward_kinematics(kinematics.OFFSET, drive.angles)
        rel = pos[:, head] - pos[:, thorax]
        assert np.ptp(rel[:, axis]) > 0.03  # sideways for a shake, forwards for a nod: several cm
        for a, b in ((head, neck), (head, thorax), (neck, thorax)):  # both file orders' bones stay rigid
            length = np.linalg.norm(pos[:, a] - pos[:, b], axis=-1)
            assert np.ptp(length) < 1e-9


def _mean_trajectory(dataset, label, n=64):
    """Mean over recordings of the first person's joints (T, J, 3), minus its time average (idle offsets)."""
    clips = [synthetic.sample(dataset, label, np.random.default_rng([11, label, i]), sensor=False)["persons"][0]
             for i in range(n)]
    mean = np.mean(clips, axis=0)
    return mean - mean.mean(axis=0)


@pytest.mark.parametrize("dataset", ["hdm05", "ntu120"])
def test_reversed_pairs_are_time_reverses_of_each_other(dataset):
    names = synthetic.class_names(dataset)
    pairs = synthetic.reverse_pairs(dataset)
    assert len(pairs) >= (13 if dataset == "hdm05" else 10)
    for forward, backward in pairs:  # the definitions: one class's own motion is the other's played backwards
        for a, b in zip(synthetic.prototype(dataset, forward), synthetic.prototype(dataset, backward)):
            np.testing.assert_allclose(a, b[::-1], atol=1e-9, err_msg=names[forward])
            assert np.abs(a - b).max() > 0.1  # and not the same motion (degrees or metres)
    # the generated recordings: mean trajectories (over subjects, timing, idle posture) reverse in time
    checked = ("sitDownChair", "lieDownFloor", "walk2StepsLstart") if dataset == "hdm05" else (
        "sitting down", "walking towards each other")
    for forward, backward in pairs:
        if names[forward] in checked:
            a, b = _mean_trajectory(dataset, forward), _mean_trajectory(dataset, backward)
            assert np.abs(a - b[::-1]).mean() < 0.2 * np.abs(a - b).mean(), names[forward]


def test_second_person_moves_in_mutual_actions_only(ntu_small):
    x, labels = ntu_small
    two = np.array([synthetic.is_two_person("ntu60", int(k)) for k in labels])
    assert (x[~two, ..., 1] == 0).all()
    for n in np.flatnonzero(two):
        partner = x[n, ..., 1]
        assert np.abs(partner).min(axis=(0, 1)).max() > 0  # partner present
        assert np.linalg.norm(x[n, [0, 2], :, 0, 1] - x[n, [0, 2], :, 0, 0], axis=0).min() > 0.3  # apart
        assert partner.std(axis=1).max() > 0.02  # and moving


def test_kinect_artefacts_only_in_ntu_formats():
    def repeated_frames(dataset):
        x, _ = synthetic.generate(dataset, 3, seed=0, classes=SUBSET)
        return int((np.abs(np.diff(x, axis=2)).max(axis=(1, 3, 4)) == 0).sum())
    assert repeated_frames("hdm05") == 0
    assert repeated_frames("ntu60") > 0


@pytest.mark.parametrize("dataset", ["hdm05", "ntu60"])
def test_written_files(tmp_path, dataset):
    paths = synthetic.write_dataset(tmp_path, dataset, num_per_class_train=2, num_per_class_test=1, seed=5,
                                    classes=SUBSET)
    k = len(SUBSET)
    assert set(paths) == {"train", "test"}
    assert paths["train"] == tmp_path / dataset / "classTrain.npz"
    assert paths["test"] == tmp_path / dataset / "classTest.npz"
    assert sorted(p.name for p in (tmp_path / dataset).iterdir()) == ["classTest.npz", "classTrain.npz"]
    for split, count in (("train", 2), ("test", 1)):
        x, labels = synthetic.generate(dataset, count, seed=5, split=split, classes=SUBSET)
        with np.load(paths[split]) as f:
            assert sorted(f.files) == ["classes", "clips"]
            clips, classes = f["clips"], f["classes"]
        assert classes.dtype == np.int64
        np.testing.assert_array_equal(classes, labels)
        if dataset == "hdm05":
            assert clips.dtype == np.float64 and clips.shape == (count * k, 60, 75)
            # joint-major: column 3 * j + c is coordinate c of joint j
            np.testing.assert_allclose(clips[:, :, 3 * 7 + 1], x[:, 1, :, 7, 0], atol=1e-6)
            np.testing.assert_allclose(clips.reshape(-1, 60, 25, 3).transpose(0, 3, 1, 2), x[..., 0], atol=1e-6)
        else:
            assert clips.dtype == np.float32 and clips.shape == (count * k, 3, 60, 25, 2)
            np.testing.assert_array_equal(clips, x)


@pytest.mark.parametrize("dataset", ["hdm05", "ntu60"])
def test_round_trip_with_formats_loader(tmp_path, dataset):
    paths = synthetic.write_dataset(tmp_path, dataset, num_per_class_train=1, num_per_class_test=1, seed=2,
                                    classes=SUBSET)
    x, labels = synthetic.generate(dataset, 1, seed=2, split="test", classes=SUBSET)
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
    names = synthetic.class_names(dataset)
    out = show.plot_sequences(x, labels, names, tmp_path / "fig" / "seq.png", dataset, num=3, frames=4)
    assert out.exists() and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["seq.png"]
