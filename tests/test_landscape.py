"""Loss landscapes: shapes, ε-scaled directions, analytic curvature of a quadratic and the ε-ball maximum of a
linear loss, the posterior loss, and the PNG/JSON outputs."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax import landscape as ls
from tasar_jax import losses
from tasar_jax.attacks import base, common
from tasar_jax.posterior import HeadParams, Posterior, appended_logits

SHAPE = (2, 3, 4, 25, 1)  # N = 2 samples of T = 4 frames
D = int(np.prod(SHAPE[1:]))


@dataclasses.dataclass(frozen=True)
class Quadratic:
    """A fake surrogate's per-sample loss ``½ xᵀAx`` (params = A)."""

    def __call__(self, a, x, labels):
        flat = x.reshape(x.shape[0], -1)
        return 0.5 * jnp.einsum("ni,ij,nj->n", flat, a, flat)


@dataclasses.dataclass(frozen=True)
class Linear:
    def __call__(self, g, x, labels):
        return x.reshape(x.shape[0], -1) @ g


def _x(seed=0, scale=0.1):
    return jnp.asarray(scale * np.random.default_rng(seed).normal(size=SHAPE), jnp.float32)


@pytest.mark.parametrize("normalisation", ["linf", "rms"])
def test_directions_are_on_the_epsilon_scale(normalisation):
    d = np.asarray(ls.random_directions(jax.random.key(0), _x(), 3, 0.01, normalisation))
    assert d.shape == (3,) + SHAPE
    per_sample = d.reshape(3, 2, -1)
    if normalisation == "rms":
        np.testing.assert_allclose(np.sqrt(np.mean(per_sample**2, -1)), 0.01, rtol=1e-5)
    else:
        np.testing.assert_allclose(np.abs(per_sample).max(-1), 0.01, rtol=1e-6)


def test_curvature_of_a_quadratic_is_analytic():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(D, D)) / np.sqrt(D)
    a = (m @ m.T + np.diag(rng.uniform(0.5, 2.0, D))).astype(np.float32)
    loss = ls.BoundLoss(Quadratic(), jnp.asarray(a))
    d = ls.random_directions(jax.random.key(2), _x(), 4, 0.1)
    out = ls.curvature(loss, _x(), jnp.zeros(2, jnp.int32), d, h=1.0)
    flat = np.asarray(d, np.float64).reshape(4, 2, -1)
    dad = np.einsum("kni,ij,knj->kn", flat, a, flat)
    np.testing.assert_allclose(out["per_direction"], dad, rtol=2e-3)
    np.testing.assert_allclose(out["curvature"], dad.mean(0), rtol=2e-3)
    np.testing.assert_allclose(out["rayleigh"], (dad / np.sum(flat**2, -1)).mean(0), rtol=2e-3)
    eig = np.linalg.eigvalsh(a.astype(np.float64))
    assert np.all(out["rayleigh"] >= eig[0] - 1e-3) and np.all(out["rayleigh"] <= eig[-1] + 1e-3)


def test_max_increase_of_a_linear_loss_is_eps_l1_norm():
    g = jnp.asarray(np.random.default_rng(3).normal(size=(D,)), jnp.float32)
    loss = ls.BoundLoss(Linear(), g)
    eps = 0.01
    got = ls.max_increase(loss, _x(), jnp.zeros(2, jnp.int32), eps, steps=3, step_size=eps)
    np.testing.assert_allclose(got, eps * np.abs(np.asarray(g)).sum() * np.ones(2), rtol=1e-4)
    config = ls.LandscapeConfig(epsilon=eps, points=5, num_directions=2, pgd_steps=2)
    result = ls.landscape(loss, _x(), jnp.zeros(2, jnp.int32), jax.random.key(4), config)
    d = np.asarray(ls.random_directions(jax.random.key(4), _x(), 2, eps)).reshape(2, 2, -1)
    best_vertex = np.maximum(np.abs(d[0] @ np.asarray(g)), np.abs(d[1] @ np.asarray(g)))
    np.testing.assert_allclose(result["clean"]["grid_max_increase"], best_vertex, rtol=1e-4)
    assert np.all(result["clean"]["grid_max_increase"] <= result["clean"]["max_increase"] + 1e-6)
    # the FGSM axis of a linear loss reaches the ε-ball maximum at α = 1
    gradient = ls.landscape(loss, _x(), jnp.zeros(2, jnp.int32), jax.random.key(4),
                            dataclasses.replace(config, gradient_plane=True))
    np.testing.assert_allclose(gradient["clean"]["grid_max_increase"], got, rtol=1e-4)


@pytest.fixture(scope="module")
def surrogate():
    w = jnp.asarray(np.random.default_rng(5).normal(size=(D, 4)) / np.sqrt(D) * 20, jnp.float32)
    return base.Surrogate(lambda p, x: x.reshape(x.shape[0], -1) @ p, w)


