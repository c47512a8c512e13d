"""Benchmark of the TASAR attack: time per adversarial example on the current device, and the surrogate passes
per iteration, counted for real while JAX traces the attack (reference.md §8: 1 forward + 1 batched backward,
instead of upstream's 63 forward + 63 backward with K = 3 heads × 20 draws).

Run: ``python -m experiments.bench_tasar [--arch stgcn] [--width 1.0] [--batch 8] [--iterations 20]
[--checkpoint STGCN_hdm05.pth.xz]``. Heads, SWAG moments and AR coefficients are random (their values do not
change the cost); the surrogate is random-initialised unless a checkpoint is given (converting needs torch).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from tasar_jax import models
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
    if args.checkpoint:
        import converters  # torch only when converting an upstream checkpoint

        model = converters.convert_file(args.arch, args.dataset, args.checkpoint, args.bone_checkpoint)
    else:
        overrides = {} if args.width is None else {"width": args.width}
        model = models.create(args.arch, args.dataset, **overrides)
    return model, *common.surrogate_from_model(model)


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
    parser.add_argument("--width", type=float, default=None, help="model width factor (random-init only)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--bone-checkpoint", default=None)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--persons", type=int, default=None, help="M (default: 1 for hdm05, 2 for ntu)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--samples-per-head", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    model, apply_fn, params = build_surrogate(args)
    num_classes = model.config.num_classes
    m = args.persons or (1 if args.dataset == "hdm05" else 2)
    key = jax.random.key(0)
    x = 0.3 * jax.random.normal(key, (args.batch, 3, args.frames, 25, m))
    ar = tuple(0.5 * jax.random.uniform(jax.random.fold_in(key, i), x.shape) for i in (1, 2))
    two_stream = hasattr(model, "stream_logits")
    post = random_posterior(jax.random.fold_in(key, 3), num_classes, args.heads)
    posterior = (post, random_posterior(jax.random.fold_in(key, 4), num_classes, args.heads)) if two_stream else post
    labels = jnp.zeros(args.batch, jnp.int32)
    cfg = tasar.TASARConfig(iterations=args.iterations, samples_per_head=args.samples_per_head)

    fwd, bwd, batched = count_passes(apply_fn, params, posterior, x, labels, ar, cfg)
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()})")
    print(f"surrogate {args.arch} ({models.num_parameters(model):,} parameters), batch {args.batch}, "
          f"{args.iterations} iterations, K={args.heads} heads x S={args.samples_per_head} posterior draws")
    print(f"surrogate passes per iteration (counted while tracing): {fwd} forward, {bwd} backward "
          f"({batched} of them batched over the 2 stacked cotangents); upstream: "
          f"{args.heads * (args.samples_per_head + 1)} forward + {args.heads * (args.samples_per_head + 1)} backward")

    run = lambda: tasar.tasar_attack(apply_fn, params, posterior, x, labels, key, cfg, ar1=ar[0], ar2=ar[1])  # noqa: E731
    start = time.perf_counter()
    jax.block_until_ready(run())
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        jax.block_until_ready(run())
        times.append(time.perf_counter() - start)
    best = min(times)
    print(f"first call (compile + run): {compile_s:.2f} s; best of {args.repeats}: {best:.3f} s per batch = "
          f"{1e3 * best / args.iterations:.2f} ms per iteration, {best / args.batch:.4f} s per adversarial example "
          f"({args.iterations} iterations)")


if __name__ == "__main__":
    main()
