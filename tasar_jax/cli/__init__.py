"""Command line: ``tasar-jax <command>``. Parses arguments and calls one library function per command.

One module per group of commands (``models``, ``attacks``, ``defences``, ``studies``). Nothing imports this package;
it is the only place in ``tasar_jax`` that imports ``tasar_jax.converters`` (which may need torch).
"""

from __future__ import annotations

import argparse
import sys

from tasar_jax.cli import attacks, defences, models, studies
from tasar_jax.cli.common import console


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasar-jax", description="TASAR transfer attacks and the RobustBenchHAR benchmark, in JAX.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (studies, models, attacks, defences):
        group.add_commands(sub)
    return parser


def user_message(err: BaseException) -> str:
    """One line naming the problem: an OS error as 'reason: path', anything else its message's first line."""
    if isinstance(err, OSError) and err.strerror:
        paths = [str(f) for f in (err.filename, err.filename2) if f is not None]
        return f"{err.strerror}: {' → '.join(paths)}" if paths else err.strerror
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0].rstrip(".")


def main(argv: list[str] | None = None) -> int:
    """Runs one command. A user error (bad value, missing or unreadable file, missing optional package) prints one
    line and returns 2; anything else is reported as an internal error (return 1); ``--debug`` shows tracebacks."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, ImportError, OSError) as err:
        if args.debug:
            raise
        console.print(f"[bold red]error:[/] {user_message(err)}", highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]")
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI's last line of defence
        if args.debug:
            raise
        console.print(f"[bold red]internal error:[/] {type(err).__name__}: {user_message(err)}. This is a bug in "
                      "tasar-jax; run the command again with --debug (before the command name) for the traceback.",
                      highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
