"""Where the TASAR iteration spends its time on the current device: the full-size surrogate's forward pass, forward
plus one batched VJP (the attack's network work), forward plus two separate VJPs, the batched VJP repeated inside
a ``lax.scan`` (per iteration; the attack's loop), and each ST-GCN layer kind (graph aggregation, temporal
convolution at stride 1 and 2) forward and pulled back, for JAX and, when installed, the PyTorch reference on the
same shapes. ``--plain-conv`` swaps the model's convolutions back to ``lax.conv_general_dilated`` (the version
before ``layers.conv_general_dilated``). Not a library; a diagnostic for issue 6 (CPU speed).

Run: ``python experiments/profile_cpu.py [--batch 8] [--repeats 5] [--plain-conv] [--out profile.json] [--hlo DIR]``.
Times are medians of ``--repeats`` calls after one warm-up (compile) call, in milliseconds per call: wall time, and
process CPU time (all threads), which is less sensitive to other jobs sharing the machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tasar_jax import models
from tasar_jax.attacks import common

SCAN_LENGTH = 4


def median_ms(fn, repeats: int) -> tuple[float, float]:
    """Median (wall, process CPU) time of ``fn()`` in ms after one warm-up call."""
    jax.block_until_ready(fn())
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1e3 * float(np.median(wall)), 1e3 * float(np.median(cpu))


def network_cases(apply_fn, params, x):
    """Jitted whole-network functions: forward, forward + vmapped VJP of 2 cotangents, forward + 2 VJPs."""
    def fwd(p, x):
        return apply_fn(p, x)

    def fwd_vjp2(p, x, u):
        z, pullback = jax.vjp(lambda x_: apply_fn(p, x_), x)
        return z, jax.vmap(pullback)(u)

    def fwd_2vjp(p, x, u):
        z, pullback = jax.vjp(lambda x_: apply_fn(p, x_), x)
        return z, pullback(u[0]), pullback(u[1])

    def fwd_vjp1(p, x, u):
        z, pullback = jax.vjp(lambda x_: apply_fn(p, x_), x)
        return z, pullback(u[0])

    def scanned(p, x, u):  # the carry feeds the next pass, as in the attack; time per iteration
        def body(c, _):
            z, (g,) = fwd_vjp2(p, c, u)
            return c - 1e-3 * jnp.sign(g[0] + g[1]) + 0.0 * jnp.sum(z), None
        return jax.lax.scan(body, x, None, length=SCAN_LENGTH)[0]

    k = jax.eval_shape(lambda: apply_fn(params, x)).shape[-1]
    u = jax.random.normal(jax.random.key(1), (2, x.shape[0], k))
    return {"forward": (jax.jit(fwd), (params, x)),
            f"scan of forward+vmap(VJP) of 2 (/{SCAN_LENGTH})": (jax.jit(scanned), (params, x, u)),
            "forward+1 VJP": (jax.jit(fwd_vjp1), (params, x, u)),
            "forward+vmap(VJP) of 2": (jax.jit(fwd_vjp2), (params, x, u)),
            "forward+2 VJPs": (jax.jit(fwd_2vjp), (params, x, u))}


def layer_cases(batch: int):
    """Jitted single-layer functions on ST-GCN's shapes (channels-last (N, T, V, C)), forward and pulled back
    along 2 stacked cotangents (vmapped), the way the attack uses them."""
    key = jax.random.key(0)
    cases = {}

    def add(name, f, x):
        y = jax.eval_shape(f, x)
        u = jax.random.normal(key, (2, *y.shape))

        def pulled(x, u):
            _, pb = jax.vjp(f, x)
            return jax.vmap(pb)(u)

        cases[f"{name} fwd"] = (jax.jit(f), (x,))
        cases[f"{name} vjp2"] = (jax.jit(pulled), (x, u))

    for c, t, stride in ((64, 60, 1), (128, 60, 2), (128, 30, 1), (256, 15, 1)):
        w = 0.05 * jax.random.normal(key, (9, 1, c, c))
        x = jax.random.normal(key, (batch, t, 25, c))

        def tconv(x, w=w, stride=stride):
            return jax.lax.conv_general_dilated(x, w, (stride, 1), ((4, 4), (0, 0)),
                                                dimension_numbers=("NHWC", "HWIO", "NHWC"))
        add(f"tconv9 C{c} T{t} s{stride}", tconv, x)
        a = jax.random.normal(key, (3, 25, 25))
        w1 = 0.05 * jax.random.normal(key, (1, 1, c, 3 * c))

        def gcn(x, w1=w1, a=a, c=c):
            y = jax.lax.conv_general_dilated(x, w1, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
            n, t_, v, _ = y.shape
            return jnp.einsum("ntvkc,kvw->ntwc", y.reshape(n, t_, v, 3, c), a)
        add(f"gcn C{c} T{t}", gcn, x)
    return cases


def use_plain_convolutions(model):
    """Swaps every ``nnx.Conv`` of ``model`` back to ``lax.conv_general_dilated`` (the 'before' measurement)."""
    for _, module in nnx.iter_graph(model):
        if isinstance(module, nnx.Conv):
            module.conv_general_dilated = jax.lax.conv_general_dilated


def torch_cases(torch_model, x, k: int):
    """The PyTorch reference on the same input: forward, and forward + one batched backward of 2 cotangents."""
    import torch

    xt = torch.from_numpy(np.array(x))
    u = torch.randn(2, x.shape[0], k)

    def fwd():
        with torch.no_grad():
            return torch_model(xt)

    def fwd_vjp2():
        xg = xt.clone().requires_grad_(True)
        z = torch_model(xg)
        return torch.autograd.grad(z, xg, grad_outputs=u, is_grads_batched=True)

    return {"torch forward": fwd, "torch forward+batched VJP of 2": fwd_vjp2}


def dump_hlo(cases, out_dir: str):
    """Writes each case's optimised HLO and prints its cost analysis (FLOPs)."""
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    for name, (fn, args) in cases.items():
        compiled = fn.lower(*args).compile()
        safe = "".join(ch if ch.isalnum() else "_" for ch in name)
        (path / f"{safe}.hlo.txt").write_text(compiled.as_text())
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        print(f"{name:46s} {cost.get('flops', float('nan')) / 1e9:8.2f} GFLOP")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-torch", dest="torch", action="store_false")
    parser.add_argument("--no-layers", dest="layers", action="store_false")
    parser.add_argument("--plain-conv", action="store_true", help="time with lax.conv_general_dilated (before)")
    parser.add_argument("--hlo", default=None, help="write the optimised HLO of the network cases here")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    torch_model = None
    if args.torch:
        from tasar_jax import converters
        from tasar_jax.converters import reference, torch_io

        torch_model = reference.build("stgcn", "hdm05")
        model = converters.convert("stgcn", "hdm05", torch_io.to_numpy_state_dict(torch_model.state_dict(), "ref"))
    else:
        model = models.create("stgcn", "hdm05")
    if args.plain_conv:
        use_plain_convolutions(model)
    apply_fn, params = common.surrogate_from_model(model)
    x = 0.3 * jax.random.normal(jax.random.key(0), (args.batch, 3, 60, 25, 1))
    cases = network_cases(apply_fn, params, x)
    if args.hlo:
        dump_hlo(cases, args.hlo)
    results = {name: median_ms(lambda fn=fn, a=a: fn(*a), args.repeats) for name, (fn, a) in cases.items()}
    name = f"scan of forward+vmap(VJP) of 2 (/{SCAN_LENGTH})"
    results[name] = tuple(t / SCAN_LENGTH for t in results[name])
    if args.layers:
        results.update({name: median_ms(lambda fn=fn, a=a: fn(*a), args.repeats)
                        for name, (fn, a) in layer_cases(args.batch).items()})
    if torch_model is not None:
        results.update({name: median_ms(fn, args.repeats)
                        for name, fn in torch_cases(torch_model, x, model.config.num_classes).items()})
    print(f"\ndevice: {jax.devices()[0].device_kind}, batch {args.batch}, medians of {args.repeats}, "
          f"{'lax' if args.plain_conv else 'layers'} convolutions")
    print(f"{'case':46s} {'wall ms':>10s} {'CPU ms':>10s}")
    for name, (wall, cpu) in results.items():
        print(f"{name:46s} {wall:10.1f} {cpu:10.1f}")
    if args.out:
        from tasar_jax.data.formats import atomic_path

        with atomic_path(args.out, suffix=".json") as tmp:
            tmp.write_text(json.dumps({"batch": args.batch, "plain_conv": args.plain_conv,
                                       "wall_ms": {k: v[0] for k, v in results.items()},
                                       "cpu_ms": {k: v[1] for k, v in results.items()}}, indent=2))
    return results


if __name__ == "__main__":
    main()
