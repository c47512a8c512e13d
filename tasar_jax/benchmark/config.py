"""Benchmark configuration: a TOML (or JSON) file or dict → frozen ``BenchmarkConfig``.

A config names the dataset and where its data come from, the models to train (or existing checkpoints), which of
them are surrogates and targets, and the attacks with their hyper-parameters::

    name = "demo"
    dataset = "hdm05"
    seed = 0
    surrogates = ["stgcn"]
    targets = ["stgcn", "mlp"]

    [data]                 # source = "synthetic" (generated into the run folder) or "root" (upstream layout)
    source = "synthetic"
    train_per_class = 40
    test_per_class = 15

    [train]                # TrainConfig overrides applied to every model's upstream recipe
    epochs = 20

    [models.stgcn]         # arch defaults to the table key; other keys are model-config overrides (width, ...)
    width = 0.125
    train = { learning_rate = 0.1 }
    # checkpoint = "path"  # use a tasar-jax checkpoint (or an upstream .pth via the converter hook) instead

    [models.stgcn_trades]  # a defended target: defence = "trades" (adversarial training) or "beat" (BEAT heads on
    arch = "stgcn"         # the trained model); defence_config = TRADESConfig / BEATConfig fields (+ num_heads)
    defence = "trades"

    [attack]               # defaults of every attack (AttackConfig fields and runner settings)
    iterations = 200
    epsilon = 0.01
    samples = 496          # the first N gathered samples are attacked (upstream: its first 31 batches)
    batch_size = 16

    [attacks.mifgsm]       # method defaults to the table key (a registry name); other keys are hyper-parameters
    [attacks.ens]
    method = "ensemble"
    members = ["stgcn", "ctrgcn", "msg3d"]
    surrogates = ["stgcn"] # rows (attack sets) this attack runs in; default every surrogate

``[posttrain]`` (TASAR's PostTrainConfig fields plus ``num_heads``), ``[swag]`` (BA's fine-tuning config) and
``[motion]`` (``bandwidth``, ``kernel`` of the tvAR fits) are passed through. A key that none of these knows —
at the top level, in any table, or an attack hyper-parameter its constructor does not take — is an error when the
config is parsed, before any stage runs, with the closest known key as a suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import pathlib
import tomllib
from typing import Any, Iterable, Mapping

from tasar_jax.data import synthetic

# attack keys that are runner settings, not hyper-parameters
RUNNER_KEYS = ("method", "samples", "batch_size", "memory_budget", "members", "label", "surrogates")
MODEL_KEYS = ("arch", "train", "checkpoint", "bone_checkpoint", "seed", "defence", "defence_config")
DEFENCES = ("trades", "beat")
TOP_KEYS = ("name", "dataset", "seed", "note", "surrogates", "targets", "data", "train", "models", "attack", "attacks",
            "posttrain", "swag", "motion", "eval_batch_size", "expected_accuracy")
MOTION_KEYS = ("kernel", "bandwidth", "chunk_size")


def check_keys(where: str, given: Iterable[str], known: Iterable[str]) -> None:
    """A ``ValueError`` naming every key of ``given`` not in ``known``, with the closest known key, if any."""
    known = sorted(set(known))
    problems = []
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            problems.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if problems:
        raise ValueError(f"{where}: unknown keys {', '.join(problems)}; known: {', '.join(known)}")


@dataclasses.dataclass(frozen=True)
class BenchmarkData:
    source: str = "synthetic"  # "synthetic" | "root"
    root: str | None = None
    train_per_class: int = 40
    test_per_class: int = 15
    classes: tuple[int, ...] | None = None  # synthetic class subset (labels, or a string such as "0-18"); None: all
    train_file: str = "classTrain.npz"
    test_file: str = "classTest.npz"


@dataclasses.dataclass(frozen=True)
class BenchmarkModel:
    name: str
    arch: str
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # model config (width, ...)
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # TrainConfig overrides
    checkpoint: str | None = None
    bone_checkpoint: str | None = None
    seed: int | None = None
    defence: str | None = None  # "trades" | "beat"
    defence_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class BenchmarkAttack:
    name: str  # row label
    method: str  # registry name
    hyper: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    samples: int | None = None  # None: every gathered sample
    batch_size: int = 16  # samples per device in one chunk
    memory_budget: str | None = None  # device memory one chunk may use ("4G"): sizes the chunks (tasar_jax.scale)
    members: tuple[str, ...] = ()
    surrogates: tuple[str, ...] = ()  # rows this attack runs in (default: every surrogate)

    @property
    def targeted(self) -> bool:
        return bool(self.hyper.get("targeted", False))


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    name: str
    dataset: str
    seed: int
    data: BenchmarkData
    models: Mapping[str, BenchmarkModel]
    surrogates: tuple[str, ...]
    targets: tuple[str, ...]
    attacks: tuple[BenchmarkAttack, ...]
    posttrain: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    swag: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    motion: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    eval_batch_size: int = 256
    note: str = ""

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def read(source) -> dict:
    """A config dict from a dict, a ``.toml`` or a ``.json`` file."""
    if isinstance(source, Mapping):
        return dict(source)
    path = pathlib.Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark config at {path}")
    try:
        if path.suffix == ".json":
            raw = json.loads(path.read_text())
        else:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
    except (ValueError, UnicodeDecodeError) as err:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"{path}: not a valid {'JSON' if path.suffix == '.json' else 'TOML'} file: {err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a benchmark config is a table of settings, got {type(raw).__name__}")
    return raw


def _model(name: str, raw: Mapping, train_defaults: Mapping, seed: int) -> BenchmarkModel:
    raw = dict(raw)
    unknown_train = raw.get("train", {})
    return BenchmarkModel(name=name, arch=raw.get("arch", name),
                     overrides={k: v for k, v in raw.items() if k not in MODEL_KEYS},
                     train={**train_defaults, **unknown_train}, checkpoint=raw.get("checkpoint"),
                     bone_checkpoint=raw.get("bone_checkpoint"), seed=raw.get("seed", seed),
                     defence=raw.get("defence"), defence_config=dict(raw.get("defence_config", {})))


def _attack(name: str, raw: Mapping, defaults: Mapping) -> BenchmarkAttack:
    merged = {**defaults, **raw}
    hyper = {k: v for k, v in merged.items() if k not in RUNNER_KEYS}
    return BenchmarkAttack(name=merged.get("label", name), method=merged.get("method", name).lower(), hyper=hyper,
                      samples=merged.get("samples"), batch_size=int(merged.get("batch_size", 16)),
                      memory_budget=merged.get("memory_budget"),
                      members=tuple(merged.get("members", ())), surrogates=tuple(raw.get("surrogates", ())))


def _field_names(module: str, cls: str) -> set[str]:
    import importlib

    return {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), cls))}


def _check_sections(raw: Mapping) -> None:
    """Unknown keys at the top level and in [data], [posttrain], [swag], [motion] (typos fail before any stage)."""
    check_keys("benchmark config", raw, TOP_KEYS)
    check_keys("[data]", raw.get("data", {}), {f.name for f in dataclasses.fields(BenchmarkData)})
    check_keys("[posttrain]", raw.get("posttrain", {}),
               _field_names("tasar_jax.posterior", "PostTrainConfig") | {"num_heads"})
    check_keys("[swag]", raw.get("swag", {}),
               _field_names("tasar_jax.posterior.full_swag", "FinetuneConfig") | {"upstream_statistics"})
    check_keys("[motion]", raw.get("motion", {}), MOTION_KEYS)


def parse(source) -> BenchmarkConfig:
    """Validated ``BenchmarkConfig`` from a dict or file (unknown model/attack names are errors here, not later)."""
    from tasar_jax import models
    from tasar_jax.attacks import build
    from tasar_jax.data import layouts

    raw = read(source)
    _check_sections(raw)  # typos first: a misspelt key also shows up as a missing one
    missing = [k for k in ("dataset", "surrogates", "targets", "attacks", "models") if k not in raw]
    if missing:
        raise ValueError(f"benchmark config lacks {missing}")
    layouts.get_dataset(raw["dataset"])
    seed = int(raw.get("seed", 0))
    model_entries = {n: _model(n, m, raw.get("train", {}), seed) for n, m in raw["models"].items()}
    for entry in model_entries.values():
        models.entry(entry.arch)
        fields = {f.name for f in dataclasses.fields(models.config_for(entry.arch, raw["dataset"]))}
        check_keys(f"[models.{entry.name}]", entry.overrides, fields | set(MODEL_KEYS))
        check_keys(f"[models.{entry.name}] train", entry.train, _field_names("tasar_jax.training", "TrainConfig"))
        if entry.defence not in (None, *DEFENCES):
            raise ValueError(f"model {entry.name}: defence must be one of {DEFENCES}, got {entry.defence!r}")
    attack_entries = tuple(_attack(n, a, raw.get("attack", {})) for n, a in raw["attacks"].items())
    for entry in attack_entries:
        build.entry(entry.method)
        try:
            known = build.hyper_names(entry.method)
        except (ImportError, AttributeError):  # a module not installed: the runner reports the cell as skipped
            known = None
        if known is not None:
            check_keys(f"[attacks.{entry.name}]", entry.hyper, known)
        unknown = [m for m in (*entry.members, *entry.surrogates) if m not in model_entries]
        if unknown:
            raise ValueError(f"attack {entry.name}: members/surrogates {unknown} are not among the models")
    for role in ("surrogates", "targets"):
        unknown = [m for m in raw[role] if m not in model_entries]
        if unknown:
            raise ValueError(f"{role} {unknown} are not among the models {list(model_entries)}")
    data = BenchmarkData(**raw.get("data", {}))
    data = dataclasses.replace(data, classes=synthetic.parse_classes(data.classes, raw["dataset"]))
    if data.source not in ("synthetic", "root") or (data.source == "root" and not data.root):
        raise ValueError("data.source must be 'synthetic' or 'root' (with data.root set)")
    return BenchmarkConfig(name=raw.get("name", "benchmark"), dataset=raw["dataset"], seed=seed, data=data,
                           models=model_entries, surrogates=tuple(raw["surrogates"]), targets=tuple(raw["targets"]),
                           attacks=attack_entries, posttrain=raw.get("posttrain", {}), swag=raw.get("swag", {}),
                           motion=raw.get("motion", {}), eval_batch_size=int(raw.get("eval_batch_size", 256)),
                           note=raw.get("note", ""))
