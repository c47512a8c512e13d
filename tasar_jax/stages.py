"""The project's stages on objects in memory: train, test, gather, assemble, post-train, BEAT and attack.

Each stage takes models, arrays and posteriors and returns them; none reads or writes a file. Persistence
belongs to the two callers, once per artefact: the command line's file layer (``pipeline``: checkpoint and
dataset paths in, files out) and the benchmark (``benchmark.prepare`` and ``benchmark.runner``, which record
every artefact in the run's store and hand it on in memory to the stages after it).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from tasar_jax import models, prediction, training
from tasar_jax.data import layouts
from tasar_jax.models import streams

TARGET_STREAM = 0x74617267  # folded into the attack seed to draw target classes


def train(arch: str, dataset: str, train_data, test_data, config: training.TrainConfig, *,
          defence: str | None = None, trades_config=None, on_improve: Callable | None = None,
          progress: bool = True, **model_overrides):
    """A fresh ``arch`` for ``dataset`` trained on ``train_data`` (``(x, labels)``); returns ``(best, history)``: the
    selected eval-mode model and one record per epoch.

    ``defence="trades"`` trains with TRADES (``trades_config``) and selects the most robust weights; otherwise
    the best test accuracy is selected. ``on_improve(model, record)`` sees every improvement (to keep a file).
    """
    if defence not in (None, "trades"):
        raise ValueError(f"unknown training defence {defence!r}; 'trades' trains a defended classifier "
                         "(BEAT post-trains heads: tasar-jax beat)")
    model = models.create(arch, dataset, seed=config.seed, **model_overrides)
    if defence == "trades":
        from tasar_jax.defences import trades

        best, history = trades.trades_train(model, train_data, test_data, config,
                                            trades_config or trades.TRADESConfig(), on_improve=on_improve,
                                            progress=progress, description=f"TRADES {arch} on {dataset}")
    else:
        best, history = training.train(model, train_data, test_data, config, on_improve=on_improve,
                                       progress=progress, description=f"{arch} on {dataset}")
    return best, history


def test(model, x: np.ndarray, labels: np.ndarray) -> dict:
    """Upstream ``test``: counts, accuracy and predictions of ``model`` on ``(x, labels)``."""
    predictions = np.argmax(training.predict(model, x), axis=-1)
    correct = int(np.sum(predictions == labels))
    return {"num_samples": int(len(labels)), "correct": correct, "accuracy": correct / len(labels),
            "misclassification": 1 - correct / len(labels), "predictions": predictions, "labels": labels}


def correctly_classified(model, x: np.ndarray, labels: np.ndarray, what: str = "the test set") -> np.ndarray:
    """Upstream ``gatherCorrectPrediction``'s selection: the mask of samples ``model`` classifies correctly."""
    mask = np.argmax(training.predict(model, x), axis=-1) == labels
    if not mask.any():
        raise ValueError(f"no sample of {what} is classified correctly; nothing to gather")
    return mask


def assemble_two_stream(joint, joint_meta: dict, bone, bone_meta: dict) -> tuple[streams.TwoStream, str]:
    """The two-stream ensemble (``msg3d``/``agcn``) of a joint-stream and a bone-stream model, and its family name.

    This is how upstream obtains its ensembles: the streams are trained separately and summed at test time.
    Both must be of the same family and dataset and differ only in ``stream``.
    """
    arch_joint, arch_bone = joint_meta["architecture"], bone_meta["architecture"]
    family = arch_joint.removesuffix("_joint")
    if arch_joint != f"{family}_joint" or arch_bone != f"{family}_bone" or not models.entry(family).two_stream:
        raise ValueError(f"need a <family>_joint and a <family>_bone checkpoint of msg3d or agcn, "
                         f"got {arch_joint} and {arch_bone}")
    if joint_meta["dataset"] != bone_meta["dataset"]:
        raise ValueError(f"the streams were made for different datasets: {joint_meta['dataset']} and "
                         f"{bone_meta['dataset']}")
    if dataclasses.replace(bone.config, stream="joint") != joint.config:
        raise ValueError(f"the stream configs differ beyond the stream: {joint.config} vs {bone.config}")
    return streams.TwoStream(joint, bone), family


class PostTrained(NamedTuple):
    posterior: tuple  # one posterior per stream of the surrogate
    head_accuracy: list  # per stream, the best test accuracy of every head
    surrogate_accuracy: float
    appended_accuracy: float  # the surrogate with every stream's appended heads, summed
    snapshots: np.ndarray  # SWAG snapshots per head, streams concatenated


