"""Benchmark reports: transfer tables in the paper's layout (Markdown, rich), a CSV of every cell, a heatmap PNG.

Layout (paper.md §4): one row per (surrogate, attack), one column per target model plus the average. Cells are
untargeted (or targeted) success rates in percent. A column whose target *is* the row's surrogate is the
white-box rate; it is marked ``*`` and left out of the average, which is over the black-box targets only
(docs/decisions.md E4).
"""

from __future__ import annotations

import csv
import io
import math
import pathlib

import numpy as np

from tasar_jax.data.formats import atomic_path

CELL_FIELDS = ("surrogate", "attack", "method", "target", "success_rate", "clean_accuracy",
               "success_rate_on_correct", "num_samples", "num_clean_correct")


def grid(cells: list[dict], metric: str = "success_rate") -> tuple[list[tuple[str, str]], list[str], np.ndarray]:
    """``(rows, targets, values)``: rows (surrogate, attack) and targets in first-seen order, values (R, T) with
    NaN where a cell is missing or skipped."""
    rows, targets = [], []
    for c in cells:
        row = (c["surrogate"], c["attack"])
        if row not in rows:
            rows.append(row)
        if c["target"] not in targets:
            targets.append(c["target"])
    values = np.full((len(rows), len(targets)), np.nan)
    for c in cells:
        value = c.get(metric)
        if value is not None:
            values[rows.index((c["surrogate"], c["attack"])), targets.index(c["target"])] = value
    return rows, targets, values


def black_box_average(rows, targets, values) -> np.ndarray:
    """Mean over the targets that are not the row's surrogate (NaN cells ignored; NaN if none)."""
    out = np.full(len(rows), np.nan)
    for i, (surrogate, _) in enumerate(rows):
        keep = [v for t, v in zip(targets, values[i]) if t != surrogate and not math.isnan(v)]
        if keep:
            out[i] = float(np.mean(keep))
    return out


def _pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def table_rows(cells: list[dict], metric: str = "success_rate") -> tuple[list[str], list[list[str]]]:
    """Header and string rows of the transfer table (percent, ``*`` = white-box)."""
    rows, targets, values = grid(cells, metric)
    average = black_box_average(rows, targets, values)
    header = ["surrogate", "attack", *targets, "average"]
    body = []
    for i, (surrogate, attack) in enumerate(rows):
        entries = [_pct(v) + ("*" if t == surrogate and not math.isnan(v) else "") for t, v in zip(targets, values[i])]
        body.append([surrogate, attack, *entries, _pct(average[i])])
    return header, body


def markdown_table(cells: list[dict], metric: str = "success_rate", title: str | None = None) -> str:
    """The transfer table as GitHub Markdown."""
    header, body = table_rows(cells, metric)
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines) + "\n"


def rich_table(cells: list[dict], metric: str = "success_rate", title: str | None = None):
    """The transfer table as a ``rich.table.Table`` (for the console)."""
    from rich.table import Table

    header, body = table_rows(cells, metric)
    table = Table(title=title)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i < 2 else "right")
    for row in body:
        table.add_row(*row)
    return table


def perturbation_markdown(attacks: list[dict]) -> str:
    """One row per attack log: white-box rate and perturbation statistics (see ``metrics.perturbation_stats``)."""
    header = ["surrogate", "attack", "samples", "white-box %", "L∞", "L2", "Δ bone length", "Δ acceleration",
              "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for a in attacks:
        p = a["perturbation"]
        lines.append("| " + " | ".join([
            a["surrogate"], a["attack"], str(a["num_samples"]), _pct(a["white_box"]["success_rate"]),
            f"{p['linf']:.4g}", f"{p['l2']:.4g}", f"{p['bone_length_change']:.3g}",
            f"{p['acceleration_change']:.3g}", f"{a['seconds']:.0f}"]) + " |")
    return "\n".join(lines) + "\n"


def write_text(path, text: str) -> pathlib.Path:
    """Writes ``text`` to ``path`` atomically."""
    with atomic_path(path, suffix=pathlib.Path(path).suffix) as tmp:
        pathlib.Path(tmp).write_text(text)
    return pathlib.Path(path)


def write_csv(path, cells: list[dict]) -> pathlib.Path:
    """One line per (surrogate, attack, target) cell with every metric."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CELL_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for c in cells:
        writer.writerow({k: c.get(k, "") for k in CELL_FIELDS})
    return write_text(path, buffer.getvalue())


def heatmap(cells: list[dict], out_path, metric: str = "success_rate", title: str = "") -> pathlib.Path:
    """Success rates (%) as an annotated heatmap (rows surrogate/attack, columns targets + average), PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, targets, values = grid(cells, metric)
    data = 100 * np.column_stack([values, black_box_average(rows, targets, values)])
    columns = [*targets, "average"]
    fig, ax = plt.subplots(figsize=(1.2 * len(columns) + 2.5, 0.45 * len(rows) + 1.6))
    image = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [f"{s} / {a}" for s, a in rows])
    for i in range(len(rows)):
        for j in range(len(columns)):
            if not math.isnan(data[i, j]):
                white = j < len(targets) and targets[j] == rows[i][0]
                ax.text(j, i, f"{data[i, j]:.0f}" + ("*" if white else ""), ha="center", va="center",
                        color="white" if data[i, j] < 60 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, label=f"{metric.replace('_', ' ')} (%)")
    ax.set_title(title or "transfer success rate (* = white-box)")
    fig.tight_layout()
    with atomic_path(out_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return pathlib.Path(out_path)
