"""Benchmark of TASAR's motion precomputation (upstream ``ARCal.py``, reference.md §4.6 and §8): tvAR(1) and tvAR(2)
fits with cross-validated bandwidth (``tvAR(y, p, type="none", est="ll")``, Brent search) of every trajectory
(3 coordinates × 25 joints × M persons) of N HDM05-shaped clips, vectorised against per-series fitting.

* ``vectorised``: the library path used by ``tasar-jax motion`` / the pipeline,
  :func:`tasar_jax.motion.dynamics.motion_fits` on all clips at once (one Brent search run element-wise over all
  series, each step one batched CV evaluation of the unfinished series in jitted blocks).
* ``per_series``: upstream's structure (one ``tvAR`` call per series and order, in a Python loop; upstream calls R
  through rpy2, which is not installed here), with our own JAX fit of *one* series (the library's
  ``tvar._fit_series``, jitted once per order) inside the library's Brent search on one-element arrays. The public
  ``tvar.tvar`` is not used for it because it pads every call to ``SERIES_PER_CALL`` series. With
  ``--loop-series n`` (default) the loop runs on n series evenly spread over the workload and its time is
  extrapolated linearly to all series (printed as such); ``--loop-series 0`` loops over everything.

Both paths run float64 and should give equal bandwidths and coefficients; the maximum differences on the looped
series are reported. A profile of one CV evaluation (the unit of work of the Brent search) per series, single
series against the library's batched block, explains the ratio.

Run: ``python experiments/bench_tvar.py [--samples 256] [--loop-series 300] [--repeats 1] [--out tvar.json]``.
Clips are procedurally generated HDM05 skeletons (``tasar_jax.data.synthetic``), shape (N, 3, 60, 25, 1).

JSON keys: ``device``, ``samples``, ``frames``, ``series`` (trajectories per order), ``fits`` (series × 2 orders),
``repeats``, ``series_per_call``, ``series_per_step`` (the vectorised path's block sizes), ``vectorised_s`` (median
seconds for the whole workload, compile excluded), ``vectorised_compile_s``, ``per_series_s`` (whole workload;
extrapolated when ``per_series_extrapolated``), ``per_series_measured_s``, ``per_series_looped`` (series looped),
``per_series_extrapolated``, ``per_series_compile_s``, ``speedup_vectorised_vs_per_series``,
``vectorised_ms_per_fit``, ``per_series_ms_per_fit``, ``cv_evaluations_per_fit`` (median over the looped fits:
``p1``, ``p2``), ``profile`` (one CV evaluation, ms per series: ``single_p1_ms``, ``single_p2_ms`` one series per
call, ``block_p1_ms``, ``block_p2_ms`` in the library's block of ``block_series`` series), ``max_abs_bw_diff``,
``max_abs_coef_diff``, ``nan_pattern_equal``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

if __package__ in (None, ""):  # `python experiments/<name>.py` from a checkout: experiments/ is not installed
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from experiments import timing  # noqa: E402
from tasar_jax.data import synthetic
from tasar_jax.motion import dynamics, tvar

ORDERS = (1, 2)


def workload(samples: int, seed: int = 0, frames: int = 60) -> np.ndarray:
    """``samples`` synthetic HDM05 clips (N, 3, T, 25, 1) float32 (the first ``frames`` of 60), classes interleaved."""
    if samples < 1:
        raise ValueError(f"--samples must be ≥ 1, got {samples}")
    if not dynamics.MIN_FRAMES <= frames <= 60:
        raise ValueError(f"--frames must be in [{dynamics.MIN_FRAMES}, 60], got {frames}")
    per_class = math.ceil(samples / len(synthetic.class_names("hdm05")))
    return synthetic.generate("hdm05", per_class, seed)[0][:samples, :, :frames]


def loop_indices(num_series: int, count: int) -> np.ndarray:
    """``count`` series indices evenly spread over ``num_series`` (all of them for count 0 or ≥ num_series)."""
    if count <= 0 or count >= num_series:
        return np.arange(num_series)
    return np.unique(np.linspace(0, num_series - 1, count).round().astype(int))


def vectorised_fits(x) -> dict:
    """The library's batched path: ``{p: (bw (S,), coef (S, T-p, p))}`` in ``dynamics._series`` order."""
    fits = dynamics.motion_fits(x)
    t = x.shape[2]
    return {1: (fits.bw1.reshape(-1), fits.coef1.reshape(-1, t - 1, 1)),
            2: (fits.bw2.reshape(-1), fits.coef2.reshape(-1, t - 2, 2))}


