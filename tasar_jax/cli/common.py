"""Shared pieces of the command line: the console every command prints to."""

from __future__ import annotations

from rich.console import Console

console = Console(soft_wrap=True)
