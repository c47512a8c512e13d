"""Training recipe: torch-equivalent optimiser, learning on toy data, determinism, checkpoints."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tasar_jax import checkpoints, models, training


def test_optimizer_matches_torch_sgd_nesterov():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0, grads = rng.normal(size=(5,)), rng.normal(size=(6, 5))
    config = training.TrainConfig(learning_rate=0.1, milestones=(1, 2), weight_decay=1e-4)
    opt = training.make_optimizer(config, steps_per_epoch=2)
    w, state = jnp.asarray(w0), opt.init(jnp.asarray(w0))
    tw = torch.nn.Parameter(torch.tensor(w0))
    topt = torch.optim.SGD([tw], lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    for step, g in enumerate(grads):
        for group in topt.param_groups:  # upstream adjustLearningRate, per epoch of 2 steps
            group["lr"] = 0.1 * 0.1 ** sum(step // 2 >= m for m in (1, 2))
        tw.grad = torch.tensor(g)
        topt.step()
        updates, state = opt.update(jnp.asarray(g), state, w)
        w = w + updates
    np.testing.assert_allclose(np.asarray(w), tw.detach().numpy(), rtol=1e-6)


def _toy_data(n, seed):
    """Four classes that differ by the temporal frequency of a joint trajectory."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    t = np.linspace(0, 1, 16)
    x = rng.normal(0, 0.2, (n, 3, 16, 25, 1))
    x += 0.5 * np.sin(2 * np.pi * (labels[:, None] + 1) * t)[:, None, :, None, None]
    return x.astype(np.float32), labels


@pytest.fixture(scope="module")
def toy_run():
    train_data, test_data = _toy_data(96, 0), _toy_data(48, 1)
    config = training.TrainConfig(epochs=3, batch_size=16, learning_rate=0.05, milestones=(2,), seed=3)
    model = models.create("stgcn", "hdm05", width=0.125, num_classes=4, seed=3)
    before = training.accuracy(training.predict(model, test_data[0]), test_data[1])
    saved = []
    best, history = training.train(model, train_data, test_data, config, progress=False,
                                   on_improve=lambda m, rec: saved.append(rec["epoch"]))
    return before, best, history, saved, test_data, config


def test_training_improves_accuracy(toy_run):
    before, best, history, saved, (x, y), _ = toy_run
    after = training.accuracy(training.predict(best, x), y)
    assert after == max(r["test_accuracy"] for r in history)
    assert after >= before + 0.25 and after >= 0.6
    assert history[-1]["loss"] < history[0]["loss"]
    assert [r["learning_rate"] for r in history] == pytest.approx([0.05, 0.05, 0.005])
    assert saved and saved == sorted(saved)


def test_training_is_deterministic(toy_run):
    _, _, history, _, test_data, config = toy_run
    model = models.create("stgcn", "hdm05", width=0.125, num_classes=4, seed=3)
    short = training.TrainConfig(**{**config.__dict__, "epochs": 2})
    _, again = training.train(model, _toy_data(96, 0), test_data, short, progress=False)
    assert again == history[:2]


def test_checkpoint_round_trip(tmp_path, toy_run):
    _, best, _, _, (x, _), _ = toy_run
    path = checkpoints.save(tmp_path / "ck", best, architecture="stgcn", dataset="hdm05", accuracy=0.5)
    restored, meta = checkpoints.load(path)
    assert meta["architecture"] == "stgcn" and meta["config"]["num_classes"] == 4 and meta["accuracy"] == 0.5
    np.testing.assert_array_equal(training.predict(restored, x[:4]), training.predict(best, x[:4]))
    # saving again replaces the checkpoint atomically, leaving no temporary folders
    checkpoints.save(path, best, architecture="stgcn", dataset="hdm05", accuracy=0.7)
    assert checkpoints.read_metadata(path)["accuracy"] == 0.7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    checkpoints.update_metadata(path, note="x")
    assert checkpoints.read_metadata(path)["note"] == "x"


def test_bad_checkpoints(tmp_path, toy_run):
    _, best, _, _, _, _ = toy_run
    with pytest.raises(ValueError, match="no metadata.json"):
        checkpoints.load(tmp_path)
    path = checkpoints.save(tmp_path / "ck", best, architecture="stgcn", dataset="hdm05")
    meta = json.loads((path / "metadata.json").read_text())
    meta["config"]["num_classes"] = 9
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="cannot restore the model state"):
        checkpoints.load(path)
    (path / "metadata.json").write_text("{broken")
    with pytest.raises(ValueError, match="corrupt metadata"):
        checkpoints.load(path)


def test_predict_pads_the_last_batch():
    model = models.create("mlp", "hdm05", hidden=8)
    x = np.random.default_rng(0).normal(size=(5, 3, 60, 25, 1)).astype(np.float32)
    np.testing.assert_allclose(training.predict(model, x, batch_size=2), np.asarray(model(jnp.asarray(x))),
                               rtol=1e-5, atol=1e-6)


def test_an_interrupted_training_resumes_to_the_uninterrupted_result(tmp_path, toy_run, monkeypatch):
    """``resume_file``: the state saved after every epoch lets a killed run continue where it stopped and end
    bit-identical to the uninterrupted one (weights, selection and history); a file of another recipe is refused."""
    _, best, history, _, test_data, config = toy_run
    resume = tmp_path / "progress.npz"
    save = training.save_progress

    def dies_after_epoch_2(done, path):
        save(done, path)
        if len(done.history) == 2:
            raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(training, "save_progress", dies_after_epoch_2)
    fresh = lambda: models.create("stgcn", "hdm05", width=0.125, num_classes=4, seed=3)  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        training.train(fresh(), _toy_data(96, 0), test_data, config, progress=False, resume_file=resume)
    epochs_run = []
    monkeypatch.setattr(training, "save_progress", lambda done, path: (epochs_run.append(len(done.history)),
                                                                       save(done, path)))
    resumed, resumed_history = training.train(fresh(), _toy_data(96, 0), test_data, config, progress=False,
                                              resume_file=resume)
    assert epochs_run == [3] and resumed_history == history  # only the third epoch ran
    for a, b in zip(jax.tree.leaves(nnx.state(resumed)), jax.tree.leaves(nnx.state(best))):
        np.testing.assert_array_equal(a, b)
    other = training.TrainConfig(**{**config.__dict__, "learning_rate": 0.01})
    with pytest.raises(ValueError, match="another recipe"):
        training.train(fresh(), _toy_data(96, 0), test_data, other, progress=False, resume_file=resume)
