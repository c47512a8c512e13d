"""Time-varying autoregression ``tvAR(y, p, type="none", est="ll")`` of the R package tvReg 0.5.9, in JAX float64.

Behaviour ported from the public descriptions in reference.md §4.6 / ecosystem.md §5 and the tvreg fixture README
(no tvReg code is copied):

* Rows ``t = p+1..T`` of ``y`` are the responses, the lags ``(y_{t-1}, …, y_{t-p})`` the regressors, no intercept;
  ``obs = T - p`` rows with smoothing variable ``z_i = i/obs``.
* At every evaluation point j the local-linear weighted least squares of y on ``[X, X·(z_i - z_j)]`` with kernel
  weights ``K((z_i - z_j)/h)``; rows with weight exactly 0 are dropped; the level block is the coefficient.
* The solver mirrors R's ``lm.wfit(singular.ok=TRUE)``: rows scaled by ``sqrt(w)``, LINPACK ``dqrdc2`` Householder
  QR with limited column pivoting (tolerance 1e-7, norm downdating with Bates' 1e-6 recompute rule), ``dqrsl``
  back-substitution. Aliased columns give NA, returned here as NaN (the assembled AR arrays map NaN to 0).
* ``bw=None``: leave-one-out CV (``cv.block = 0``) minimised by R's ``optimize`` — Brent's ``fmin`` (golden section
  + parabolic interpolation, ties accepted with ``f(u) <= f(x)``) on ``[5/obs, 20]`` with ``tol = sqrt(eps)``.
  The CV curve is multimodal; only this exact search picks the same local minimum as R.
* Non-finite CV values become the largest double (``optimize``'s rule); a CV point with fewer than 3 non-zero
  weights makes the whole objective the largest double (tvReg's rule). If the search ends on the largest double,
  tvReg retries the same deterministic search and then uses ``h = 1``; so do we, without the retries.

Decisions:

* A fit with fewer than 3 non-zero weights (only when ``obs < 3``, i.e. T < p + 3) stops with an error in R; here its
  coefficients are NaN (NA), so downstream AR arrays are 0 there.
* The fits (all evaluation points of many series) run in one jitted JAX program per (T, p), fed in blocks of
  ``SERIES_PER_CALL`` series (kernel and leave-one-out flag are traced, so nothing recompiles). The Brent search
  is R's C loop run element-wise on NumPy arrays on the host, one vectorised CV evaluation of all unfinished
  series per step, with an iteration cap (``MAX_BRENT_ITER`` = 1000; R has none, the fixtures need ≤ 50).
* Bit-compatibility with R's arithmetic: sums are accumulated strictly in row order (reference BLAS loops),
  products are kept out of XLA's fused multiply-adds (``lmfit.mul``), divisions by broadcast scalars are kept from
  being turned into reciprocal multiplications (``lmfit.div``, host-computed ``z``), the Triweight cube is rounded
  once like ``powl``, and ``dnorm`` splits large arguments as R does. Result: Triweight and Epanechnikov
  coefficients equal R's bit for bit on the fixtures; Gaussian ones differ by XLA's ``exp`` (≤ 1.3e-10).
* Float64: the public functions enter ``jax.enable_x64(True)`` themselves and return NumPy float64; the global
  JAX flag is never changed, so the rest of the library stays float32.
* Upstream uses only the default kernel (Triweight) with ``bw=NULL``; ``kernel`` and a fixed ``bw`` are extensions.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from tasar_jax.motion import lmfit
from tasar_jax.motion.lmfit import weighted_lstsq  # noqa: F401  (part of this module's interface)

KERNELS = ("Triweight", "Epa", "Gaussian")
DEFAULT_KERNEL = "Triweight"
DBL_MAX = float(np.finfo(np.float64).max)
BRENT_TOL = float(np.sqrt(np.finfo(np.float64).eps))  # optim(method="Brent") passes reltol = sqrt(eps)
BW_UPPER = 20.0
BW_FALLBACK = 1.0
MIN_ROWS = 3
MAX_BRENT_ITER = 1000
SERIES_PER_STEP = 8  # series fitted together inside the jitted loop (keeps the working set in cache)
SERIES_PER_CALL = 64  # series per call of the compiled program
INV_SQRT_2PI = 0.398942280401432677939946059934  # R's M_1_SQRT_2PI, as dnorm multiplies
GAUSS_UNDERFLOW = float(np.sqrt(-2 * np.log(2) * (-1021 + 1 - 53)))  # dnorm returns 0 beyond this


def _cube(s):
    """s³ rounded once (R evaluates ``^3`` with ``powl``; a plain s·s·s differs in the last bit)."""
    square, square_err = lmfit.two_prod(s, s)
    cube, cube_err = lmfit.two_prod(square, s)
    return cube + (cube_err + lmfit.mul(square_err, s))


def _dnorm(u):
    """R's ``dnorm``: plain formula below 5, else |u| split at 2^-16 so that the square is exact (PR#15620)."""
    x = jnp.abs(u)
    x1 = jnp.round(x * 65536.0) / 65536.0  # ldexp(nearbyint(ldexp(x, 16)), -16), exact scalings
    x2 = x - x1
    far = INV_SQRT_2PI * (jnp.exp(lmfit.mul(-0.5 * x1, x1)) * jnp.exp(lmfit.mul(-0.5 * x2 - x1, x2)))
    near = INV_SQRT_2PI * jnp.exp(lmfit.mul(-0.5 * x, x))
    return jnp.where(x < 5, near, jnp.where(x > GAUSS_UNDERFLOW, 0.0, far))


