"""Attack throughput against batch size on the current device: attacks per second, peak memory, and the FLOP rate
the attack iteration achieves (against the device's peak where it is known).

For TASAR (K heads × S posterior draws, motion term on) and I-FGSM, on the full-size surrogate (``--arch stgcn``,
HDM05 shape (B, 3, 60, 25, 1), random weights: the values do not change the cost), every batch size in
``--batches`` is compiled once (``jax.jit(...).lower(...).compile()``, timed as ``compile_s``), called once to
warm up, then timed ``--repeats`` times (median, ``block_until_ready``).

FLOPs: XLA's ``cost_analysis()`` of a compiled ``lax.scan`` counts the loop body once, whatever the trip count, so
the whole attack's count is not the work done. Instead one attack iteration (``step`` of the attack on a fresh
state) is compiled alone at batch ``--flops-batch`` and its ``cost_analysis()["flops"]`` divided by that batch
gives FLOPs per example-iteration; the surrogate's final forward pass (after the scan) is counted the same way.
The count is XLA:CPU's, on every device (on a GPU, XLA's own count leaves out the cuDNN convolutions); the current
backend's count and the lowered program's count before optimisation are recorded beside it.
An attack of batch B and n iterations then does ``B·(n·step + forward)`` FLOPs (linear in B: checked on CPU to
about 2 % between batch 1 and 4); ``flops_per_s`` is that over the median time.

Precision: ``--precision default`` leaves ``jax_default_matmul_precision`` unset, so on a GPU XLA may run float32
convolutions and dots in TF32; ``highest`` forces full float32. Peaks (dense, NVIDIA data sheets):
H100/H200 SXM float32 67 TFLOP/s, TF32 495 TFLOP/s; H100 PCIe 51 and 378.

Memory: per executable, ``memory_analysis()`` (argument, output and temporary buffer bytes); per process, the
device allocator's ``peak_bytes_in_use`` where the backend reports it (GPU) and the peak resident set size: both
are running maxima over the process so far (configurations run batch by batch, every attack at one batch, in
increasing batch order, or decreasing with ``--largest-first``), so only the per-executable numbers belong to one
configuration alone. ``--time-limit-s``: no configuration starts after it (recorded under ``skipped``).

Run: ``python experiments/bench_throughput.py [--batches 1,8,32,128] [--iterations 5] [--attacks tasar,ifgsm]
[--precision default|highest] [--time-limit-s 120] [--out throughput.json]``; ``main(argv) -> dict``.
"""

from __future__ import annotations

import argparse
import pathlib
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

if __package__ in (None, ""):  # `python experiments/<name>.py` from a checkout: experiments/ is not installed
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from experiments import timing  # noqa: E402
from tasar_jax import models
from tasar_jax.models import streams
from tasar_jax.attacks import base, common, fgsm, tasar

# dense peak FLOP/s (no sparsity) per device-kind substring, from NVIDIA's data sheets
PEAKS = (("H100 PCIe", {"fp32": 51e12, "tf32": 378e12}),
         ("H100", {"fp32": 67e12, "tf32": 495e12}),
         ("H200", {"fp32": 67e12, "tf32": 495e12}))


def device_peak(device_kind: str) -> dict | None:
    """Dense float32 and TF32 peak FLOP/s of a known device kind, else None."""
    for name, peak in PEAKS:
        if name in device_kind:
            return dict(peak)
    return None


def first_cost(program) -> dict:
    """``cost_analysis()`` of a lowered or compiled program as one dict (older JAX returns a list with one dict per
    program); empty where the backend does not provide it."""
    try:
        cost = program.cost_analysis()
    except Exception:  # noqa: BLE001 - optional on some backends
        return {}
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return dict(cost or {})


