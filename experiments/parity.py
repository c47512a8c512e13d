"""Parity of converted upstream checkpoints with the golden fixtures, as a table.

Run: ``python -m experiments.parity [--fixtures ../shared/fixtures]`` (needs the ``torch`` extra to read ``.pth``).
Prints, per model, the max abs logit difference and the relative L2 error of the input gradient of
``Σ logits ⊙ cot`` in float32 and in float64 (``jax_enable_x64``) against the upstream PyTorch arrays.

``python -m experiments.parity --dataset ntu60`` (or ntu120): the same errors for the NTU configurations (M = 2,
60/120 classes, NTU graph), for the architectures with a torch reference module here (``converters.reference``:
ST-GCN, CTR-GCN) at full width, with random upstream-style weights (no NTU fixture checkpoints exist) and batch-norm
statistics calibrated on a random batch; the torch module runs in float32 and in float64 on the same weights.
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

from tasar_jax import converters
from tasar_jax import models
from tasar_jax.data import layouts

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


def smooth_batch(n: int, t: int, m: int, seed: int) -> np.ndarray:
    """A smooth random skeleton batch (N, 3, T, 25, M), float64."""
    rng = np.random.default_rng(seed)
    time = np.linspace(0, 1, t)[None, None, :, None, None]
    wave = 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 2, (n, 3, 1, 25, m)) * time)
    return rng.uniform(-0.5, 0.5, (n, 3, 1, 25, m)) + wave


def measure_random(arch: str, dataset: str, frames: int = 64) -> dict:
    """float32 and float64 errors of the JAX port against the torch reference module on random weights."""
    import torch

    from tasar_jax.converters import reference

    module = reference.build(arch, dataset)
    module.load_state_dict(reference.randomised_state_dict(module, seed=5), strict=True)
    persons = layouts.get_dataset(dataset).num_persons
    reference.calibrate_batch_norm(module, torch.from_numpy(smooth_batch(8, frames, persons, 9).astype(np.float32)))
    model = converters.convert(arch, dataset, {k: v.numpy() for k, v in module.state_dict().items()})
    model.eval()
    x64 = smooth_batch(2, frames, persons, 3)
    cot = np.random.default_rng(4).normal(size=(2, model.config.num_classes))
    out = {"max_abs_logit": 0.0}
    for tag, dtype, torch_dtype in (("32", np.float32, torch.float32), ("64", np.float64, torch.float64)):
        torch_module = module.to(torch_dtype)
        x = torch.from_numpy(x64.astype(dtype)).requires_grad_(True)
        logits = torch_module(x)
        (logits * torch.from_numpy(cot.astype(dtype))).sum().backward()
        want, want_grad = logits.detach().numpy(), x.grad.numpy()
        with jax.enable_x64(tag == "64"):
            jax_model = models.cast(model, jnp.float64) if tag == "64" else model
            errors = _errors(jax_model, jnp.asarray(x64.astype(dtype)), jnp.asarray(cot.astype(dtype)), want,
                             want_grad)
        out[f"logits{tag}"], out[f"grad{tag}"] = errors
        out["max_abs_logit"] = max(out["max_abs_logit"], float(np.abs(want).max()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("TASAR_FIXTURES", pathlib.Path(__file__).resolve().parents[1].parent / "shared/fixtures")
    parser.add_argument("--fixtures", default=default)
    parser.add_argument("--dataset", default="hdm05", choices=["hdm05", "ntu60", "ntu120"],
                        help="hdm05: the golden fixtures; ntu60/ntu120: torch reference modules, random weights")
    args = parser.parse_args()
    columns = ("model", "max|logits|", "f32 Δlogits", "f32 grad rel L2", "f64 Δlogits", "f64 grad rel L2")
    if args.dataset != "hdm05":
        from tasar_jax.converters import reference

        table = Table(title=f"JAX ports vs the torch reference modules ({args.dataset}, full width, random weights)")
        for column in columns:
            table.add_column(column, justify="right")
        for arch in reference.ARCHITECTURES:
            r = measure_random(arch, args.dataset)
            table.add_row(arch, f"{r['max_abs_logit']:.3g}", *(f"{r[k]:.1e}" for k in
                                                                 ("logits32", "grad32", "logits64", "grad64")))
        Console(width=120).print(table)
        return
    upstream = pathlib.Path(args.fixtures) / "upstream"
    table = Table(title="converted checkpoints vs upstream PyTorch (HDM05 fixtures)")
    for column in columns:
        table.add_column(column, justify="right")
    for arch, checkpoint_stems, io_stem in MODELS:
        r = measure(arch, checkpoint_stems, io_stem, upstream)
        table.add_row(arch, f"{r['max_abs_logit']:.3g}", *(f"{r[k]:.1e}" for k in
                                                             ("logits32", "grad32", "logits64", "grad64")))
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