def kernel_weights(u, kernel: str):
    """tvReg's kernels at scaled offsets u: Triweight 35/32 (1-u²)³ and Epanechnikov 3/4 (1-u²) on |u| ≤ 1, φ(u)."""
    inside = jnp.abs(u) <= 1
    if kernel == "Triweight":
        return jnp.where(inside, 1.09375 * _cube(1.0 - lmfit.mul(u, u)), 0.0)
    if kernel == "Epa":
        return jnp.where(inside, 0.75 * (1.0 - lmfit.mul(u, u)), 0.0)
    if kernel == "Gaussian":
        return _dnorm(u)
    raise ValueError(f"unknown kernel {kernel!r}; valid: {', '.join(KERNELS)}")


def _weights_by_index(u, kernel_index):
    """:func:`kernel_weights` with the kernel as a traced index into ``KERNELS`` (one compiled program for all)."""
    options = [kernel_weights(u, name) for name in KERNELS]
    return jnp.where(kernel_index == 0, options[0], jnp.where(kernel_index == 1, options[1], options[2]))


def lag_design(y, p: int):
    """``stats::embed``: responses ``y[p:]`` (obs,) and lag columns (obs, p) in ascending lag order."""
    t = y.shape[-1]
    lags = jnp.stack([y[p - k : t - k] for k in range(1, p + 1)], axis=-1)
    return y[p:], lags


def _local_linear(response, lags, offset, is_point, bw, leave_out, kernel_index):
    """Level coefficients (p,) and number of rows of the local-linear fit whose centred times are ``offset``."""
    weights = _weights_by_index(lmfit.div(offset, bw), kernel_index)
    weights = jnp.where(leave_out & is_point, 0.0, weights)
    design = jnp.concatenate([lags, lags * offset[:, None]], axis=1)
    coef, n_eff = weighted_lstsq(design, response, weights)
    return coef[: lags.shape[1]], n_eff


def _offsets(obs: int) -> np.ndarray:
    """Centred smoothing times ``z_i - z_j`` [j, i] with ``z_i = i/obs``, computed on the host.

    They enter the jitted fit as an argument: as a constant XLA would fold ``/obs`` and ``/bw`` into reciprocal
    multiplications, which changes the last bit.
    """
    z = np.arange(1, obs + 1, dtype=np.float64) / obs
    return z[None, :] - z[:, None]


def _fit_series(y, bw, leave_out, kernel_index, offsets, p: int):
    """All evaluation points of one series: coefficients (obs, p) (NaN = NA) and the CV value of the fits.

    With ``leave_out`` the fits are the leave-one-out ones and the value is tvReg's CV objective; otherwise the value
    is the in-sample mean squared residual.
    """
    response, lags = lag_design(y, p)
    obs = response.shape[0]
    is_point = jnp.eye(obs, dtype=bool)
    fit = jax.vmap(lambda off, eye: _local_linear(response, lags, off, eye, jnp.abs(bw), leave_out,
                                                      kernel_index))
    coef, n_eff = fit(offsets, is_point)
    enough = n_eff >= MIN_ROWS
    prediction = lmfit.ordered_sum(lmfit.mul(lags, jnp.nan_to_num(coef, nan=0.0)).T)
    squares = lmfit.mul(response - prediction, response - prediction)
    value = lmfit.div(lmfit.compensated_sum(squares), jnp.sum(jnp.ones_like(squares)))
    value = jnp.where(jnp.all(enough) & jnp.isfinite(value), value, DBL_MAX)
    return jnp.where(enough[:, None], coef, jnp.nan), value


@functools.partial(jax.jit, static_argnames=("p",))
def _fit_block(y, bw, leave_out, kernel_index, offsets, p: int):
    return jax.lax.map(lambda args: _fit_series(*args, leave_out, kernel_index, offsets, p), (y, bw),
                       batch_size=SERIES_PER_STEP)


