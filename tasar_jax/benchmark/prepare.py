"""Benchmark stages before the attacks: data, models (train, assemble or convert), and per surrogate its gathered
set, TASAR posterior, motion cache and BA's SWAG moments. Each stage is recorded in the run's ``Store``.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import numpy as np

from tasar_jax import checkpoints, models, pipeline, recipes
from tasar_jax.benchmark.config import BenchmarkConfig, ModelSpec
from tasar_jax.benchmark.store import Store, file_digest, identity
from tasar_jax.data import formats, synthetic


class Unavailable(Exception):
    """A stage that cannot run in this installation or for this model (missing module, unsupported pairing).

    Cells depending on it are reported as skipped with the message and retried on the next run."""


def data_stage(cfg: BenchmarkConfig, run: pathlib.Path, store: Store) -> dict:
    """Synthetic files written into ``<run>/data`` (seeded), or the configured data root (whose files' content
    digests are part of the spec, so replacing one recomputes everything downstream)."""
    synthetic_data = cfg.data.source == "synthetic"
    root = run / "data" if synthetic_data else pathlib.Path(cfg.data.root)
    files = [pipeline.resolve(root, cfg.dataset, name) for name in (cfg.data.train_file, cfg.data.test_file)]
    spec = {"data": dataclasses.asdict(cfg.data), "dataset": cfg.dataset, "seed": cfg.seed,
            "generator": synthetic.VERSION if synthetic_data else None}
    if not synthetic_data:
        for path in files:
            if not path.is_file():
                raise FileNotFoundError(f"missing data file {path}")
        spec["content"] = {path.name: file_digest(path) for path in files}
    done = store.get("data", spec)
    if done is not None:
        return done
    if synthetic_data:
        synthetic.write_dataset(root, cfg.dataset, cfg.data.train_per_class, cfg.data.test_per_class, cfg.seed,
                                cfg.data.classes)
    return store.put("data", spec, {"root": str(root), "spec": spec}, files=files if synthetic_data else ())


def _train_config(spec: ModelSpec, arch: str, seed: int):
    train = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.train.items()}
    return recipes.recipe(arch, **{"seed": seed, **train})


def model_stage(cfg: BenchmarkConfig, spec: ModelSpec, data: dict, run: pathlib.Path, store: Store, *,
                progress: bool, converter=None) -> dict:
    """Trains (or converts / adopts) one model into ``<run>/models/<name>``; returns its record."""
    stage_spec = {"model": dataclasses.asdict(spec), "data": identity(data)}
    if spec.checkpoint:  # an outside checkpoint is an input: its content is part of the spec
        stage_spec["checkpoint_content"] = [file_digest(p) for p in (spec.checkpoint, spec.bone_checkpoint) if p]
    done = store.get(f"model-{spec.name}", stage_spec)
    if done is not None:
        return done
    out, root, started = run / "models" / spec.name, data["root"], time.time()
    seed = cfg.seed if spec.seed is None else spec.seed
    train_kw = dict(train_file=cfg.data.train_file, test_file=cfg.data.test_file, progress=progress)
    if spec.checkpoint and (pathlib.Path(spec.checkpoint) / "metadata.json").is_file():
        out = pathlib.Path(spec.checkpoint)  # an existing tasar-jax checkpoint is used in place
    elif spec.checkpoint:
        if converter is None:
            raise Unavailable(f"{spec.name}: {spec.checkpoint} is not a tasar-jax checkpoint and no converter "
                              "was given (run `tasar-jax convert` first, or use `tasar-jax benchmark`)")
        model = converter(spec.arch, cfg.dataset, spec.checkpoint, spec.bone_checkpoint)
        checkpoints.save(out, model, architecture=spec.arch, dataset=cfg.dataset, source=str(spec.checkpoint),
                         num_parameters=models.num_parameters(model))
    elif models.entry(spec.arch).two_stream:
        dirs = []
        for stream in ("joint", "bone"):
            arch = f"{spec.arch}_{stream}"
            dirs.append(run / "models" / f"{spec.name}_{stream}")
            pipeline.train_classifier(arch, cfg.dataset, root, dirs[-1], train_config=_train_config(spec, arch, seed),
                                      **train_kw, **spec.overrides)
        pipeline.assemble_two_stream(*dirs, out)
    else:
        trades = {}
        if spec.defence == "trades":
            from tasar_jax.defences import TRADESConfig

            trades = dict(defence="trades", trades_config=TRADESConfig(**spec.defence_config))
        pipeline.train_classifier(spec.arch, cfg.dataset, root, out, train_config=_train_config(spec, spec.arch, seed),
                                  **trades, **train_kw, **spec.overrides)
    meta = checkpoints.read_metadata(out)
    if (meta["architecture"], meta["dataset"]) != (spec.arch, cfg.dataset):
        raise ValueError(f"model {spec.name}: checkpoint {out} holds {meta['architecture']} trained on "
                         f"{meta['dataset']}, but the config asks for {spec.arch} on {cfg.dataset}")
    tested = pipeline.test_classifier(out, root, test_file=cfg.data.test_file)
    beat_heads = None
    if spec.defence == "beat":
        from tasar_jax.defences import BEATConfig

        settings = {"seed": seed, **spec.defence_config}
        num_heads = int(settings.pop("num_heads", 5))
        beat_heads = pipeline.beat(out, root, run / "models" / f"{spec.name}_beat.npz", config=BEATConfig(**settings),
                                   num_heads=num_heads, train_file=cfg.data.train_file,
                                   test_file=cfg.data.test_file, progress=progress)["file"]
        tested = _defended_accuracy(out, beat_heads, root, cfg)
    return store.put(f"model-{spec.name}", stage_spec, {
        "dir": str(out), "beat": beat_heads, "defence": spec.defence, "arch": meta["architecture"],
        "accuracy": tested["accuracy"],
        "num_parameters": meta.get("num_parameters"), "epoch": meta.get("epoch"), "seconds": time.time() - started,
        "spec": stage_spec}, files=[out] + ([beat_heads] if beat_heads else []))


def _defended_accuracy(model_dir, heads_file, root, cfg: BenchmarkConfig) -> dict:
    """Test accuracy of a BEAT-defended model (the base plus its heads), as ``pipeline.test_classifier``'s dict."""
    from tasar_jax import training
    from tasar_jax.defences import DefendedModel
    from tasar_jax.posterior import load_posterior

    model, meta = checkpoints.load(model_dir)
    x, y = pipeline.load_for_model(meta, pipeline.resolve(root, cfg.dataset, cfg.data.test_file))
    defended = DefendedModel(model, load_posterior(heads_file)[0][0].heads)
    return {"accuracy": float(np.mean(np.argmax(training.predict(defended, x), axis=-1) == y))}


