"""ENSEMBLE against upstream's trajectory (B.5: ST-GCN + CTR-GCN + MS-G3D joint+bone, summed logits) and the
published SVRE against a plain loop re-implementation on tiny members."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax import losses
from tasar_jax.attacks import base, common, ensemble, registry

SUB = slice(0, 2)  # full-size MS-G3D on CPU: the model test runs on two of the eight fixture samples


@pytest.fixture(scope="module")
def fixture(upstream):
    return dict(np.load(upstream / "attack_ENSEMBLE.npz"))


@pytest.fixture(scope="module")
def members(upstream):
    pytest.importorskip("torch")
    from tasar_jax import converters

    models = [converters.convert_file("stgcn", "hdm05", upstream / "STGCN_hdm05.pth.xz"),
              converters.convert_file("ctrgcn", "hdm05", upstream / "CTRGCN_hdm05.pth.xz"),
              converters.convert_file("msg3d", "hdm05", upstream / "MSG3D_joint_hdm05.pth.xz",
                                      upstream / "MSG3D_bone_hdm05.pth.xz")]
    return [base.Surrogate.from_model(m, streams=False) for m in models]


def _config(d):
    return base.AttackConfig(epsilon=float(d["clip"]), step_size=float(d["step"]), iterations=int(d["n_iter"]))


def test_update_reproduces_the_fixture_from_the_recorded_directions(fixture):
    d = fixture
    cfg = _config(d)
    for t in range(int(d["n_iter"])):
        x_t = d["x_adv_iters"][t - 1] if t else d["x"]
        x_next = base.descend(cfg, jnp.asarray(x_t), jnp.asarray(d["x"]), jnp.sign(jnp.asarray(d["direction_cgs"][t])))
        np.testing.assert_allclose(x_next, d["x_adv_iters"][t], atol=1e-6)
    rates = 100 * np.mean(d["surrogate_logits_iters"].argmax(-1) != d["labels"], axis=1)
    np.testing.assert_array_equal(rates, d["foolrate_reference"])


def test_summed_members_reproduce_every_recorded_step(fixture, members):
    """Teacher-forced ENSEMBLE steps on two samples: summed logits, the gradient's direction, the sign step."""
    d = fixture
    atk = ensemble.ENSEMBLE(members, epsilon=float(d["clip"]), step_size=float(d["step"]), iterations=5)
    x0, labels = jnp.asarray(d["x"][SUB]), jnp.asarray(d["labels"][SUB])
    sur = atk.surrogate

    @jax.jit
    def step(x):
        g, logits = base.loss_gradient(sur.apply_fn, sur.params, x, labels, atk.config.sign)
        new, _ = atk.spec.step(sur.apply_fn, sur.params, x0, labels, None, ensemble.EnsembleState(x), 0)
        return g, logits, new.x

    for t in range(int(d["n_iter"])):
        g, logits, x_next = step(jnp.asarray(d["x_adv_iters"][t - 1][SUB] if t else d["x"][SUB]))
        np.testing.assert_allclose(logits, d["surrogate_logits_iters"][t][SUB], atol=3e-5, rtol=0)  # measured ≤ 1.05e-5
        ref = d["direction_cgs"][t][SUB]
        direction = np.asarray(common.mean_abs_normalise(g))
        assert np.linalg.norm(direction - ref) <= 2e-2 * np.linalg.norm(ref), t  # measured ≤ 1.5 % (kinks)
        moved = np.abs(np.asarray(x_next) - d["x_adv_iters"][t][SUB])
        assert np.mean(moved <= 1e-6) > 0.99, t  # a sign flip moves a coordinate by 0.02


def _tiny_members(n=3, t=4, v=5, k=4):
    rng = np.random.default_rng(0)

    def apply(p, x):
        return jnp.tanh(x.reshape(x.shape[0], -1) @ p["w"]) @ p["v"]

    return [base.Surrogate(apply, {"w": jnp.asarray(rng.normal(0, 0.3, (3 * t * v, 8)), jnp.float32),
                                   "v": jnp.asarray(rng.normal(0, 1, (8, k)), jnp.float32)}) for _ in range(n)]


