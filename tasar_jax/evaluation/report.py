"""Benchmark reports: transfer tables in the paper's layout (Markdown, rich), a CSV of every cell, a heatmap PNG.

Layout (paper.md §4): one row per (surrogate, attack), one column per target model plus the average. Cells are
untargeted (or targeted) success rates in percent. A column whose target *is* the row's surrogate is the
white-box rate; it is marked ``*`` and left out of the average, which is over the black-box targets only
(docs/decisions.md E4).

Uncertainty (:mod:`.stats`): a cell reads ``43.1 ± 3.0``: the rate and the larger side of its 95 % Wilson
interval (the exact bounds are in the CSV and JSON as ``<metric>_low``/``_high``). A rate is **bold** when that
attack is significantly best for its surrogate and target: exact McNemar tests against every other attack on the
same samples, Holm-adjusted over all pairs of attacks of that surrogate and target, all below ``alpha`` = 0.05.
The average column is a mean of rates over targets and carries no interval. Each surrogate's block ends with a row
``n``: the samples each rate is over (for the on-correct rate, the target's correctly classified ones).
"""

from __future__ import annotations

import csv
import io
import math
import pathlib

import numpy as np

from tasar_jax.data.formats import atomic_path
from tasar_jax.evaluation import stats

METRICS = ("success_rate", "success_rate_on_correct", "clean_accuracy")
CELL_FIELDS = ("surrogate", "attack", "method", "target", "success_rate", "success_rate_low", "success_rate_high",
               "clean_accuracy", "clean_accuracy_low", "clean_accuracy_high", "success_rate_on_correct",
               "success_rate_on_correct_low", "success_rate_on_correct_high", "num_samples", "num_clean_correct")
PAIR_FIELDS = ("metric", "surrogate", "target", "a", "b", "n", "a_only", "b_only", "difference", "difference_low",
               "difference_high", "p_value", "p_holm")
CONFIDENCE, ALPHA = 0.95, 0.05


def counts(cell: dict, metric: str) -> tuple[int, int] | None:
    """``(successes, trials)`` behind ``cell[metric]``, or None when the cell has no counts (or no value)."""
    value = cell.get(metric)
    trials = cell.get("num_clean_correct" if metric == "success_rate_on_correct" else "num_samples")
    if value is None or trials is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if metric == "clean_accuracy":
        return int(cell["num_clean_correct"]), int(trials)
    return int(round(value * trials)), int(trials)


def with_intervals(cells: list[dict], confidence: float = CONFIDENCE) -> list[dict]:
    """Copies of ``cells`` with ``<metric>_low``/``<metric>_high`` (Wilson) for every metric that has counts."""
    out = []
    for cell in cells:
        cell = dict(cell)
        for metric in METRICS:
            k_n = counts(cell, metric)
            if k_n is not None and k_n[1] > 0:
                cell[f"{metric}_low"], cell[f"{metric}_high"] = stats.wilson_interval(*k_n, confidence)
        out.append(cell)
    return out


def outcomes(cell: dict, metric: str, limit: int | None = None) -> np.ndarray | None:
    """Per-sample success (bool array) behind ``cell[metric]`` on the first ``limit`` attacked samples, from the
    cell's ``hits``/``clean_correct`` strings of 0/1; None when the cell does not carry them."""
    if "hits" not in cell or metric not in ("success_rate", "success_rate_on_correct"):
        return None
    flags = lambda key: np.frombuffer(cell[key][:limit].encode(), np.uint8) == ord("1")  # noqa: E731
    hits = flags("hits")
    return hits[flags("clean_correct")] if metric == "success_rate_on_correct" else hits