def target_labels(labels: np.ndarray, classes: np.ndarray, seed: int) -> np.ndarray:
    """Targets for targeted attacks: per sample a uniformly drawn class ≠ its label among ``classes`` (the classes
    present in the training file), keyed by the seed and the sample's index (docs/decisions.md E5)."""
    classes = np.unique(classes)
    out = np.empty_like(labels)
    for i, label in enumerate(labels):
        others = classes[classes != label]
        out[i] = np.random.default_rng([seed, 17, i]).choice(others)
    return out


def gather_stage(cfg: BenchmarkConfig, name: str, model: dict, data: dict, run: pathlib.Path, store: Store) -> dict:
    """The surrogate's correctly classified test samples (upstream ``gatherCorrectPrediction``), the first
    ``max(samples)`` of them kept as the attack set, plus target labels."""
    samples = [a.samples for a in cfg.attacks]
    keep = None if any(s is None for s in samples) else max(samples)
    spec = {"model": identity(model), "keep": keep, "seed": cfg.seed}
    done = store.get(f"gather-{name}", spec)
    if done is not None:
        return done
    folder = run / "surrogates" / name
    gathered = pipeline.gather_correct(model["dir"], data["root"], folder / pipeline.GATHER_FILE,
                                       test_file=cfg.data.test_file)
    meta = checkpoints.read_metadata(model["dir"])
    x, labels = pipeline.load_for_model(meta, gathered["file"])
    x, labels = x[:keep], labels[:keep]
    _, train_labels = pipeline.load_for_model(meta, pipeline.resolve(data["root"], cfg.dataset, cfg.data.train_file))
    path = folder / "attack_set.npz"
    with formats.atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, x=x, labels=labels, targets=target_labels(labels, train_labels, cfg.seed))
    return store.put(f"gather-{name}", spec, {"file": str(path), "num_samples": int(len(labels)),
                                              "gathered": gathered["num_samples"], "of": gathered["of"],
                                              "spec": spec}, files=[path])