def test_combined_surrogate_sums_member_logits_and_keys_on_the_members():
    members = _tiny_members()
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, 4, 5, 1)), jnp.float32)
    sur = ensemble.combine(members)
    expected = sum(m.apply_fn(m.params, x) for m in members)
    np.testing.assert_allclose(sur.apply_fn(sur.params, x), expected, rtol=1e-6)
    assert sur.apply_fn == ensemble.combine(members).apply_fn and hash(sur.apply_fn) == hash(ensemble.combine(
        members).apply_fn)
    assert isinstance(ensemble.combine(members[0]).params, tuple)
    with pytest.raises(TypeError):
        ensemble.combine([])
    upstream_svre = registry.constructor("svre")(members, upstream=True, iterations=3)
    assert isinstance(upstream_svre.spec, ensemble.EnsembleSpec) and upstream_svre.config.iterations == 3


def _reference_svre(members, key, x0, labels, cfg, inner_steps, sign, shared_draws=True):
    """Plain per-sample loops over the published algorithm (Xiong et al. 2022, Alg. 1) with the same draws: one
    member per inner step from ``key(0)`` for every sample, or (``shared_draws=False``) from each sample's key."""
    k_count = len(members)
    member_fns = [lambda z, m=m: m.apply_fn(m.params, z) for m in members]
    mean_fn = lambda z: sum(f(z) for f in member_fns) / k_count  # noqa: E731

    @jax.jit
    def grad_of(index, x, label):  # index K = the mean-logit ensemble
        fn = lambda z: jax.lax.switch(index, member_fns + [mean_fn], z)  # noqa: E731
        return jax.grad(lambda z: sign * losses.cross_entropy(fn(z[None]), label[None])[0])(x)

    out = []
    for b in range(x0.shape[0]):
        key_b = jax.random.fold_in(key, b)
        x, big_g = x0[b], jnp.zeros_like(x0[b])
        for t in range(cfg.iterations):
            g_at = [grad_of(i, x, labels[b]) for i in range(k_count)]
            g_ens = grad_of(k_count, x, labels[b])
            x_in, g_in = x, jnp.zeros_like(x)
            for m in range(inner_steps):
                draw_key = jax.random.key(0) if shared_draws else key_b
                kk = int(jax.random.randint(jax.random.fold_in(jax.random.fold_in(draw_key, t), m), (), 0, k_count))
                reduced = grad_of(kk, x_in, labels[b]) - g_at[kk] + g_ens
                g_in = g_in + reduced / jnp.mean(jnp.abs(reduced))
                x_in = x0[b] + jnp.clip(x_in - cfg.step_size * jnp.sign(g_in) - x0[b], -cfg.epsilon, cfg.epsilon)
            big_g = big_g + g_in / jnp.mean(jnp.abs(g_in))
            x = x0[b] + jnp.clip(x - cfg.step_size * jnp.sign(big_g) - x0[b], -cfg.epsilon, cfg.epsilon)
        out.append(x)
    return jnp.stack(out)


@pytest.mark.parametrize("shared_draws", [True, False])
def test_svre_matches_the_published_algorithm(shared_draws, targeted=True):  # untargeted: test_contract
    members = _tiny_members()
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.uniform(-1, 1, (3, 3, 4, 5, 1)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 4, 3), jnp.int32)
    atk = ensemble.SVRE(members, inner_steps=3, epsilon=0.05, step_size=0.01, iterations=2, targeted=targeted,
                        shared_draws=shared_draws)
    assert atk.spec.inner_steps == 3 and ensemble.SVRE(members).spec.inner_steps == 12
    result = atk.run(jax.random.key(4), x, labels)
    expected = _reference_svre(members, jax.random.key(4), x, labels, atk.config, 3, atk.config.sign, shared_draws)
    np.testing.assert_allclose(result.x_adv, expected, atol=1e-6)
    np.testing.assert_allclose(result.logits, ensemble.combine(members).apply_fn(atk.surrogate.params, result.x_adv),
                               rtol=1e-5)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(4), jnp.arange(64))
    draws = np.stack([np.asarray(atk.spec.draw(keys, t, m)) for t in range(8) for m in range(3)])
    assert draws.shape == ((24,) if shared_draws else (24, 64))  # one member for the batch, or one per sample
    assert set(np.unique(draws)) == {0, 1, 2}  # every member gets drawn