def paired_comparisons(cells: list[dict], metric: str = "success_rate", confidence: float = CONFIDENCE,
                       alpha: float = ALPHA) -> tuple[list[dict], set]:
    """Every pair of attacks of one surrogate on one target (same samples: the attacked prefix both share), with
    exact McNemar p-values Holm-adjusted per (surrogate, target); returns ``(pairs, best)`` where ``best`` holds
    the ``(surrogate, attack, target)`` cells that are significantly best."""
    families: dict = {}
    for c in cells:
        if c.get(metric) is not None and "hits" in c:
            families.setdefault((c["surrogate"], c["target"], bool(c.get("targeted"))), []).append(c)
    pairs, best = [], set()
    for (surrogate, target, _), members in families.items():
        shared = min(len(c["hits"]) for c in members)
        flags = {c["attack"]: outcomes(c, metric, shared) for c in members}
        family = stats.all_pairs(flags, confidence)
        pairs += [{"metric": metric, "surrogate": surrogate, "target": target, **p} for p in family]
        winner = stats.significantly_best(flags, family, alpha)
        if winner is not None:
            best.add((surrogate, winner, target))
    return pairs, best


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


def _rate_and_margin(cell: dict | None, metric: str, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """``(rate, larger side of its Wilson interval)`` of ``cell[metric]``; None without counts."""
    k_n = counts(cell or {}, metric)
    if k_n is None or k_n[1] == 0:
        return None
    low, high = stats.wilson_interval(*k_n, confidence)
    rate = k_n[0] / k_n[1]
    return rate, max(rate - low, high - rate)


def _cell_text(cell: dict | None, metric: str, confidence: float) -> str:
    """``43.1 ± 3.0``: the rate and the larger side of its Wilson interval (just the rate without counts)."""
    if cell is None or cell.get(metric) is None:
        return "–"
    shown = _rate_and_margin(cell, metric, confidence)
    return _pct(cell[metric]) if shown is None else f"{100 * shown[0]:.1f} ± {100 * shown[1]:.1f}"


BOLD = {"plain": "{}", "markdown": "**{}**", "rich": "[bold]{}[/bold]"}


def table_rows(cells: list[dict], metric: str = "success_rate", style: str = "plain",
               confidence: float = CONFIDENCE, alpha: float = ALPHA) -> tuple[list[str], list[list[str]]]:
    """Header and string rows of the transfer table (percent ± interval, ``*`` = white-box, significantly best
    attack per surrogate and target in bold for ``style`` markdown or rich)."""
    rows, targets, values = grid(cells, metric)
    average = black_box_average(rows, targets, values)
    by_key = {(c["surrogate"], c["attack"], c["target"]): c for c in cells}
    best = paired_comparisons(cells, metric, confidence, alpha)[1] if metric != "clean_accuracy" else set()
    header = ["surrogate", "attack", *targets, "average"]
    body = []
    for i, (surrogate, attack) in enumerate(rows):
        entries = []
        for t, v in zip(targets, values[i]):
            text = _cell_text(by_key.get((surrogate, attack, t)), metric, confidence)
            text += "*" if t == surrogate and not math.isnan(v) else ""
            entries.append(BOLD[style].format(text) if (surrogate, attack, t) in best else text)
        body.append([surrogate, attack, *entries, _pct(average[i])])
        if i + 1 == len(rows) or rows[i + 1][0] != surrogate:
            body += _denominators(by_key, surrogate, [a for s_, a in rows if s_ == surrogate], targets, metric)
    return header, body


def _denominators(by_key: dict, surrogate: str, attacks: list[str], targets: list[str], metric: str) -> list:
    """The row ``n`` under a surrogate's block: the samples each rate is over (a range if attacks differ)."""
    cells = []
    for t in targets:
        ns = {k_n[1] for a in attacks if (k_n := counts(by_key.get((surrogate, a, t), {}), metric)) is not None}
        cells.append("–" if not ns else str(min(ns)) if len(ns) == 1 else f"{min(ns)}–{max(ns)}")
    return [] if all(c == "–" for c in cells) else [[surrogate, "n", *cells, ""]]


def markdown_table(cells: list[dict], metric: str = "success_rate", title: str | None = None) -> str:
    """The transfer table as GitHub Markdown."""
    header, body = table_rows(cells, metric, "markdown")
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines) + "\n"


