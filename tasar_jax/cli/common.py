"""Shared pieces of the command line: the console every command prints to, the flags of data-parallel and
multi-host runs."""

from __future__ import annotations

from rich.console import Console

console = Console(soft_wrap=True)


def add_scale_arguments(p) -> None:
    """Flags for chunked, sharded and multi-host runs (``tasar_jax.scale``)."""
    g = p.add_argument_group("scale (every local device is used; see README, Performance)")
    g.add_argument("--memory-budget", default=None, metavar="BYTES",
                   help="device memory one chunk may use, e.g. 4G: sizes the chunks (at most --batch-size per device)")
    g.add_argument("--distributed", action="store_true",
                   help="multi-host: jax.distributed.initialize (cluster auto-detected unless --coordinator is given)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="multi-host coordinator (process 0)")
    g.add_argument("--num-processes", type=int, default=None)
    g.add_argument("--process-id", type=int, default=None)


def start_distributed(args) -> None:
    """Joins the multi-host run the flags describe (before any JAX work); nothing without them."""
    if args.distributed or args.coordinator:
        from tasar_jax import scale

        scale.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
