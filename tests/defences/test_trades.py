"""TRADES: the KL and inner attack, equivalence with plain training at β = 0, and a measured robustness gain."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax import models, training
from tasar_jax.attacks import base
from tasar_jax.data import synthetic
from tasar_jax.defences import trades

# 19 of the 65 HDM05 classes that a tiny MLP on 10 frames can learn (postures, not time order): kicks, punches, hops,
# claps, squat, jumping jack, cartwheel, hit head, throw, lie down
CLASSES = (0, 1, 2, 12, 13, 14, 15, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 43, 51)
EPS = 0.05  # synthetic skeletons are in metres; 0.05 m makes the attack bite on a tiny MLP


def _mlp(seed=0):
    return models.create("mlp", "hdm05", num_frames=10, hidden=32, seed=seed)


@pytest.fixture(scope="module")
def data():
    (xtr, ytr), (xte, yte) = (synthetic.generate("hdm05", n, 0, split, CLASSES) for n, split in ((8, "train"), (4, "test")))
    return (xtr[:, :, ::6], ytr), (xte[:, :, ::6], yte)  # T = 10


def test_kl_sum_is_torch_kldiv_sum():
    rng = np.random.default_rng(0)
    nat, adv = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    p = np.exp(nat) / np.exp(nat).sum(-1, keepdims=True)
    log_q = adv - np.log(np.exp(adv).sum(-1, keepdims=True))
    np.testing.assert_allclose(trades.kl_sum(jnp.asarray(nat), jnp.asarray(adv)), np.sum(p * (np.log(p) - log_q)),
                               rtol=1e-5)


@pytest.mark.parametrize("clamp", [False, True])
def test_inner_attack_stays_in_the_ball_and_clamps_only_on_request(clamp):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, 4, 25, 1)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(2).normal(size=(300, 6)), jnp.float32)
    cfg = trades.TRADESConfig(epsilon=0.1, step_size=0.05, steps=3, upstream_clamp=clamp)
    x_adv = trades.inner_attack(lambda v: v.reshape(3, -1) @ w, x, jax.random.key(0), cfg)
    if clamp:  # upstream: every iterate is clamped to [0, 1], leaving the ball wherever x is outside [0, 1]
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    else:
        assert float(jnp.max(jnp.abs(x_adv - x))) <= 0.1 + 1e-6
        assert float(x_adv.min()) < 0.0  # negative coordinates survive (§7.32)
        assert float(trades.kl_sum(x.reshape(3, -1) @ w, x_adv.reshape(3, -1) @ w)) > 0


def test_beta_zero_step_is_the_plain_step(data):
    (x, y), _ = data
    config = training.TrainConfig(batch_size=38, learning_rate=0.1, milestones=())
    plain = training.Trainer(_mlp(), config, steps_per_epoch=4)
    zero = training.Trainer(_mlp(), config, 4, loss=trades.trades_loss(trades.TRADESConfig(beta=0.0, steps=2)))
    for step in range(2):
        batch = (jnp.asarray(x[38 * step:38 * (step + 1)]), jnp.asarray(y[38 * step:38 * (step + 1)]))
        loss_plain, _ = plain.train_step(*batch, jax.random.key(step))
        loss_zero, _ = zero.train_step(*batch, jax.random.key(step))
        np.testing.assert_allclose(loss_zero, loss_plain, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(zero.params), jax.tree.leaves(plain.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _success_rate(model, x, y):
    """I-FGSM success on the samples the model classifies correctly (upstream attacks gathered samples)."""
    attack = trades.fgsm.IFGSM(base.Surrogate.from_model(model), epsilon=EPS, iterations=10, step_size=EPS / 4)
    result = attack.run(jax.random.key(0), x, y)
    correct = ~np.asarray(result.fooled_iters[0])
    return float(np.mean(np.asarray(result.success)[correct])), int(correct.sum())


def test_trades_lowers_ifgsm_success(data):
    train_data, test_data = data
    config = training.TrainConfig(epochs=8, batch_size=38, learning_rate=0.1, milestones=(), seed=0)
    plain, _ = training.train(_mlp(), train_data, test_data, config, progress=False)
    saved = []
    defended, history = trades.trades_train(
        _mlp(), train_data, test_data, config,
        trades.TRADESConfig(epsilon=EPS, step_size=EPS / 4, steps=4, eval_every=4, eval_iterations=10,
                            eval_step_size=EPS / 4),
        on_improve=lambda m, rec: saved.append(rec["epoch"]), progress=False)
    assert [r["epoch"] for r in history if "robust_accuracy" in r] == [4, 8] and saved and saved[0] == 4
    plain_rate, plain_n = _success_rate(plain, *test_data)
    trades_rate, trades_n = _success_rate(defended, *test_data)
    print(f"I-FGSM success ε={EPS}: plain {plain_rate:.3f} on {plain_n}, TRADES {trades_rate:.3f} on {trades_n}")
    assert plain_n >= 15 and trades_n >= 10  # both learned something (chance ≈ 4 of 76)
    assert trades_rate < plain_rate