def _evaluate(y, bw, p: int, kernel: str, leave_out: bool):
    """Fits of series y (B, T) at bandwidths bw (B,) → NumPy (coefficients (B, obs, p), values (B,)), float64.

    The series go through one compiled program per (T, p) in blocks of ``SERIES_PER_CALL`` (the last one padded
    with zero series), so that batch sizes and kernels never trigger recompilation.
    """
    num, length = y.shape
    offsets = _offsets(length - p)
    coef = np.empty((num, length - p, p))
    value = np.empty(num)
    with jax.enable_x64(True):
        args = (jnp.asarray(leave_out), jnp.asarray(KERNELS.index(kernel)), jnp.asarray(offsets))
        for start in range(0, num, SERIES_PER_CALL):
            y_block = np.zeros((SERIES_PER_CALL, length))
            bw_block = np.ones(SERIES_PER_CALL)
            stop = min(num, start + SERIES_PER_CALL)
            y_block[: stop - start], bw_block[: stop - start] = y[start:stop], bw[start:stop]
            c, v = _fit_block(jnp.asarray(y_block), jnp.asarray(bw_block), *args, p)
            coef[start:stop], value[start:stop] = np.asarray(c)[: stop - start], np.asarray(v)[: stop - start]
    return coef, value


def brent_fmin(f, lower, upper, tol: float = BRENT_TOL, max_iter: int = MAX_BRENT_ITER):
    """R's ``Brent_fmin`` (``optimize``'s C code), run element-wise on arrays of independent searches.

    ``f(x, index)`` returns the objective values of the searches ``index`` (an integer array) at abscissae ``x``
    (same length); each step evaluates only the unfinished searches. Returns (x, f(x), evaluations).
    """
    golden = (3.0 - np.sqrt(5.0)) * 0.5
    eps = np.sqrt(np.finfo(np.float64).eps)
    tol3 = tol / 3.0
    a = np.array(lower, dtype=np.float64)
    b = np.broadcast_to(np.asarray(upper, dtype=np.float64), a.shape).copy()
    x = a + golden * (b - a)
    v, w = x.copy(), x.copy()
    d, e = np.zeros_like(x), np.zeros_like(x)
    fx = np.asarray(f(x, np.arange(x.size)), dtype=np.float64)
    fv, fw = fx.copy(), fx.copy()
    count = np.ones(x.shape, dtype=np.int64)
    running = np.ones(x.shape, dtype=bool)
    for _ in range(max_iter):
        xm = (a + b) * 0.5
        tol1 = eps * np.abs(x) + tol3
        t2 = tol1 * 2.0
        running &= ~(np.abs(x - xm) <= t2 - (b - a) * 0.5)
        if not running.any():
            break
        d_old, e_old = d, e
        parabola = np.abs(e) > tol1
        r = (x - w) * (fx - fv)
        q = (x - v) * (fx - fw)
        p = (x - v) * q - (x - w) * r
        q = (q - r) * 2.0
        p = np.where(q > 0, -p, p)
        q = np.abs(q)
        p, q, r = np.where(parabola, p, 0.0), np.where(parabola, q, 0.0), np.where(parabola, e, 0.0)
        e = np.where(parabola, d, e)
        golden_step = (np.abs(p) >= np.abs(q * 0.5 * r)) | (p <= q * (a - x)) | (p >= q * (b - x))
        e_golden = np.where(x < xm, b - x, a - x)
        with np.errstate(divide="ignore", invalid="ignore"):
            d_parabola = p / q
        u = x + d_parabola
        d_parabola = np.where((u - a < t2) | (b - u < t2), np.where(x >= xm, -tol1, tol1), d_parabola)
        e = np.where(golden_step, e_golden, e)
        d_new = np.where(golden_step, golden * e_golden, d_parabola)
        u = np.where(np.abs(d_new) >= tol1, x + d_new, np.where(d_new > 0, x + tol1, x - tol1))
        u = np.where(running, u, x)
        fu = fx.copy()
        index = np.nonzero(running)[0]
        fu[index] = f(u[index], index)
        count += running
        better = fu <= fx
        to_w = ~better & ((fu <= fw) | (w == x))
        to_v = ~better & ~to_w & ((fu <= fv) | (v == x) | (v == w))
        new = {
            "a": np.where(better, np.where(u < x, a, x), np.where(u < x, u, a)),
            "b": np.where(better, np.where(u < x, x, b), np.where(u < x, b, u)),
            "v": np.where(better | to_w, w, np.where(to_v, u, v)),
            "fv": np.where(better | to_w, fw, np.where(to_v, fu, fv)),
            "w": np.where(better, x, np.where(to_w, u, w)),
            "fw": np.where(better, fx, np.where(to_w, fu, fw)),
            "x": np.where(better, u, x),
            "fx": np.where(better, fu, fx),
        }
        a, b, v, fv, w, fw, x, fx = (np.where(running, new[k], old) for k, old in
                                     zip(("a", "b", "v", "fv", "w", "fw", "x", "fx"), (a, b, v, fv, w, fw, x, fx)))
        d, e = np.where(running, d_new, d_old), np.where(running, e, e_old)
    return x, fx, count