def test_landscape_shapes_and_outputs(surrogate, tmp_path):
    labels = jnp.asarray([0, 3], jnp.int32)
    config = ls.LandscapeConfig(epsilon=0.05, points=7, num_directions=3, chunk=10)
    result = ls.landscape(ls.surrogate_loss(surrogate), _x(), labels, jax.random.key(0), config, x_adv=_x(1))
    assert result["alphas"].shape == (7,) and result["alphas"][3] == 0
    for name in ("clean", "adversarial"):
        res = result[name]
        assert res["slice_1d"].shape == (3, 7, 2) and res["slice_2d"].shape == (7, 7, 2)
        for key in ("center", "curvature", "rayleigh", "max_increase", "grid_max_increase"):
            assert res[key].shape == (2,) and np.all(np.isfinite(res[key]))
        np.testing.assert_allclose(res["slice_1d"][:, 3], np.broadcast_to(res["center"], (3, 2)), rtol=1e-5)
        np.testing.assert_allclose(res["slice_2d"][3, 3], res["center"], rtol=1e-5)
        assert np.all(res["max_increase"] >= 0)
    ls.save_json(result, tmp_path / "landscape.json")
    ls.plot(result, tmp_path / "landscape.png", title="toy")
    saved = json.loads((tmp_path / "landscape.json").read_text())
    assert set(saved["summary"]) == {"clean", "adversarial"} and len(saved["clean"]["slice_2d"]) == 7
    assert (tmp_path / "landscape.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landscape.json", "landscape.png"]


def test_posterior_loss_is_the_mean_ce_of_single_appended_models(surrogate):
    rng = np.random.default_rng(6)
    heads = HeadParams(*(rng.uniform(-0.5, 0.5, s).astype(np.float32) for s in ((3, 4, 4), (3, 4)) * 2))
    degenerate = (Posterior(heads, heads, HeadParams(*(h * h for h in heads))),)  # zero variance: draws = heads
    per_stream = base.Surrogate(common.PerStream(surrogate.apply_fn), surrogate.params)
    loss = ls.posterior_loss(per_stream, degenerate, jax.random.key(7), num_samples=2)
    x, labels = _x(), jnp.asarray([1, 2], jnp.int32)
    z = surrogate.apply_fn(surrogate.params, x)
    per_head = [losses.cross_entropy(appended_logits(jax.tree.map(lambda a: a[k], heads), z), labels) for k in range(3)]
    np.testing.assert_allclose(loss.fn(loss.params, x, labels), np.mean(per_head, axis=0), rtol=1e-4)
    out = ls.slice_2d(loss, x, labels, *ls.random_directions(jax.random.key(8), x, 2, 0.05), np.linspace(-1, 1, 3))
    assert out.shape == (3, 3, 2) and np.all(np.isfinite(out))


def test_analyse_checkpoint_writes_surrogate_and_posterior_files(tmp_path):
    from tasar_jax import checkpoints, models
    from tasar_jax.attacks import common
    from tasar_jax.data import synthetic
    from tasar_jax.posterior import save_posterior

    model = models.create("mlp", "hdm05", hidden=8)
    checkpoints.save(tmp_path / "ck", model, architecture="mlp", dataset="hdm05")
    x, labels = synthetic.generate("hdm05", 1, 0, "test", range(3))
    x_adv = x[:3] + 0.01 * np.sign(np.random.default_rng(1).normal(size=x[:3].shape)).astype(np.float32)
    common.save_adversarial(tmp_path / "adv.npz", common.AdversarialSet(x[:3], x_adv, labels[:3], labels[:3],
                                                                        np.zeros(3, bool)))
    rng, k = np.random.default_rng(0), len(synthetic.class_names("hdm05"))
    heads = HeadParams(*(rng.uniform(-0.2, 0.2, s).astype(np.float32) for s in ((2, k, k), (2, k)) * 2))
    save_posterior(tmp_path / "posterior.npz", (Posterior(heads, heads, HeadParams(*(h * h + 1e-4 for h in heads))),))
    config = ls.LandscapeConfig(points=3, num_directions=2, pgd_steps=1)
    out = ls.analyse_checkpoint(tmp_path / "ck", tmp_path / "adv.npz", tmp_path / "out", num_samples=2,
                                posterior_path=tmp_path / "posterior.npz", config=config, num_draws=2)
    assert set(out) == {"surrogate", "posterior"} and set(out["posterior"]) == {"clean", "adversarial"}
    for name in ("out_surrogate", "out_posterior"):
        assert (tmp_path / f"{name}.png").is_file() and (tmp_path / f"{name}.json").is_file()
