"""A new attack is a spec, a constructor and one registry entry (docs/extending.md). This test adds one defined
right here — plain gradient-sign steps (BIM) — and runs it through the shared driver and the command line."""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax import checkpoints, cli, models
from tasar_jax.attacks import base, common, registry
from tasar_jax.data import synthetic


class SignState(NamedTuple):
    x: jax.Array


@dataclasses.dataclass(frozen=True)
class SignSpec:
    """``x ← project(x − α·sign(g))`` with ``g = ∇_x sign·CE``."""

    config: base.AttackConfig = base.AttackConfig()

    def init(self, x0, labels) -> SignState:
        return SignState(x0)

    def step(self, apply_fn, params, x0, labels, keys, state, t):
        g, logits = base.loss_gradient(apply_fn, params, state.x, labels, self.config.sign)
        return SignState(base.descend(self.config, state.x, x0, jnp.sign(g))), logits


def Sign(surrogate: base.Surrogate, **config) -> base.Attack:
    """BIM bound to ``surrogate``; keyword arguments are ``AttackConfig`` fields."""
    return base.Attack(surrogate, SignSpec(base.AttackConfig(**base.canonical_kwargs(config))))


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(registry.ATTACKS, "toy_sign", registry.AttackEntry(
        f"{__name__}:Sign", ("surrogate",), "BIM", "plain sign steps (a test's toy attack)"))


def test_the_new_attack_runs_through_the_shared_driver(registered):
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(0, 0.3, (3 * 8 * 25, 5)), jnp.float32)}
    surrogate = base.Surrogate(lambda p, x: x.reshape(x.shape[0], -1) @ p["w"], params)
    x = jnp.asarray(rng.uniform(-0.5, 0.5, (4, 3, 8, 25, 1)), jnp.float32)
    labels = jnp.argmax(surrogate.apply_fn(params, x), -1)
    atk = registry.constructor("toy_sign")(surrogate, iterations=3, epsilon=0.05, step_size=0.02)
    result = atk.run(jax.random.key(0), x, labels)
    assert float(jnp.max(jnp.abs(result.x_adv - x))) <= 0.05 + 1e-6
    moved = np.asarray(result.x_adv - x)
    assert np.all(np.abs(moved[moved != 0]) > 0.01)  # sign steps: every coordinate that moved, moved by ≥ α/2


def test_the_new_attack_is_a_command_line_method(registered, tmp_path, capsys):
    synthetic.write_dataset(tmp_path / "data", "hdm05", 1, 1, seed=0, classes=[0, 1, 2])
    checkpoints.save(tmp_path / "mlp", models.create("mlp", "hdm05", hidden=8), architecture="mlp", dataset="hdm05")
    assert cli.main(["attack", "--method", "toy_sign", "--model", str(tmp_path / "mlp"), "--iterations", "2",
                     "--data", str(tmp_path / "data" / "hdm05" / "classTest.npz"),
                     "--out", str(tmp_path / "adv.npz")]) == 0
    adv = common.load_adversarial(tmp_path / "adv.npz")
    assert adv.x_adv.shape == adv.x.shape == (3, 3, 60, 25, 1)
    assert np.abs(adv.x_adv - adv.x).max() <= 0.01 + 1e-6
