"""``tasar-jax demo``: the whole transfer benchmark at demo scale on the embedded synthetic dataset, on a CPU.

It runs ``tasar_jax/configs/demo.toml`` through the benchmark runner (``tasar_jax.benchmark``), the same code
the paper-scale configs use:

1. synthetic HDM05-format train/test files for 12 of the 65 classes (six pairs that differ only in time or in
   the limb) under ``<workdir>/data/hdm05/`` (plus ``sequences.png``);
2. three models trained with shortened upstream recipes: the ST-GCN surrogate (width 0.125) and the targets — a
   three-layer MLP and a tiny 2s-AGCN joint stream (``training.png``: their learning curves);
   each is checked against the accuracy the config's ``[expected_accuracy]`` states;
3. the surrogate's correctly classified test samples; the first 32 of them are attacked;
4. TASAR's post-trained Bayesian heads and the motion (tvAR) coefficients of the attacked samples; BA's SWAG
   fine-tuning of the surrogate;
5. I-FGSM, MI-FGSM, SMART, DIM, BA and TASAR from ST-GCN with 20 iterations (the paper uses 200), ε = 0.01;
6. every adversarial set evaluated on every model: ``results.md`` (tables in the paper's layout), ``results.csv``,
   ``results.json``, ``heatmap.png`` and the adversarial sets under ``attacks/``.

An interrupted demo resumes where it stopped when run again with the same ``--workdir``. The numbers come from
tiny models trained for minutes on synthetic data; they show the pipeline working, not the paper's results.

Run: ``tasar-jax demo [--workdir tasar-demo] [--epochs N]``.
"""

from __future__ import annotations

import pathlib
import time

from rich.console import Console
from rich.table import Table

from tasar_jax import checkpoints
from tasar_jax.benchmark import config as bconfig
from tasar_jax.benchmark import runner
from tasar_jax.data import formats, show, synthetic
from tasar_jax.evaluation import report

CONFIG = pathlib.Path(__file__).resolve().parent / "configs" / "demo.toml"


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


def demo_config(*, epochs: int | None = None, seed: int = 0, iterations: int | None = None,
                samples: int | None = None, config=CONFIG) -> dict:
    """The demo's benchmark config (a dict) with optional overrides.

    ``epochs`` replaces every model's epoch count (learning-rate steps at 50 % and 80 % of it, warm-up at most
    one epoch); ``iterations`` and ``samples`` replace the attack defaults.
    """
    raw = bconfig.read(config)
    raw["seed"] = seed
    if epochs is not None:
        milestones = sorted({max(1, round(epochs * f)) for f in (0.5, 0.8)})
        for model in raw["models"].values():
            train = dict(model.get("train", {}), epochs=epochs, milestones=milestones)
            if train.get("warmup_epochs"):
                train["warmup_epochs"] = min(1, epochs)
            model["train"] = train
    attack = dict(raw.get("attack", {}))
    if iterations is not None:
        attack["iterations"] = iterations
    if samples is not None:
        attack["samples"] = samples
    raw["attack"] = attack
    return raw


def _models_table(results: dict) -> Table:
    table = Table(title="models (synthetic test set)")
    for column in ("model", "architecture", "parameters", "best epoch", "test accuracy", "train time"):
        table.add_column(column, justify="left" if column in ("model", "architecture") else "right")
    for name, m in results["models"].items():
        table.add_row(name, m["arch"], f"{m['num_parameters'] or 0:,}", str(m["epoch"]), f"{m['accuracy']:.1%}",
                      f"{m['seconds']:.0f} s")
    return table


def run(workdir="tasar-demo", *, epochs: int | None = None, seed: int = 0, console: Console | None = None,
        iterations: int | None = None, samples: int | None = None, resume: bool = True,
        progress: bool = True) -> dict:
    """Runs the demo benchmark in ``workdir``; returns the benchmark results (see ``run_benchmark``) plus
    ``figures`` and the wall-clock ``seconds``."""
    console = console or Console()
    workdir = pathlib.Path(workdir)
    started = time.time()
    raw = demo_config(epochs=epochs, seed=seed, iterations=iterations, samples=samples)
    cfg = bconfig.parse(raw)
    results = runner.run_benchmark(cfg, workdir, resume=resume, progress=progress, console=console)

    test_file = workdir / "data" / cfg.dataset / cfg.data.test_file
    x_test, y_test = formats.load_dataset_file(test_file, cfg.dataset)
    names = synthetic.class_names(cfg.dataset)
    figures = [show.plot_sequences(x_test, y_test, names, workdir / "sequences.png", cfg.dataset)]
    histories = {}
    for name in results["models"]:
        meta = checkpoints.read_metadata(workdir / "models" / name)
        if "history" in meta:
            histories[name] = meta["history"]
    figures.append(plot_history(histories, workdir / "training.png"))

    console.rule("[bold]results")
    console.print(_models_table(results))
    for name, expected in raw.get("expected_accuracy", {}).items():
        reached = results["models"].get(name, {}).get("accuracy")
        if reached is not None and reached < expected:
            console.print(f"[yellow]{name} reached {reached:.1%}, below the {expected:.0%} the demo config expects "
                          "(results are deterministic per machine, not across machines)")
    gathered = results["surrogates"][cfg.surrogates[0]]
    iters = cfg.attacks[0].hyper.get("iterations")
    console.print(f"attacked: the first {gathered['num_samples']} of the {gathered['gathered']} test samples "
                  f"{cfg.surrogates[0]} classifies correctly; {iters} iterations (paper: 200), "
                  f"ε = {cfg.attacks[0].hyper.get('epsilon')}; * = white-box; average over the other models")
    console.print("each rate ± the larger side of its 95 % Wilson interval; bold: that attack beats every other one "
                  "on the same samples (exact McNemar, Holm-adjusted, p < 0.05)")
    console.print(report.rich_table(results["cells"], title="transfer success rate (%), all attacked samples"))
    console.print(report.rich_table(results["cells"], "success_rate_on_correct",
                                    title="transfer success rate (%), samples the target classifies correctly"))
    for s in results["skipped"]:
        console.print(f"[yellow]skipped {s['surrogate']} / {s['attack']}: {s['reason']}")
    results["figures"] = [str(f) for f in figures]
    results["seconds"] = time.time() - started
    console.print(f"report {workdir / 'results.md'}; heatmap {workdir / 'heatmap.png'}; figures "
                  f"{', '.join(results['figures'])}; total {results['seconds']:.0f} s")
    return results
