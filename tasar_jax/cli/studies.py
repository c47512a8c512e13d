"""Whole studies: ``demo`` (the benchmark at demo scale on the embedded dataset)."""

from __future__ import annotations

from tasar_jax.cli.common import console


def _demo(args) -> None:
    from experiments import demo

    demo.run(args.workdir, epochs=args.epochs, seed=args.seed, console=console)


def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="synthesize data → train ST-GCN → test → gather, with a summary")
    p.add_argument("--workdir", default="tasar-demo")
    p.add_argument("--epochs", type=int, default=None, help="default: the demo's own setting")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)
