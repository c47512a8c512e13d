"""End-to-end command-line runs on tiny synthetic data and on the upstream fixture checkpoint."""

import numpy as np
import pytest

from tasar_jax import cli


def run(*argv):
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert run("data", "synth", "--out", root / "data", "--dataset", "hdm05",
               "--train-per-class", 4, "--test-per-class", 2, "--seed", 1, "--classes", "0-18") == 0
    # the MLP: these tests are about the commands' wiring (one compilation of a graph model costs 20–40 s here);
    # graph models go through the command line in test_zoo_training, the conversions below and the 2s-AGCN test
    assert run("train", "--arch", "mlp", "--dataset", "hdm05", "--data", root / "data", "--out", root / "ck",
               "--epochs", 2, "--batch-size", 16, "--milestones", "1", "--lr", 0.01) == 0
    return root


def test_train_writes_checkpoint_with_history(workdir):
    from tasar_jax import checkpoints

    meta = checkpoints.read_metadata(workdir / "ck")
    assert meta["architecture"] == "mlp" and meta["dataset"] == "hdm05"
    assert len(meta["history"]) == 2 and meta["train_config"]["milestones"] == [1]
    assert meta["accuracy"] == max(r["test_accuracy"] for r in meta["history"])


def test_test_gather_predict(workdir, capsys):
    from tasar_jax.data import formats

    assert run("test", "--model", workdir / "ck", "--data", workdir / "data") == 0
    printed = capsys.readouterr().out
    accuracy = float(printed.split("accuracy: ")[-1].split()[0])
    assert run("gather", "--model", workdir / "ck", "--data", workdir / "data") == 0
    clips, classes = formats.read_raw(workdir / "ck" / "adClassTrain.npz", "hdm05")
    test_clips, _ = formats.read_raw(workdir / "data" / "hdm05" / "classTest.npz", "hdm05")
    assert clips.dtype == np.float64 and len(classes) == round(accuracy * len(test_clips))
    # gathered clips are stored rows of the test file, unchanged
    assert all(any(np.array_equal(c, t) for t in test_clips) for c in clips)
    assert run("predict", "--model", workdir / "ck", "--out", workdir / "logits.npy",
               workdir / "data" / "hdm05" / "classTest.npz") == 0
    assert np.load(workdir / "logits.npy").shape == (len(test_clips), 65)


@pytest.mark.parametrize("arch, stems, io_stem", [("stgcn", ("STGCN",), "STGCN"),
                                                   ("agcn", ("AGCN_joint", "AGCN_bone"), "AGCN")])
def test_convert_and_predict_reproduce_upstream(tmp_path, upstream, arch, stems, io_stem):
    pytest.importorskip("torch")
    assert run("convert", "--arch", arch, "--dataset", "hdm05", "--out", tmp_path / "ck",
               *(upstream / f"{s}_hdm05.pth.xz" for s in stems)) == 0
    io = np.load(upstream / f"{io_stem}_hdm05_io.npz")
    np.save(tmp_path / "x.npy", io["x"])
    assert run("predict", "--model", tmp_path / "ck", "--out", tmp_path / "logits.npy", tmp_path / "x.npy") == 0
    logits = np.load(tmp_path / "logits.npy")
    assert np.abs(logits - io["logits"]).max() <= 1e-4 * max(1.0, np.abs(io["logits"]).max())


def test_errors_exit_with_a_message(tmp_path, capsys, workdir):
    np.save(tmp_path / "bad.npy", np.full((1, 3, 60, 25, 1), np.nan, np.float32))
    assert run("predict", "--model", workdir / "ck", "--out", tmp_path / "o.npy", tmp_path / "bad.npy") == 2
    assert "NaN/inf" in capsys.readouterr().out
    assert not (tmp_path / "o.npy").exists()
    assert run("test", "--model", tmp_path / "nothing", "--data", workdir / "data") == 2
    assert "not a tasar-jax checkpoint" in capsys.readouterr().out
    assert run("convert", "--arch", "stgcn", "--dataset", "hdm05", "--out", tmp_path / "c",
               tmp_path / "absent.pth") == 2
    assert not (tmp_path / "c").exists()


