"""TASAR's per-sample motion arrays AR1/AR2 (upstream ``ARCal.py``, reference.md §4.6), computed and cached.

For every coordinate c, joint v and person m the trajectory ``y = x[n, c, :, v, m]`` gets two tvAR fits
(:mod:`tasar_jax.motion.tvar`, cross-validated bandwidth, Triweight by default): p = 2 coefficients ``a1, a2``
(target frames 2..T-1) and the p = 1 coefficient ``b1`` (frames 1..T-1). With length-T vectors
``c = [a1, 0, 0]``, ``d = [a2, 0, 0]`` and ``e = [b1[0], a1, 0]`` the arrays are ``AR1 = e`` and
``AR2 = e·c + d`` with NaN (NA) set to 0, i.e. ``AR1[t] ≈ ∂y_{t+1}/∂y_t`` and ``AR2[t] ≈ ∂y_{t+2}/∂y_t``.

Decisions (upstream quirks, reference.md §7.3–7.4):

* **Keyed by sample.** Upstream computes the AR files from a *shuffled* loader while the attack reads its batches
  unshuffled, so AR file b belongs to other samples (§7.3). Here ``ar1[n], ar2[n]`` always belong to ``x[n]``.
  :func:`permute_like_upstream` reproduces the mismatch on request (a random permutation of the samples).
* **Every sample, any batch.** Upstream processes only the first 8 samples of each batch and crashes on a short
  final batch (§7.4); here every sample is computed, in chunks of any size.
* **Any T.** Upstream assumes 60 frames: for T < 60 it tiles the coefficient vectors from their start and for
  T > 60 truncates them to 60 (``np.tile(v, 60 // T + 1)[:60]``). Here the arrays have the actual length T
  (identical for T = 60). T ≥ 4 is required; fits with fewer than 3 usable rows (T < p + 3) are NA, so 0.
* **Person axis kept.** Upstream squeezes M for HDM05 ((8, 3, 60, 25)); ours are always (N, 3, T, V, M).
  :func:`load_upstream_ar` reads upstream files and restores the person axis.
* **Precision.** Fits run in float64 on the given values; upstream fed float32 tensors, so pass float32 clips
  (as :func:`tasar_jax.data.formats.load_dataset_file` returns them) to reproduce it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import pathlib

import numpy as np

from tasar_jax.data import formats
from tasar_jax.motion import tvar
from tasar_jax.progress import bar as progress_bar

MIN_FRAMES = 4
CACHE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class MotionFits:
    """AR1/AR2 (N, 3, T, V, M) float64 and the underlying fits per trajectory (N, 3, V, M, …)."""

    ar1: np.ndarray
    ar2: np.ndarray
    bw1: np.ndarray
    bw2: np.ndarray
    coef1: np.ndarray  # (N, 3, V, M, T-1, 1)
    coef2: np.ndarray  # (N, 3, V, M, T-2, 2)


def assemble(coef2: np.ndarray, coef1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upstream's AR1/AR2 vectors from raw tvAR coefficients (NaN = NA).

    Args:
      coef2: p = 2 coefficients (..., T-2, 2) (lag 1, lag 2).
      coef1: p = 1 coefficients (..., T-1, 1) or (..., T-1).

    Returns:
      ``(ar1, ar2)``, each (..., T) float64 with NaN replaced by 0.
    """
    coef2 = np.asarray(coef2, dtype=np.float64)
    coef1 = np.asarray(coef1, dtype=np.float64)
    if coef1.ndim == coef2.ndim:
        coef1 = coef1[..., 0]
    a1, a2, b1 = coef2[..., 0], coef2[..., 1], coef1
    pad2 = np.zeros(a1.shape[:-1] + (2,))
    c = np.concatenate([a1, pad2], axis=-1)
    d = np.concatenate([a2, pad2], axis=-1)
    e = np.concatenate([b1[..., :1], a1, pad2[..., :1]], axis=-1)
    ar2 = e * c + d
    return np.nan_to_num(e, nan=0.0), np.nan_to_num(ar2, nan=0.0)


def _series(x: np.ndarray) -> np.ndarray:
    """(N, C, T, V, M) → (N·C·V·M, T) trajectories, float64."""
    n, c, t, v, m = x.shape
    return np.ascontiguousarray(np.moveaxis(np.asarray(x, dtype=np.float64), 2, -1).reshape(-1, t))


