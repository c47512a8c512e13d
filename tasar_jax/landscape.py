"""Input-space loss landscapes and sharpness around clean and adversarial skeletons (paper §2.2, §5; Figure 2).

Slices ``L(x + α·d₁ + β·d₂)`` of a per-sample loss along random directions that are rescaled per sample to the
attack's scale, so the grid ``α, β ∈ [−r, r]`` spans ``[−r·ε, r·ε]`` (L∞) around each sample:

* ``linf`` (default): Gaussian d with ``‖d‖∞ = ε``; ``sign``: ``ε·sign(ξ)``, a random corner of the ε-ball;
  ``rms``: Gaussian d with root-mean-square ε (the L2 norm of a corner).

Losses are ``fn(params, x, labels) → (N,)`` (hashable ``fn``, so one compilation per shape): ``SurrogateLoss``
(cross-entropy of a ``base.Surrogate``) and ``PosteriorLoss`` (TASAR: the expected cross-entropy of single appended
models over fixed head draws ``posterior.sample_heads``, upstream's posterior term; fixed draws — common random
numbers — keep the surface smooth in α). Every grid, all directions and all samples are evaluated in one jitted
call (``lax.map`` over chunks of grid points).

Sharpness (per sample):
* ``curvature``: mean over directions of the second difference ``(L(x+td) − 2L(x) + L(x−td))/t²`` with t = ``h``
  (default 1: the probe spans ±ε), i.e. ``dᵀ∇²L d`` on the ε scale (exact for a quadratic loss);
  ``rayleigh``: the same divided by ``‖d‖₂²`` (scale-free ``dᵀHd/dᵀd``).
* ``max_increase``: ``max L(x') − L(x)`` over ``‖x' − x‖∞ ≤ ε`` estimated by sign-gradient ascent (PGD, the best
  iterate), and ``grid_max_increase``: the same maximum over the 2-D grid points inside the ball (|α| + |β| ≤ 1).
"""

from __future__ import annotations

import dataclasses
import json
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tasar_jax import losses
from tasar_jax.data.formats import atomic_path
from tasar_jax.models import streams
from tasar_jax.posterior.heads import appended_model, sample_heads

__all__ = ["LandscapeConfig", "BoundLoss", "SurrogateLoss", "PosteriorLoss", "surrogate_loss", "posterior_loss",
           "random_directions", "grid_losses", "slice_1d", "slice_2d", "curvature", "max_increase", "landscape",
           "summary", "save_json", "plot", "analyse", "analyse_checkpoint"]

NORMALISATIONS = ("linf", "sign", "rms")


@dataclasses.dataclass(frozen=True)
class LandscapeConfig:
    """Grid and sharpness settings. ``radius`` r: the grid spans ``[−r·ε, r·ε]``; ``points`` per axis (odd keeps
    the centre on the grid); ``num_directions`` for 1-D slices and curvature; ``chunk``: grid points per batch;
    ``gradient_plane``: span the 2-D plane by the FGSM direction and a random one (random directions in the
    ~10⁴-dimensional input barely change the loss; the gradient axis shows the adversarial side)."""

    epsilon: float = 0.01
    radius: float = 2.0
    points: int = 21
    num_directions: int = 8
    normalisation: str = "linf"
    h: float = 1.0
    pgd_steps: int = 10
    pgd_step_size: float | None = None  # default 2.5·ε/steps
    chunk: int = 64
    gradient_plane: bool = False

    def __post_init__(self):
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {self.normalisation!r}")
        if self.points < 2 or self.num_directions < 2 or self.epsilon <= 0 or self.radius <= 0:
            raise ValueError("need points ≥ 2, num_directions ≥ 2 and positive epsilon, radius")

    @property
    def alphas(self) -> np.ndarray:
        return np.linspace(-self.radius, self.radius, self.points, dtype=np.float32)


class BoundLoss(NamedTuple):
    """A per-sample loss ``fn(params, x, labels) → (N,)`` (hashable fn) with its ``params``."""

    fn: Callable
    params: Any


@dataclasses.dataclass(frozen=True)
class SurrogateLoss:
    """Per-sample cross-entropy of ``apply_fn(params, x)``."""

    apply_fn: Callable

    def __call__(self, params, x, labels):
        return losses.cross_entropy(self.apply_fn(params, x), labels)


