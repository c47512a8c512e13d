"""The synthetic-dataset quality benchmark: time-blind features, target checks, a tiny end-to-end run, the table."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from experiments import synthetic_quality as sq


def test_time_blind_features_are_the_temporal_mean_and_std_and_ignore_frame_order():
    x = np.random.default_rng(0).normal(size=(3, 3, 60, 25, 2)).astype(np.float32)
    f = sq.time_blind(x)
    assert f.shape == (3, 3, 2, 25, 2)
    np.testing.assert_allclose(f[:, :, 0], x.mean(axis=2), rtol=1e-6)
    np.testing.assert_allclose(f[:, :, 1], x.std(axis=2), rtol=1e-5)
    np.testing.assert_allclose(sq.time_blind(x[:, :, ::-1]), f, rtol=1e-5, atol=1e-6)  # time reversal is invisible


def _result(acc, per_class):
    return {"accuracy": acc, "per_class_accuracy": dict(enumerate(per_class))}


def test_targets_compare_the_right_numbers():
    results = {"mlp": _result(70.0, [70]), "stgcn": _result(80.0, [50, 90]), "ctrgcn": _result(74.0, [20, 90]),
               "time_blind_mlp": _result(61.0, [60])}
    t = sq.check_targets(results)
    assert t["graph_beats_mlp_by_5"]["margins"] == {"stgcn": 10.0, "ctrgcn": 4.0}
    assert not t["graph_beats_mlp_by_5"]["met"]  # CTR-GCN only 4 points ahead
    assert t["time_blind_20_below_best"]["best_graph_model"] == "stgcn"
    assert t["time_blind_20_below_best"]["gap"] == 19.0 and not t["time_blind_20_below_best"]["met"]
    assert t["no_model_99"]["met"] and t["every_class_30_for_best"]["min_class_accuracy"] == 50
    worst = sq.check_targets(results, clips_per_class=10)["every_class_30_for_best"]
    assert worst["worst_class"] == 0 and worst["wilson_95"] == pytest.approx([23.7, 76.3], abs=0.05)  # 5 of 10
    results["stgcn"] = _result(99.5, [100, 99])
    t = sq.check_targets(results)
    assert not t["no_model_99"]["met"] and t["time_blind_20_below_best"]["met"]


def test_recipe_is_fixed_and_documented():
    cfg = sq.recipe("ctrgcn", 15)
    assert (cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.milestones, cfg.warmup_epochs) == (15, 32, 0.1, (9, 13), 1)
    assert sq.recipe("mlp", 15).learning_rate == 0.01 and sq.recipe("stgcn", 15).warmup_epochs == 0


def test_tiny_run_writes_json_and_table(tmp_path):
    out = tmp_path / "q.json"
    result = sq.main(["--dataset", "hdm05", "--models", "mlp", "--train-per-class", "2", "--test-per-class", "1",
                      "--epochs", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["num_classes"] == 65 and saved["train_samples"] == 130 and saved["test_samples"] == 65
    assert set(saved["results"]) == {"mlp", "time_blind_mlp"} and "targets" not in saved  # no graph model run
    assert len(saved["results"]["mlp"]["per_class_accuracy"]) == 65
    assert saved["results"]["time_blind_mlp"]["config"]["num_frames"] == 2
    assert result["results"]["mlp"]["accuracy"] == saved["results"]["mlp"]["accuracy"]
    table = sq.main(["--table", str(out)])["table"]
    assert "| mlp | " in table and "| time_blind_mlp | " in table


def test_resume_keeps_measured_models_and_refuses_other_settings(tmp_path, monkeypatch):
    out = tmp_path / "q.json"
    small = ["--dataset", "hdm05", "--train-per-class", "2", "--test-per-class", "1", "--epochs", "1",
             "--out", str(out)]
    sq.main(small + ["--models", "mlp"])
    first = json.loads(out.read_text())
    trained = []
    monkeypatch.setattr(sq, "evaluate_model", lambda name, *a, **k: trained.append(name) or first["results"]["mlp"])
    sq.main(small + ["--models", "mlp", "--resume"])
    assert trained == []  # both the MLP and the time-blind baseline came from the file
    resumed = json.loads(out.read_text())
    assert resumed["results"] == first["results"] and resumed["earlier_commands"] == [first["command"]]
    assert not resumed["complete"]
    with pytest.raises(SystemExit, match="other settings .*epochs"):
        sq.main(small[:-4] + ["--epochs", "2", "--out", str(out), "--models", "mlp", "--resume"])
    stale = dict(first, generator=first["generator"] - 1)  # measured on clips an older generator made
    out.write_text(json.dumps(stale))
    with pytest.raises(SystemExit, match="generator version"):
        sq.main(small + ["--models", "mlp", "--resume"])


def test_resume_continues_a_model_from_its_last_epoch(tmp_path, monkeypatch):
    """With ``--resume`` a model's state is kept after every epoch in ``<out>.<model>.progress.npz``: a run killed
    mid-model continues from there, reports where it resumed, and removes the file once the model is done."""
    out = tmp_path / "q.json"
    args = ["--dataset", "hdm05", "--train-per-class", "2", "--test-per-class", "1", "--epochs", "2",
            "--out", str(out), "--models", "mlp", "--resume"]
    from tasar_jax import training

    save = training.save_progress

    def killed_after_epoch_1(done, path):
        save(done, path)
        if pathlib.Path(path).name.endswith(".mlp.progress.npz"):
            raise KeyboardInterrupt("session over")

    monkeypatch.setattr(training, "save_progress", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        sq.main(args)
    monkeypatch.setattr(training, "save_progress", save)
    progress = tmp_path / "q.mlp.progress.npz"
    assert progress.is_file() and json.loads(out.read_text())["results"].keys() == {"time_blind_mlp"}
    result = sq.main(args)
    assert result["results"]["mlp"]["resumed_from_epoch"] == 1 and len(result["results"]["mlp"]["history"]) == 2
    assert not progress.exists() and not (tmp_path / "q.time_blind_mlp.progress.npz").exists()