def rich_table(cells: list[dict], metric: str = "success_rate", title: str | None = None):
    """The transfer table as a ``rich.table.Table`` (for the console)."""
    from rich.table import Table

    header, body = table_rows(cells, metric, "rich")
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


def write_csv(path, cells: list[dict], fields=CELL_FIELDS) -> pathlib.Path:
    """One line per (surrogate, attack, target) cell with every metric and its interval (or per pair of attacks,
    with ``fields=PAIR_FIELDS``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for c in cells:
        writer.writerow({k: c.get(k, "") for k in fields})
    return write_text(path, buffer.getvalue())


def differences_markdown(pairs: list[dict], reference: str, alpha: float = ALPHA) -> str:
    """``reference`` minus every other attack, per surrogate and target: the difference in points with its 95 %
    interval, ``†`` where the Holm-adjusted McNemar p-value is below ``alpha`` (from ``paired_comparisons``)."""
    mine = [p for p in pairs if reference in (p["a"], p["b"])]
    if not mine:
        return ""
    targets = list(dict.fromkeys(p["target"] for p in mine))
    rows: dict = {}
    for p in mine:
        sign = 1 if p["a"] == reference else -1
        low, high = sorted((sign * p["difference_low"], sign * p["difference_high"]))
        points = [100 * v + 0.0 for v in (sign * p["difference"], low, high)]  # + 0.0: no "-0.0"
        text = "{:+.1f} ({:+.1f}, {:+.1f})".format(*points)
        other = p["b"] if sign == 1 else p["a"]
        rows.setdefault((p["surrogate"], other), {})[p["target"]] = text + (" †" if p["p_holm"] < alpha else "")
    lines = ["| surrogate | " + reference + " minus | " + " | ".join(targets) + " |",
             "|---|---|" + "---:|" * len(targets)]
    for (surrogate, other), cells in rows.items():
        lines.append(f"| {surrogate} | {other} | " + " | ".join(cells.get(t, "–") for t in targets) + " |")
    return "\n".join(lines) + "\n"


def heatmap(cells: list[dict], out_path, metric: str = "success_rate", title: str = "") -> pathlib.Path:
    """Success rates (%) as an annotated heatmap (rows surrogate/attack, columns targets + average), PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, targets, values = grid(cells, metric)
    data = 100 * np.column_stack([values, black_box_average(rows, targets, values)])
    by_key = {(c["surrogate"], c["attack"], c["target"]): c for c in cells}
    best = paired_comparisons(cells, metric)[1]
    columns = [*targets, "average"]
    fig, ax = plt.subplots(figsize=(1.2 * len(columns) + 2.5, 0.6 * len(rows) + 1.6))
    image = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [f"{s} / {a}" for s, a in rows])
    for i in range(len(rows)):
        for j in range(len(columns)):
            if not math.isnan(data[i, j]):
                key = (*rows[i], targets[j]) if j < len(targets) else None
                text = f"{data[i, j]:.0f}" + ("*" if key and key[2] == key[0] else "")
                shown = _rate_and_margin(by_key.get(key), metric)
                if shown is not None:
                    text += f"\n±{100 * shown[1]:.0f}"
                ax.text(j, i, text, ha="center", va="center", color="white" if data[i, j] < 60 else "black",
                        fontsize=7, fontweight="bold" if key in best else "normal", linespacing=0.9)
    fig.colorbar(image, ax=ax, label=f"{metric.replace('_', ' ')} (%)")
    ax.set_title(title or "transfer success rate (* = white-box, ± 95 % Wilson, bold = significantly best)")
    fig.tight_layout()
    with atomic_path(out_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return pathlib.Path(out_path)
