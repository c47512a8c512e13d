"""Benchmark of the TASAR attack: time per adversarial example on the current device, JAX against two PyTorch
implementations measured in the same run on the same model and weights, and the surrogate passes per iteration,
counted for real while JAX traces the attack (reference.md §8: 1 forward + 1 batched backward, instead of
upstream's 63 forward + 63 backward with K = 3 heads × 20 draws).

PyTorch (``experiments/torch_tasar.py``, with ``--torch`` for the architectures that have a torch reference
module, ST-GCN and CTR-GCN): ``upstream_structure`` re-runs the network for every head and every posterior draw;
``single_vjp`` runs one forward and one batched backward per iteration, like the JAX attack. The JAX model is
converted from the torch module's random weights, so both sides compute the same function.

Run: ``python experiments/bench_tasar.py --iterations N --batch B --out bench.json [--arch stgcn] [--width 1.0]
[--no-torch] [--torch-device cuda] [--checkpoint STGCN_hdm05.pth.xz]``. Times are medians over ``--repeats`` runs
after a first (compiling) call, reported per adversarial example (``iterations`` iterations each); JSON keys:
``device``, ``iterations``, ``batch``, ``jax_s_per_example``, ``jax_compile_s``,
``torch_upstream_structure_s_per_example``, ``torch_single_vjp_s_per_example``, ratios, pass counts. Heads, SWAG
moments and AR coefficients are random (their values do not change the cost). With ``--torch-device cuda`` the torch
module and tensors live on the GPU and every timed torch call ends with ``torch.cuda.synchronize()``.
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
from tasar_jax import models
from tasar_jax.models import streams
from tasar_jax.attacks import common, tasar
from tasar_jax.posterior import heads as H


def random_posterior(key, num_classes: int, num_heads: int) -> H.Posterior:
    """K random heads (PyTorch Linear-like scale) with a small diagonal spread."""
    keys = jax.random.split(key, 4)
    bound = 1.0 / np.sqrt(num_classes)
    w = lambda k, *s: jax.random.uniform(k, (num_heads, *s), minval=-bound, maxval=bound)  # noqa: E731
    mean = H.HeadParams(w(keys[0], num_classes, num_classes), w(keys[1], num_classes),
                        w(keys[2], num_classes, num_classes), w(keys[3], num_classes))
    return H.Posterior(mean, mean, jax.tree.map(lambda a: a**2 + 1e-4, mean))


def build_surrogate(args):
    """(JAX model, apply_fn, params, torch module or None): the torch reference's random weights converted to JAX
    when it is compared, else a checkpoint or a random JAX model."""
    from tasar_jax import converters  # torch only when converting or comparing

    torch_model = None
    if args.checkpoint:
        model = converters.convert_file(args.arch, args.dataset, args.checkpoint, args.bone_checkpoint)
    elif args.torch:
        from tasar_jax.converters import reference, torch_io

        torch_model = reference.build(args.arch, args.dataset, **({} if args.width is None else {"width": args.width}))
        sd = torch_io.to_numpy_state_dict(torch_model.state_dict(), "torch reference")
        model = converters.convert(args.arch, args.dataset, sd, **({} if args.width is None else
                                                                    {"width": args.width}))
    else:
        model = models.create(args.arch, args.dataset, **({} if args.width is None else {"width": args.width}))
    return model, *common.surrogate_from_model(model, streams=True), torch_model


def torch_device(name: str):
    """``torch.device(name)`` and a function that waits for its queued work (a no-op on CPU)."""
    import torch

    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--torch-device {name}: torch {torch.__version__} sees no CUDA device")
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    return device, sync


def torch_timings(torch_model, posterior, x, labels, ar, args) -> dict:
    """Seconds per adversarial example of the two PyTorch loops (medians), on the same inputs as JAX, on
    ``args.torch_device``."""
    import torch

    from experiments import torch_tasar

    device, sync = torch_device(args.torch_device)
    torch.manual_seed(0)
    torch_model = torch_model.to(device)
    t = lambda a: torch.from_numpy(np.array(a, np.float32)).to(device)  # noqa: E731  (a writable copy)
    heads, mean, sqmean = (tuple(t(a) for a in tree) for tree in posterior)
    x0, y, ar1, ar2 = t(x), torch.from_numpy(np.asarray(labels, np.int64)).to(device), t(ar[0]), t(ar[1])
    out = {"torch_device": str(device), "torch_version": torch.__version__}
    if device.type == "cuda":
        out["torch_cuda_device"] = torch.cuda.get_device_name(device)
        out["torch_allow_tf32"] = {"matmul": torch.backends.cuda.matmul.allow_tf32,
                                   "cudnn": torch.backends.cudnn.allow_tf32}
    sync()
    for name, iteration in (("upstream_structure", torch_tasar.upstream_structure),
                            ("single_vjp", torch_tasar.single_vjp)):
        def attack(iteration=iteration):
            state = (x0.clone(), torch.zeros_like(x0), torch.zeros_like(x0))
            for _ in range(args.iterations):
                state = iteration(torch_model, heads, mean, sqmean, state, x0, y, ar1, ar2, args.samples_per_head)
            sync()
            return state

        _, steady, _ = timing.first_and_steady(attack, args.repeats)
        out[f"torch_{name}_s_per_example"] = steady / args.batch
    return out


def count_passes(apply_fn, params, posterior, x, labels, ar, cfg):
    """Traces (without compiling) the attack with a counting surrogate; returns per-iteration counts."""
    counter = common.PassCounter()
    jax.eval_shape(lambda x: tasar.tasar_attack(counter.counting(apply_fn), params, posterior, x, labels,
                                                jax.random.key(0), cfg, ar1=ar[0], ar2=ar[1]), x)
    # the scan body is traced once (= one iteration); one extra forward outside it gives the final predictions
    return counter.forward - 1, counter.backward, counter.backward_batched


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="stgcn")
    parser.add_argument("--dataset", default="hdm05")
    parser.add_argument("--width", type=float, default=None, help="model width factor (1.0 = upstream)")
    parser.add_argument("--checkpoint", default=None, help="time a converted upstream checkpoint (JAX only)")
    parser.add_argument("--bone-checkpoint", default=None)
    parser.add_argument("--no-torch", dest="torch", action="store_false", help="skip the PyTorch comparison")
    parser.add_argument("--torch-device", default="cpu", help="device of the PyTorch loops (cpu, cuda, cuda:0)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--persons", type=int, default=None, help="M (default: 1 for hdm05, 2 for ntu)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--samples-per-head", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.torch and (args.checkpoint or args.arch not in ("stgcn", "ctrgcn")):
        args.torch = False  # the torch reference modules exist for ST-GCN and CTR-GCN

    model, apply_fn, params, torch_model = build_surrogate(args)
    num_classes = model.config.num_classes
    m = args.persons or (1 if args.dataset == "hdm05" else 2)
    key = jax.random.key(0)
    x = 0.3 * jax.random.normal(key, (args.batch, 3, args.frames, 25, m))
    ar = tuple(0.5 * jax.random.uniform(jax.random.fold_in(key, i), x.shape) for i in (1, 2))
    post = random_posterior(jax.random.fold_in(key, 3), num_classes, args.heads)
    posterior = (post,) + tuple(random_posterior(jax.random.fold_in(key, 4), num_classes, args.heads)
                                for _ in range(streams.num_streams(model) - 1))
    labels = jnp.zeros(args.batch, jnp.int32)
    cfg = tasar.TASARConfig(iterations=args.iterations, samples_per_head=args.samples_per_head)

    fwd, bwd, batched = count_passes(apply_fn, params, posterior, x, labels, ar, cfg)
    device = f"{jax.devices()[0].device_kind} ({jax.default_backend()})"
    print(f"device: {device}")
    print(f"surrogate {args.arch} ({models.num_parameters(model):,} parameters), batch {args.batch}, "
          f"{args.iterations} iterations, K={args.heads} heads x S={args.samples_per_head} posterior draws")
    print(f"surrogate passes per iteration (counted while tracing): {fwd} forward, {bwd} backward "
          f"({batched} of them batched over the 2 stacked cotangents); upstream: "
          f"{args.heads * (args.samples_per_head + 1)} forward + {args.heads * (args.samples_per_head + 1)} backward")

    run = lambda: jax.block_until_ready(  # noqa: E731
        tasar.tasar_attack(apply_fn, params, posterior, x, labels, key, cfg, ar1=ar[0], ar2=ar[1]))
    compile_s, steady, _ = timing.first_and_steady(run, args.repeats)
    result = {"device": device, "arch": args.arch, "num_parameters": models.num_parameters(model),
              "iterations": args.iterations, "batch": args.batch, "heads": args.heads,
              "samples_per_head": args.samples_per_head, "repeats": args.repeats,
              "passes_per_iteration": {"forward": fwd, "backward": bwd, "batched_backward": batched},
              "jax_s_per_example": steady / args.batch, "jax_compile_s": compile_s,
              "jax_default_matmul_precision": jax.config.jax_default_matmul_precision}
    if args.torch:
        result.update(torch_timings(torch_model, post, np.asarray(x), np.asarray(labels),
                                    tuple(np.asarray(a) for a in ar), args))
        for name in ("upstream_structure", "single_vjp"):
            result[f"speedup_vs_torch_{name}"] = result[f"torch_{name}_s_per_example"] / result["jax_s_per_example"]
    rows = [("JAX (1 forward + 1 batched VJP)", result["jax_s_per_example"], 1.0)]
    if args.torch:
        rows += [("PyTorch, upstream structure", result["torch_upstream_structure_s_per_example"],
                  result["speedup_vs_torch_upstream_structure"]),
                 ("PyTorch, single batched VJP", result["torch_single_vjp_s_per_example"],
                  result["speedup_vs_torch_single_vjp"])]
    print(f"\n{'implementation':34s} {'s / adversarial example':>24s} {'JAX speed-up':>13s}")
    for name, seconds, ratio in rows:
        print(f"{name:34s} {seconds:24.4f} {ratio:12.1f}x")
    print(f"JAX compilation (first call minus a timed call): {result['jax_compile_s']:.1f} s")
    if args.out:
        timing.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