@dataclasses.dataclass(frozen=True)
class PosteriorLoss:
    """Expected per-sample CE of single appended models over head draws; params = (surrogate params, draws).

    ``apply_fn`` returns per-stream logits ``(z,)`` or ``(z_J, z_B)``; draws are the matching per-stream tuple."""

    apply_fn: Callable
    bone_head_sees_joint: bool = False

    def __call__(self, params, x, labels):
        surrogate_params, draws = params
        z = self.apply_fn(surrogate_params, x)
        one = lambda heads: losses.cross_entropy(appended_model(  # noqa: E731
            heads, z, bone_head_sees_joint=self.bone_head_sees_joint), labels)
        per_draw = jax.vmap(jax.vmap(one))(draws)
        return jnp.mean(per_draw, axis=(0, 1))


def surrogate_loss(surrogate) -> BoundLoss:
    """The cross-entropy landscape of a plain ``base.Surrogate`` (summed logits for two-stream ensembles)."""
    return BoundLoss(SurrogateLoss(surrogate.apply_fn), surrogate.params)


def posterior_loss(surrogate, posterior, key, num_samples: int = 20, scale: float = 1.5, *,
                   bone_head_sees_joint: bool = False) -> BoundLoss:
    """TASAR's posterior loss: ``surrogate`` gives per-stream logits (``Surrogate.from_model(model, streams=True)``)
    for the per-stream ``posterior`` tuple; ``num_samples`` draws per head (upstream 20), scale 1.5."""
    posterior = jax.tree.map(jnp.asarray, streams.check_per_stream(posterior, "posterior"))
    sample = jax.jit(sample_heads, static_argnums=2)
    # split, not streams.stream_keys's fold_in: the landscape's draws stay what they were before streams were tuples
    keys = (key,) if len(posterior) == 1 else tuple(jax.random.split(key, len(posterior)))
    draws = tuple(sample(k, p, num_samples, scale) for k, p in zip(keys, posterior))
    return BoundLoss(PosteriorLoss(surrogate.apply_fn, bone_head_sees_joint), (surrogate.params, draws))


@partial(jax.jit, static_argnames=("num", "normalisation"))
def random_directions(key, x, num: int, epsilon: float, normalisation: str = "linf"):
    """``num`` random directions per sample, (num, *x.shape), each rescaled per sample to the ε scale."""
    axes = tuple(range(2, x.ndim + 1))
    xi = jax.random.normal(key, (num,) + x.shape, jnp.float32)
    if normalisation == "sign":
        return epsilon * jnp.sign(xi)
    if normalisation == "linf":
        return epsilon * xi / jnp.max(jnp.abs(xi), axis=axes, keepdims=True)
    if normalisation == "rms":
        return epsilon * xi / jnp.sqrt(jnp.mean(xi * xi, axis=axes, keepdims=True))
    raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")


def _grid_impl(fn, params, x, labels, coords, directions, chunk):
    def one(c):
        return fn(params, x + jnp.tensordot(c, directions, axes=1), labels)

    return jax.lax.map(one, coords, batch_size=min(chunk, coords.shape[0]))


_grid = jax.jit(_grid_impl, static_argnames=("fn", "chunk"))


def grid_losses(loss: BoundLoss, x, labels, coords, directions, chunk: int = 64):
    """Losses (G, N) at ``x + Σ_j coords[g, j]·directions[j]`` for G coefficient rows, in one jitted call."""
    return _grid(loss.fn, loss.params, jnp.asarray(x, jnp.float32), jnp.asarray(labels, jnp.int32),
                 jnp.asarray(coords, jnp.float32), jnp.asarray(directions, jnp.float32), chunk)


def slice_1d(loss: BoundLoss, x, labels, directions, alphas, chunk: int = 64):
    """Losses (D, P, N) along each of the D directions at the P coefficients ``alphas``."""
    d, p = directions.shape[0], len(alphas)
    coords = (np.eye(d, dtype=np.float32)[:, None, :] * np.asarray(alphas, np.float32)[None, :, None]).reshape(-1, d)
    return grid_losses(loss, x, labels, coords, directions, chunk).reshape(d, p, -1)


