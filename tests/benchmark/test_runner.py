"""The benchmark runner on a tiny config (two small MLPs, I-FGSM and MI-FGSM, 2 iterations): outputs, resumption
after an interruption without recomputing finished cells, and identical results for the same seed."""

import io
import json

import numpy as np
import pytest
from rich.console import Console

from tasar_jax import stages
from tasar_jax.attacks import common
from tasar_jax.benchmark import config as bconfig
from tasar_jax.benchmark import runner

CONFIG = {
    "name": "tiny", "dataset": "hdm05", "seed": 3,
    "data": {"train_per_class": 4, "test_per_class": 2, "classes": "0-18"},
    "train": {"epochs": 8, "batch_size": 32, "learning_rate": 0.01, "milestones": [6]},
    "models": {"a": {"arch": "mlp", "hidden": 32}, "b": {"arch": "mlp", "hidden": 32, "seed": 1}},
    "surrogates": ["a"], "targets": ["a", "b"],
    "attack": {"iterations": 2, "epsilon": 0.01, "samples": 8, "batch_size": 3},
    "attacks": {"fgsm": {}, "mifgsm": {}, "mi_targeted": {"method": "mifgsm", "targeted": True}},
}


def _quiet():
    return Console(file=io.StringIO())


def _counting(monkeypatch, module, name, fail_at=None):
    calls = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt("simulated interruption")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _stable(results):
    """Everything but timings and paths."""
    drop = {"seconds", "seconds_per_example", "file", "files"}
    return json.loads(json.dumps(results, default=str),
                      object_hook=lambda d: {k: v for k, v in d.items() if k not in drop})


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return out, runner.run_benchmark(CONFIG, out, progress=False, console=_quiet())


def test_outputs(full_run):
    out, results = full_run
    for name in ("results.json", "results.csv", "results.md", "heatmap.png", "config.json"):
        assert (out / name).is_file(), name
    assert len(results["cells"]) == 3 * 2 and not results["skipped"]
    gathered = results["surrogates"]["a"]
    assert gathered["num_samples"] == min(8, gathered["gathered"]) >= 4  # at least one full and one padded batch
    table = (out / "results.md").read_text()
    assert "| surrogate | attack | a | b | average |" in table
    adv = common.load_adversarial(out / "attacks" / "a" / "mifgsm.npz")
    assert adv.x.shape[0] == gathered["num_samples"] and np.abs(adv.x_adv - adv.x).max() <= 0.01 + 1e-6
    targeted = common.load_adversarial(out / "attacks" / "a" / "mi_targeted.npz")
    assert np.all(targeted.labels != adv.labels)  # target classes differ from the true ones
    white = {c["attack"]: c for c in results["cells"] if c["target"] == "a"}
    logs = {a["attack"]: a for a in results["attacks"]}
    assert white["fgsm"]["success_rate"] == logs["fgsm"]["white_box"]["success_rate"]
    assert white["fgsm"]["clean_accuracy"] == 1.0  # attacked samples are the surrogate's correct ones


def test_outputs_carry_intervals_and_paired_tests(full_run):
    out, results = full_run
    n = results["surrogates"]["a"]["num_samples"]
    for c in results["cells"]:
        assert len(c["hits"]) == n and c["hits"].count("1") == round(c["success_rate"] * n)
        assert c["success_rate_low"] <= c["success_rate"] <= c["success_rate_high"]
    pairs = [p for p in results["paired"] if p["metric"] == "success_rate"]
    assert {(p["target"], p["a"], p["b"]) for p in pairs} == {(t, "fgsm", "mifgsm") for t in ("a", "b")}
    assert all(p["n"] == n and 0 <= p["p_holm"] <= 1 for p in pairs)  # targeted attacks form their own family
    assert (out / "paired.csv").read_text().startswith("metric,surrogate,target,a,b,n,")
    assert " ± " in (out / "results.md").read_text() and "fgsm minus" in (out / "results.md").read_text()


def test_interrupted_run_resumes_without_recomputing_and_matches(full_run, tmp_path, monkeypatch):
    _, reference = full_run
    eval_cell = runner.eval_cell
    trains = _counting(monkeypatch, stages, "train")
    attacks = _counting(monkeypatch, runner, "attack_cell")
    evals = _counting(monkeypatch, runner, "eval_cell", fail_at=4)  # dies in the 2nd attack's 2nd target
    with pytest.raises(KeyboardInterrupt):
        runner.run_benchmark(CONFIG, tmp_path, progress=False, console=_quiet())
    assert not (tmp_path / "results.json").exists()
    assert (len(trains), len(attacks), len(evals)) == (2, 2, 4)

    trains.clear(), attacks.clear(), evals.clear()
    monkeypatch.setattr(runner, "eval_cell", eval_cell)  # no more interruptions
    evals = _counting(monkeypatch, runner, "eval_cell")
    resumed = runner.run_benchmark(CONFIG, tmp_path, progress=False, console=_quiet())
    assert len(trains) == 0 and [a[1].name for a in attacks] == ["mi_targeted"]
    assert len(evals) == 1 + 2  # mifgsm → b, then both targets of mi_targeted
    assert _stable(resumed) == _stable(reference)  # same seed: the same numbers as the uninterrupted run

    attacks.clear(), evals.clear()
    again = runner.run_benchmark(CONFIG, tmp_path, progress=False, console=_quiet())
    assert (len(trains), len(attacks), len(evals)) == (0, 0, 0)
    assert _stable(again) == _stable(reference)


