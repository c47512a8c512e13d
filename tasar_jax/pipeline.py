"""The command line's file layer: each routine loads checkpoints and dataset files, runs one in-memory stage
(``tasar_jax.stages``) and writes its artefact once.

Paths follow the upstream convention ``<data root>/<dataset>/<file>`` (``classTrain.npz``, ``classTest.npz``);
an explicit path to an existing file is accepted wherever a file name is.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import numpy as np

from tasar_jax import checkpoints, models, stages, training
from tasar_jax.artefacts import (
    GATHER_FILE,
    TEST_FILE,
    TRAIN_FILE,
    load_for_model,
    resolve,
    save_posterior,
    save_swag,
)
from tasar_jax.data import formats, layouts
from tasar_jax.models import streams


def train_classifier(arch: str, dataset: str, data_root, out_dir, *, train_config: training.TrainConfig,
                     train_file: str = TRAIN_FILE, test_file: str = TEST_FILE, progress: bool = True,
                     defence: str | None = None, trades_config=None, **model_overrides) -> dict:
    """Trains ``arch`` on a dataset's train file, keeping the best checkpoint in ``out_dir``.

    ``defence="trades"`` trains with TRADES (``defences.trades``; ``trades_config``) and keeps the most robust
    checkpoint; otherwise the best test accuracy is kept. Returns the saved checkpoint's metadata (architecture,
    dataset, config, accuracy, history).
    """
    num_classes = models.config_for(arch, dataset, **model_overrides).num_classes
    train_path, test_path = resolve(data_root, dataset, train_file), resolve(data_root, dataset, test_file)
    train_data = formats.load_dataset_file(train_path, dataset, num_classes=num_classes)
    test_data = formats.load_dataset_file(test_path, dataset, num_classes=num_classes)
    meta = {"train_file": str(train_path), "test_file": str(test_path),
            "train_config": dataclasses.asdict(train_config)}
    if defence == "trades":
        from tasar_jax.defences import trades

        trades_config = trades_config or trades.TRADESConfig()
        meta.update(defence="trades", trades_config=dataclasses.asdict(trades_config))

    def save_best(best_model, record):
        extra = {} if defence is None else {"robust_accuracy": record.get("robust_accuracy")}
        checkpoints.save(out_dir, best_model, architecture=arch, dataset=dataset, accuracy=record["test_accuracy"],
                         epoch=record["epoch"], num_parameters=models.num_parameters(best_model), **extra, **meta)

    _, history = stages.train(arch, dataset, train_data, test_data, train_config, defence=defence,
                              trades_config=trades_config, on_improve=save_best, progress=progress, **model_overrides)
    return checkpoints.update_metadata(out_dir, history=history)


def test_classifier(model_dir, data_root, *, test_file: str = TEST_FILE) -> dict:
    """Upstream ``test``: accuracy of a checkpoint on a test file. Returns counts, accuracy and predictions."""
    model, meta = checkpoints.load(model_dir)
    path = resolve(data_root, meta["dataset"], test_file)
    return {"file": str(path), **stages.test(model, *load_for_model(meta, path))}


def gather_correct(model_dir, data_root, out_path=None, *, test_file: str = TEST_FILE) -> dict:
    """Upstream ``gatherCorrectPrediction``: writes the correctly classified test samples, raw, in the same format.

    The stored ``clips`` are the file's own array (HDM05 float64 joint-major, NTU float32 NCTVM), not a re-encoding.
    Default output: ``<model_dir>/adClassTrain.npz``.
    """
    model, meta = checkpoints.load(model_dir)
    path = resolve(data_root, meta["dataset"], test_file)
    clips, classes = formats.read_raw(path, meta["dataset"], num_classes=meta["config"]["num_classes"])
    mask = stages.correctly_classified(model, formats.clips_to_common(clips, meta["dataset"]), classes,
                                       f"{path} (by {model_dir})")
    out_path = pathlib.Path(out_path) if out_path else pathlib.Path(model_dir) / GATHER_FILE
    formats.write_raw(out_path, clips[mask], classes[mask])
    return {"file": str(out_path), "num_samples": int(mask.sum()), "of": int(len(mask))}


def predict_file(model_dir, input_path, out_path) -> np.ndarray:
    """Eval-mode logits for a ``.npy`` batch (N, 3, T, V, M) or a dataset ``.npz``; writes them to ``out_path``."""
    model, meta = checkpoints.load(model_dir)
    input_path = pathlib.Path(input_path)
    layout = layouts.get_dataset(meta["dataset"])
    if input_path.suffix == ".npz":
        x, _ = load_for_model(meta, input_path)
    else:
        x = formats.load_array(input_path, num_persons=layout.num_persons)
    logits = training.predict(model, x)
    with formats.atomic_path(out_path, suffix=".npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, logits)
    return logits


def assemble_two_stream(joint_dir, bone_dir, out_dir) -> pathlib.Path:
    """Writes the two-stream ensemble (``msg3d``/``agcn``) of a joint-stream and a bone-stream checkpoint.

    (``stages.assemble_two_stream``: same family and dataset, differing only in ``stream``)."""
    (joint, joint_meta), (bone, bone_meta) = checkpoints.load(joint_dir), checkpoints.load(bone_dir)
    model, family = stages.assemble_two_stream(joint, joint_meta, bone, bone_meta)
    return checkpoints.save(out_dir, model, architecture=family, dataset=joint_meta["dataset"],
                            source=f"{joint_dir} + {bone_dir}", num_parameters=models.num_parameters(model))


def posttrain(model_dir, data_root, out_path=None, *, config=None, num_heads: int = 3, seed: int = 0,
              train_file: str = TRAIN_FILE, test_file: str = TEST_FILE, progress: bool = True) -> dict:
    """Upstream ``bayesianTrain`` then ``DualBayesian`` on a frozen surrogate checkpoint (``stages.posttrain``);
    writes the posterior, one (joint, bone) file for a two-stream ensemble (default ``<model_dir>/posterior.npz``).
    """
    from tasar_jax import posterior as post

    config = config or post.PostTrainConfig()
    model, meta = checkpoints.load(model_dir)
    train_data = load_for_model(meta, resolve(data_root, meta["dataset"], train_file))
    test_data = load_for_model(meta, resolve(data_root, meta["dataset"], test_file))
    done = stages.posttrain(model, train_data, test_data, config, num_heads=num_heads, seed=seed, progress=progress)
    out_path = pathlib.Path(out_path) if out_path is not None else pathlib.Path(model_dir) / "posterior.npz"
    save_posterior(out_path, done, meta["dataset"], str(model_dir), config, seed)
    return {"file": str(out_path), "head_accuracy": [a for accs in done.head_accuracy for a in accs],
            "surrogate_accuracy": done.surrogate_accuracy, "appended_accuracy": done.appended_accuracy,
            "snapshots": done.snapshots, "streams": list(streams.STREAMS) if len(done.posterior) > 1 else None}


def finetune_swag(model_dir, data_root, out_dir=None, *, config=None, upstream_statistics: bool = False,
                  train_file: str = TRAIN_FILE, progress: bool = True) -> dict:
    """Upstream ``finetune`` for BA (reference.md §6): flatness-regularised SGD over the whole surrogate with SWAG
    moments. Writes ``<out_dir>/swag.npz`` and, unless ``upstream_statistics`` (keep the original batch-norm
    statistics, §7.27), the fine-tuned model as ``<out_dir>/ba_model`` (default ``out_dir``: the model's)."""
    from tasar_jax.posterior import full_swag

    config = config or full_swag.FinetuneConfig()
    model, meta = checkpoints.load(model_dir)
    x, y = load_for_model(meta, resolve(data_root, meta["dataset"], train_file))
    tuned, moments = full_swag.finetune(model, x, y, config, jax.random.key(config.seed), progress=progress)
    return save_swag(out_dir if out_dir is not None else model_dir, tuned, moments, surrogate=str(model_dir),
                     architecture=meta["architecture"], dataset=meta["dataset"], config=config,
                     upstream_statistics=upstream_statistics)


def attack(method: str, model_dir, data_path=None, out_path=None, *, hyper: dict | None = None, members=(),
           posterior_path=None, motion_path=None, swag_path=None, batch_size: int | None = None, seed: int = 0,
           upstream_targets: bool = False, progress: bool = True, memory_budget: int | str | None = None) -> dict:
    """Runs attack ``method`` (``attacks.build``) from the surrogate checkpoint ``model_dir`` on a gathered set
    and writes the adversarial set (npz). ``hyper``: the attack's keyword arguments (``targeted=True``: one random
    target per sample, ``common.random_targets``; ``upstream_targets`` allows the true class, as upstream).

    What each family needs besides the checkpoint, with upstream's layout as defaults: ensembles the other
    ``members`` (checkpoint directories); BA ``<model>/swag.npz`` (``finetune_swag``); TASAR ``<model>/posterior.npz``
    (``posttrain``; a (joint, bone) pair for two-stream surrogates) and, with ``temporal``, the motion cache beside
    the data file (computed on first use). Batches are padded to one shape; every sample is keyed by its index, so
    results do not depend on ``batch_size``. ``batch_size`` counts samples per device; ``memory_budget`` (bytes or
    ``"4G"``) sizes the chunks from the device memory one may use; all devices of all processes share the work
    (``base.run_in_batches``), and only process 0 writes the file.
    """
    from tasar_jax.attacks import build, common

    hyper = dict(hyper or {})
    needs = build.needs(method, hyper)
    model_dir = pathlib.Path(model_dir)
    model, meta = checkpoints.load(model_dir)
    data_path = pathlib.Path(data_path) if data_path is not None else model_dir / GATHER_FILE
    x, labels = load_for_model(meta, data_path)
    found = {}
    if "members" in needs:
        loaded = [checkpoints.load(m) for m in members]
        for m, (_, member_meta) in zip(members, loaded):
            _check_same_task(meta, f"ensemble member {m}", member_meta["dataset"],
                             member_meta["config"].get("num_classes"))
        found["members"] = (model, *(m for m, _ in loaded))
    if "swag" in needs:
        from tasar_jax.posterior import full_swag

        swag_file = swag_path or model_dir / "swag.npz"
        moments, swag_meta = full_swag.load_swag(swag_file)
        _check_same_task(meta, f"SWAG file {swag_file}", swag_meta.get("dataset"), None)
        found["swag"] = (moments, checkpoints.load(swag_meta.get("model_dir", model_dir))[0])
    if "posterior" in needs:
        found["posterior"] = _posterior(model, meta, model_dir, posterior_path)
    if "motion" in needs:
        from tasar_jax import motion

        cache = pathlib.Path(motion_path) if motion_path else motion.default_cache_path(data_path)
        ar1, ar2 = motion.cached_motion(x, cache, progress=progress)
        found["motion"] = {"ar1": ar1, "ar2": ar2}
    artefacts = build.Artefacts(model=model, dataset=meta["dataset"], **found)
    adversarial, stats = stages.attack(method, artefacts, x, labels, hyper=hyper, seed=seed, batch_size=batch_size,
                                       num_classes=meta["config"]["num_classes"], upstream_targets=upstream_targets,
                                       memory_budget=memory_budget, progress=progress)
    out_path = pathlib.Path(out_path) if out_path is not None else model_dir / f"{method}_adv.npz"
    if jax.process_index() == 0:
        common.save_adversarial(out_path, adversarial)
    return {"file": str(out_path), **stats}


def _check_same_task(meta: dict, what: str, dataset, num_classes) -> None:
    """``what`` (an ensemble member, a posterior, SWAG moments) must be for the surrogate's dataset and classes."""
    if dataset is not None and dataset != meta["dataset"]:
        raise ValueError(f"{what} is for {dataset}, but the surrogate is a {meta['dataset']} model")
    own = meta["config"].get("num_classes")
    if num_classes is not None and own is not None and num_classes != own:
        raise ValueError(f"{what} has {num_classes} classes, but the surrogate has {own}")


def _posterior(model, meta, model_dir, posterior_path) -> tuple:
    """TASAR's per-stream posterior (default ``<model_dir>/posterior.npz``), checked against the surrogate."""
    from tasar_jax.posterior import load_posterior

    posterior_path = posterior_path or pathlib.Path(model_dir) / "posterior.npz"
    posterior, posterior_meta = load_posterior(posterior_path)
    _check_same_task(meta, f"posterior {posterior_path}", posterior_meta.get("dataset"),
                     posterior[0].heads.b2.shape[-1])
    if len(posterior) != streams.num_streams(model):
        raise ValueError(f"{posterior_path} is a {'two' if len(posterior) == 2 else 'single'}-stream "
                         f"posterior but {model_dir} is a {meta['architecture']} surrogate")
    return posterior


def beat(model_dir, data_root, out_path=None, *, config=None, num_heads: int = 5, train_file: str = TRAIN_FILE,
         test_file: str = TEST_FILE, progress: bool = True) -> dict:
    """BEAT post-training of appended heads on a frozen checkpoint (reference.md §5.2); writes the heads (posterior
    npz format, zero variance; default ``<model_dir>/beat.npz``). The defended classifier is the checkpoint plus
    these heads (``defences.defended_surrogate``)."""
    from tasar_jax import defences

    config = config or defences.BEATConfig()
    model, meta = checkpoints.load(model_dir)
    train_data = load_for_model(meta, resolve(data_root, meta["dataset"], train_file))
    test_data = load_for_model(meta, resolve(data_root, meta["dataset"], test_file))
    out_path = pathlib.Path(out_path) if out_path is not None else pathlib.Path(model_dir) / "beat.npz"
    info = dict(dataset=meta["dataset"], surrogate_checkpoint=str(model_dir), config=dataclasses.asdict(config))

    def save(i, heads, record):
        defences.save_heads(out_path, heads, **info)

    result = stages.beat(model, meta["dataset"], train_data, test_data, config, num_heads=num_heads, on_improve=save,
                         progress=progress)
    defences.save_heads(out_path, result.heads, best_accuracy=[float(a) for a in result.best_accuracy], **info)
    return {"file": str(out_path), "head_accuracy": [float(a) for a in result.best_accuracy]}
