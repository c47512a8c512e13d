"""Stick-figure previews of skeleton sequences (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tasar_jax.data import formats, layouts  # noqa: E402

_PERSON_COLOURS = ("tab:blue", "tab:red")


def _pick_rows(labels: np.ndarray, num: int) -> list[int]:
    """Indices of up to ``num`` samples, one per distinct class first (in label order), then the rest."""
    first = {}
    for i, label in enumerate(labels):
        first.setdefault(int(label), i)
    rows = [first[k] for k in sorted(first)][:num]
    rows += [i for i in range(len(labels)) if i not in rows][: num - len(rows)]
    return rows


def plot_sequences(x, labels, class_names, out_path, dataset: str, num: int = 6, frames: int = 5) -> pathlib.Path:
    """Draws a few sequences as front-view stick figures and saves them as a PNG.

    One row per sequence (titled with its class name), ``frames`` evenly spaced frames side by side; every
    person with non-zero coordinates is drawn in its own colour. Horizontal axis is x, vertical axis is y
    (the synthetic data's convention: y up, x the subject's left, which appears on the viewer's right).

    Args:
      x: array (N, 3, T, V, M) in the common layout.
      labels: int array (N,).
      class_names: sequence of names indexed by label.
      out_path: PNG file to write (written atomically).
      dataset: ``hdm05``, ``ntu60`` or ``ntu120``; selects the bones (``layouts`` parents).
      num: number of sequences (rows); distinct classes are preferred.
      frames: frames shown per sequence.

    Returns:
      The path of the written PNG.
    """
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    parents = layouts.get_dataset(dataset).parents
    bones = [(j, p) for j, p in enumerate(parents) if j != p]
    rows = _pick_rows(labels, min(num, len(labels)))
    t_idx = np.linspace(0, x.shape[2] - 1, frames).round().astype(int)
    fig, axes = plt.subplots(len(rows), frames, figsize=(1.8 * frames, 2.4 * len(rows)), squeeze=False)
    for r, n in enumerate(rows):
        seq = x[n]  # (3, T, V, M)
        present = [m for m in range(seq.shape[-1]) if np.abs(seq[..., m]).max() > 0]
        pts = np.concatenate([seq[:, :, :, m].reshape(3, -1) for m in present], axis=1) if present else seq[:, :1, 0, 0]
        lo, hi = pts[:2].min(axis=1), pts[:2].max(axis=1)
        centre, half = (lo + hi) / 2, max((hi - lo).max() / 2, 1e-3) * 1.08
        for c, t in enumerate(t_idx):
            ax = axes[r, c]
            for m in present:
                colour = _PERSON_COLOURS[m % len(_PERSON_COLOURS)]
                for j, p in bones:
                    ax.plot(seq[0, t, [j, p], m], seq[1, t, [j, p], m], color=colour, lw=1.5)
                ax.scatter(seq[0, t, :, m], seq[1, t, :, m], s=4, color="k", zorder=3)
            ax.set_xlim(centre[0] - half, centre[0] + half)
            ax.set_ylim(centre[1] - half, centre[1] + half)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"t={t}", fontsize=7)
        label = int(labels[n])
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        axes[r, 0].set_ylabel(f"{name} ({label})", fontsize=9)
    fig.tight_layout()
    out_path = pathlib.Path(out_path)
    try:
        with formats.atomic_path(out_path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=90)
    finally:
        plt.close(fig)
    return out_path