def posttrain(model, train_data, test_data, config=None, *, num_heads: int = 3, seed: int = 0,
              progress: bool = True) -> PostTrained:
    """Upstream ``bayesianTrain`` then ``DualBayesian`` on the frozen surrogate ``model``.

    The surrogate's eval-mode logits of both sets are computed once (one compilation); the K heads are sampled on
    them (reference.md §4.3, §4.4). A two-stream ensemble is post-trained per stream on that stream's logits, as
    upstream's ``<base>_joint``/``<base>_bone`` runs.
    """
    from tasar_jax import posterior as post

    config = config or post.PostTrainConfig()
    (x_train, y_train), (x_test, y_test) = train_data, test_data
    forward = prediction.Predictor(model, 64, streams=True)
    z_train, z_test = post.surrogate_logits(forward, x_train), post.surrogate_logits(forward, x_test)
    posteriors, head_accuracy, snapshots = [], [], []
    for key, zs_train, zs_test in zip(streams.stream_keys(jax.random.key(seed), len(z_train)), z_train, z_test):
        key_heads, key_dual = jax.random.split(key)
        trained = post.bayesian_train(key_heads, zs_train, y_train, zs_test, y_test, config, num_heads=num_heads,
                                      progress=progress)
        dual = post.dual_bayesian(key_dual, trained.heads, zs_train, y_train, zs_test, y_test, config,
                                  progress=progress)
        posteriors.append(dual.posterior)
        head_accuracy.append([float(a) for a in trained.best_accuracy])
        snapshots.append(np.asarray(dual.num_snapshots))
    summed = np.asarray(post.summed_appended_logits(tuple(p.heads for p in posteriors), z_test))
    return PostTrained(tuple(posteriors), head_accuracy,
                       training.accuracy(np.asarray(streams.summed(z_test)), y_test),
                       training.accuracy(summed, y_test), np.concatenate(snapshots))


def beat(model, dataset: str, train_data, test_data, config=None, *, num_heads: int = 5,
         on_improve: Callable | None = None, progress: bool = True):
    """BEAT post-training of appended heads on the frozen ``model`` (reference.md §5.2): a ``BEATResult``."""
    from tasar_jax import defences

    return defences.beat_train(model, train_data, test_data, config or defences.BEATConfig(), num_heads=num_heads,
                               on_improve=on_improve, parents=layouts.get_dataset(dataset).parents,
                               progress=progress)


def attack(method: str, artefacts, x: np.ndarray, labels: np.ndarray, *, hyper: dict | None = None,
           num_classes: int | None = None, seed: int = 0, batch_size: int | None = None,
           upstream_targets: bool = False, memory_budget=None, progress: bool = True):
    """Runs attack ``method`` (``attacks.build``) from ``artefacts`` on ``(x, labels)``; returns the
    ``AdversarialSet`` and its statistics.

    ``hyper``: the attack's keyword arguments (``targeted=True``: one random target per sample among
    ``num_classes``, ``common.random_targets``; ``upstream_targets`` allows the true class, as upstream). Every
    sample is keyed by its index, so results do not depend on ``batch_size`` (samples per device); all devices
    of all processes share the work (``base.run_in_batches``).
    """
    from tasar_jax.attacks import base, build, common

    hyper = dict(hyper or {})
    atk, extras = build.build(method, artefacts, **hyper)
    key, true_labels = jax.random.key(seed), labels
    targeted = bool(hyper.get("targeted", False))
    if targeted:
        labels = np.asarray(common.random_targets(jax.random.fold_in(key, TARGET_STREAM), labels, num_classes,
                                                  exclude_true=not upstream_targets))
    started = time.perf_counter()
    x_adv, predictions, success, _ = base.run_in_batches(atk, key, x, labels, batch_size, extras=extras,
                                                         memory_budget=memory_budget, progress=progress,
                                                         description=method)
    seconds = time.perf_counter() - started
    adversarial = common.AdversarialSet(x, x_adv, labels, predictions, success, true_labels if targeted else None)
    return adversarial, {"num_samples": int(x.shape[0]), "success_rate": float(success.mean()),
                         "seconds_per_example": seconds / x.shape[0], "max_linf": float(np.abs(x_adv - x).max())}
