"""Where the project's artefacts live on disk and how the stages' results are written: dataset paths in upstream's
``<data root>/<dataset>/<file>`` convention, dataset files checked against a checkpoint, the posterior and SWAG
files. Used by both persistence layers, the command line's (``pipeline``) and the benchmark's.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from tasar_jax import checkpoints
from tasar_jax.data import formats

TRAIN_FILE = "classTrain.npz"
TEST_FILE = "classTest.npz"
GATHER_FILE = "adClassTrain.npz"


def resolve(data_root, dataset: str, name: str) -> pathlib.Path:
    """``name`` itself if it is an existing file, else ``<data_root>/<dataset>/<name>``."""
    path = pathlib.Path(name)
    if path.is_file():
        return path
    return pathlib.Path(data_root) / dataset / name


def load_for_model(meta: dict, path) -> tuple[np.ndarray, np.ndarray]:
    """Loads a dataset file for a checkpoint's dataset, checking labels against the model's class count."""
    return formats.load_dataset_file(path, meta["dataset"], num_classes=meta["config"]["num_classes"])


def save_posterior(path, done, dataset: str, surrogate: str, config, seed: int):
    """Writes a ``stages.posttrain`` result (``stages.PostTrained``) in the posterior npz format, with what it was
    made from."""
    from tasar_jax import posterior as post

    two = len(done.posterior) > 1
    return post.save_posterior(path, done.posterior, dataset=dataset, surrogate_checkpoint=surrogate,
                               config=dataclasses.asdict(config), seed=seed,
                               head_accuracy=done.head_accuracy if two else done.head_accuracy[0])


def save_swag(out_dir, tuned, moments, *, surrogate: str, architecture: str, dataset: str, config,
              upstream_statistics: bool) -> dict:
    """Writes ``<out_dir>/swag.npz`` and, unless ``upstream_statistics``, the fine-tuned model
    ``<out_dir>/ba_model`` (the model the SWAG file names); returns both paths."""
    from tasar_jax.posterior import full_swag

    out_dir = pathlib.Path(out_dir)
    ba_model = pathlib.Path(surrogate)
    if not upstream_statistics:
        ba_model = checkpoints.save(out_dir / "ba_model", tuned, architecture=architecture,
                                    dataset=dataset, source=f"SWAG fine-tuning of {surrogate}")
    swag = full_swag.save_swag(out_dir / "swag.npz", moments, surrogate_checkpoint=surrogate, dataset=dataset,
                               model_dir=str(ba_model), config=dataclasses.asdict(config))
    return {"file": str(swag), "model_dir": str(ba_model)}