def load_attack_set(gathered: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(gathered["file"]) as f:
        return f["x"], f["labels"], f["targets"]


def posterior_stage(cfg: BenchmarkConfig, name: str, model: dict, data: dict, run: pathlib.Path, store: Store, *,
                    progress: bool) -> dict:
    """TASAR's post-trained appended heads (``pipeline.posttrain``) for surrogate ``name`` (per stream, as a
    (joint, bone) pair, for the two-stream ensembles)."""
    from tasar_jax import posterior as post

    spec = {"model": identity(model), "posttrain": dict(cfg.posttrain), "seed": cfg.seed}
    done = store.get(f"posterior-{name}", spec)
    if done is not None:
        return done
    settings = dict(cfg.posttrain)
    num_heads = int(settings.pop("num_heads", 3))
    path = run / "surrogates" / name / "posterior.npz"
    result = pipeline.posttrain(model["dir"], data["root"], path, config=post.PostTrainConfig(**settings),
                                num_heads=num_heads, seed=cfg.seed, train_file=cfg.data.train_file,
                                test_file=cfg.data.test_file, progress=progress)
    return store.put(f"posterior-{name}", spec, {"file": str(path), "head_accuracy": result["head_accuracy"],
                                                 "appended_accuracy": result["appended_accuracy"]}, files=[path])


def motion_stage(cfg: BenchmarkConfig, name: str, gathered: dict, run: pathlib.Path, store: Store, *,
                 progress: bool) -> dict:
    """tvAR motion coefficients (AR1/AR2) of the attack set, cached beside it."""
    from tasar_jax import motion

    spec = {"gathered": identity(gathered), "motion": dict(cfg.motion)}
    done = store.get(f"motion-{name}", spec)
    if done is not None:
        return done
    x, _, _ = load_attack_set(gathered)
    path, started = run / "surrogates" / name / "motion.npz", time.time()
    motion.cached_motion(x, path, progress=progress, **cfg.motion)
    return store.put(f"motion-{name}", spec, {"file": str(path), "seconds": time.time() - started}, files=[path])


def swag_stage(cfg: BenchmarkConfig, name: str, model: dict, data: dict, run: pathlib.Path, store: Store, *,
               progress: bool) -> dict:
    """BA's SWAG fine-tuning of the whole surrogate (``posterior.full_swag``): moments and the fine-tuned model.

    BA attacks with the fine-tuned model's batch-norm statistics (decisions B25, E8); ``[swag]
    upstream_statistics = true`` keeps the original surrogate's, as upstream's BA does (§7.27).
    """
    from tasar_jax.posterior import full_swag

    spec = {"model": identity(model), "swag": dict(cfg.swag), "seed": cfg.seed}
    done = store.get(f"swag-{name}", spec)
    if done is not None:
        return done
    settings = {"seed": cfg.seed, **cfg.swag}
    upstream_statistics = bool(settings.pop("upstream_statistics", False))
    started = time.time()
    result = pipeline.finetune_swag(model["dir"], data["root"], run / "surrogates" / name,
                                    config=full_swag.FinetuneConfig(**settings),
                                    upstream_statistics=upstream_statistics, train_file=cfg.data.train_file,
                                    progress=progress)
    return store.put(f"swag-{name}", spec, {**result, "seconds": time.time() - started},
                     files=[result["file"], result["model_dir"]])
