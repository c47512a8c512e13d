"""Parity of converted upstream checkpoints with the golden fixtures, as a table.

Run: ``python -m experiments.parity [--fixtures ../shared/fixtures]`` (needs the ``torch`` extra to read ``.pth``).
Prints, per model, the max abs logit difference and the relative L2 error of the input gradient of
``Σ logits ⊙ cot`` in float32 and in float64 (``jax_enable_x64``) against the upstream PyTorch arrays.
"""

from __future__ import annotations

import argparse
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from rich.console import Console
from rich.table import Table

import converters
from tasar_jax import models

# (architecture, upstream checkpoint stems (joint then bone for the ensembles), io fixture stem)
MODELS = (
    ("stgcn", ("STGCN",), "STGCN"),
    ("ctrgcn", ("CTRGCN",), "CTRGCN"),
    ("frhead", ("FRHEAD",), "FRHEAD"),
    ("msg3d_joint", ("MSG3D_joint",), "MSG3D_joint"),
    ("msg3d_bone", ("MSG3D_bone",), "MSG3D_bone"),
    ("msg3d", ("MSG3D_joint", "MSG3D_bone"), "MSG3D"),
    ("agcn_joint", ("AGCN_joint",), "AGCN_joint"),
    ("agcn_bone", ("AGCN_bone",), "AGCN_bone"),
    ("agcn", ("AGCN_joint", "AGCN_bone"), "AGCN"),
    ("sttformer", ("STTFormer",), "STTFormer"),
    ("skateformer", ("SkateFormer",), "SkateFormer"),
    ("mlp", ("ThreeLayerMLP",), "ThreeLayerMLP"),
)


def _errors(model, x, cot, logits_ref, grad_ref):
    graph, state = nnx.split(model)  # one jitted program, not one dispatch per operation (slow on a GPU)
    forward = jax.jit(lambda state, x: nnx.merge(graph, state)(x))
    logits = np.asarray(forward(state, x))
    grad = np.asarray(jax.jit(jax.grad(lambda x, state: jnp.sum(forward(state, x) * cot)))(x, state))
    return np.abs(logits - logits_ref).max(), np.linalg.norm(grad - grad_ref) / np.linalg.norm(grad_ref)


def load_case(arch: str, checkpoint_stems, io_stem: str, upstream: pathlib.Path):
    """The converted eval-mode model and its io fixture arrays."""
    model = converters.convert_file(arch, "hdm05", *(upstream / f"{s}_hdm05.pth.xz" for s in checkpoint_stems))
    model.eval()
    return model, np.load(upstream / f"{io_stem}_hdm05_io.npz")


def measure(arch: str, checkpoint_stems, io_stem: str, upstream: pathlib.Path) -> dict:
    """float32 and float64 errors of one converted checkpoint against its io fixture."""
    model, io = load_case(arch, checkpoint_stems, io_stem, upstream)
    f32 = _errors(model, jnp.asarray(io["x"]), jnp.asarray(io["cot"]), io["logits"], io["grad_x"])
    with jax.enable_x64(True):
        f64 = _errors(models.cast(model, jnp.float64), jnp.asarray(io["x64"]), jnp.asarray(io["cot"], jnp.float64),
                      io["logits64"], io["grad_x64"])
    return {"logits32": f32[0], "grad32": f32[1], "logits64": f64[0], "grad64": f64[1],
            "max_abs_logit": float(np.abs(io["logits"]).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("TASAR_FIXTURES", pathlib.Path(__file__).resolve().parents[1].parent / "shared/fixtures")
    parser.add_argument("--fixtures", default=default)
    upstream = pathlib.Path(parser.parse_args().fixtures) / "upstream"
    table = Table(title="converted checkpoints vs upstream PyTorch (HDM05 fixtures)")
    for column in ("model", "max|logits|", "f32 Δlogits", "f32 grad rel L2", "f64 Δlogits", "f64 grad rel L2"):
        table.add_column(column, justify="right")
    for arch, checkpoint_stems, io_stem in MODELS:
        r = measure(arch, checkpoint_stems, io_stem, upstream)
        table.add_row(arch, f"{r['max_abs_logit']:.3g}", *(f"{r[k]:.1e}" for k in
                                                             ("logits32", "grad32", "logits64", "grad64")))
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