def make_series_fitter(p: int, frames: int):
    """``fit(y) -> (bw, coef (T-p, p), evaluations)`` for one series: one jitted program per order, R's Brent search
    on one-element arrays, tvReg's fallback h = 1 when every CV value failed (as ``tvar.select_bandwidth``)."""
    one = jax.jit(tvar._fit_series, static_argnames=("p",))
    lower = np.array([5.0 / (frames - p)])

    def fit(y):
        with jax.enable_x64(True):
            offsets = jnp.asarray(tvar._offsets(frames - p))
            kernel, y = jnp.asarray(tvar.KERNELS.index(tvar.DEFAULT_KERNEL)), jnp.asarray(y, jnp.float64)

            def cv(bw, index):
                return np.asarray(one(y, jnp.asarray(bw[0]), jnp.asarray(True), kernel, offsets, p)[1])[None]

            h, value, count = tvar.brent_fmin(cv, lower, tvar.BW_UPPER)
            h = float(np.where(value >= tvar.DBL_MAX, tvar.BW_FALLBACK, h)[0])
            coef = np.asarray(one(y, jnp.asarray(h), jnp.asarray(False), kernel, offsets, p)[0])
        return h, coef, int(count[0])

    return fit


def per_series_fits(series: np.ndarray, fitters: dict) -> dict:
    """Upstream's structure: every series and order fitted on its own. ``{p: (bw, coef, evaluations)}``."""
    out = {}
    for p, fit in fitters.items():
        results = [fit(y) for y in series]
        out[p] = (np.array([r[0] for r in results]), np.stack([r[1] for r in results]),
                  np.array([r[2] for r in results]))
    return out


def compare(vec: dict, loop: dict, index: np.ndarray) -> dict:
    """Largest bandwidth / coefficient differences of the looped series; NaN (R's NA) must sit at the same places."""
    bw = max(float(np.max(np.abs(vec[p][0][index] - loop[p][0]))) for p in ORDERS)
    coef, same_nan = 0.0, True
    for p in ORDERS:
        a, b = vec[p][1][index], loop[p][1]
        same_nan &= bool(np.array_equal(np.isnan(a), np.isnan(b)))
        both = ~(np.isnan(a) | np.isnan(b))
        coef = max(coef, float(np.max(np.abs(a[both] - b[both]), initial=0.0)))
    return {"max_abs_bw_diff": bw, "max_abs_coef_diff": coef, "nan_pattern_equal": same_nan}


def profile_cv(series: np.ndarray, repeats: int = 5) -> dict:
    """ms per series of one CV evaluation at h = 0.5: one series per jitted call against the library's jitted block
    of ``tvar.SERIES_PER_CALL`` series (the vectorised path's unit of work)."""
    block = tvar.SERIES_PER_CALL
    ys = np.resize(series, (block, series.shape[1]))
    out = {"block_series": block}
    with jax.enable_x64(True):
        one = jax.jit(tvar._fit_series, static_argnames=("p",))
        leave, kernel = jnp.asarray(True), jnp.asarray(0)
        for p in ORDERS:
            offsets = jnp.asarray(tvar._offsets(series.shape[1] - p))
            y1, yb, bw1, bwb = jnp.asarray(ys[0]), jnp.asarray(ys), jnp.asarray(0.5), jnp.full(block, 0.5)
            single = lambda: jax.block_until_ready(one(y1, bw1, leave, kernel, offsets, p))  # noqa: E731
            batched = lambda: jax.block_until_ready(tvar._fit_block(yb, bwb, leave, kernel, offsets, p))  # noqa: E731
            single(), batched()
            out[f"single_p{p}_ms"] = 1e3 * timing.median_seconds(single, 10 * repeats)
            out[f"block_p{p}_ms"] = 1e3 * timing.median_seconds(batched, repeats) / block
    return out