def slice_2d(loss: BoundLoss, x, labels, d1, d2, alphas, chunk: int = 64):
    """Losses (P, P, N) on the plane ``x + α·d1 + β·d2`` (row α, column β)."""
    a, b = np.meshgrid(alphas, alphas, indexing="ij")
    coords = np.stack([a.ravel(), b.ravel()], axis=1).astype(np.float32)
    return grid_losses(loss, x, labels, coords, jnp.stack([d1, d2]), chunk).reshape(len(alphas), len(alphas), -1)


def _second_differences(values, directions, h):
    """From losses at [x, x + h·d_j, x − h·d_j] (2D+1, N): per-direction curvature and Rayleigh quotients (D, N)."""
    d = directions.shape[0]
    second = (values[1:d + 1] + values[d + 1:] - 2 * values[0]) / h**2
    norms = jnp.sum(jnp.square(directions), axis=tuple(range(2, directions.ndim)))
    return second, second / norms


def _curvature_coords(d: int, h: float) -> np.ndarray:
    eye = np.eye(d, dtype=np.float32)
    return np.concatenate([np.zeros((1, d), np.float32), h * eye, -h * eye])


def curvature(loss: BoundLoss, x, labels, directions, h: float = 1.0, chunk: int = 64) -> dict:
    """Second differences along each direction: ``curvature`` (N,) = mean_d (L(x+hd) − 2L(x) + L(x−hd))/h²,
    ``rayleigh`` (N,) = mean_d of that over ‖d‖₂², and the per-direction values (D, N)."""
    values = grid_losses(loss, x, labels, _curvature_coords(directions.shape[0], h), directions, chunk)
    second, rayleigh = _second_differences(values, directions, h)
    return {"curvature": second.mean(0), "rayleigh": rayleigh.mean(0), "per_direction": second,
            "per_direction_rayleigh": rayleigh}


def _pgd_impl(fn, params, x, labels, epsilon, steps, step_size):
    base_loss = fn(params, x, labels)
    grad_fn = jax.grad(lambda v: jnp.sum(fn(params, v, labels)))

    def body(carry, _):
        v, best = carry
        v = x + jnp.clip(v + step_size * jnp.sign(grad_fn(v)) - x, -epsilon, epsilon)
        return (v, jnp.maximum(best, fn(params, v, labels))), None

    (_, best), _ = jax.lax.scan(body, (x, base_loss), None, length=steps)
    return best - base_loss


_pgd = jax.jit(_pgd_impl, static_argnames=("fn", "steps"))


def max_increase(loss: BoundLoss, x, labels, epsilon: float, steps: int = 10, step_size: float | None = None):
    """``max_{‖x'−x‖∞≤ε} L(x') − L(x)`` (N,) by sign-gradient ascent from x (best iterate; ≥ 0)."""
    step_size = 2.5 * epsilon / steps if step_size is None else step_size
    return _pgd(loss.fn, loss.params, jnp.asarray(x, jnp.float32), jnp.asarray(labels, jnp.int32), epsilon, steps,
                step_size)


