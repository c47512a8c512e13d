"""Data parallelism and bounded memory (``tasar_jax.scale``): the same adversarial examples on 1 device, on 8 fake
CPU devices, and across 2 processes joined by ``jax.distributed`` on 127.0.0.1; chunking from a memory budget."""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax import scale
from tasar_jax.attacks import base, registry

WORKER = pathlib.Path(__file__).with_name("scale_worker.py")
ROOT = WORKER.parents[1]


def _worker(data, out, *args):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, str(WORKER), str(data), str(out), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, timeout=900):
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Worker results: 8 CPU devices in one process, with a mesh of all 8 and one of a single device; and
    2 processes with 8 devices each joined by ``jax.distributed`` (run side by side). XLA:CPU's numerics depend
    on the number of CPU devices a process has (decision S2), so every process has 8."""
    tmp = tmp_path_factory.mktemp("scale")
    data = tmp / "x.npy"
    # 33 samples: ≥ 2 per device of the 16, and a padded last chunk
    np.save(data, np.random.default_rng(0).uniform(-0.5, 0.5, (33, 3, 8, 25, 1)).astype(np.float32))
    port = _free_port()
    procs = [_worker(data, tmp / "single.npz", "--devices", 8, "--also-one-device")]
    procs += [_worker(data, tmp / "multi.npz", "--devices", 8, "--coordinator", f"127.0.0.1:{port}",
                      "--processes", 2, "--rank", rank) for rank in (0, 1)]
    try:
        for proc in procs:
            _finish(proc)
    finally:  # a failed process must not leave its partner waiting for the coordinator
        for proc in procs:
            proc.kill()
    single, multi = (dict(np.load(tmp / f"{name}.npz")) for name in ("single", "multi"))
    one = {k[4:]: v for k, v in single.items() if k.startswith("one_")}
    eight = {k: v for k, v in single.items() if not k.startswith("one_")}
    return {"one": one, "eight": eight, "multi": multi}


@pytest.mark.parametrize("other", ["eight", "multi"])
def test_adversarial_examples_identical_across_devices_and_processes(runs, other):
    one, many = runs["one"], runs[other]
    assert int(one["devices"]) == 1 and int(many["devices"]) == (8 if other == "eight" else 16)
    for name in ("dim", "tasar"):
        assert one[name].shape == (33, 3, 8, 25, 1)
        np.testing.assert_array_equal(many[name], one[name], err_msg=name)
        np.testing.assert_array_equal(many[f"{name}_rates"], one[f"{name}_rates"], err_msg=name)
    np.testing.assert_array_equal(many["logits"], one["logits"])


def _apply(p, x):
    return jnp.tanh(x.reshape(x.shape[0], -1) @ p["w"]) @ p["v"]


def _small_attack(name="mifgsm"):
    rng = np.random.default_rng(0)
    surrogate = base.Surrogate(_apply, {"w": jnp.asarray(rng.normal(0, 0.3, (3 * 8 * 25, 16)), jnp.float32),
                                        "v": jnp.asarray(rng.normal(0, 1.0, (16, 5)), jnp.float32)})
    return registry.constructor(name)(surrogate, iterations=3)


def _set(n=23):
    rng = np.random.default_rng(1)
    return rng.uniform(-0.5, 0.5, (n, 3, 8, 25, 1)).astype(np.float32), rng.integers(0, 5, n).astype(np.int32)


@pytest.mark.parametrize("name", ["mifgsm", "dim"])
def test_memory_budget_chunks_give_the_results_of_one_batch(name):
    atk, (x, labels) = _small_attack(name), _set()
    one_batch = atk.run(jax.random.key(2), x, labels)
    chunked = base.run_in_batches(atk, jax.random.key(2), x, labels, memory_budget="200K")
    chunks = scale.per_device_batch_for_budget(
        lambda c, i: atk.run(jax.random.key(2), *c, indices=i).x_adv, (x, labels), scale.parse_bytes("200K"))
    assert 1 < chunks < 23  # the budget really splits the set
    np.testing.assert_allclose(chunked.x_adv, one_batch.x_adv, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(chunked.predictions, one_batch.predictions)
    np.testing.assert_allclose(chunked.fool_rate_per_iteration, np.mean(one_batch.fooled_iters, axis=1))
    again = base.run_in_batches(atk, jax.random.key(2), x, labels, chunks)
    np.testing.assert_array_equal(again.x_adv, chunked.x_adv)


def test_budget_estimate_grows_with_the_budget_and_rejects_too_little():
    atk, (x, labels) = _small_attack(), _set()
    fn = lambda c, i: atk.run(jax.random.key(0), *c, indices=i).x_adv  # noqa: E731
    small, large = (scale.per_device_batch_for_budget(fn, (x, labels), b) for b in (2**17, 2**20))
    assert 1 <= small < large
    assert scale.per_device_batch_for_budget(fn, (x, labels), 2**30, limit=23) == 23
    with pytest.raises(ValueError, match="memory budget"):
        scale.per_device_batch_for_budget(fn, (x, labels), 100)


@pytest.mark.parametrize("text, expected", [("512M", 512 * 2**20), ("4G", 4 * 2**30), ("1.5GiB", 3 * 2**29),
                                            ("100", 100), (2048, 2048)])
def test_parse_bytes(text, expected):
    assert scale.parse_bytes(text) == expected


def test_bad_inputs_are_named():
    x, labels = _set(4)
    with pytest.raises(ValueError, match="NaN"):
        base.run_in_batches(_small_attack(), jax.random.key(0), np.where(np.arange(4)[:, None, None, None, None] == 2,
                                                                        np.nan, x), labels, 2)
    with pytest.raises(ValueError, match="labels"):
        base.run_in_batches(_small_attack(), jax.random.key(0), x, labels[:3], 2)
    with pytest.raises(ValueError, match="memory size"):
        scale.parse_bytes("lots")
    with pytest.raises(ValueError, match="disagree"):
        scale.map_in_chunks(lambda c, i: c, (np.zeros((3, 2)), np.zeros(4)), per_device_batch=2)
    with pytest.raises(ValueError, match="no samples"):
        scale.map_in_chunks(lambda c, i: c, np.zeros((0, 2)), per_device_batch=2)


def test_predictor_with_a_memory_budget_gives_the_same_logits():
    from tasar_jax import models
    from tasar_jax.evaluation import metrics

    model = models.create("stgcn", "hdm05", num_classes=5, width=0.125)
    x, _ = _set(9)
    budgeted = metrics.Predictor(model, memory_budget="300K")
    np.testing.assert_allclose(budgeted(x), metrics.Predictor(model)(x), rtol=0, atol=1e-5)
    assert 1 <= budgeted.batch_size < 9