def executable_memory(compiled) -> dict:
    """Argument, output and temporary buffer bytes of a compiled executable (empty where unsupported)."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        return {}
    if stats is None:
        return {}
    return {name: int(getattr(stats, f"{name}_size_in_bytes")) for name in ("argument", "output", "temp")
            if hasattr(stats, f"{name}_size_in_bytes")}


def process_memory() -> dict:
    """Running maxima over the process so far: the device allocator's peak bytes (when reported) and the peak
    resident set size."""
    out = {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}  # Linux reports KiB
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - CPU backends may not implement it
        stats = {}
    if "peak_bytes_in_use" in stats:
        out["device_peak_bytes_in_use_so_far"] = int(stats["peak_bytes_in_use"])
    return out


def inputs(key, batch: int, frames: int, persons: int):
    """Random clips (B, 3, T, 25, M), labels 0, motion coefficients of the same shape."""
    x = 0.3 * jax.random.normal(key, (batch, 3, frames, 25, persons))
    ar1, ar2 = (0.5 * jax.random.uniform(jax.random.fold_in(key, i), x.shape) for i in (1, 2))
    return x, jnp.zeros(batch, jnp.int32), ar1, ar2


def attack_programs(name: str, apply_fn, args):
    """``(attack, step)`` pure functions of ``(params, posterior, x, labels, ar1, ar2, key)``: the whole attack
    (returns x_adv) and one iteration from the initial state (returns the next iterate)."""
    if name == "tasar":
        cfg = tasar.TASARConfig(iterations=args.iterations, samples_per_head=args.samples_per_head)

        stream_apply = common.PerStream(apply_fn)  # TASAR's heads take per-stream logits: (z,)

        def attack(params, posterior, x, labels, ar1, ar2, key):
            return tasar.tasar_attack(stream_apply, params, posterior, x, labels, key, cfg, ar1=ar1, ar2=ar2).x_adv

        def step(params, posterior, x, labels, ar1, ar2, key):  # the spec's step, as the shared driver calls it
            atk = tasar.TASAR(base.Surrogate(stream_apply, params), posterior, **vars(cfg))
            return atk.spec.step(atk.surrogate.apply_fn, (params, atk.posterior, key), x, labels, None,
                                 atk.spec.init(x, labels), 0, index=jnp.arange(x.shape[0]), ar1=ar1, ar2=ar2)[0].x
        return attack, step
    if name == "ifgsm":
        spec = fgsm.IFGSMSpec(base.AttackConfig(iterations=args.iterations))

        def attack(params, posterior, x, labels, ar1, ar2, key):
            return base.run_attack(spec, base.Surrogate(apply_fn, params), key, x, labels).x_adv

        def step(params, posterior, x, labels, ar1, ar2, key):
            keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(x.shape[0]))
            return spec.step(apply_fn, params, x, labels, keys, spec.init(x, labels), 0)[0].x
        return attack, step
    raise ValueError(f"unknown attack {name!r} (choose tasar or ifgsm)")


def flops_per_example(step, apply_fn, operands, batch: int) -> dict:
    """FLOPs per example of one attack iteration and of one surrogate forward, as XLA:CPU's ``cost_analysis()``
    counts them for the compiled programs (used for the rates on every device: it counts convolutions, while on a
    GPU XLA leaves the cuDNN convolution custom calls out of its count, ~17× too low for ST-GCN). The current
    backend's own count (``*_backend``) and the lowered, not yet optimised program's count (``*_lowered``) are
    recorded beside it."""
    cpu_operands = jax.device_put(operands, jax.devices("cpu")[0])
    out = {"batch": batch, "counted_by": "XLA:CPU cost_analysis of the compiled program"}
    for name, fn, args, cpu_args in (("step", step, operands, cpu_operands),
                                     ("forward", apply_fn, (operands[0], operands[2]),
                                      (cpu_operands[0], cpu_operands[2]))):
        on_cpu = first_cost(jax.jit(fn).lower(*cpu_args).compile())
        if "flops" not in on_cpu:
            return {}
        program = jax.jit(fn).lower(*args)
        backend, before = first_cost(program.compile()), first_cost(program)
        out[name] = on_cpu["flops"] / batch
        out[f"{name}_backend"] = backend["flops"] / batch if "flops" in backend else None
        out[f"{name}_lowered"] = before["flops"] / batch if "flops" in before else None
    return out


def time_executable(compiled, operands, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls after one warm-up call, each waited for."""
    jax.block_until_ready(compiled(*operands))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*operands))
        times.append(time.perf_counter() - start)
    return times


def measure(attack, operands, batch: int, iterations: int, repeats: int, per_example: dict | None) -> dict:
    """Compile time, median seconds per call, attacks per second, memory and FLOP rate of one configuration."""
    start = time.perf_counter()
    compiled = jax.jit(attack).lower(*operands).compile()
    compile_s = time.perf_counter() - start
    seconds = float(np.median(time_executable(compiled, operands, repeats)))
    row = {"batch": batch, "compile_s": compile_s, "s_per_attack_batch": seconds,
           "attacks_per_s": batch / seconds, "example_iterations_per_s": batch * iterations / seconds,
           "executable_memory_bytes": executable_memory(compiled), **process_memory()}
    if per_example:
        flops = batch * (iterations * per_example["step"] + per_example["forward"])
        row.update({"flops_per_attack_batch": flops, "flops_per_s": flops / seconds})
    return row


def schedule(batches: list[int], attacks: list[str], largest_first: bool) -> list[tuple[int, str]]:
    """(batch, attack) in measuring order: by batch (increasing, or decreasing with ``largest_first`` so that a
    time limit drops the small batches), every attack at one batch before the next batch."""
    return [(b, a) for b in sorted(batches, reverse=largest_first) for a in attacks]


def default_batches() -> list[int]:
    return [1, 8, 32, 128] if jax.default_backend() == "gpu" else [1, 4, 16]


def parse_ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise ValueError(f"expected positive integers separated by commas, got {text!r}")
    return values