def _coords(alphas: np.ndarray, d: int, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficient rows of the 1-D slices and curvature probes (over d directions), of the 2-D plane (over its two
    directions), and the plane's in-ball mask |α| + |β| ≤ 1."""
    one = (np.eye(d, dtype=np.float32)[:, None, :] * alphas[None, :, None]).reshape(-1, d)
    a, b = np.meshgrid(alphas, alphas, indexing="ij")
    plane = np.stack([a.ravel(), b.ravel()], axis=1).astype(np.float32)
    return np.concatenate([one, _curvature_coords(d, h)]), plane, np.abs(a) + np.abs(b) <= 1.0 + 1e-6


@partial(jax.jit, static_argnames=("fn", "points", "h", "chunk", "steps"))
def _analyse(fn, params, centre, labels, directions, plane_directions, coords, plane, inside, epsilon, step_size,
             points, h, chunk, steps):
    """One jitted call: every grid point of every slice and curvature probe, plus the PGD ascent."""
    d, p = directions.shape[0], points
    values = _grid_impl(fn, params, centre, labels, coords, directions, chunk)
    one, probes = values[:d * p], values[d * p:]
    two = _grid_impl(fn, params, centre, labels, plane, plane_directions, chunk).reshape(p, p, -1)
    second, rayleigh = _second_differences(probes, directions, h)
    base = probes[0]
    grid_max = jnp.max(jnp.where(inside[..., None], two, -jnp.inf), axis=(0, 1)) - base
    return {"slice_1d": one.reshape(d, p, -1), "slice_2d": two, "center": base, "curvature": second.mean(0),
            "rayleigh": rayleigh.mean(0), "grid_max_increase": jnp.maximum(grid_max, 0.0),
            "max_increase": _pgd_impl(fn, params, centre, labels, epsilon, steps, step_size)}


@partial(jax.jit, static_argnames=("fn",))
def _gradient_sign(fn, params, x, labels, epsilon):
    return epsilon * jnp.sign(jax.grad(lambda v: jnp.sum(fn(params, v, labels)))(x))


def landscape(loss: BoundLoss, x, labels, key, config: LandscapeConfig = LandscapeConfig(), *, x_adv=None) -> dict:
    """1-D and 2-D slices and sharpness around ``x`` (and ``x_adv`` when given), same directions for both.

    The plane is spanned by the first two random directions, or with ``config.gradient_plane`` by the FGSM
    direction ``ε·sign ∇L(x)`` (at the clean x) and the first random one. Returns ``{"alphas", "epsilon",
    "config", "clean": {...}, "adversarial": {...}}`` with numpy arrays: ``slice_1d`` (D, P, N), ``slice_2d``
    (P, P, N), ``center`` (N,), ``curvature``, ``rayleigh``, ``max_increase``, ``grid_max_increase`` (N,).
    One compiled call per centre shape.
    """
    alphas = config.alphas
    x, labels = jnp.asarray(x, jnp.float32), jnp.asarray(labels, jnp.int32)
    directions = random_directions(key, x, config.num_directions, config.epsilon, config.normalisation)
    first = _gradient_sign(loss.fn, loss.params, x, labels, config.epsilon) if config.gradient_plane else directions[1]
    plane_directions = jnp.stack([first, directions[0]]) if config.gradient_plane else directions[:2]
    coords, plane, inside = _coords(alphas, config.num_directions, config.h)
    step_size = 2.5 * config.epsilon / config.pgd_steps if config.pgd_step_size is None else config.pgd_step_size
    out = {"alphas": alphas, "epsilon": config.epsilon, "config": dataclasses.asdict(config)}
    for name, centre in (("clean", x), ("adversarial", x_adv)):
        if centre is not None:
            res = _analyse(loss.fn, loss.params, jnp.asarray(centre, jnp.float32), labels, directions,
                           plane_directions, jnp.asarray(coords), jnp.asarray(plane), jnp.asarray(inside),
                           config.epsilon, step_size, len(alphas), config.h, config.chunk, config.pgd_steps)
            out[name] = jax.tree.map(np.asarray, res)
    return out


def summary(result: dict) -> dict:
    """Sample means of the scalar measures per centre (the JSON-friendly digest of ``landscape``)."""
    keys = ("center", "curvature", "rayleigh", "max_increase", "grid_max_increase")
    return {name: {k: float(np.mean(result[name][k])) for k in keys}
            for name in ("clean", "adversarial") if name in result}


def save_json(result: dict, path) -> None:
    """Writes the result (arrays as nested lists) and its ``summary`` as JSON, atomically."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return np.asarray(value).tolist() if isinstance(value, (np.ndarray, np.generic, jax.Array)) else value

    payload = {"summary": summary(result), **plain(result)}
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(payload))


def plot(result: dict, path, title: str = "") -> None:
    """PNG: per centre, the 1-D slices (sample mean per direction) and the 2-D contour of the sample mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("clean", "adversarial") if n in result]
    alphas, eps = result["alphas"], result["epsilon"]
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 4 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        res = result[name]
        for curve in res["slice_1d"].mean(-1):
            row[0].plot(alphas, curve, alpha=0.7)
        row[0].set_title(f"{name}: 1-D slices, mean over samples\ncurvature {res['curvature'].mean():.3g}",
                         fontsize=10)
        row[0].set(xlabel=f"α (units of ε = {eps:g})", ylabel="loss")
        grid = res["slice_2d"].mean(-1)
        contour = row[1].contourf(alphas, alphas, grid.T, levels=20)
        fig.colorbar(contour, ax=row[1])
        row[1].set_title(f"{name}: 2-D slice, mean over samples\nmax increase in the ε-ball "
                         f"{res['max_increase'].mean():.3g} (PGD), {res['grid_max_increase'].mean():.3g} (grid)",
                         fontsize=10)
        row[1].set(xlabel="α (units of ε)", ylabel="β (units of ε)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def analyse(model, x, labels, out_prefix, *, x_adv=None, posterior=None, config: LandscapeConfig = LandscapeConfig(),
            num_draws: int = 20, scale: float = 1.5, attack_iterations: int = 20, bone_head_sees_joint: bool = False,
            seed: int = 0, title: str = "") -> dict:
    """Landscapes of ``model`` (and of its TASAR ``posterior``) around x and x_adv; writes PNG + JSON per loss.

    Without ``x_adv``, I-FGSM on the surrogate (ε = ``config.epsilon``, ``attack_iterations``) makes it. Files:
    ``<out_prefix>_surrogate.{png,json}`` and, with a posterior, ``<out_prefix>_posterior.{png,json}`` (same
    directions and centres). Returns the summaries by name.
    """
    import pathlib

    from tasar_jax.attacks import base, fgsm

    surrogate = base.Surrogate.from_model(model, streams=False)
    key_attack, key_dirs, key_draws = jax.random.split(jax.random.key(seed), 3)
    if x_adv is None:
        x_adv = fgsm.IFGSM(surrogate, epsilon=config.epsilon, iterations=attack_iterations)(key_attack, x, labels)
    bound_losses = {"surrogate": surrogate_loss(surrogate)}
    if posterior is not None:
        per_stream = base.Surrogate.from_model(model, streams=True)
        bound_losses["posterior"] = posterior_loss(per_stream, posterior, key_draws, num_draws, scale,
                                                 bone_head_sees_joint=bone_head_sees_joint)
    summaries = {}
    for name, loss in bound_losses.items():
        result = landscape(loss, x, labels, key_dirs, config, x_adv=x_adv)
        prefix = pathlib.Path(f"{out_prefix}_{name}")
        save_json(result, prefix.with_name(prefix.name + ".json"))
        plot(result, prefix.with_name(prefix.name + ".png"), title=f"{title} ({name})" if title else name)
        summaries[name] = summary(result)
    return summaries


