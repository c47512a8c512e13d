"""Whole studies: ``benchmark CONFIG`` (train or convert, gather, post-train, attack, evaluate, report) and
``demo`` (the benchmark at demo scale on the embedded synthetic dataset)."""

from __future__ import annotations

import pathlib

from tasar_jax.cli.common import COUNT, console


def _convert(arch, dataset, checkpoint, bone_checkpoint=None):
    from tasar_jax import converters  # torch is needed only when a config converts upstream checkpoints

    return converters.convert_file(arch, dataset, checkpoint, bone_checkpoint)


def _dry_run(args) -> None:
    from rich.table import Table

    from tasar_jax.benchmark import parse, plan

    cfg = parse(args.config)
    console.print(f"[bold]{cfg.name}[/bold]: timing every model on this machine (random weights) …")
    rows = plan.plan(cfg)
    table = Table(title=f"{cfg.name}: stage plan and estimated time on this machine")
    for column in ("stage", "work", "estimate"):
        table.add_column(column, justify="right" if column == "estimate" else "left")
    for row in rows:
        table.add_row(row["stage"], row["work"], plan.format_seconds(row["seconds"]))
    total = sum(r["seconds"] for r in rows)
    table.add_row("[bold]total", "", f"[bold]{plan.format_seconds(total)}")
    console.print(table)
    console.print("Compilation, data generation and anything else running on the machine are not counted.")


def _benchmark(args) -> None:
    from tasar_jax.benchmark import run_benchmark
    from tasar_jax.evaluation import report

    if args.dry_run:
        return _dry_run(args)

    workdir = args.workdir or pathlib.Path("runs") / args.config.stem
    results = run_benchmark(args.config, workdir, resume=not args.fresh, progress=not args.no_progress,
                            console=console, converter=_convert)
    console.print(report.rich_table(results["cells"], title="transfer success rate (%)"))
    for name, path in results["files"].items():
        console.print(f"{name}: {path}")


def _demo(args) -> None:
    from tasar_jax import demo

    demo.run(args.workdir, epochs=args.epochs, seed=args.seed, console=console)


def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="the transfer benchmark at demo scale on the embedded synthetic dataset")
    p.add_argument("--workdir", default="tasar-demo")
    p.add_argument("--epochs", type=COUNT, default=None, help="override every model's training epochs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)

    p = sub.add_parser("benchmark", help="run (or resume) a benchmark config: models × attacks × targets")
    p.add_argument("config", type=pathlib.Path, help="a .toml/.json config, e.g. experiments/configs/hdm05.toml")
    p.add_argument("--workdir", type=pathlib.Path, default=None, help="run folder (default: runs/<config name>)")
    p.add_argument("--fresh", action="store_true", help="recompute every stage instead of resuming")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--dry-run", action="store_true",
                   help="print the stage plan and its estimated time on this machine; run nothing")
    p.set_defaults(func=_benchmark)
