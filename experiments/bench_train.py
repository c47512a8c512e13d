"""Training speed on this machine: one SGD step per sample, JAX against the PyTorch reference modules.

For ST-GCN and CTR-GCN (the architectures with a torch reference module, ``converters/reference``), at each width:
the JAX side is ``training.Trainer`` with the upstream recipe (``recipes.recipe``: SGD, momentum 0.9, Nesterov,
coupled weight decay, the model's dropout); the torch side is the reference module in train mode with
``torch.optim.SGD`` on the same settings and ``F.cross_entropy``. Same random HDM05-shaped batch (N, 3, 60, 25, 1),
same batch size. Times are medians over ``--repeats`` steps after warm-up steps (JAX: compilation excluded), in
seconds per sample; ``ratio`` = torch / JAX (> 1: JAX is faster).

    python experiments/bench_train.py --batch 16 --out bench_train.json

JSON: ``{"device", "machine", "command", "batch", "models": {"stgcn": {"jax_s_per_sample": ...,
"torch_s_per_sample": ..., "ratio": ...}, "ctrgcn": {...}}, "by_width": {"0.125": {...}}}``; ``models`` is full
width, ``by_width`` every width measured.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import numpy as np

if __package__ in (None, ""):  # `python experiments/<name>.py` from a checkout: experiments/ is not installed
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from experiments import timing  # noqa: E402
from tasar_jax import models, recipes, training

ARCHS = ("stgcn", "ctrgcn")


def jax_step_seconds(arch: str, width: float, x: np.ndarray, y: np.ndarray, warmup: int, repeats: int) -> float:
    """Median seconds of one jitted training step of ``training.Trainer`` on (x, y)."""
    model = models.create(arch, "hdm05", width=width, seed=0)
    trainer = training.Trainer(model, recipes.recipe(arch, batch_size=len(y)), steps_per_epoch=1)
    xb, yb, key = jax.numpy.asarray(x), jax.numpy.asarray(y), jax.random.key(0)
    return timing.median_seconds(lambda: jax.block_until_ready(trainer.train_step(xb, yb, key)), repeats, warmup)


def torch_step_seconds(arch: str, width: float, x: np.ndarray, y: np.ndarray, warmup: int, repeats: int) -> float:
    """Median seconds of one training step of the torch reference module with the same recipe's SGD."""
    import torch
    import torch.nn.functional as F

    from tasar_jax.converters import reference

    torch.manual_seed(0)
    module = reference.build(arch, "hdm05", width=width).train()
    cfg = recipes.recipe(arch)
    optimiser = torch.optim.SGD(module.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum,
                                nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    xb, yb = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def step():
        optimiser.zero_grad(set_to_none=True)
        F.cross_entropy(module(xb), yb).backward()
        optimiser.step()

    return timing.median_seconds(step, repeats, warmup)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--widths", default="1.0,0.125", help="comma-separated channel multipliers (1.0 = upstream)")
    parser.add_argument("--warmup", type=int, default=2, help="steps before timing (the first JAX one compiles)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    import torch  # noqa: F401  (timing.machine reports its version and threads)

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, (args.batch, 3, 60, 25, 1)).astype(np.float32)
    y = rng.integers(0, 65, args.batch).astype(np.int32)
    by_width = {}
    for width in (float(w) for w in args.widths.split(",")):
        row = {}
        for arch in ARCHS:
            jax_s = jax_step_seconds(arch, width, x, y, args.warmup, args.repeats) / args.batch
            torch_s = torch_step_seconds(arch, width, x, y, args.warmup, args.repeats) / args.batch
            row[arch] = {"jax_s_per_sample": jax_s, "torch_s_per_sample": torch_s, "ratio": torch_s / jax_s}
            print(f"{arch} width {width:g}: JAX {jax_s * 1e3:.1f} ms/sample, torch {torch_s * 1e3:.1f} ms/sample, "
                  f"torch/JAX {torch_s / jax_s:.2f}×", flush=True)
        by_width[f"{width:g}"] = row
    result = {"device": str(jax.devices()[0]), "machine": timing.machine(),
              "command": timing.command("bench_train.py", argv), "batch": args.batch,
              "models": by_width.get("1", {}), "by_width": by_width}
    if args.out:
        timing.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
