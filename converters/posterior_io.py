"""Upstream TASAR head and SWAG files (reference.md §4.1, §4.4) → ``tasar_jax`` posteriors (needs torch).

* ``<retFolder>/<i>_minValLossAppendedModel.pth``: head state_dict, keys ``0.weight``, ``0.bias``, ``1.weight``,
  ``1.bias`` (PyTorch layout, the layout of ``HeadParams``);
* ``<retFolder>/Dual_Bayesian/multi_swag_ep_<i>.pt``: ``{"mean_state_dict", "sqmean_state_dict", "epoch"}`` with
  AppendedModel keys ``model.0.weight`` …

``retFolder = <retPath>/<dataset>/ExtendedBayesian/<base>/<adTrainer>/``; two-stream surrogates have one folder per
stream (``<base>_joint``, ``<base>_bone``): read each with ``read_upstream_posterior``.
"""

from __future__ import annotations

import pathlib

from tasar_jax.converters.torch_io import CheckpointError, read_pth, to_numpy_state_dict

from tasar_jax.posterior.heads import HeadParams, Posterior
from tasar_jax.posterior.io import head_from_state_dict, stack_heads

__all__ = ["read_upstream_head", "read_upstream_swag", "read_upstream_posterior"]


def read_upstream_head(path) -> HeadParams:
    """One head from ``<i>_minValLossAppendedModel.pth``."""
    return head_from_state_dict(to_numpy_state_dict(read_pth(path), path), where=str(path))


def read_upstream_swag(path) -> tuple[HeadParams, HeadParams, int | None]:
    """(mean, sqmean, epoch) of one head from ``multi_swag_ep_<i>.pt``."""
    obj = read_pth(path)
    if not hasattr(obj, "get") or "mean_state_dict" not in obj or "sqmean_state_dict" not in obj:
        raise CheckpointError(f"{path}: expected a dict with 'mean_state_dict' and 'sqmean_state_dict'")
    mean, sqmean = (head_from_state_dict(to_numpy_state_dict(obj[k], path), where=f"{path}[{k}]")
                    for k in ("mean_state_dict", "sqmean_state_dict"))
    epoch = obj.get("epoch")
    return mean, sqmean, None if epoch is None else int(epoch)


def read_upstream_posterior(ret_folder, num_heads: int = 3, *, swag: bool = True) -> Posterior:
    """Heads ``0..num_heads−1`` and their SWAG moments from one upstream ``retFolder``. Without ``swag`` (or
    before DualBayesian ran) mean = heads and sqmean = heads² (a zero-variance posterior)."""
    folder = pathlib.Path(ret_folder)
    heads = stack_heads(read_upstream_head(folder / f"{i}_minValLossAppendedModel.pth") for i in range(num_heads))
    if not swag:
        return Posterior(heads, heads, HeadParams(*(leaf**2 for leaf in heads)))
    moments = [read_upstream_swag(folder / "Dual_Bayesian" / f"multi_swag_ep_{i}.pt") for i in range(num_heads)]
    return Posterior(heads, stack_heads(m[0] for m in moments), stack_heads(m[1] for m in moments))