def test_convert_checks_the_number_of_checkpoints(tmp_path, capsys, upstream):
    pytest.importorskip("torch")
    assert run("convert", "--arch", "msg3d", "--dataset", "hdm05", "--out", tmp_path / "c",
               upstream / "MSG3D_joint_hdm05.pth.xz") == 2
    assert "give the joint checkpoint and then the bone checkpoint" in capsys.readouterr().out
    assert run("convert", "--arch", "stgcn", "--dataset", "hdm05", "--out", tmp_path / "c",
               upstream / "STGCN_hdm05.pth.xz", upstream / "STGCN_hdm05.pth.xz") == 2
    assert "takes one checkpoint, not two" in capsys.readouterr().out
    assert not (tmp_path / "c").exists()


def test_ensemble_of_converted_streams_reproduces_upstream(tmp_path, upstream, capsys):
    pytest.importorskip("torch")
    for stream in ("joint", "bone"):
        assert run("convert", "--arch", f"agcn_{stream}", "--dataset", "hdm05", "--out", tmp_path / stream,
                   upstream / f"AGCN_{stream}_hdm05.pth.xz") == 0
    assert run("ensemble", "--joint", tmp_path / "joint", "--bone", tmp_path / "bone", "--out", tmp_path / "ens") == 0
    io = np.load(upstream / "AGCN_hdm05_io.npz")
    np.save(tmp_path / "x.npy", io["x"])
    assert run("predict", "--model", tmp_path / "ens", "--out", tmp_path / "logits.npy", tmp_path / "x.npy") == 0
    assert np.abs(np.load(tmp_path / "logits.npy") - io["logits"]).max() <= 1e-4 * max(1.0, np.abs(io["logits"]).max())
    assert run("ensemble", "--joint", tmp_path / "bone", "--bone", tmp_path / "joint", "--out", tmp_path / "x") == 2
    assert "need a <family>_joint and a <family>_bone" in capsys.readouterr().out


def test_motion_writes_aligned_float64_arrays(tmp_path, capsys):
    from tasar_jax.data import synthetic

    x, _ = synthetic.generate("ntu60", 1, seed=0)
    x = x[:2, :, :20]  # two samples, 20 frames, two persons
    np.save(tmp_path / "x.npy", x)
    assert run("motion", "--out", tmp_path / "m.npz", "--bandwidth", 0.3, tmp_path / "x.npy") == 0
    with np.load(tmp_path / "m.npz") as data:
        ar1, ar2 = data["ar1"], data["ar2"]
    assert ar1.shape == ar2.shape == x.shape and ar1.dtype == np.float64
    assert np.isfinite(ar1).all() and np.all(ar1[:, :, -1] == 0) and np.all(ar2[:, :, -2:] == 0)
    bad = x.copy()
    bad[0, 0, 0, 0, 0] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    assert run("motion", "--out", tmp_path / "b.npz", tmp_path / "bad.npy") == 2
    assert "NaN" in capsys.readouterr().out and not (tmp_path / "b.npz").exists()


def test_posttrain_writes_a_posterior(workdir, capsys):
    from tasar_jax.posterior import load_posterior

    assert run("posttrain", "--model", workdir / "ck", "--data", workdir / "data", "--epochs", 2,
               "--swa-n", 4, "--heads", 2, "--out", workdir / "posterior.npz") == 0
    assert "appended heads" in capsys.readouterr().out
    (posterior,), meta = load_posterior(workdir / "posterior.npz")
    assert posterior.heads.w1.shape == (2, 65, 65) and meta["dataset"] == "hdm05" and meta["num_heads"] == 2
    assert np.isfinite(posterior.sqmean.w1).all()


def test_attack_tasar_end_to_end(workdir, tmp_path, capsys):
    from tasar_jax.attacks.common import load_adversarial
    from tasar_jax.data import formats

    clips, classes = formats.read_raw(workdir / "data" / "hdm05" / "classTest.npz", "hdm05")
    formats.write_raw(tmp_path / "few.npz", clips[:3], classes[:3])  # 3 clips: the motion fits cost ~1 s each
    assert run("posttrain", "--model", workdir / "ck", "--data", workdir / "data", "--epochs", 1,
               "--swa-n", 2, "--heads", 2) == 0
    assert run("attack", "--method", "tasar", "--model", workdir / "ck", "--data", tmp_path / "few.npz",
               "--iterations", 3, "--samples-per-head", 2, "--batch-size", 3, "--out", tmp_path / "tasar.npz") == 0
    assert "white-box success" in capsys.readouterr().out
    adv = load_adversarial(tmp_path / "tasar.npz")
    assert np.abs(adv.x_adv - adv.x).max() <= 0.01 + 1e-6 and np.isfinite(adv.x_adv).all()
    cache = tmp_path / "few_motion.npz"  # the attacked set's motion coefficients, beside it
    assert cache.is_file()
    cache.unlink()
    assert run("attack", "--method", "tasar_no_motion", "--model", workdir / "ck", "--data", tmp_path / "few.npz",
               "--iterations", 2, "--batch-size", 3, "--out", tmp_path / "no_motion.npz") == 0
    assert not cache.exists()  # the ablation needs no motion coefficients and computes none
    assert np.isfinite(load_adversarial(tmp_path / "no_motion.npz").x_adv).all()


