"""Benchmark stages before the attacks: data, models (train, assemble or convert), and per surrogate its attack
set, TASAR posterior, motion cache and BA's SWAG moments. Each stage runs the in-memory stages of
``tasar_jax.stages``, writes its artefact once, records it in the run's ``Store`` and hands it on in ``Memory``, so
no stage reloads what an earlier one made (a resumed run loads each file once, when first needed).
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import numpy as np

from tasar_jax import artefacts, checkpoints, models, recipes, stages
from tasar_jax.benchmark.config import BenchmarkConfig, BenchmarkModel
from tasar_jax.benchmark.store import Store, file_digest, identity
from tasar_jax.data import formats, synthetic


class Unavailable(Exception):
    """A stage that cannot run in this installation or for this model (missing module, unsupported pairing).

    Cells depending on it are reported as skipped with the message and retried on the next run."""


class Memory:
    """The run's artefacts in memory, keyed by their file: each is loaded at most once, and one a stage has just
    made is handed on without being read back. Models stay for the run (attacks, targets); data, attack sets,
    posteriors, SWAG moments and motion coefficients are small beside them."""

    def __init__(self, eval_batch_size: int = 256):
        self.eval_batch_size, self._items, self._predictors = eval_batch_size, {}, {}

    def get(self, key, load):
        if key not in self._items:
            self._items[key] = load()
        return self._items[key]

    def keep(self, key, value):
        self._items[key] = value
        return value

    def data(self, path, dataset: str) -> tuple[np.ndarray, np.ndarray]:
        """A dataset file as ``(x, labels)`` in the common layout."""
        return self.get(("data", str(path)), lambda: formats.load_dataset_file(path, dataset))

    def model(self, record: dict):
        """A model stage's eval-mode model; a BEAT-defended one is its frozen base plus the BEAT heads."""
        return self.get(("model", record["dir"], record.get("beat")), lambda: _load_model(record))

    def predictor(self, record: dict):
        """The model's jitted eval-mode logits (one compilation per model and run)."""
        from tasar_jax.evaluation import metrics

        key = (record["dir"], record.get("beat"))
        if key not in self._predictors:
            self._predictors[key] = metrics.Predictor(self.model(record), self.eval_batch_size)
        return self._predictors[key]

    def attack_set(self, gathered: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x, labels, targets)`` of a gather stage."""
        return self.get(("attack_set", gathered["file"]), lambda: load_attack_set(gathered))


def _load_model(record: dict):
    model = checkpoints.load(record["dir"])[0]
    if record.get("beat"):
        from tasar_jax.defences import DefendedModel
        from tasar_jax.posterior import load_posterior

        model = DefendedModel(model, load_posterior(record["beat"])[0][0].heads)
    return model


def data_stage(cfg: BenchmarkConfig, run: pathlib.Path, store: Store) -> dict:
    """Synthetic files written into ``<run>/data`` (seeded), or the configured data root (whose files' content
    digests are among the stage's inputs, so replacing one recomputes everything downstream)."""
    synthetic_data = cfg.data.source == "synthetic"
    root = run / "data" if synthetic_data else pathlib.Path(cfg.data.root)
    files = [artefacts.resolve(root, cfg.dataset, name) for name in (cfg.data.train_file, cfg.data.test_file)]
    inputs = {"data": dataclasses.asdict(cfg.data), "dataset": cfg.dataset, "seed": cfg.seed,
              "generator": synthetic.VERSION if synthetic_data else None}
    if not synthetic_data:
        for path in files:
            if not path.is_file():
                raise FileNotFoundError(f"missing data file {path}")
        inputs["content"] = {path.name: file_digest(path) for path in files}
    done = store.get("data", inputs)
    if done is not None:
        return done
    if synthetic_data:
        synthetic.write_dataset(root, cfg.dataset, cfg.data.train_per_class, cfg.data.test_per_class, cfg.seed,
                                cfg.data.classes)
    return store.put("data", inputs, {"root": str(root), "inputs": inputs}, files=files if synthetic_data else ())


def _split(cfg: BenchmarkConfig, data: dict, memory: Memory, which: str, num_classes: int):
    """The run's train or test file in memory, its labels checked against a model's class count."""
    path = artefacts.resolve(data["root"], cfg.dataset, getattr(cfg.data, f"{which}_file"))
    x, labels = memory.data(path, cfg.dataset)
    formats.validate_labels(labels, x.shape[0], num_classes, str(path))
    return x, labels


def _train_config(entry: BenchmarkModel, arch: str, seed: int):
    train = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.train.items()}
    return recipes.recipe(arch, **{"seed": seed, **train})


