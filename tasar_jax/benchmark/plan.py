"""``tasar-jax benchmark CONFIG --dry-run``: the stage plan of a config and an estimate of its time on this machine.

Nothing is trained or attacked. For every distinct model the config uses, a randomly initialised copy is timed on
this machine (after compilation, the median of a few calls): a training step per sample, an eval forward per
sample and an input gradient (one forward and one backward, what an attack iteration costs) per sample. Each
stage's work is then counted from the config and priced with those numbers:

* training: epochs × training clips × step, plus one test pass per epoch (two-stream models: both streams);
* gathering and post-training: forward passes over the test (and training) clips;
* motion: a tvAR fit of one clip, timed, × the attacked clips;
* BA's SWAG fine-tuning: its epochs × training clips × the surrogate's step;
* attacks: attacked clips × iterations × surrogate passes per iteration (``surrogate_passes``) × input gradient;
* evaluation: clean and adversarial forward passes of every attack set on every target.

Compilation, data generation and Python overheads are not counted, so treat the total as a lower bound on a
quiet machine (anything else running slows every stage).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tasar_jax import models
from tasar_jax.attacks import base, build
from tasar_jax.benchmark.config import BenchmarkAttack, BenchmarkConfig, BenchmarkModel
from tasar_jax.data import layouts, synthetic


class Throughput(NamedTuple):
    """Seconds per sample on this machine: a training step, an eval forward, an input gradient."""

    train_step: float
    forward: float
    input_gradient: float


def _median_seconds(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(arch: str, dataset: str, overrides: dict, train_batch: int, attack_batch: int, eval_batch: int,
            repeats: int = 3) -> Throughput:
    """Times a randomly initialised ``arch`` (weights do not change the cost) on random clips of ``dataset``."""
    from flax import nnx

    from tasar_jax import recipes, training

    layout = layouts.get_dataset(dataset)
    shape = (3, layouts.NUM_FRAMES, layouts.NUM_JOINTS, layout.num_persons)
    rng = np.random.default_rng(0)
    clips = lambda n: jnp.asarray(rng.normal(0, 0.3, (n,) + shape), jnp.float32)  # noqa: E731
    model = models.create(arch, dataset, seed=0, **overrides)
    trainer = training.Trainer(model, recipes.recipe(arch, batch_size=train_batch), steps_per_epoch=1)
    x_train, labels = clips(train_batch), jnp.zeros(train_batch, jnp.int32)
    step = _median_seconds(lambda: trainer.train_step(x_train, labels, jax.random.key(0)), repeats)
    model = models.create(arch, dataset, seed=0, **overrides)  # the trainer donated the first one's buffers
    model.eval()
    graph, state = nnx.split(model)
    logits = jax.jit(lambda s, x: nnx.merge(graph, s)(x))
    x_eval = clips(eval_batch)
    forward = _median_seconds(lambda: logits(state, x_eval), repeats)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(jax.nn.log_softmax(nnx.merge(graph, state)(x))[:, 0])))
    x_attack = clips(attack_batch)
    backward = _median_seconds(lambda: grad(x_attack), repeats)
    return Throughput(step / train_batch, forward / eval_batch, backward / attack_batch)


def _settings(attack: BenchmarkAttack) -> dict:
    """The settings ``attack`` runs with: its own over the entry's preset and defaults (``attacks.build.defaults``;
    for a plugin whose module is not installed, the settings every attack has)."""
    try:
        defaults = build.defaults(attack.method)
    except (ImportError, AttributeError):
        defaults = vars(base.AttackConfig())
    return {**defaults, **build.settings(attack.method, attack.hyper)}


def surrogate_passes(attack: BenchmarkAttack, surrogate: str, cfg: BenchmarkConfig) -> dict[str, float]:
    """Input gradients per attacked clip and iteration, per model: ``{model name: passes}``.

    One for the single-model attacks and TASAR (its posterior draws share one pass, reference.md §8), ``ig_steps``
    for MIG, ``n_models`` SWAG draws for BA, one per member for the ensemble, and for SVRE one per member at the
    outer iterate plus one per member at each of its ``inner_steps`` (default 4 × members) inner iterates.
    """
    method, hyper = attack.method, _settings(attack)
    members = list(attack.members or cfg.surrogates)
    if method == "mig":
        return {surrogate: float(hyper["ig_steps"])}
    if method == "ba":
        return {surrogate: float(hyper["n_models"])}
    if method == "ensemble":
        return {m: 1.0 for m in members}
    if method == "svre":  # every member at the outer iterate; at each inner iterate the drawn one (B18)
        inner = hyper.get("inner_steps") or 4 * len(members)
        per_member = inner if not hyper["shared_draws"] else inner / len(members)  # expected draws
        return {m: 1.0 + per_member for m in members}
    return {surrogate: 1.0}


def _split_counts(cfg: BenchmarkConfig) -> tuple[int, int]:
    """(training clips, test clips) the config uses."""
    if cfg.data.source == "synthetic":
        classes = synthetic.parse_classes(cfg.data.classes, cfg.dataset)
        k = layouts.get_dataset(cfg.dataset).num_classes if classes is None else len(classes)
        return cfg.data.train_per_class * k, cfg.data.test_per_class * k
    from tasar_jax import artefacts

    sizes = []
    for name in (cfg.data.train_file, cfg.data.test_file):
        with np.load(artefacts.resolve(cfg.data.root, cfg.dataset, name)) as f:
            sizes.append(int(f["classes"].shape[0]))
    return sizes[0], sizes[1]


def _streams(entry: BenchmarkModel) -> list[tuple[str, dict]]:
    if models.entry(entry.arch).two_stream:
        return [(f"{entry.arch}_{s}", dict(entry.overrides)) for s in ("joint", "bone")]
    return [(entry.arch, dict(entry.overrides))]


def _motion_seconds_per_clip(cfg: BenchmarkConfig) -> float:
    from tasar_jax import motion

    x = synthetic.generate(cfg.dataset, 1, cfg.seed, "test", classes=[0])[0].astype(np.float64)
    settings = {k: v for k, v in cfg.motion.items() if k in ("kernel", "bandwidth")}
    times = []
    for clip in (x, x + 1e-3):  # the first call includes compilation
        start = time.perf_counter()
        motion.motion_arrays(clip, **settings)
        times.append(time.perf_counter() - start)
    return min(times)


def plan(cfg: BenchmarkConfig, repeats: int = 3) -> list[dict]:
    """One row per stage: ``{"stage", "work", "seconds"}`` (seconds estimated as the module docstring says)."""
    n_train, n_test = _split_counts(cfg)
    speed: dict[str, Throughput] = {}
    used = list(dict.fromkeys([*cfg.surrogates, *cfg.targets, *(m for a in cfg.attacks for m in a.members)]))
    for name in used:
        entry = cfg.models[name]
        batch = int(entry.train.get("batch_size", 32))
        attack_batch = max((a.batch_size for a in cfg.attacks), default=16)
        parts = [measure(arch, cfg.dataset, over, batch, attack_batch, min(cfg.eval_batch_size, 64), repeats)
                 for arch, over in _streams(entry)]
        speed[name] = Throughput(*(sum(p[i] for p in parts) for i in range(3)))
    rows = []
    for name in used:
        entry, s = cfg.models[name], speed[name]
        if entry.checkpoint:
            rows.append({"stage": f"model {name}", "work": f"load {entry.checkpoint}", "seconds": 0.0})
            continue
        epochs = int(entry.train.get("epochs", 0) or 0)
        rows.append({"stage": f"model {name}", "work": f"train {epochs} epochs × {n_train} clips",
                     "seconds": epochs * (n_train * s.train_step + n_test * s.forward)})
    needs = {n for a in cfg.attacks for n in build.needs(a.method, a.hyper)}
    temporal = "motion" in needs
    samples = min(n_test, max((a.samples or n_test) for a in cfg.attacks)) if cfg.attacks else 0
    motion_clip = _motion_seconds_per_clip(cfg) if temporal else 0.0
    for name in cfg.surrogates:
        s = speed[name]
        rows.append({"stage": f"gather {name}", "work": f"{n_test} test clips", "seconds": n_test * s.forward})
        if "posterior" in needs:
            rows.append({"stage": f"posterior {name}", "work": f"logits of {n_train + n_test} clips, heads",
                         "seconds": (n_train + n_test) * s.forward})
        if temporal:
            rows.append({"stage": f"motion {name}", "work": f"tvAR of ≤ {samples} clips",
                         "seconds": samples * motion_clip})
        if "swag" in needs:
            epochs = int(cfg.swag.get("epochs", 20))
            rows.append({"stage": f"swag {name}", "work": f"{epochs} epochs × {n_train} clips",
                         "seconds": epochs * n_train * s.train_step})
    for surrogate in cfg.surrogates:
        for attack in cfg.attacks:
            if attack.surrogates and surrogate not in attack.surrogates:
                continue
            n = min(attack.samples or n_test, n_test)
            iterations = int(_settings(attack)["iterations"])
            passes = surrogate_passes(attack, surrogate, cfg)
            attack_s = n * iterations * sum(p * speed[m].input_gradient for m, p in passes.items())
            eval_s = 2 * n * sum(speed[t].forward for t in cfg.targets)
            rows.append({"stage": f"attack {surrogate} / {attack.name}",
                         "work": f"≤ {n} clips × {iterations} it. × {sum(passes.values()):g} passes",
                         "seconds": attack_s + eval_s})
    return rows


def format_seconds(seconds: float) -> str:
    if math.isnan(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
