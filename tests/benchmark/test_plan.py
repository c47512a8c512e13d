"""``benchmark --dry-run``: the stage plan counts the config's work and prices it with measured throughput."""

import pytest

from tasar_jax.benchmark import config as bconfig
from tasar_jax.benchmark import plan

from .test_runner import CONFIG


def test_surrogate_passes_per_attack():
    cfg = bconfig.parse({**CONFIG, "attacks": {
        "fgsm": {}, "tasar": {}, "tasar_no_dual": {}, "mig": {"ig_steps": 5}, "ba": {},
        "ens": {"method": "ensemble", "members": ["a", "b"]}, "svre": {"members": ["a", "b"]},
        "svre6": {"method": "svre", "members": ["a", "b"], "inner_steps": 6},
        "svre_per_sample": {"method": "svre", "members": ["a", "b"], "shared_draws": False}}})
    passes = {a.name: plan.surrogate_passes(a, "a", cfg) for a in cfg.attacks}
    assert passes["fgsm"] == passes["tasar"] == passes["tasar_no_dual"] == {"a": 1.0}
    assert passes["mig"] == {"a": 5.0} and passes["ba"] == {"a": 3.0}
    assert passes["ens"] == {"a": 1.0, "b": 1.0}
    assert passes["svre"] == {"a": 5.0, "b": 5.0} and passes["svre6"] == {"a": 4.0, "b": 4.0}  # 1 + M/K expected
    assert passes["svre_per_sample"] == {"a": 9.0, "b": 9.0}  # 1 + M: every member at every inner step


def test_plan_counts_the_work_and_prices_it(monkeypatch):
    speed = plan.Throughput(train_step=0.01, forward=0.001, input_gradient=0.002)
    monkeypatch.setattr(plan, "measure", lambda *a, **k: speed)
    rows = {r["stage"]: r for r in plan.plan(bconfig.parse(CONFIG))}
    n_train, n_test = 4 * 19, 2 * 19  # CONFIG: classes 0-18, 4 + 2 clips per class
    assert rows["model a"]["seconds"] == pytest.approx(8 * (n_train * 0.01 + n_test * 0.001))
    assert rows["gather a"]["seconds"] == pytest.approx(n_test * 0.001)
    # 8 attacked clips × 2 iterations × one input gradient, plus clean and adversarial passes on both targets
    assert rows["attack a / fgsm"]["seconds"] == pytest.approx(8 * 2 * 0.002 + 2 * 8 * 2 * 0.001)
    assert "posterior a" not in rows and "motion a" not in rows  # no TASAR in this config


def test_dry_run_measures_real_models():
    speed = plan.measure("mlp", "hdm05", {"hidden": 16}, train_batch=4, attack_batch=2, eval_batch=4, repeats=1)
    assert all(0 < v < 10 for v in speed)
    assert plan.format_seconds(125.4) == "2 min 05 s" and plan.format_seconds(7) == "7 s"


def test_cli_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import json

    from tasar_jax import cli

    monkeypatch.setattr(plan, "measure", lambda *a, **k: plan.Throughput(0.01, 0.001, 0.002))
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(CONFIG))
    monkeypatch.chdir(tmp_path)
    cli.main(["benchmark", str(path), "--dry-run"])
    printed = capsys.readouterr().out
    assert "model a" in printed and "attack a / mi_targeted" in printed and "total" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json"]  # no run folder


def test_every_shipped_config_parses():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    configs = sorted([*root.glob("experiments/configs/*.toml"), *root.glob("tasar_jax/configs/*.toml")])
    assert len(configs) >= 7
    for path in configs:
        bconfig.parse(path)


def test_study_configs_keep_the_protocol_the_issue_asks_for():
    import pathlib

    from tasar_jax import models
    from tasar_jax.attacks import registry

    root = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "configs"
    study = bconfig.parse(root / "study_cpu.toml")
    assert "stgcn" in study.surrogates and any(models.entry(study.models[s].arch).two_stream for s in study.surrogates)
    assert len(study.targets) >= 5 and "mlp" in study.targets
    methods = {a.method for a in study.attacks}
    assert methods == set(registry.names())  # the ten attacks and the four ablations
    for a in study.attacks:
        assert a.samples >= 256 and a.hyper["iterations"] >= 100 and a.hyper["epsilon"] == 0.01
    paper = bconfig.parse(root / "paper_synthetic.toml")
    assert {"stgcn", "ctrgcn", "msg3d", "agcn"} <= set(paper.surrogates)
    zoo = {name for name in models.ARCHITECTURES if "_" not in name}  # whole models, not single streams
    assert {paper.models[t].arch for t in paper.targets} == zoo
    for a in paper.attacks:
        assert a.samples >= 1000 and a.hyper["iterations"] == 200 and a.hyper["epsilon"] == 0.01
        assert not registry.settings(a.method, dict(a.hyper)).get("shared_draws", False)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(tagrets=["a"]), "benchmark config: unknown keys 'tagrets' \\(did you mean 'targets'\\?\\)"),
    (lambda c: c["data"].update(test_per_clas=2), "\\[data\\]: unknown keys 'test_per_clas' \\(did you mean"),
    (lambda c: c["attacks"]["fgsm"].update(epsilom=0.1), "\\[attacks.fgsm\\]: unknown keys 'epsilom' \\(did you mean "
                                                         "'epsilon'\\?\\)"),
    (lambda c: c["attacks"].update(mig={"ig_step": 5}), "\\[attacks.mig\\]: unknown keys 'ig_step' \\(did you mean "
                                                        "'ig_steps'\\?\\)"),
    (lambda c: c["models"]["a"].update(hiden=8), "\\[models.a\\]: unknown keys 'hiden' \\(did you mean 'hidden'\\?\\)"),
    (lambda c: c["models"]["b"].update(train={"epoch": 2}), "\\[models.b\\] train: unknown keys 'epoch'"),
    (lambda c: c.update(motion={"bandwith": 1.0}), "\\[motion\\]: unknown keys 'bandwith' \\(did you mean"),
    (lambda c: c.update(posttrain={"num_head": 2}), "\\[posttrain\\]: unknown keys 'num_head'"),
])
def test_unknown_config_keys_fail_at_parse_time_with_a_suggestion(edit, message):
    import copy

    raw = copy.deepcopy(CONFIG)
    edit(raw)
    with pytest.raises(ValueError, match=message):
        bconfig.parse(raw)


def test_every_attack_accepts_its_documented_hyper_parameters():
    from tasar_jax.attacks import registry

    assert {"epsilon", "eps", "iterations", "decay", "ig_steps"} <= registry.hyper_names("mig")
    assert {"temporal", "scale", "dual_posterior", "num_heads"} <= registry.hyper_names("tasar_one_head")
    assert {"gan_weight", "class_weight", "bone_weight"} <= registry.hyper_names("ciasa")
    assert "ig_steps" not in registry.hyper_names("fgsm")