def _trained(cfg, entry: BenchmarkModel, arch: str, seed: int, data: dict, memory: Memory, progress: bool, **defence):
    """``stages.train`` on the run's files; returns the selected model and its checkpoint metadata."""
    num_classes = models.config_for(arch, cfg.dataset, **entry.overrides).num_classes
    train_data, test_data = (_split(cfg, data, memory, which, num_classes) for which in ("train", "test"))
    config, kept = _train_config(entry, arch, seed), []
    model, history = stages.train(arch, cfg.dataset, train_data, test_data, config, progress=progress,
                                  on_improve=lambda _, record: kept.append(record), **defence, **entry.overrides)
    best = kept[-1]
    meta = {"accuracy": best["test_accuracy"], "epoch": best["epoch"], "train_config": dataclasses.asdict(config),
            "history": history}
    if defence.get("defence"):
        meta.update(robust_accuracy=best.get("robust_accuracy"), defence=defence["defence"],
                    trades_config=dataclasses.asdict(defence["trades_config"]))
    return model, meta


def model_stage(cfg: BenchmarkConfig, entry: BenchmarkModel, data: dict, run: pathlib.Path, store: Store,
                memory: Memory, *, progress: bool, converter=None) -> dict:
    """Trains (or converts / adopts) one model into ``<run>/models/<name>``, written once; returns its record."""
    inputs = {"model": dataclasses.asdict(entry), "data": identity(data)}
    if entry.checkpoint:  # an outside checkpoint is an input: its content is one of the stage's inputs
        inputs["checkpoint_content"] = [file_digest(p) for p in (entry.checkpoint, entry.bone_checkpoint) if p]
    done = store.get(f"model-{entry.name}", inputs)
    if done is not None:
        return done
    out, started = run / "models" / entry.name, time.time()
    seed = cfg.seed if entry.seed is None else entry.seed
    if entry.checkpoint and (pathlib.Path(entry.checkpoint) / "metadata.json").is_file():
        out = pathlib.Path(entry.checkpoint)  # an existing tasar-jax checkpoint is used in place
        model, meta = checkpoints.load(out)
    else:
        if entry.checkpoint:
            if converter is None:
                raise Unavailable(f"{entry.name}: {entry.checkpoint} is not a tasar-jax checkpoint and no converter "
                                  "was given (run `tasar-jax convert` first, or use `tasar-jax benchmark`)")
            model = converter(entry.arch, cfg.dataset, entry.checkpoint, entry.bone_checkpoint)
            extra = {"source": str(entry.checkpoint)}
        elif models.entry(entry.arch).two_stream:  # upstream's way: the streams trained apart, summed
            trained = {s: _trained(cfg, entry, f"{entry.arch}_{s}", seed, data, memory, progress)
                       for s in ("joint", "bone")}
            model, _ = stages.assemble_two_stream(*(x for s, (m, meta) in trained.items()
                                                    for x in (m, {"architecture": f"{entry.arch}_{s}",
                                                                  "dataset": cfg.dataset})))
            extra = {"streams": {s: meta for s, (_, meta) in trained.items()}}
        else:
            defence = {}
            if entry.defence == "trades":
                from tasar_jax.defences import TRADESConfig

                defence = dict(defence="trades", trades_config=TRADESConfig(**entry.defence_config))
            model, extra = _trained(cfg, entry, entry.arch, seed, data, memory, progress, **defence)
        checkpoints.save(out, model, architecture=entry.arch, dataset=cfg.dataset,
                         num_parameters=models.num_parameters(model), **extra)
        meta = checkpoints.read_metadata(out)
    if (meta["architecture"], meta["dataset"]) != (entry.arch, cfg.dataset):
        raise ValueError(f"model {entry.name}: checkpoint {out} holds {meta['architecture']} trained on "
                         f"{meta['dataset']}, but the config asks for {entry.arch} on {cfg.dataset}")
    record = {"dir": str(out), "beat": None}
    memory.keep(("model", str(out), None), model)
    beat_heads = None
    if entry.defence == "beat":
        from tasar_jax import defences
        from tasar_jax.defences import BEATConfig

        settings = {"seed": seed, **entry.defence_config}
        num_heads = int(settings.pop("num_heads", 5))
        config = BEATConfig(**settings)
        train_data, test_data = (_split(cfg, data, memory, which, meta["config"]["num_classes"])
                                 for which in ("train", "test"))
        result = stages.beat(model, cfg.dataset, train_data, test_data, config, num_heads=num_heads,
                             progress=progress)
        beat_heads = str(run / "models" / f"{entry.name}_beat.npz")
        defences.save_heads(beat_heads, result.heads, best_accuracy=[float(a) for a in result.best_accuracy],
                            dataset=cfg.dataset, surrogate_checkpoint=str(out), config=dataclasses.asdict(config))
        model = memory.keep(("model", str(out), beat_heads), defences.DefendedModel(model, result.heads))
    x_test, y_test = _split(cfg, data, memory, "test", meta["config"]["num_classes"])
    return store.put(f"model-{entry.name}", inputs, {
        **record, "beat": beat_heads, "defence": entry.defence, "arch": meta["architecture"],
        "accuracy": stages.test(model, x_test, y_test)["accuracy"],
        "num_parameters": meta.get("num_parameters"), "epoch": meta.get("epoch"), "seconds": time.time() - started,
        "inputs": inputs}, files=[out] + ([beat_heads] if beat_heads else []))