@contextlib.contextmanager
def block_sizes(per_call: int | None, per_step: int | None):
    """Temporarily overrides ``tvar.SERIES_PER_CALL`` / ``SERIES_PER_STEP`` (read when ``_fit_block`` is traced, so
    its compile cache is cleared on entry and exit). A benchmark knob for the vectorised path's block sizes (e.g.
    larger blocks on a GPU); the library's values stay the defaults."""
    old = tvar.SERIES_PER_CALL, tvar.SERIES_PER_STEP
    if per_call is None and per_step is None:
        yield old
        return
    tvar.SERIES_PER_CALL, tvar.SERIES_PER_STEP = per_call or old[0], per_step or old[1]
    tvar._fit_block.clear_cache()
    try:
        yield tvar.SERIES_PER_CALL, tvar.SERIES_PER_STEP
    finally:
        tvar.SERIES_PER_CALL, tvar.SERIES_PER_STEP = old
        tvar._fit_block.clear_cache()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=256, help="clips (75 series each for HDM05)")
    parser.add_argument("--loop-series", type=int, default=300,
                        help="series timed in the per-series loop, then extrapolated (0 = all)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of the vectorised workload (median)")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the CV-evaluation profile")
    parser.add_argument("--frames", type=int, default=60, help="T (shorter clips only for quick checks)")
    parser.add_argument("--series-per-call", type=int, default=None,
                        help=f"override tvar.SERIES_PER_CALL (default {tvar.SERIES_PER_CALL}) for the vectorised path")
    parser.add_argument("--series-per-step", type=int, default=None,
                        help=f"override tvar.SERIES_PER_STEP (default {tvar.SERIES_PER_STEP}) for the vectorised path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.loop_series < 0:
        raise ValueError("--repeats must be ≥ 1 and --loop-series ≥ 0")
    if any(v is not None and v < 1 for v in (args.series_per_call, args.series_per_step)):
        raise ValueError("--series-per-call and --series-per-step must be ≥ 1")
    with block_sizes(args.series_per_call, args.series_per_step) as sizes:
        result = run(args, sizes)
    report(result)
    if args.out:
        timing.write_json(args.out, result)
    return result


def run(args, sizes) -> dict:
    """Times both paths on the workload of ``args`` and compares their results."""

    x = workload(args.samples, args.seed, args.frames)
    frames = x.shape[2]
    series = dynamics._series(x)
    num = series.shape[0]
    device = f"{jax.devices()[0].device_kind} ({jax.default_backend()})"
    print(f"device: {device}")
    print(f"workload: {args.samples} clips {tuple(x.shape[1:])} → {num} series × {len(ORDERS)} orders "
          f"(tvAR p=1, p=2, CV bandwidth, Brent) = {num * len(ORDERS)} fits")

    # compilation: the first call on one clip compiles the block program (both CV and final fits share it)
    vec_compile, _, _ = timing.first_and_steady(lambda: vectorised_fits(x[:1]), 1)
    runs = [_timed(lambda: vectorised_fits(x)) for _ in range(args.repeats)]
    vec_s, vec = float(np.median([t for t, _ in runs])), runs[-1][1]

    index = loop_indices(num, args.loop_series)
    fitters = {p: make_series_fitter(p, frames) for p in ORDERS}
    loop_compile, _, _ = timing.first_and_steady(lambda: per_series_fits(series[:1], fitters), 1)
    loop_measured, loop = _timed(lambda: per_series_fits(series[index], fitters))
    extrapolated = len(index) < num
    loop_s = loop_measured * num / len(index)

    result = {"device": device, "samples": args.samples, "frames": frames, "series": num,
              "fits": num * len(ORDERS), "repeats": args.repeats,
              "series_per_call": sizes[0], "series_per_step": sizes[1], "vectorised_s": vec_s,
              "vectorised_compile_s": vec_compile, "per_series_s": loop_s, "per_series_measured_s": loop_measured,
              "per_series_looped": int(len(index)), "per_series_extrapolated": extrapolated,
              "per_series_compile_s": loop_compile, "speedup_vectorised_vs_per_series": loop_s / vec_s,
              "vectorised_ms_per_fit": 1e3 * vec_s / (num * len(ORDERS)),
              "per_series_ms_per_fit": 1e3 * loop_s / (num * len(ORDERS)),
              "cv_evaluations_per_fit": {f"p{p}": float(np.median(loop[p][2])) for p in ORDERS},
              **compare(vec, loop, index)}
    if args.profile:
        result["profile"] = profile_cv(series[index])
    return result


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def report(r: dict) -> None:
    """Prints the comparison table, the agreement of the two paths and the profile."""
    loop_note = (f"extrapolated from {r['per_series_looped']} of {r['series']} series"
                 if r["per_series_extrapolated"] else "all series")
    print(f"\n{'implementation':44s} {'workload s':>11s} {'ms / fit':>9s} {'compile s':>10s} {'speed-up':>9s}")
    print(f"{'JAX vectorised (dynamics.motion_fits)':44s} {r['vectorised_s']:11.1f} "
          f"{r['vectorised_ms_per_fit']:9.2f} {r['vectorised_compile_s']:10.1f} "
          f"{r['speedup_vectorised_vs_per_series']:8.2f}x")
    print(f"{'per series, JAX jitted fit in a Python loop':44s} {r['per_series_s']:11.1f} "
          f"{r['per_series_ms_per_fit']:9.2f} {r['per_series_compile_s']:10.1f} {1.0:8.2f}x")
    print(f"  per-series time {loop_note} (measured {r['per_series_measured_s']:.1f} s)")
    print(f"  agreement on the looped series: max |Δbw| = {r['max_abs_bw_diff']:.3g}, "
          f"max |Δcoef| = {r['max_abs_coef_diff']:.3g}, NA pattern equal: {r['nan_pattern_equal']}")
    print(f"  CV evaluations per fit (median): {r['cv_evaluations_per_fit']}")
    if "profile" in r:
        pr = r["profile"]
        print("  one CV evaluation, ms per series: " + ", ".join(
            f"p={p}: single {pr[f'single_p{p}_ms']:.3f} / block of {pr['block_series']} {pr[f'block_p{p}_ms']:.3f}"
            for p in ORDERS))


if __name__ == "__main__":
    main()