@pytest.mark.filterwarnings("ignore:heads .* never reached")
def test_two_stream_posttrain_and_targeted_attack(workdir, tmp_path, capsys):
    """A (random, untrained) tiny 2s-AGCN ensemble: per-stream post-training into one (joint, bone) posterior
    file, then a targeted TASAR attack through both streams."""
    from tasar_jax import checkpoints, models
    from tasar_jax.attacks.common import load_adversarial
    from tasar_jax.data import formats
    from tasar_jax.posterior import Posterior, load_posterior

    checkpoints.save(tmp_path / "agcn", models.create("agcn", "hdm05", width=0.125, seed=0),
                     architecture="agcn", dataset="hdm05")
    assert run("posttrain", "--model", tmp_path / "agcn", "--data", workdir / "data", "--epochs", 1,
               "--swa-n", 2, "--heads", 2, "--burn-in", 1) == 0
    assert "per stream (joint + bone)" in capsys.readouterr().out
    posterior, meta = load_posterior(tmp_path / "agcn" / "posterior.npz")
    assert meta["streams"] == ["joint", "bone"] and all(isinstance(p, Posterior) for p in posterior)
    clips, classes = formats.read_raw(workdir / "data" / "hdm05" / "classTest.npz", "hdm05")
    formats.write_raw(tmp_path / "few.npz", clips[:3], classes[:3])
    assert run("attack", "--model", tmp_path / "agcn", "--data", tmp_path / "few.npz", "--iterations", 2,
               "--samples-per-head", 2, "--no-temporal", "--targeted") == 0
    assert "targeted white-box success" in capsys.readouterr().out
    adv = load_adversarial(tmp_path / "agcn" / "tasar_adv.npz")
    np.testing.assert_array_equal(adv.true_labels, classes[:3])
    assert np.all(adv.labels != adv.true_labels) and np.abs(adv.x_adv - adv.x).max() <= 0.01 + 1e-6
    assert run("attack", "--model", workdir / "ck", "--data", tmp_path / "few.npz", "--iterations", 1,
               "--posterior", tmp_path / "agcn" / "posterior.npz", "--no-temporal") == 2
    assert "two-stream posterior" in capsys.readouterr().out


def test_import_upstream_posterior_folders(upstream, tmp_path, capsys):
    pytest.importorskip("torch")
    from tasar_jax.posterior import load_posterior

    for stream in ("joint", "bone"):
        (tmp_path / stream / "Dual_Bayesian").mkdir(parents=True)
        for i in range(2):
            (tmp_path / stream / f"{i}_minValLossAppendedModel.pth").write_bytes(
                (upstream / "appended_head_0_minValLossAppendedModel.pth").read_bytes())
            (tmp_path / stream / "Dual_Bayesian" / f"multi_swag_ep_{i}.pt").write_bytes(
                (upstream / "multi_swag_ep_0.pt").read_bytes())
    assert run("import-posterior", tmp_path / "joint", "--heads", 2, "--out", tmp_path / "p1.npz") == 0
    (single,), _ = load_posterior(tmp_path / "p1.npz")
    assert single.heads.w1.shape == (2, 65, 65)
    assert run("import-posterior", tmp_path / "joint", tmp_path / "bone", "--heads", 2,
               "--out", tmp_path / "p2.npz") == 0
    pair, meta = load_posterior(tmp_path / "p2.npz")
    assert meta["streams"] == ["joint", "bone"]
    np.testing.assert_array_equal(pair[1].sqmean.w1, single.sqmean.w1)
    assert run("import-posterior", tmp_path / "joint", "--heads", 3, "--out", tmp_path / "p3.npz") == 2
    assert "no such" in capsys.readouterr().out.lower() and not (tmp_path / "p3.npz").exists()