def print_table(result: dict) -> None:
    peak = result.get("peak_flops_per_s") or {}
    print(f"\n{'attack':7s} {'batch':>6s} {'attacks/s':>10s} {'ex·it/s':>10s} {'compile s':>10s} "
          f"{'temp MiB':>9s} {'TFLOP/s':>8s} {'% fp32':>7s} {'% tf32':>7s}")
    for row in result["rows"]:
        rate = row.get("flops_per_s")
        pct = lambda p: f"{100 * rate / peak[p]:7.1f}" if rate and p in peak else f"{'-':>7s}"  # noqa: E731
        temp = row["executable_memory_bytes"].get("temp")
        print(f"{row['attack']:7s} {row['batch']:6d} {row['attacks_per_s']:10.2f} "
              f"{row['example_iterations_per_s']:10.1f} {row['compile_s']:10.1f} "
              f"{(temp / 2**20 if temp is not None else float('nan')):9.1f} "
              f"{(rate / 1e12 if rate else float('nan')):8.2f} {pct('fp32')} {pct('tf32')}")
    for skipped in result["skipped"]:
        print(f"skipped: {skipped}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="stgcn")
    parser.add_argument("--dataset", default="hdm05")
    parser.add_argument("--width", type=float, default=None, help="model width factor (1.0 = upstream)")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--attacks", default="tasar,ifgsm")
    parser.add_argument("--batches", default=None, help="comma-separated (default: GPU 1,8,32,128; CPU 1,4,16)")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--samples-per-head", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flops-batch", type=int, default=None, help="batch of the FLOP count (default: smallest)")
    parser.add_argument("--no-flops", dest="flops", action="store_false", help="skip the FLOP count")
    parser.add_argument("--precision", default="default", choices=("default", "high", "highest"),
                        help="jax_default_matmul_precision for the run (default: unset)")
    parser.add_argument("--time-limit-s", type=float, default=None, help="start no configuration after this")
    parser.add_argument("--largest-first", action="store_true", help="measure the largest batch first")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    for name in ("frames", "iterations", "heads", "samples_per_head", "repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(args, name)}")
    batches = parse_ints(args.batches) if args.batches else default_batches()
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    deadline = None if args.time_limit_s is None else time.monotonic() + args.time_limit_s

    previous = jax.config.jax_default_matmul_precision
    jax.config.update("jax_default_matmul_precision", None if args.precision == "default" else args.precision)
    try:
        result = run(args, attacks, batches, deadline)
    finally:
        jax.config.update("jax_default_matmul_precision", previous)
    print_table(result)
    if args.out:
        timing.write_json(args.out, result)
    return result


def run(args, attacks: list[str], batches: list[int], deadline) -> dict:
    """Every (attack, batch) configuration in increasing batch order, until the deadline."""
    from experiments.bench_tasar import random_posterior

    model = models.create(args.arch, args.dataset, **({} if args.width is None else {"width": args.width}))
    if streams.num_streams(model) != 1:
        raise ValueError(f"{args.arch}: two-stream surrogates are not supported here; use bench_tasar.py")
    apply_fn, params = common.surrogate_from_model(model)
    persons = 1 if args.dataset == "hdm05" else 2
    key = jax.random.key(0)
    posterior = (random_posterior(jax.random.fold_in(key, 3), model.config.num_classes, args.heads),)
    device_kind = jax.devices()[0].device_kind
    result = {"device": f"{device_kind} ({jax.default_backend()})", "arch": args.arch, "width": args.width,
              "num_parameters": models.num_parameters(model), "input_shape": [None, 3, args.frames, 25, persons],
              "iterations": args.iterations, "heads": args.heads, "samples_per_head": args.samples_per_head,
              "repeats": args.repeats, "precision": args.precision,
              "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
              "peak_flops_per_s": device_peak(device_kind), "flops_per_example_iteration": {}, "rows": [],
              "skipped": [],
              "flops_source": "XLA:CPU cost_analysis()['flops'] of one compiled attack iteration and one "
                              "compiled forward at batch flops_batch, divided by it; "
                              "attack FLOPs = B·(iterations·step + forward)"}
    print(f"device: {result['device']}; {args.arch} ({result['num_parameters']:,} parameters), {args.iterations} "
          f"iterations, precision {args.precision}", flush=True)
    programs = {name: attack_programs(name, apply_fn, args) for name in attacks}
    for batch, name in schedule(batches, attacks, args.largest_first):
        if deadline is not None and time.monotonic() > deadline:
            result["skipped"].append(f"{name} batch {batch}: time limit")
            continue
        attack, step = programs[name]
        if args.flops and name not in result["flops_per_example_iteration"]:
            fb = args.flops_batch or min(batches)
            x, labels, ar1, ar2 = inputs(key, fb, args.frames, persons)
            result["flops_per_example_iteration"][name] = flops_per_example(
                step, apply_fn, (params, posterior, x, labels, ar1, ar2, key), fb)
        x, labels, ar1, ar2 = inputs(key, batch, args.frames, persons)
        row = measure(attack, (params, posterior, x, labels, ar1, ar2, key), batch, args.iterations,
                      args.repeats, result["flops_per_example_iteration"].get(name))
        result["rows"].append({"attack": name, **row})
        print(f"  {name} batch {batch}: {row['attacks_per_s']:.2f} attacks/s, compile {row['compile_s']:.1f} s",
              flush=True)
    result["rows"].sort(key=lambda r: (attacks.index(r["attack"]), r["batch"]))
    return result


if __name__ == "__main__":
    main()
