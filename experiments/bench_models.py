"""Forward and forward+backward time of every zoo model on this machine, JAX against the PyTorch reference.

For each architecture and dataset shape (HDM05: (B, 3, 60, 25, 1), 65 classes; NTU60: (B, 3, 60, 25, 2), 60
classes) at ``--width`` (1 = upstream size), in eval mode with random weights:

- ``forward``: the logits, one jitted program (what prediction and transfer evaluation run);
- ``input_gradient``: the logits and the input gradient of the cross-entropy, one forward and one VJP (the unit of
  every gradient attack on a frozen surrogate; the weights get no gradient).

Times are medians over ``--repeats`` calls after the first (JAX: the first call compiles, reported as
``compile_s``), in seconds per sample. The torch side exists for the architectures with a reference module
(``converters/reference``: ST-GCN, CTR-GCN): the same computation with ``torch.no_grad`` / ``requires_grad`` on the
input only, and ``ratio`` = torch / JAX (> 1: JAX is faster).

    python experiments/bench_models.py --batch 8 --out bench_models.json

JSON: ``{"device", "machine", "command", "batch", "width", "models": {arch: {dataset: {"jax": {"forward_s",
"input_gradient_s", "compile_s"}, "torch": {...} or null, "ratio": {...} or null}}}}``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

if __package__ in (None, ""):  # `python experiments/<name>.py` from a checkout: experiments/ is not installed
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from experiments import timing  # noqa: E402
from tasar_jax import losses, models
from tasar_jax.attacks import base
from tasar_jax.data import layouts

ZOO = ("stgcn", "ctrgcn", "frhead", "msg3d_joint", "agcn_joint", "sttformer", "skateformer", "mlp")
TORCH_REFERENCE = ("stgcn", "ctrgcn")


def batch(dataset: str, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random batch (B, 3, 60, 25, M) in ``dataset``'s shape and labels in its class range."""
    spec = layouts.get_dataset(dataset)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (size, 3, layouts.NUM_FRAMES, 25, spec.num_persons)).astype(np.float32)
    return x, rng.integers(0, spec.num_classes, size).astype(np.int32)


def jax_times(arch: str, dataset: str, width: float, x, y, repeats: int) -> dict:
    """Seconds per call of the jitted forward and forward+input-VJP, and their compile seconds."""
    model = models.create(arch, dataset, **({} if arch == "mlp" else {"width": width}))
    surrogate = base.Surrogate.from_model(model)  # eval mode, as the attacks see it
    forward = jax.jit(surrogate.apply_fn)

    @jax.jit
    def input_gradient(params, x, y):
        loss = lambda x: jnp.sum(losses.cross_entropy(surrogate.apply_fn(params, x), y))  # noqa: E731
        return jax.value_and_grad(loss)(x)

    params, xb, yb = surrogate.params, jnp.asarray(x), jnp.asarray(y)
    compile_f, forward_s, _ = timing.first_and_steady(lambda: jax.block_until_ready(forward(params, xb)), repeats)
    compile_g, gradient_s, _ = timing.first_and_steady(
        lambda: jax.block_until_ready(input_gradient(params, xb, yb)), repeats)
    return {"forward_s": forward_s, "input_gradient_s": gradient_s, "compile_s": compile_f + compile_g}


def torch_times(arch: str, dataset: str, width: float, x, y, repeats: int) -> dict:
    """Seconds per call of the torch reference module's forward (no_grad) and forward+backward to the input."""
    import torch
    import torch.nn.functional as F

    from tasar_jax.converters import reference

    torch.manual_seed(0)
    module = reference.build(arch, dataset, width=width).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    xb, yb = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def forward():
        with torch.no_grad():
            return module(xb)

    def input_gradient():
        xg = xb.clone().requires_grad_(True)
        F.cross_entropy(module(xg), yb, reduction="sum").backward()
        return xg.grad

    return {"forward_s": timing.median_seconds(forward, repeats, warmup=1),
            "input_gradient_s": timing.median_seconds(input_gradient, repeats, warmup=1)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ZOO), help="comma-separated architectures")
    parser.add_argument("--datasets", default="hdm05,ntu60")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (1 = upstream; not the MLP)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true", help="JAX only")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    archs, datasets = args.models.split(","), args.datasets.split(",")
    for arch in archs:
        models.entry(arch)  # an unknown name fails before anything runs
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be ≥ 1")
    with_torch = not args.no_torch
    if with_torch:
        import torch  # noqa: F401  (timing.machine reports its version and threads)
    per_sample = lambda t: {k: v if k == "compile_s" else v / args.batch for k, v in t.items()}  # noqa: E731
    table = {}
    for arch in archs:
        for dataset in datasets:
            x, y = batch(dataset, args.batch)
            jax_t = per_sample(jax_times(arch, dataset, args.width, x, y, args.repeats))
            torch_t = (per_sample(torch_times(arch, dataset, args.width, x, y, args.repeats))
                       if with_torch and arch in TORCH_REFERENCE else None)
            ratio = None if torch_t is None else {k: torch_t[k] / jax_t[k] for k in ("forward_s", "input_gradient_s")}
            table.setdefault(arch, {})[dataset] = {"jax": jax_t, "torch": torch_t, "ratio": ratio}
            line = (f"{arch:12s} {dataset:6s} JAX forward {jax_t['forward_s'] * 1e3:8.2f} ms/sample, "
                    f"forward+input gradient {jax_t['input_gradient_s'] * 1e3:8.2f} ms/sample "
                    f"(compile {jax_t['compile_s']:.1f} s)")
            if torch_t is not None:
                line += (f"; torch {torch_t['forward_s'] * 1e3:.2f} / {torch_t['input_gradient_s'] * 1e3:.2f} ms "
                         f"(torch/JAX {ratio['forward_s']:.2f}× / {ratio['input_gradient_s']:.2f}×)")
            print(line, flush=True)
    result = {"device": str(jax.devices()[0]), "machine": timing.machine(),
              "command": timing.command("bench_models.py", argv), "batch": args.batch, "width": args.width,
              "models": table}
    if args.out:
        timing.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