def target_labels(labels: np.ndarray, classes: np.ndarray, seed: int) -> np.ndarray:
    """Targets for targeted attacks: per sample a uniformly drawn class ≠ its label among ``classes`` (the classes
    present in the training file), keyed by the seed and the sample's index (docs/decisions.md E5)."""
    classes = np.unique(classes)
    out = np.empty_like(labels)
    for i, label in enumerate(labels):
        others = classes[classes != label]
        out[i] = np.random.default_rng([seed, 17, i]).choice(others)
    return out


def gather_stage(cfg: BenchmarkConfig, name: str, model: dict, data: dict, run: pathlib.Path, store: Store,
                 memory: Memory) -> dict:
    """The surrogate's correctly classified test samples (upstream ``gatherCorrectPrediction``), the first
    ``max(samples)`` of them kept as the attack set, plus target labels: ``<run>/surrogates/<name>/attack_set.npz``."""
    samples = [a.samples for a in cfg.attacks]
    keep = None if any(s is None for s in samples) else max(samples)
    inputs = {"model": identity(model), "keep": keep, "seed": cfg.seed}
    done = store.get(f"gather-{name}", inputs)
    if done is not None:
        return done
    surrogate = memory.model(model)
    num_classes = surrogate.config.num_classes
    x, labels = _split(cfg, data, memory, "test", num_classes)
    mask = stages.correctly_classified(surrogate, x, labels, f"the test set (by surrogate {name})")
    x, labels = x[mask][:keep], labels[mask][:keep]
    targets = target_labels(labels, _split(cfg, data, memory, "train", num_classes)[1], cfg.seed)
    path = run / "surrogates" / name / "attack_set.npz"
    with formats.atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, x=x, labels=labels, targets=targets)
    memory.keep(("attack_set", str(path)), (x, labels, targets))
    return store.put(f"gather-{name}", inputs, {"file": str(path), "num_samples": int(len(labels)),
                                                "gathered": int(mask.sum()), "of": int(mask.size),
                                                "inputs": inputs}, files=[path])