def _check_clips(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 5:
        raise ValueError(f"expected clips (N, C, T, V, M), got shape {x.shape}")
    if x.shape[2] < MIN_FRAMES:
        raise ValueError(f"need at least {MIN_FRAMES} frames, got T = {x.shape[2]}")
    if not np.all(np.isfinite(x)):
        raise ValueError("clips contain NaN or inf")
    return x


def motion_fits(x, *, kernel: str = tvar.DEFAULT_KERNEL, bandwidth: float | None = None,
                max_iter: int = tvar.MAX_BRENT_ITER) -> MotionFits:
    """tvAR(2) and tvAR(1) fits of every trajectory of clips x (N, C, T, V, M) and the AR1/AR2 arrays.

    ``bandwidth=None`` cross-validates each fit (tvReg's default, as upstream); a number fixes it for all fits.
    """
    x = _check_clips(x)
    n, c, t, v, m = x.shape
    series = _series(x)
    fits = {p: tvar.tvar(series, p, bandwidth, kernel=kernel, max_iter=max_iter) for p in (1, 2)}
    ar1, ar2 = assemble(fits[2].coefficients, fits[1].coefficients)

    def layout(arr):  # (N·C·V·M, T) → (N, C, T, V, M)
        return np.moveaxis(arr.reshape(n, c, v, m, t), -1, 2)

    def per_trajectory(arr):
        return arr.reshape((n, c, v, m) + arr.shape[1:])

    return MotionFits(ar1=layout(ar1), ar2=layout(ar2), bw1=per_trajectory(fits[1].bw),
                      bw2=per_trajectory(fits[2].bw), coef1=per_trajectory(fits[1].coefficients),
                      coef2=per_trajectory(fits[2].coefficients))


def motion_arrays(x, *, kernel: str = tvar.DEFAULT_KERNEL, bandwidth: float | None = None,
                  chunk_size: int | None = None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(ar1, ar2)``, each (N, C, T, V, M) float64, for clips x, keyed by sample.

    With ``chunk_size`` the samples are processed that many at a time (the last chunk padded with zero samples so
    that every chunk reuses one compiled program), with an optional rich progress bar.
    """
    x = _check_clips(x)
    if chunk_size is None or chunk_size >= x.shape[0]:
        fits = motion_fits(x, kernel=kernel, bandwidth=bandwidth)
        return fits.ar1, fits.ar2
    ar1 = np.zeros(x.shape, dtype=np.float64)
    ar2 = np.zeros(x.shape, dtype=np.float64)
    with progress_bar(progress) as bar:
        task = bar.add_task("motion (tvAR)", total=x.shape[0])
        for start in range(0, x.shape[0], chunk_size):
            chunk = x[start:start + chunk_size]
            size = chunk.shape[0]
            if size < chunk_size:
                chunk = np.concatenate([chunk, np.zeros((chunk_size - size,) + chunk.shape[1:], chunk.dtype)])
            fits = motion_fits(chunk, kernel=kernel, bandwidth=bandwidth)
            ar1[start:start + size], ar2[start:start + size] = fits.ar1[:size], fits.ar2[:size]
            bar.update(task, advance=size)
    return ar1, ar2


def fingerprint(x) -> str:
    """SHA-256 of the clips' dtype, shape and bytes: ties a cache file to the data it was computed from."""
    x = np.ascontiguousarray(x)
    digest = hashlib.sha256(f"{x.dtype.str}{x.shape}".encode())
    digest.update(x.tobytes())
    return digest.hexdigest()


def default_cache_path(data_path) -> pathlib.Path:
    """``<folder>/<stem>_motion.npz`` beside a (gathered) data file."""
    path = pathlib.Path(data_path)
    return path.with_name(f"{path.stem}_motion.npz")


def save_motion(path, ar1: np.ndarray, ar2: np.ndarray, *, kernel: str = tvar.DEFAULT_KERNEL,
                bandwidth: float | None = None, source: str = "") -> pathlib.Path:
    """Writes ``ar1``/``ar2`` float64 (N, 3, T, V, M) and the settings to an npz, atomically."""
    ar1, ar2 = np.asarray(ar1, dtype=np.float64), np.asarray(ar2, dtype=np.float64)
    if ar1.shape != ar2.shape or ar1.ndim != 5:
        raise ValueError(f"ar1/ar2 must both be (N, 3, T, V, M), got {ar1.shape} and {ar2.shape}")
    with formats.atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, ar1=ar1, ar2=ar2, kernel=np.asarray(kernel),
                                bandwidth=np.asarray(math.nan if bandwidth is None else bandwidth),
                                source=np.asarray(source), version=np.asarray(CACHE_VERSION))
    return pathlib.Path(path)


def load_motion(path) -> dict:
    """Reads a file written by :func:`save_motion`: ``ar1``, ``ar2`` and the stored settings."""
    path = pathlib.Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise formats.DataFormatError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as err:
        raise formats.DataFormatError(f"{path}: not a readable motion file: {err}") from err
    if "ar1" not in out or "ar2" not in out:
        raise formats.DataFormatError(f"{path}: expected keys ar1, ar2; found {sorted(out)}")
    return out


def _cache_matches(cached: dict, x, kernel: str, bandwidth: float | None) -> bool:
    stored_bw = float(cached.get("bandwidth", math.nan))
    same_bw = math.isnan(stored_bw) if bandwidth is None else stored_bw == float(bandwidth)
    return (cached["ar1"].shape == x.shape and str(cached.get("kernel", "")) == kernel and same_bw
            and str(cached.get("source", "")) == fingerprint(x))


def cached_motion(x, cache_path, *, kernel: str = tvar.DEFAULT_KERNEL, bandwidth: float | None = None,
                  chunk_size: int = 8, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """AR1/AR2 for clips x from ``cache_path`` if it was computed from the same clips and settings, else computed
    (in chunks) and written there atomically."""
    x = _check_clips(x)
    if bandwidth is not None and not bandwidth > 0:
        raise ValueError(f"the tvAR bandwidth must be > 0, got {bandwidth}")
    path = pathlib.Path(cache_path)
    if path.exists():
        try:
            cached = load_motion(path)
        except formats.DataFormatError:
            cached = None
        if cached is not None and _cache_matches(cached, x, kernel, bandwidth):
            return cached["ar1"], cached["ar2"]
    ar1, ar2 = motion_arrays(x, kernel=kernel, bandwidth=bandwidth, chunk_size=chunk_size, progress=progress)
    save_motion(path, ar1, ar2, kernel=kernel, bandwidth=bandwidth, source=fingerprint(x))
    return ar1, ar2


def motion_for_file(data_path, dataset: str, out_path=None, *, kernel: str = tvar.DEFAULT_KERNEL,
                    bandwidth: float | None = None, chunk_size: int = 8, progress: bool = True,
                    use_cache: bool = True) -> pathlib.Path:
    """Computes AR1/AR2 for a dataset file (e.g. a gathered ``adClassTrain.npz``, or a common-layout ``.npy``).

    Writes ``out_path`` (default :func:`default_cache_path`) with ``ar1``/``ar2`` (N, 3, T, V, M) float64 aligned
    with the file's samples, and returns its path. An up-to-date file is reused when ``use_cache``.
    """
    data_path = pathlib.Path(data_path)
    if data_path.suffix == ".npy":
        x = formats.load_array(data_path)
    else:
        x, _ = formats.load_dataset_file(data_path, dataset)
    out_path = pathlib.Path(out_path) if out_path is not None else default_cache_path(data_path)
    if not use_cache and out_path.exists():
        out_path.unlink()
    cached_motion(x, out_path, kernel=kernel, bandwidth=bandwidth, chunk_size=chunk_size, progress=progress)
    return out_path


def load_upstream_ar(path) -> tuple[np.ndarray, np.ndarray]:
    """Reads an upstream ``ARmodel/<b>.npz`` (keys ``AR1``, ``AR2``) as (B, 3, T, V, M) float64.

    HDM05 files have no person axis ((8, 3, 60, 25)); one is appended, as the upstream attack does.
    """
    path = pathlib.Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            ar1, ar2 = np.asarray(data["AR1"], np.float64), np.asarray(data["AR2"], np.float64)
    except (OSError, KeyError, ValueError, EOFError) as err:
        raise formats.DataFormatError(f"{path}: not an upstream AR file with AR1/AR2: {err}") from err
    if ar1.ndim == 4:
        ar1, ar2 = ar1[..., None], ar2[..., None]
    return ar1, ar2


def permute_like_upstream(ar1: np.ndarray, ar2: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Opt-in reproduction of quirk §7.3: AR arrays assigned to a random permutation of the samples.

    Returns ``(ar1[perm], ar2[perm], perm)``: sample n then uses the coefficients of sample ``perm[n]``, as an
    upstream attack batch uses an AR file computed from a shuffled loader. (Upstream's torch shuffle order itself is
    unseeded and cannot be reproduced.)
    """
    perm = np.random.default_rng(seed).permutation(ar1.shape[0])
    return ar1[perm], ar2[perm], perm