def analyse_checkpoint(model_dir, data_path, out_prefix, *, posterior_path=None, adv_path=None,
                       num_samples: int = 16, **options) -> dict:
    """Host entry point (``tasar-jax landscape``): ``analyse`` on the first ``num_samples`` samples of a file.

    ``data_path`` is a dataset npz, or an adversarial set npz (``attacks.common.save_adversarial``), whose
    ``x_adv`` then supplies the adversarial centres (``adv_path`` does the same for a dataset file; targeted sets
    use their true labels). ``options`` are ``analyse``'s keywords.
    """
    from tasar_jax import artefacts, checkpoints
    from tasar_jax.attacks import common
    from tasar_jax.posterior import load_posterior

    model, meta = checkpoints.load(model_dir)
    with np.load(data_path) as contents:
        adversarial = adv_path or (data_path if "x_adv" in contents.files else None)
    x_adv = None
    if adversarial is not None:
        adv = common.load_adversarial(adversarial)
        labels = adv.labels if adv.true_labels is None else adv.true_labels
        x, x_adv, labels = adv.x[:num_samples], adv.x_adv[:num_samples], labels[:num_samples]
    else:
        x, labels = artefacts.load_for_model(meta, data_path)
        x, labels = x[:num_samples], labels[:num_samples]
    posterior = None if posterior_path is None else load_posterior(posterior_path)[0]
    return analyse(model, x, labels, out_prefix, x_adv=x_adv, posterior=posterior,
                   **{"title": meta["architecture"], **options})