def load_attack_set(gathered: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(gathered["file"]) as f:
        return f["x"], f["labels"], f["targets"]


def posterior_stage(cfg: BenchmarkConfig, name: str, model: dict, data: dict, run: pathlib.Path, store: Store,
                    memory: Memory, *, progress: bool) -> dict:
    """TASAR's post-trained appended heads (``stages.posttrain``) for surrogate ``name`` (per stream, as a
    (joint, bone) pair, for the two-stream ensembles)."""
    from tasar_jax import posterior as post

    inputs = {"model": identity(model), "posttrain": dict(cfg.posttrain), "seed": cfg.seed}
    done = store.get(f"posterior-{name}", inputs)
    if done is not None:
        return done
    settings = dict(cfg.posttrain)
    num_heads = int(settings.pop("num_heads", 3))
    config = post.PostTrainConfig(**settings)
    surrogate = memory.model(model)
    train_data, test_data = (_split(cfg, data, memory, which, surrogate.config.num_classes)
                             for which in ("train", "test"))
    result = stages.posttrain(surrogate, train_data, test_data, config, num_heads=num_heads, seed=cfg.seed,
                              progress=progress)
    path = run / "surrogates" / name / "posterior.npz"
    artefacts.save_posterior(path, result, cfg.dataset, model["dir"], config, cfg.seed)
    memory.keep(("posterior", str(path)), result.posterior)
    return store.put(f"posterior-{name}", inputs, {
        "file": str(path), "head_accuracy": [a for accs in result.head_accuracy for a in accs],
        "appended_accuracy": result.appended_accuracy}, files=[path])


def motion_stage(cfg: BenchmarkConfig, name: str, gathered: dict, run: pathlib.Path, store: Store, memory: Memory,
                 *, progress: bool) -> dict:
    """tvAR motion coefficients (AR1/AR2) of the attack set, cached beside it."""
    from tasar_jax import motion

    inputs = {"gathered": identity(gathered), "motion": dict(cfg.motion)}
    done = store.get(f"motion-{name}", inputs)
    if done is not None:
        return done
    x, _, _ = memory.attack_set(gathered)
    path, started = run / "surrogates" / name / "motion.npz", time.time()
    ar1, ar2 = motion.cached_motion(x, path, progress=progress, **cfg.motion)
    memory.keep(("motion", str(path)), {"ar1": ar1, "ar2": ar2})
    return store.put(f"motion-{name}", inputs, {"file": str(path), "seconds": time.time() - started}, files=[path])


def swag_stage(cfg: BenchmarkConfig, name: str, model: dict, data: dict, run: pathlib.Path, store: Store,
               memory: Memory, *, progress: bool) -> dict:
    """BA's SWAG fine-tuning of the whole surrogate (``posterior.full_swag``): moments and the fine-tuned model.

    BA attacks with the fine-tuned model's batch-norm statistics (decisions B25, E8); ``[swag]
    upstream_statistics = true`` keeps the original surrogate's, as upstream's BA does (§7.27).
    """
    import jax

    from tasar_jax.posterior import full_swag

    inputs = {"model": identity(model), "swag": dict(cfg.swag), "seed": cfg.seed}
    done = store.get(f"swag-{name}", inputs)
    if done is not None:
        return done
    settings = {"seed": cfg.seed, **cfg.swag}
    upstream_statistics = bool(settings.pop("upstream_statistics", False))
    config, started = full_swag.FinetuneConfig(**settings), time.time()
    surrogate = memory.model(model)
    x, y = _split(cfg, data, memory, "train", surrogate.config.num_classes)
    tuned, moments = full_swag.finetune(surrogate, x, y, config, jax.random.key(config.seed), progress=progress)
    result = artefacts.save_swag(run / "surrogates" / name, tuned, moments, surrogate=model["dir"],
                                architecture=model["arch"], dataset=cfg.dataset, config=config,
                                upstream_statistics=upstream_statistics)
    memory.keep(("swag", result["file"]), (moments, surrogate if upstream_statistics else tuned))
    return store.put(f"swag-{name}", inputs, {**result, "seconds": time.time() - started},
                     files=[result["file"], result["model_dir"]])
