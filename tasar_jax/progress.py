"""The project's one progress bar (rich): what runs, a bar, done / total, elapsed time and, for training loops, a
status text (loss, accuracies) set with ``bar.update(task, status=...)``."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def bar(enabled: bool = True, *, status: bool = False, console=None) -> Progress:
    """A ``rich.progress.Progress`` context; ``enabled=False`` draws nothing. With ``status`` every task takes a
    ``status`` field (``bar.add_task(name, total=n, status="")``)."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if status:
        columns.append(TextColumn("{task.fields[status]}"))
    return Progress(*columns, console=console, disable=not enabled, transient=False)
