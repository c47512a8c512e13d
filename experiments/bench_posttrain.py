"""Benchmark of TASAR's head post-training (``bayesianTrain``, reference.md §4.3): JAX on precomputed surrogate
logits against PyTorch with upstream's loop structure, same surrogate weights, samples, epochs, batch size, heads
and initial heads, measured in one run on the current device.

* JAX: :func:`tasar_jax.posterior.posttrain.surrogate_logits` once over the training and test clips (the one-off
  network cost, reported separately and included in the JAX total), then
  :func:`tasar_jax.posterior.posttrain.bayesian_train` (K vmapped SG-AdaHMC chains, one jitted scan per epoch) with
  ``reference_quirks=True``, i.e. upstream's SG-AdaHMC step (one gradient per step, state re-initialised), the
  algorithm the PyTorch loop runs. The library default (``reference_quirks=False``: a gradient per inner
  iteration) is timed too (``jax_intended_train_s``).
* PyTorch (``experiments/torch_posttrain.py``): per epoch, head and batch one forward and one backward through the
  frozen base network (base gradients computed as upstream), and a test-set pass per head and epoch.

The surrogate is the full-size ST-GCN torch reference (``converters.reference.build("stgcn", "hdm05")``, random
weights, ``--width`` to shrink it) converted to JAX, so both sides compute the same logits. Clips and labels are
random (their values do not change the cost).

Run: ``python experiments/bench_posttrain.py [--samples 128] [--test-samples 32] [--epochs 1] [--heads 3]
[--batch 32] [--repeats 3] [--torch-device cpu|cuda] [--out posttrain.json]``. JAX times: compile time = first
call minus the median of ``--repeats`` later calls. PyTorch: one untimed warm-up batch, then ``--torch-repeats``
full runs (median).

JSON keys: ``device``, ``torch_device``, ``arch``, ``width``, ``num_parameters``, ``samples``, ``test_samples``,
``epochs``, ``heads``, ``batch``, ``repeats``; JAX: ``jax_logits_s`` (steady state, both sets, one jitted forward
kept across calls), ``jax_logits_compile_s``, ``jax_logits_library_call_s`` (one ``surrogate_logits`` call per
set; it jits anew each call, so compilation is included), ``jax_logits_match_library`` (bitwise), ``jax_train_s``,
``jax_train_compile_s``, ``jax_intended_train_s``, ``jax_total_s`` (logits + train); PyTorch: ``torch_s``,
``torch_warmup_s``, ``torch_threads``; ratios: ``speedup_total`` (torch / JAX total), ``speedup_train_only``
(torch / JAX train);
``network_passes`` (``jax_forward``, ``torch_forward``, ``torch_backward``: batches through the base network);
checks: ``initial_loss_jax``, ``initial_loss_torch`` (CE of the initial heads on the training set, mean over heads),
``final_loss_jax``, ``final_loss_torch`` (CE of the returned / trained heads on the training set, mean over
heads), ``last_epoch_mean_batch_loss_torch``, ``accuracy_jax``, ``accuracy_torch`` (last-epoch test accuracy per
head). JAX returns each head's best-test-accuracy iterate, PyTorch the last one (upstream saves the best to a file).

``main`` also returns (not written to the JSON) ``initial_heads``, ``final_heads_jax`` and ``final_heads_torch``
(``HeadParams`` of stacked numpy arrays, torch Linear layout): with one epoch and one batch per epoch
(``--batch`` ≥ ``--samples``) both sides take the same full-batch step from the same start, so they should agree up
to float32 rounding and the two sides' independent SG-AdaHMC noise (the shuffles and the best-iterate choice differ
otherwise).
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

if __package__ in (None, ""):  # `python experiments/<name>.py` from a checkout: experiments/ is not installed
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from experiments import timing  # noqa: E402
from tasar_jax import models
from tasar_jax.posterior import heads as H
from tasar_jax.posterior import posttrain


def build_models(arch: str, dataset: str, width: float | None, seed: int = 0):
    """(JAX model, torch module): the torch reference's random weights (seeded) converted to JAX."""
    import torch

    from tasar_jax import converters
    from tasar_jax.converters import reference, torch_io

    extra = {} if width is None else {"width": width}
    torch.manual_seed(seed)
    torch_model = reference.build(arch, dataset, **extra)
    sd = torch_io.to_numpy_state_dict(torch_model.state_dict(), "torch reference")
    return converters.convert(arch, dataset, sd, **extra), torch_model


