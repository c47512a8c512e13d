"""Per-architecture upstream recipes: warm-up and cosine schedules, AdamW and label smoothing equal torch/timm."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax import losses, models, recipes, training


def test_every_architecture_has_a_recipe():
    for name in models.ARCHITECTURES:
        assert isinstance(recipes.recipe(name), training.TrainConfig)
    assert recipes.recipe("msg3d_bone") == recipes.recipe("msg3d")
    assert recipes.recipe("stgcn", epochs=3, learning_rate=None).epochs == 3


def test_step_schedule_with_linear_warmup_is_upstream_ctrgcn():
    config = recipes.recipe("ctrgcn")
    schedule = training.learning_rate_schedule(config, steps_per_epoch=4)

    def upstream(epoch):  # CTRGCN.adjustLearningRate
        if epoch < 5:
            return 0.1 * (epoch + 1) / 5
        return 0.1 * 0.1 ** sum(epoch >= s for s in (35, 55))

    for step in range(0, 4 * 70, 3):
        assert float(schedule(step)) == pytest.approx(upstream(step // 4), rel=1e-6)


def test_cosine_schedule_is_timm_per_step():
    config = recipes.recipe("skateformer", epochs=30)
    steps_per_epoch = 7
    schedule = training.learning_rate_schedule(config, steps_per_epoch)
    total, warmup = 30 * steps_per_epoch, 25 * steps_per_epoch

    def timm(t):  # CosineLRScheduler(t_initial=total, lr_min=1e-5, warmup_lr_init=1e-7, warmup_t=warmup)
        if t < warmup:
            return 1e-7 + t * (1e-3 - 1e-7) / warmup
        return 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * t / total))

    for t in range(total):
        assert float(schedule(t)) == pytest.approx(timm(t), rel=1e-5)


def test_adamw_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0, grads = rng.normal(size=(4,)), rng.normal(size=(5, 4))
    config = training.TrainConfig(optimizer="adamw", schedule="step", learning_rate=1e-2, weight_decay=0.1,
                                  milestones=())
    opt = training.make_optimizer(config, steps_per_epoch=5)
    w, state = jnp.asarray(w0), opt.init(jnp.asarray(w0))
    tw = torch.nn.Parameter(torch.tensor(w0))
    topt = torch.optim.AdamW([tw], lr=1e-2, weight_decay=0.1)
    for g in grads:
        tw.grad = torch.tensor(g)
        topt.step()
        updates, state = opt.update(jnp.asarray(g), state, w)
        w = w + updates
    np.testing.assert_allclose(np.asarray(w), tw.detach().numpy(), rtol=1e-6)


def test_label_smoothing_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    logits, labels = rng.normal(size=(6, 9)), rng.integers(0, 9, 6)
    ours = float(losses.cross_entropy(jnp.asarray(logits), jnp.asarray(labels), 0.1).mean())
    theirs = float(torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.tensor(logits), torch.tensor(labels)))
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_bad_recipe_values_are_refused():
    with pytest.raises(ValueError, match="optimizer must be"):
        training.TrainConfig(optimizer="lion")
    with pytest.raises(ValueError, match="schedule must be"):
        training.TrainConfig(schedule="poly")
