"""``tasar-jax demo``: the whole supervised pipeline on the embedded synthetic dataset, on a CPU in minutes.

Steps (each is the library call the matching CLI command makes):

1. ``data synth``  — synthetic HDM05-format train/test files under ``<workdir>/data/hdm05/``, plus a figure;
2. ``train``       — ST-GCN at the demo width, upstream recipe with shortened epochs; best checkpoint kept;
3. ``test``        — its test accuracy;
4. ``gather``      — the correctly classified test samples (``adClassTrain.npz``), the input of the attacks;
5. a three-layer MLP baseline trained the same way, to show the classes are not separable from raw coordinates;
6. a summary table and a training-curve figure.

Run: ``tasar-jax demo [--workdir tasar-demo] [--epochs N]``.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from tasar_jax import pipeline, training
from tasar_jax.data import formats, show, synthetic

DATASET = "hdm05"
TRAIN_PER_CLASS = 40
TEST_PER_CLASS = 15
STGCN_WIDTH = 0.125  # channels 8 … 32 instead of 64 … 256: fast on two CPU cores
EPOCHS = 30


def _recipe(epochs: int, learning_rate: float, seed: int) -> training.TrainConfig:
    """Upstream SGD recipe with a step schedule for a short run: lr × 0.1 at 50 % and 80 % of ``epochs``.

    (Upstream steps at epochs 10 and 40 of 80; stepping at 1/8 of a 30-epoch run would stop learning early.)
    """
    milestones = tuple(sorted({max(1, round(epochs * f)) for f in (0.5, 0.8)}))
    return training.TrainConfig(epochs=epochs, learning_rate=learning_rate, milestones=milestones, seed=seed)


def plot_history(histories: dict[str, list[dict]], out_path) -> pathlib.Path:
    """Test accuracy and training loss per epoch for each model, saved as a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, history in histories.items():
        epochs = [r["epoch"] for r in history]
        ax_acc.plot(epochs, [100 * r["test_accuracy"] for r in history], marker=".", label=name)
        ax_loss.plot(epochs, [r["loss"] for r in history], marker=".", label=name)
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 100), title="test accuracy")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="training loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with formats.atomic_path(out_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return pathlib.Path(out_path)


def run(workdir="tasar-demo", *, epochs: int | None = None, seed: int = 0, console: Console | None = None) -> dict:
    """Runs the demo in ``workdir`` and returns a summary dict (accuracies, counts, paths, timings)."""
    console = console or Console()
    workdir = pathlib.Path(workdir)
    data_root = workdir / "data"
    epochs = epochs or EPOCHS
    started = time.time()

    console.rule("[bold]1/5 synthetic data")
    paths = synthetic.write_dataset(data_root, DATASET, TRAIN_PER_CLASS, TEST_PER_CLASS, seed)
    x_test, y_test = formats.load_dataset_file(paths["test"], DATASET)
    figure = show.plot_sequences(x_test, y_test, synthetic.ACTIONS, workdir / "sequences.png", DATASET)
    console.print(f"{len(synthetic.ACTIONS)} action classes; train {paths['train']}, test {paths['test']}")

    console.rule("[bold]2/5 train ST-GCN")
    t0 = time.time()
    stgcn = pipeline.train_classifier("stgcn", DATASET, data_root, workdir / "stgcn",
                                      train_config=_recipe(epochs, 0.1, seed), width=STGCN_WIDTH)
    stgcn_seconds = time.time() - t0

    console.rule("[bold]3/5 test")
    tested = pipeline.test_classifier(workdir / "stgcn", data_root)
    console.print(f"ST-GCN test accuracy {tested['accuracy']:.2%}")

    console.rule("[bold]4/5 gather correctly classified test samples")
    gathered = pipeline.gather_correct(workdir / "stgcn", data_root)
    console.print(f"{gathered['num_samples']}/{gathered['of']} samples → {gathered['file']}")

    console.rule("[bold]5/5 baseline: three-layer MLP on raw coordinates")
    t0 = time.time()
    mlp = pipeline.train_classifier("mlp", DATASET, data_root, workdir / "mlp",
                                    train_config=_recipe(epochs, 0.01, seed))
    mlp_seconds = time.time() - t0
    curves = plot_history({"ST-GCN": stgcn["history"], "3-layer MLP": mlp["history"]}, workdir / "training.png")

    table = Table(title=f"tasar-jax demo — synthetic {DATASET} ({len(synthetic.ACTIONS)} classes, "
                        f"{len(y_test)} test samples)")
    for column in ("model", "parameters", "best epoch", "test accuracy", "train time"):
        table.add_column(column, justify="right" if column != "model" else "left")
    table.add_row("ST-GCN (width %.3g)" % STGCN_WIDTH, f"{stgcn['num_parameters']:,}", str(stgcn["epoch"]),
                  f"{tested['accuracy']:.1%}", f"{stgcn_seconds:.0f} s")
    table.add_row("3-layer MLP", f"{mlp['num_parameters']:,}", str(mlp["epoch"]), f"{mlp['accuracy']:.1%}",
                  f"{mlp_seconds:.0f} s")
    console.print(table)
    per_class = Table(title="ST-GCN accuracy per class")
    per_class.add_column("class")
    per_class.add_column("accuracy", justify="right")
    for label, name in enumerate(synthetic.ACTIONS):
        mask = tested["labels"] == label
        if mask.any():
            per_class.add_row(name, f"{np.mean(tested['predictions'][mask] == label):.0%}")
    console.print(per_class)
    summary = {
        "stgcn_accuracy": tested["accuracy"], "mlp_accuracy": mlp["accuracy"],
        "gathered": gathered["num_samples"], "gathered_file": gathered["file"],
        "checkpoint": str(workdir / "stgcn"), "figures": [str(figure), str(curves)],
        "seconds": time.time() - started,
    }
    console.print(f"checkpoint {summary['checkpoint']}; figures {', '.join(summary['figures'])}; "
                  f"total {summary['seconds']:.0f} s")
    return summary
