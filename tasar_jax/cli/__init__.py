"""Command line: ``tasar-jax <command>``. Parses arguments and calls one library function per command.

One module per group of commands (``models``, ``attacks``, ``defences``, ``studies``). Nothing imports this package;
it is the only place in ``tasar_jax`` that imports ``converters`` and ``experiments``.
"""

from __future__ import annotations

import argparse
import sys

from tasar_jax.cli import attacks, defences, models, studies
from tasar_jax.cli.common import console


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasar-jax", description="TASAR transfer attacks and the RobustBenchHAR benchmark, in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (studies, models, attacks, defences):
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, ImportError, FileNotFoundError) as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
