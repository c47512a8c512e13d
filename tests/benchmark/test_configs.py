"""The shipped benchmark configs parse, follow the paper's protocol, and the demo's overrides apply."""

import pathlib

import pytest

from tasar_jax import demo
from tasar_jax.benchmark import config as bconfig

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "configs"


@pytest.mark.parametrize("dataset", ["hdm05", "ntu60", "ntu120"])
def test_paper_configs(dataset):
    cfg = bconfig.parse(CONFIGS / f"{dataset}.toml")
    assert cfg.dataset == dataset and cfg.data.source == "root"
    assert len(cfg.targets) == 7 and set(cfg.surrogates) == set(cfg.targets)
    assert {a.method for a in cfg.attacks} == {"fgsm", "mifgsm", "mig", "smart", "ciasa", "dim", "ensemble", "svre",
                                                "ba", "tasar"}
    for attack in cfg.attacks:
        assert attack.hyper["iterations"] == 200 and attack.hyper["epsilon"] == 0.01 and attack.samples == 496
    ens = next(a for a in cfg.attacks if a.method == "ensemble")
    assert ens.members == ("stgcn", "ctrgcn", "msg3d") and ens.surrogates == ("stgcn",)


def test_demo_config_and_overrides():
    cfg = bconfig.parse(demo.demo_config())
    assert cfg.surrogates == ("stgcn",) and len(cfg.targets) >= 3
    assert {"fgsm", "mifgsm", "smart", "ba", "tasar"} <= {a.method for a in cfg.attacks}
    assert cfg.data.classes is not None and len(cfg.data.classes) >= 10  # a class subset keeps it in minutes
    assert set(demo.demo_config()["expected_accuracy"]) == set(cfg.models)
    short = bconfig.parse(demo.demo_config(epochs=4, iterations=3, samples=5, seed=2))
    assert short.seed == 2
    assert all(m.train["epochs"] == 4 and m.train["milestones"] == [2, 3] for m in short.models.values())
    assert all(a.hyper["iterations"] == 3 and a.samples == 5 for a in short.attacks)
