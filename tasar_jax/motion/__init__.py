"""Temporal motion dynamics of TASAR: tvReg's time-varying AR fits and the per-sample AR1/AR2 arrays (float64).

Public API (NumPy in, NumPy float64 out; float64 JAX is enabled locally, never globally):

* :func:`tvar.tvar` — ``tvAR(y, p, bw=None, type="none", est="ll")`` for every series along the last axis;
  ``tvar.select_bandwidth``, ``tvar.coefficients``, ``tvar.cv_objective`` are its parts (module :mod:`.tvar`).
* :func:`motion_arrays` / :func:`motion_fits` — AR1/AR2 (N, 3, T, V, M) for clips, keyed by sample.
* :func:`motion_for_file`, :func:`cached_motion`, :func:`save_motion`, :func:`load_motion` — dataset files and the
  ``<stem>_motion.npz`` cache (keys ``ar1``, ``ar2``); :func:`load_upstream_ar` reads upstream ``ARmodel/<b>.npz``.
"""

from tasar_jax.motion import tvar
from tasar_jax.motion.dynamics import (
    MotionFits,
    assemble,
    cached_motion,
    default_cache_path,
    load_motion,
    load_upstream_ar,
    motion_arrays,
    motion_fits,
    motion_for_file,
    permute_like_upstream,
    save_motion,
)
from tasar_jax.motion.tvar import KERNELS, TvarFit

__all__ = [
    "KERNELS", "MotionFits", "TvarFit", "assemble", "cached_motion", "default_cache_path", "load_motion",
    "load_upstream_ar", "motion_arrays", "motion_fits", "motion_for_file", "permute_like_upstream", "save_motion",
    "tvar",
]