def _check(y, p: int, kernel: str) -> np.ndarray:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; valid: {', '.join(KERNELS)}")
    if p < 1:
        raise ValueError(f"lag order p must be ≥ 1, got {p}")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim < 1 or y.shape[-1] < p + 2:
        raise ValueError(f"series need at least p + 2 = {p + 2} frames, got shape {y.shape}")
    return y


def _flat(y, bw=None):
    """Series (B, T) (and bandwidths (B,), broadcast against the batch shape) plus the batch shape."""
    if bw is None:
        return y.reshape(-1, y.shape[-1]), y.shape[:-1]
    shape = np.broadcast_shapes(y.shape[:-1], np.shape(bw))
    flat = np.broadcast_to(y, shape + y.shape[-1:]).reshape(-1, y.shape[-1])
    return flat, np.broadcast_to(np.asarray(bw, dtype=np.float64), shape).reshape(-1), shape


def select_bandwidth(y, p: int, *, kernel: str = DEFAULT_KERNEL, max_iter: int = MAX_BRENT_ITER):
    """tvReg's ``bw()`` for ``tvAR(y, p, bw=NULL)``: (bw, cv, evaluations), each of shape ``y.shape[:-1]``.

    Leave-one-out CV minimised by R's Brent search on [5/obs, 20]; a search ending on the largest double falls back
    to h = 1 as tvReg does after its retries.
    """
    y = _check(y, p, kernel)
    flat, _ = _flat(y)
    obs = y.shape[-1] - p
    lower = np.full(flat.shape[0], 5.0 / obs)
    h, cv, count = brent_fmin(lambda bw, index: _evaluate(flat[index], bw, p, kernel, True)[1], lower, BW_UPPER,
                              max_iter=max_iter)
    h = np.where(cv >= DBL_MAX, BW_FALLBACK, h)
    shape = y.shape[:-1]
    return h.reshape(shape), cv.reshape(shape), count.reshape(shape)


def cv_objective(y, p: int, bw, *, kernel: str = DEFAULT_KERNEL) -> np.ndarray:
    """tvReg's leave-one-out CV objective at bandwidth(s) bw (broadcast against ``y.shape[:-1]``)."""
    y = _check(y, p, kernel)
    flat, bws, shape = _flat(y, bw)
    return _evaluate(flat, bws, p, kernel, True)[1].reshape(shape)


def coefficients(y, p: int, bw, *, kernel: str = DEFAULT_KERNEL) -> np.ndarray:
    """tvAR coefficients (..., obs, p) at fixed bandwidth(s) bw (broadcast with ``y.shape[:-1]``); NaN = R's NA."""
    y = _check(y, p, kernel)
    flat, bws, shape = _flat(y, bw)
    coef = _evaluate(flat, bws, p, kernel, False)[0]
    return coef.reshape(shape + coef.shape[1:])


@dataclasses.dataclass(frozen=True)
class TvarFit:
    """Result of :func:`tvar`, named like tvReg's list: coefficients (..., obs, p), fitted/residuals (..., obs), bw."""

    coefficients: np.ndarray
    fitted: np.ndarray
    residuals: np.ndarray
    bw: np.ndarray
    p: int
    kernel: str


def tvar(y, p: int = 1, bw=None, *, kernel: str = DEFAULT_KERNEL, max_iter: int = MAX_BRENT_ITER) -> TvarFit:
    """``tvAR(y, p, bw, type="none", est="ll", tkernel=kernel)`` for every series along the last axis of y.

    ``bw=None`` selects each series' bandwidth by leave-one-out CV and Brent's search (R's exact search).
    """
    y = _check(y, p, kernel)
    if bw is None:
        bw, _, _ = select_bandwidth(y, p, kernel=kernel, max_iter=max_iter)
    bw = np.broadcast_to(np.asarray(bw, dtype=np.float64), y.shape[:-1]).copy()
    coef = coefficients(y, p, bw, kernel=kernel)
    response = y[..., p:]
    lags = np.stack([y[..., p - k : y.shape[-1] - k] for k in range(1, p + 1)], axis=-1)
    terms = lags * np.nan_to_num(coef, nan=0.0)
    fitted = terms[..., 0]
    for k in range(1, p):
        fitted = fitted + terms[..., k]
    return TvarFit(coefficients=coef, fitted=fitted, residuals=response - fitted, bw=bw, p=p, kernel=kernel)