def test_changed_attack_setting_recomputes_only_that_attack(full_run, tmp_path, monkeypatch):
    out, _ = full_run
    changed = json.loads(json.dumps(CONFIG))
    changed["attacks"]["fgsm"] = {"iterations": 3}
    attacks = _counting(monkeypatch, runner, "attack_cell")
    trains = _counting(monkeypatch, stages, "train")
    runner.run_benchmark(changed, out, progress=False, console=_quiet())
    assert len(trains) == 0 and [a[1].name for a in attacks] == ["fgsm"]
    runner.run_benchmark(CONFIG, out, progress=False, console=_quiet())  # restores the module fixture's run


def test_missing_attack_module_is_a_skipped_cell(tmp_path, monkeypatch, full_run):
    out, _ = full_run
    from tasar_jax.attacks import registry

    monkeypatch.setitem(registry.ATTACKS, "ghost", registry.AttackEntry("ghost:GHOST", ("surrogate",), "", ""))
    cfg = {**CONFIG, "attacks": {**CONFIG["attacks"], "ghost": {}}}
    results = runner.run_benchmark(cfg, out, progress=False, console=_quiet())
    assert [s["attack"] for s in results["skipped"]] == ["ghost"] and "not available" in results["skipped"][0]["reason"]
    assert "ghost" in (out / "results.md").read_text()


def test_config_errors():
    with pytest.raises(ValueError, match="not among the models"):
        bconfig.parse({**CONFIG, "targets": ["a", "zzz"]})
    with pytest.raises(KeyError, match="unknown attack"):
        bconfig.parse({**CONFIG, "attacks": {"nope": {}}})


def test_defended_targets_give_the_defence_table(tmp_path):
    """``defence = "trades" | "beat"`` models are trained (TRADES) or post-trained (BEAT heads on the trained
    model) and evaluated as targets: the defence table (attacks × defended targets) comes out of the runner."""
    cfg = {**CONFIG, "targets": ["a", "a_trades", "a_beat"], "attacks": {"fgsm": {}},
           "models": {**CONFIG["models"],
                      "a_trades": {"arch": "mlp", "hidden": 32, "defence": "trades",
                                   "defence_config": {"steps": 2, "eval_every": 4}},
                      "a_beat": {"arch": "mlp", "hidden": 32, "defence": "beat",
                                 "defence_config": {"epochs": 1, "num_heads": 2, "sgld_steps": 1}}}}
    results = runner.run_benchmark(cfg, tmp_path, progress=False, console=_quiet())
    assert {c["target"] for c in results["cells"]} == {"a", "a_trades", "a_beat"}
    assert results["models"]["a_beat"]["defence"] == "beat" and results["models"]["a_trades"]["defence"] == "trades"
    assert (tmp_path / "models" / "a_beat_beat.npz").is_file()
    from tasar_jax import checkpoints

    assert checkpoints.read_metadata(tmp_path / "models" / "a_trades")["defence"] == "trades"
    assert "a_beat" in (tmp_path / "results.md").read_text()
    with pytest.raises(ValueError, match="defence must be"):
        bconfig.parse({**cfg, "models": {**cfg["models"], "a_beat": {"arch": "mlp", "defence": "magic"}}})


def test_a_file_replaced_at_the_same_path_recomputes_what_depends_on_it(tmp_path, monkeypatch):
    """Records are keyed by content (decision E11): a target checkpoint swapped at its path recomputes that target's
    cells only; a damaged adversarial file recomputes its attack, whose file comes out byte-identical (same seed),
    so its cells, keyed by that content, are kept; nothing else reruns."""
    from tasar_jax import checkpoints, models

    outside = tmp_path / "outside_b"
    checkpoints.save(outside, models.create("mlp", "hdm05", hidden=32, seed=5), architecture="mlp", dataset="hdm05")
    cfg = {**CONFIG, "attacks": {"fgsm": {}, "mifgsm": {}},
           "models": {"a": CONFIG["models"]["a"], "b": {"arch": "mlp", "checkpoint": str(outside)}}}
    run = tmp_path / "run"
    first = runner.run_benchmark(cfg, run, progress=False, console=_quiet())
    trains = _counting(monkeypatch, stages, "train")
    attacks = _counting(monkeypatch, runner, "attack_cell")
    evals = _counting(monkeypatch, runner, "eval_cell")

    checkpoints.save(outside, models.create("mlp", "hdm05", hidden=32, seed=6), architecture="mlp", dataset="hdm05")
    runner.run_benchmark(cfg, run, progress=False, console=_quiet())
    assert (len(trains), len(attacks)) == (0, 0)
    assert sorted((e[1]["attack"], e[2]) for e in evals) == [("fgsm", "b"), ("mifgsm", "b")]

    evals.clear()
    adv = run / "attacks" / "a" / "fgsm.npz"
    original = adv.read_bytes()
    adv.write_bytes(original[:-7])  # truncated
    again = runner.run_benchmark(cfg, run, progress=False, console=_quiet())
    assert len(trains) == 0 and [a[1].name for a in attacks] == ["fgsm"] and len(evals) == 0
    assert adv.read_bytes() == original and _stable(again)["attacks"] == _stable(first)["attacks"]

    attacks.clear(), evals.clear()
    runner.run_benchmark(cfg, run, progress=False, console=_quiet())
    assert (len(trains), len(attacks), len(evals)) == (0, 0, 0)

    checkpoints.save(outside, models.create("mlp", "ntu60", hidden=32), architecture="mlp", dataset="ntu60")
    with pytest.raises(ValueError, match="holds mlp trained on ntu60, but the config asks for mlp on hdm05"):
        runner.run_benchmark(cfg, run, progress=False, console=_quiet())
