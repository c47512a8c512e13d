"""Replacing a checkpoint never leaves the path without a loadable one (docs/decisions.md T9): a writer saving two
models in turn is killed at random moments, and every time the path holds one of the two, complete."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
from flax import nnx

from tasar_jax import checkpoints, models

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _params(model):
    return [np.asarray(v) for v in jax.tree.leaves(nnx.state(model, nnx.Param))]


def test_replacing_a_checkpoint_leaves_the_old_or_the_new_one_when_killed(tmp_path):
    path = tmp_path / "ck"
    expected = {s: _params(models.create("mlp", "hdm05", hidden=16, num_classes=4, seed=s)) for s in (0, 1)}
    rng = np.random.default_rng(0)
    for attempt in range(6):
        writer = subprocess.Popen([sys.executable, str(ROOT / "tests" / "checkpoint_writer.py"), str(path)],
                                  stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            assert writer.stdout.readline().strip() == "ready"
            time.sleep(float(rng.uniform(0.05, 1.0)))  # somewhere inside a later save
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        model, meta = checkpoints.load(path)
        for got, want in zip(_params(model), expected[meta["seed"]], strict=True):
            np.testing.assert_array_equal(got, want)
    # the next save clears what killed writers left inside the directory
    checkpoints.save(path, models.create("mlp", "hdm05", hidden=16, num_classes=4, seed=0), architecture="mlp",
                     dataset="hdm05", seed=0)
    meta = checkpoints.read_metadata(path)
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == sorted(["metadata.json",
                                                                                          meta["state"]])


def test_a_replaced_checkpoint_switches_state_folders(tmp_path):
    model = models.create("mlp", "hdm05", hidden=16, num_classes=4, seed=0)
    path = checkpoints.save(tmp_path / "ck", model, architecture="mlp", dataset="hdm05")
    assert checkpoints.read_metadata(path)["state"] == "state"
    checkpoints.save(path, model, architecture="mlp", dataset="hdm05")
    state = checkpoints.read_metadata(path)["state"]
    assert state.startswith("state-") and sorted(p.name for p in path.iterdir()) == ["metadata.json", state]
    checkpoints.load(path)