def test_defences_and_landscape_commands(workdir, tmp_path, capsys):
    """TRADES training, BEAT heads and the landscape plots from the command line (tiny MLP, 1 epoch)."""
    from tasar_jax import checkpoints
    from tasar_jax.posterior import load_posterior

    assert run("train", "--arch", "mlp", "--dataset", "hdm05", "--data", workdir / "data", "--out", tmp_path / "tr",
               "--epochs", 1, "--batch-size", 64, "--defence", "trades", "--trades-steps", 2, "--eval-every", 1) == 0
    assert "robust" in capsys.readouterr().out
    meta = checkpoints.read_metadata(tmp_path / "tr")
    assert meta["defence"] == "trades" and meta["robust_accuracy"] is not None
    assert run("beat", "--model", tmp_path / "tr", "--data", workdir / "data", "--heads", 2, "--epochs", 1,
               "--sgld-steps", 1) == 0
    (heads,), beat_meta = load_posterior(tmp_path / "tr" / "beat.npz")
    assert heads.heads.w1.shape[0] == 2 and beat_meta["defence"] == "beat"
    assert run("landscape", "--model", tmp_path / "tr", "--data", workdir / "data" / "hdm05" / "classTest.npz",
               "--out", tmp_path / "ls", "--num-samples", 2, "--points", 5, "--directions", 2, "--pgd-steps", 2,
               "--attack-iterations", 2) == 0
    assert "around adversarial samples" in capsys.readouterr().out
    assert (tmp_path / "ls_surrogate.png").stat().st_size > 0 and (tmp_path / "ls_surrogate.json").exists()


def test_benchmark_command_runs_and_resumes(tmp_path, capsys):
    import json

    from tests.benchmark.test_runner import CONFIG

    (tmp_path / "tiny.json").write_text(json.dumps({**CONFIG, "attacks": {"fgsm": {}}}))
    assert run("benchmark", tmp_path / "tiny.json", "--workdir", tmp_path / "run", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "transfer success rate" in out and "fgsm" in out and (tmp_path / "run" / "results.md").exists()
    assert run("benchmark", tmp_path / "tiny.json", "--workdir", tmp_path / "run", "--no-progress") == 0
    (tmp_path / "bad.json").write_text(json.dumps({**CONFIG, "attacks": {"nosuch": {}}}))
    assert run("benchmark", tmp_path / "bad.json", "--workdir", tmp_path / "bad", "--no-progress") == 2
    assert "nosuch" in capsys.readouterr().out


def test_baseline_attacks_from_the_command_line(workdir, tmp_path, capsys):
    """Any registry attack runs from ``attack --method``: a single-surrogate one with ``--set``, an ensemble with
    ``--member``, and BA after ``finetune``."""
    from tasar_jax.attacks.common import load_adversarial
    from tasar_jax.data import formats

    clips, classes = formats.read_raw(workdir / "data" / "hdm05" / "classTest.npz", "hdm05")
    formats.write_raw(tmp_path / "few.npz", clips[:3], classes[:3])
    common = ("--model", workdir / "ck", "--data", tmp_path / "few.npz", "--iterations", 2)
    assert run("attack", "--method", "mifgsm", *common, "--set", "decay=1.0", "--out", tmp_path / "mi.npz") == 0
    assert run("attack", "--method", "ensemble", *common, "--member", workdir / "ck", "--targeted",
               "--out", tmp_path / "ens.npz") == 0
    assert run("finetune", "--model", workdir / "ck", "--data", workdir / "data", "--epochs", 1,
               "--out", tmp_path / "ba") == 0
    assert run("attack", "--method", "ba", *common, "--swag", tmp_path / "ba" / "swag.npz", "--n-models", 2,
               "--out", tmp_path / "ba.npz") == 0
    out = capsys.readouterr().out
    assert "mifgsm untargeted white-box" in out and "ensemble targeted" in out and "ba untargeted" in out
    for name in ("mi", "ens", "ba"):
        adv = load_adversarial(tmp_path / f"{name}.npz")
        assert adv.x_adv.shape == adv.x.shape and np.abs(adv.x_adv - adv.x).max() <= 0.01 + 1e-6
    assert run("attack", "--method", "fgsm", *common, "--set", "decay") == 2