def make_data(samples: int, test_samples: int, num_classes: int, frames: int = 60, seed: int = 0):
    """Random clips (N, 3, T, 25, 1) float32 and labels for the training and test sets."""
    rng = np.random.default_rng(seed)
    clips = lambda n: (0.3 * rng.standard_normal((n, 3, frames, 25, 1))).astype(np.float32)  # noqa: E731
    labels = lambda n: rng.integers(0, num_classes, n)  # noqa: E731
    return clips(samples), labels(samples), clips(test_samples), labels(test_samples)


def mean_ce(heads: H.HeadParams, z, y) -> float:
    """Cross-entropy of every stacked head's appended model on logits z, averaged over samples and heads."""
    logits = jax.vmap(H.appended_logits, in_axes=(0, None))(heads, jnp.asarray(z))
    logp = jax.nn.log_softmax(logits)
    return float(-jnp.mean(jnp.take_along_axis(logp, jnp.asarray(y)[None, :, None], axis=-1)))


def once_jitted_logits(model, batch_size: int):
    """``x -> logits``: what ``posttrain.surrogate_logits`` computes (eval mode, the same chunks), with one
    ``prediction.Predictor`` kept across calls; each library call builds its own, so its time includes compilation."""
    from tasar_jax import prediction

    predictor = prediction.Predictor(model, batch_size, streams=True)
    return lambda x: predictor(x)[0]  # one stream


def jax_side(model, data, init, args) -> dict:
    """Logits once (library call; steady state of the same forward), then bayesian_train with upstream's and with
    the default SG-AdaHMC."""
    x, y, xt, yt = data
    start = time.perf_counter()
    (z,), (zt,) = (posttrain.surrogate_logits(model, a, args.batch) for a in (x, xt))  # one stream
    call_s = time.perf_counter() - start
    forward = once_jitted_logits(model, args.batch)
    logits_compile, logits_s, (z2, zt2) = timing.first_and_steady(lambda: (forward(x), forward(xt)), args.repeats)
    cfg = posttrain.PostTrainConfig(epochs=args.epochs, batch_size=args.batch, reference_quirks=True)
    key = jax.random.key(args.seed)

    def train(cfg=cfg):
        with warnings.catch_warnings():  # random heads on random labels may never beat accuracy 0
            warnings.simplefilter("ignore", UserWarning)
            return jax.block_until_ready(posttrain.bayesian_train(key, z, y, zt, yt, cfg, heads=init))

    train_compile, train_s, result = timing.first_and_steady(train, args.repeats)
    intended_s = None
    if args.intended:
        intended = posttrain.PostTrainConfig(epochs=args.epochs, batch_size=args.batch)
        _, intended_s, _ = timing.first_and_steady(lambda: train(intended), args.repeats)
    return {"jax_logits_s": logits_s, "jax_logits_compile_s": logits_compile, "jax_logits_library_call_s": call_s,
            "jax_logits_match_library": bool(np.array_equal(z, z2) and np.array_equal(zt, zt2)),
            "jax_train_s": train_s, "jax_train_compile_s": train_compile, "jax_intended_train_s": intended_s,
            "jax_total_s": logits_s + train_s, "initial_loss_jax": mean_ce(init, z, y),
            "final_loss_jax": mean_ce(result.heads, z, y),
            "final_heads_jax": H.HeadParams(*(np.asarray(a) for a in result.heads)),
            "accuracy_jax": [float(a) for a in np.asarray(result.accuracy)[-1]]}


