"""R's ``lm.wfit`` numerics in JAX float64, bit-compatible with R's reference BLAS/LINPACK (for ``tvar``).

Products kept out of XLA's fused multiply-adds (:func:`mul`), divisions kept from becoming reciprocal
multiplications (:func:`div`), Dekker's exact product, sums strictly in row order, LINPACK ``dqrdc2``
Householder QR with limited column pivoting (tolerance 1e-7, norm downdating with Bates' 1e-6 recompute rule)
and ``dqrsl`` back-substitution. Aliased columns give NaN coefficients (R's NA).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

RANK_TOL = 1e-7  # lm.wfit's tol, passed to dqrdc2
DOWNDATE_RECOMPUTE = 1e-6  # dqrdc2 recomputes a column norm when 1 - (x_lj/norm)^2 falls below this


def mul(a, b):
    """a·b, kept out of fused multiply-adds (XLA CPU contracts a + b·c into an FMA; R's BLAS does not)."""
    product = a * b
    return jnp.where(jnp.isnan(product), jnp.nan, product)


def div(a, b):
    """a / b with b broadcast to a's shape first (XLA rewrites a division by a broadcast into a reciprocal multiply)."""
    return a / jnp.where(jnp.isnan(a), jnp.nan, jnp.broadcast_to(b, jnp.shape(a)))


def split(a):
    """Veltkamp split of a float64 into two 26-bit halves (for an error-free product without FMA)."""
    c = mul(134217729.0, a)
    high = c - (c - a)
    return high, a - high


def two_prod(a, b):
    """a·b as an unevaluated sum (product, error) — Dekker's exact product."""
    product = mul(a, b)
    ah, al = split(a)
    bh, bl = split(b)
    return product, ((mul(ah, bh) - product) + mul(ah, bl) + mul(al, bh)) + mul(al, bl)


def ordered_sum(x):
    """Sum over axis 0 strictly in row order, as the reference BLAS loops of ``lm.wfit`` accumulate."""
    total = x[0]
    for i in range(1, x.shape[0]):
        total = total + x[i]
    return total


def select(arr, mask, axis: int):
    """The entries of ``arr`` where the one-hot ``mask`` (along ``axis``) is set: exact, without a gather."""
    return jnp.sum(jnp.where(mask, arr, 0.0), axis=axis)


def dqrdc2(a, rows, n_eff):
    """LINPACK ``dqrdc2`` on the rows of a (n, P) matrix with ``rows`` = their positions after dropping zero-weight
    rows (dropped rows are all zero and sit at position n; adding their zeros to the ordered sums is exact).

    Returns (qr, qraux, pivot, rank) in LINPACK's compact storage. Column ``l`` is moved to the end while its
    downdated norm is below ``RANK_TOL`` times its original norm (all leading negligible columns at once: a rotation).
    """
    num_cols = a.shape[1]
    cols = jnp.arange(num_cols)
    qraux = jnp.sqrt(ordered_sum(mul(a, a)))
    orig = jnp.where(qraux == 0, 1.0, qraux)
    lup = jnp.minimum(n_eff, num_cols)

    def step(l, state):  # noqa: E741 (LINPACK's name)
        a, qraux, orig, pivot, kept = state
        active = l < lup
        negligible = (qraux < orig * RANK_TOL) & (cols < kept)
        leading = jnp.cumprod(jnp.where(cols >= l, negligible, True).astype(jnp.int32))
        shift = jnp.where(active, jnp.sum(jnp.where(cols >= l, leading, 0)), 0)
        source = jnp.where(cols >= l, l + (cols - l + shift) % (num_cols - l), cols)
        onehot = source[:, None] == cols[None, :]  # [new position, old position]
        a = select(a[:, None, :], onehot[None], 2)
        qraux, orig = select(qraux[None, :], onehot, 1), select(orig[None, :], onehot, 1)
        pivot = jnp.sum(jnp.where(onehot, pivot[None, :], 0), axis=1)
        kept = kept - shift
        at_l, below, right = cols == l, rows >= l, cols > l
        col = jnp.where(below, select(a, at_l[None, :], 1), 0.0)
        diag = select(col, rows == l, 0)
        nrmxl = jnp.sqrt(ordered_sum(mul(col, col)))
        do = active & (l < n_eff - 1) & (nrmxl != 0)
        nrmxl = jnp.where(diag != 0, jnp.copysign(nrmxl, diag), nrmxl)
        v = col * (1.0 / jnp.where(nrmxl == 0, 1.0, nrmxl))
        v = jnp.where(rows == l, 1.0 + v, v)
        v_l = select(v, rows == l, 0)
        t = div(-ordered_sum(mul(v[:, None], jnp.where(below[:, None], a, 0.0))), v_l)
        new = jnp.where(below[:, None], a + mul(t[None, :], v[:, None]), a)
        safe_q = jnp.where(qraux == 0, 1.0, qraux)
        ratio = jnp.abs(select(new, (rows == l)[:, None], 0)) / safe_q
        tt = jnp.maximum(1.0 - mul(ratio, ratio), 0.0)
        rest = jnp.where((rows > l)[:, None], new, 0.0)
        recomputed = jnp.sqrt(ordered_sum(mul(rest, rest)))
        new_q = jnp.where(jnp.abs(tt) < DOWNDATE_RECOMPUTE, recomputed, qraux * jnp.sqrt(tt))
        new_q = jnp.where(qraux == 0, qraux, new_q)
        a = jnp.where((do & right)[None, :], new, a)
        qraux = jnp.where(do & right, new_q, qraux)
        stored = jnp.where(rows == l, -nrmxl, jnp.where(below, v, select(a, at_l[None, :], 1)))
        a = jnp.where(do & at_l[None, :], stored[:, None], a)
        qraux = jnp.where(do & at_l, v_l, qraux)
        return a, qraux, orig, pivot, kept

    state = (a, qraux, orig, cols, jnp.asarray(num_cols))
    a, qraux, _, pivot, kept = jax.lax.fori_loop(0, num_cols, step, state)
    return a, qraux, pivot, jnp.minimum(kept, n_eff)


def dqrsl_coef(qr, qraux, rank, rows, n_eff, b):
    """``dqrsl``: Qᵀb by the stored reflections, then back-substitution on the leading ``rank`` columns."""
    num_cols = qr.shape[1]
    cols = jnp.arange(num_cols)
    ju = jnp.minimum(rank, n_eff - 1)

    def reflect(j, b):
        q_j = select(qraux, cols == j, 0)
        do = (j < ju) & (q_j != 0)
        below = rows >= j
        v = jnp.where(rows == j, q_j, jnp.where(below, select(qr, (cols == j)[None, :], 1), 0.0))
        t = -ordered_sum(mul(v, jnp.where(below, b, 0.0))) / jnp.where(do, q_j, 1.0)
        return jnp.where(do, b + mul(t, v), b)

    b = jax.lax.fori_loop(0, num_cols, reflect, b)
    leading = rows[None, :] == cols[:, None]  # [position r < P, row]
    upper = select(qr[None, :, :], leading[:, :, None], 1)

    def back(i, coef):
        j = num_cols - 1 - i
        do = j < rank
        r_col = select(upper, (cols == j)[None, :], 1)
        b_j = select(coef, cols == j, 0) / jnp.where(do, select(r_col, cols == j, 0), 1.0)
        coef = jnp.where(do & (cols == j), b_j, coef)
        return jnp.where(do & (cols < j), coef - mul(b_j, r_col), coef)

    coef = jax.lax.fori_loop(0, num_cols, back, select(b[None, :], leading, 1))
    return jnp.where(cols < rank, coef, jnp.nan)


def weighted_lstsq(design, response, weights):
    """R's ``lm.wfit(design, response, weights, singular.ok=TRUE)$coefficients``; aliased columns are NaN.

    Zero-weight rows are dropped (numbered out of the way rather than moved). Also returns the number of rows used.
    """
    n, num_cols = design.shape
    keep = weights != 0
    n_eff = jnp.sum(keep)
    rows = jnp.where(keep, jnp.cumsum(keep) - 1, n)
    root = jnp.sqrt(weights)
    a = design * root[:, None]
    b = response * root
    qr, qraux, pivot, rank = dqrdc2(a, rows, n_eff)
    coef = dqrsl_coef(qr, qraux, rank, rows, n_eff, b)
    return select(coef[None, :], pivot[None, :] == jnp.arange(num_cols)[:, None], 1), n_eff


def compensated_sum(x):
    """Row-ordered sum over axis 0 with exact error compensation (close to R's long-double ``mean`` accumulation)."""

    def add(i, state):
        total, error = state
        new = total + x[i]
        big = jnp.abs(total) >= jnp.abs(x[i])
        error = error + jnp.where(big, (total - new) + x[i], (x[i] - new) + total)
        return new, error

    total, error = jax.lax.fori_loop(1, x.shape[0], add, (x[0], jnp.zeros_like(x[0])))
    return total + error
