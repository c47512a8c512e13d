"""Shared pieces of the command line: the console every command prints to, the flags of data-parallel and
multi-host runs."""

from __future__ import annotations

import argparse

from rich.console import Console

console = Console(soft_wrap=True)


def number(kind=int, *, above=None, at_least=None):
    """An argparse ``type``: a ``kind`` number ``> above`` or ``≥ at_least`` (a bad value is argparse's one-line
    error, exit code 2)."""
    bound = f"> {above}" if above is not None else f"≥ {at_least}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
        if (above is not None and not value > above) or (at_least is not None and not value >= at_least):
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} {bound}"
    return parse


COUNT = number(int, at_least=1)          # epochs, batch sizes, iterations, heads, ...
NON_NEGATIVE_INT = number(int, at_least=0)
POSITIVE = number(float, above=0)        # learning rates, ε, step sizes, bandwidths, widths
NON_NEGATIVE = number(float, at_least=0)


def add_scale_arguments(p) -> None:
    """Flags for chunked, sharded and multi-host runs (``tasar_jax.scale``)."""
    g = p.add_argument_group("scale (every local device is used; see README, Performance)")
    g.add_argument("--memory-budget", default=None, metavar="BYTES",
                   help="device memory one chunk may use, e.g. 4G: sizes the chunks (at most --batch-size per device)")
    g.add_argument("--distributed", action="store_true",
                   help="multi-host: jax.distributed.initialize (cluster auto-detected unless --coordinator is given)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="multi-host coordinator (process 0)")
    g.add_argument("--num-processes", type=COUNT, default=None)
    g.add_argument("--process-id", type=NON_NEGATIVE_INT, default=None)


def start_distributed(args) -> None:
    """Joins the multi-host run the flags describe (before any JAX work); nothing without them."""
    if args.distributed or args.coordinator:
        from tasar_jax import scale

        scale.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