def stacked_torch_heads(heads) -> H.HeadParams:
    """torch head modules ``Sequential(Linear, Linear, ReLU)`` → stacked numpy ``HeadParams`` (same layout)."""
    leaf = lambda p: np.stack([p(head).detach().cpu().numpy() for head in heads])  # noqa: E731
    return H.HeadParams(leaf(lambda h: h[0].weight), leaf(lambda h: h[0].bias), leaf(lambda h: h[1].weight),
                        leaf(lambda h: h[1].bias))


def torch_side(torch_model, data, init, args) -> dict:
    """:func:`torch_run` with ``--torch-threads`` intra-op threads (restored afterwards)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(args.torch_threads or old)
    try:
        return {"torch_threads": torch.get_num_threads(), **torch_run(torch_model, data, init, args)}
    finally:
        torch.set_num_threads(old)


def torch_run(torch_model, data, init, args) -> dict:
    """Upstream-structured bayesianTrain on ``--torch-device``, same data and initial heads."""
    import torch

    from experiments import torch_posttrain

    device = torch.device(args.torch_device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    model = torch_model.to(device).eval()
    x, y, xt, yt = (torch.from_numpy(np.asarray(a)).to(device) for a in data)
    y, yt = y.long(), yt.long()
    leaves = [np.array(a) for a in init]
    new_heads = lambda: [torch_posttrain.make_head(*(torch.from_numpy(a[k]) for a in leaves)).to(device)  # noqa: E731
                         for k in range(args.heads)]
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)

    start = time.perf_counter()  # warm-up: one training batch through network and head, not timed below
    warm = new_heads()
    loss = torch.nn.functional.cross_entropy(torch_posttrain.appended(model, warm[0], x[:args.batch]), y[:args.batch])
    loss.backward()
    sync()
    warmup_s = time.perf_counter() - start
    with torch.no_grad():
        h = torch.relu(model(x))

    @torch.no_grad()
    def train_ce(heads):  # CE of each head on the training set from the stored base output, mean over heads
        return float(np.mean([torch.nn.functional.cross_entropy(h + head(h), y).item() for head in heads]))

    initial = train_ce(new_heads())
    times = []
    for _ in range(args.torch_repeats):
        heads = new_heads()
        sync()
        start = time.perf_counter()
        losses, accuracy = torch_posttrain.bayesian_train(model, heads, x, y, xt, yt, epochs=args.epochs,
                                                          batch_size=args.batch, generator=gen)
        sync()
        times.append(time.perf_counter() - start)
    return {"torch_s": float(np.median(times)), "torch_warmup_s": warmup_s, "initial_loss_torch": initial,
            "final_loss_torch": train_ce(heads),
            "final_heads_torch": stacked_torch_heads(heads),
            "last_epoch_mean_batch_loss_torch": float(np.mean(losses[-1])),
            "accuracy_torch": [float(a) for a in accuracy[-1]]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="stgcn", choices=("stgcn", "ctrgcn"))
    parser.add_argument("--dataset", default="hdm05")
    parser.add_argument("--width", type=float, default=None, help="model width factor (default: upstream size)")
    parser.add_argument("--samples", type=int, default=128, help="training clips")
    parser.add_argument("--test-samples", type=int, default=32, help="test clips (per-head validation)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed JAX calls after the compiling one (median)")
    parser.add_argument("--torch-repeats", type=int, default=1, help="timed PyTorch runs (median)")
    parser.add_argument("--torch-device", default="cpu", help="cpu or cuda")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads for the PyTorch run (default: torch's own choice)")
    parser.add_argument("--no-intended", dest="intended", action="store_false",
                        help="skip timing the library-default SG-AdaHMC (jax_intended_train_s = null)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.torch_threads is not None and args.torch_threads < 1:
        raise ValueError(f"--torch-threads must be ≥ 1, got {args.torch_threads}")
    for name in ("samples", "test_samples", "epochs", "heads", "batch", "repeats", "torch_repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(args, name)}")
    if args.torch_device not in ("cpu", "cuda") and not args.torch_device.startswith("cuda:"):
        raise ValueError(f"--torch-device must be cpu or cuda[:i], got {args.torch_device!r}")

    model, torch_model = build_models(args.arch, args.dataset, args.width, args.seed)
    num_classes = model.config.num_classes
    data = make_data(args.samples, args.test_samples, num_classes, seed=args.seed)
    init = posttrain.init_heads(jax.random.key(args.seed + 1), args.heads, num_classes)
    device = f"{jax.devices()[0].device_kind} ({jax.default_backend()})"
    print(f"device: {device}; torch device: {args.torch_device}, torch threads: "
          f"{args.torch_threads or 'default'}")
    print(f"surrogate {args.arch} ({models.num_parameters(model):,} parameters), {args.samples} training + "
          f"{args.test_samples} test clips, {args.epochs} epochs, K={args.heads} heads, batch {args.batch}")

    result = {"device": device, "torch_device": args.torch_device, "arch": args.arch, "width": args.width,
              "num_parameters": models.num_parameters(model), "samples": args.samples,
              "test_samples": args.test_samples, "epochs": args.epochs, "heads": args.heads, "batch": args.batch,
              "repeats": args.repeats}
    result.update(jax_side(model, data, init, args))
    result.update(torch_side(torch_model, data, init, args))
    nb, nbt = math.ceil(args.samples / args.batch), math.ceil(args.test_samples / args.batch)
    result["network_passes"] = {"jax_forward": nb + nbt, "torch_forward": args.epochs * args.heads * (nb + nbt),
                                "torch_backward": args.epochs * args.heads * nb}
    result["speedup_total"] = result["torch_s"] / result["jax_total_s"]
    result["speedup_train_only"] = result["torch_s"] / result["jax_train_s"]
    report(result)
    heads = {"initial_heads": H.HeadParams(*(np.asarray(a) for a in init)),
             **{key: result.pop(key) for key in ("final_heads_jax", "final_heads_torch")}}
    if args.out:
        timing.write_json(args.out, result)
    return {**result, **heads}


def report(r: dict) -> None:
    """Prints the comparison table and the loss check."""
    passes = r["network_passes"]
    rows = [("JAX total (logits once + training)", r["jax_total_s"], None, r["speedup_total"]),
            ("  JAX logits precomputation", r["jax_logits_s"], r["jax_logits_compile_s"], None),
            ("  JAX bayesian_train (upstream SG-AdaHMC)", r["jax_train_s"], r["jax_train_compile_s"],
             r["speedup_train_only"]),
            ("  JAX bayesian_train (library default)", r["jax_intended_train_s"], None, None),
            ("PyTorch, upstream structure", r["torch_s"], r["torch_warmup_s"], 1.0)]
    rows = [row for row in rows if row[1] is not None]
    print(f"\n{'implementation':44s} {'seconds':>9s} {'compile/warm-up s':>18s} {'speed-up vs torch':>18s}")
    for name, seconds, compile_s, ratio in rows:
        c = f"{compile_s:18.2f}" if compile_s is not None else f"{'':18s}"
        s = f"{ratio:17.1f}x" if ratio is not None else ""
        print(f"{name:44s} {seconds:9.3f} {c} {s}")
    print(f"network passes: JAX {passes['jax_forward']} forward batches (once); PyTorch {passes['torch_forward']} "
          f"forward + {passes['torch_backward']} backward batches")
    print(f"JAX logits through the library call (re-jits per call): {r['jax_logits_library_call_s']:.2f} s; "
          f"same logits as the steady-state forward: {r['jax_logits_match_library']}")
    print(f"training CE: initial JAX {r['initial_loss_jax']:.4f} / torch {r['initial_loss_torch']:.4f}; "
          f"final JAX {r['final_loss_jax']:.4f} / torch {r['final_loss_torch']:.4f}")


if __name__ == "__main__":
    main()
