"""TASAR: upstream fixtures (B.4), invariants, determinism, batch independence, pass counts, adversarial-set files.

Fixture note: upstream's g is the batch-mean CE gradient, ours the per-sample one (B× larger, same direction after
normalisation); the fixtures ran one draw per head with scale 0, so our S with ``samples_per_head=1`` is B× theirs.
The float32 ST-GCN input gradient is reproducible only norm-wise (README A: ReLU/MaxPool kink decisions within
float32 rounding flip, ~3e-3 rel. L2 already between thread counts), so the network part is checked norm-wise at
every recorded iterate and everything after the gradients to 1e-5.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasar_jax.attacks import base, common, tasar
from tasar_jax.posterior import heads as H

B_FIX = 8
TRACED = ("ar_term", "C", "F_hat", "C_hat", "x_pre_projection")


def _fixture_posterior(d):
    stack = lambda p: H.HeadParams(*(jnp.asarray(d[f"{p}{k}"]) for k in ("W1", "b1", "W2", "b2")))  # noqa: E731
    return H.Posterior(stack("head_"), stack("swag_mean_"), stack("swag_sqmean_"))


def _fixture_config(d):
    return tasar.TASARConfig.upstream(iterations=int(d["n_iter"]), scale=float(d["scale"]), samples_per_head=1,
                                      temporal=bool(d["temporal"]), epsilon=float(d["clip"]),
                                      step_size=float(d["step"]))


@pytest.mark.parametrize("name", ["tasar_attack.npz", "tasar_attack_notemporal.npz"])
def test_update_reproduces_the_fixture_from_the_recorded_gradients(upstream, name):
    d = np.load(upstream / name)
    cfg, x0 = _fixture_config(d), jnp.asarray(d["x"])
    ar = tuple(jnp.asarray(d[k])[..., None] for k in ("AR1", "AR2"))
    state, prev_s = tasar.init(x0), np.zeros_like(d["S_one_draw_per_head"][0])
    for t in range(int(d["n_iter"])):
        s = d["S_one_draw_per_head"][t]
        state, tr = tasar.update(cfg, state, x0, B_FIX * jnp.asarray(d["g"][t]), B_FIX * jnp.asarray(s - prev_s),
                                 ar, 3)
        prev_s = s
        ours = {k: np.asarray(tr[k]) for k in TRACED} | {"x_adv_iters": np.asarray(state.x)}
        ours["ar_term"], ours["C"] = ours["ar_term"] / B_FIX, ours["C"] / B_FIX
        for key, value in ours.items():
            err = np.abs(value - d[key][t]).max()
            assert err <= 1e-5, (t, key, err)


def test_stgcn_surrogate_reproduces_every_recorded_iterate(upstream):
    """Teacher-forced: each iteration starts from the fixture's iterate and sums; the surrogate part is checked
    (logits to 1e-5, gradients norm-wise), and one full jitted ``step`` per iteration must give the fixture's
    next iterate up to the kink-flipped entries."""
    torch = pytest.importorskip("torch")  # noqa: F841
    from tasar_jax import converters

    d = np.load(upstream / "tasar_attack.npz")
    apply_fn, params = common.surrogate_from_model(
        converters.convert_file("stgcn", "hdm05", upstream / "STGCN_hdm05.pth.xz"), streams=True)
    cfg, x0, labels = _fixture_config(d), jnp.asarray(d["x"]), jnp.asarray(d["labels"])
    post = (_fixture_posterior(d),)
    ar = tuple(jnp.asarray(d[k])[..., None] for k in ("AR1", "AR2"))
    atk = tasar.TASAR(base.Surrogate(apply_fn, params), post, **vars(cfg))
    packed = (params, atk.posterior, jax.random.key(0))
    step = jax.jit(lambda state, t: atk.spec.step(atk.surrogate.apply_fn, packed, x0, labels, None, state, t,
                                                  index=jnp.arange(8), ar1=ar[0], ar2=ar[1]))
    rates, zero = [], np.zeros_like(d["x"])
    for t in range(int(d["n_iter"])):
        prev = lambda k: d[k][t - 1] * B_FIX if t else zero  # noqa: E731
        state = tasar.TASARState(jnp.asarray(d["x_adv_iters"][t - 1] if t else d["x"]),
                                 jnp.asarray(prev("S_one_draw_per_head")), jnp.asarray(prev("C")))
        new, logits, tr = step(state, t)
        np.testing.assert_allclose(logits, d["surrogate_logits_iters"][t], atol=1e-5, rtol=5e-6)
        for ours, ref in ((tr["g"], d["g"][t]), (tr["S"], d["S_one_draw_per_head"][t])):
            ours = np.asarray(ours) / B_FIX
            assert np.linalg.norm(ours - ref) <= 2e-2 * np.linalg.norm(ref), t
        moved = np.abs(np.asarray(new.x) - d["x_adv_iters"][t])
        assert np.mean(moved <= 1e-5) > 0.8 and np.median(moved) <= 1e-6, t
        assert np.abs(np.asarray(new.x) - d["x"]).max() <= 0.01 + 1e-6
        rates.append(float(tasar.fool_rates(common.fooled(jnp.argmax(logits, -1), labels, False))))
    np.testing.assert_array_equal(rates, d["foolrate_reference"])
    final = H.summed_appended_logits((post[0].heads,), apply_fn(params, jnp.asarray(d["x_final"])))
    np.testing.assert_array_equal(np.asarray(final).argmax(-1), d["labels_final_pred"])


# ---------------------------------------------------------------- tiny surrogate (fast property tests)
# One module-level surrogate function and two configs, so that the tests share XLA compilations.

T, V, K, N = 6, 25, 5, 4
CFG_A = tasar.TASARConfig(iterations=3, samples_per_head=2)
CFG_B = tasar.TASARConfig(iterations=3, samples_per_head=2, targeted=True, posterior_decay=0.5, momentum_decay=0.0,
                          group_size=1, shared_draws=True)


def _tiny_apply(p, x):
    return jnp.tanh(x.reshape(x.shape[0], -1) @ p["w"]) @ p["v"]


_stream_apply = common.PerStream(_tiny_apply)  # TASAR takes per-stream logits: (z,)


def _two_stream_apply(p, x):
    return _tiny_apply(p[0], x), _tiny_apply(p[1], x)


def _tiny_params(m=1, seed=0):
    rng = np.random.default_rng(seed)
    return {"w": jnp.asarray(rng.normal(0, 0.3, (3 * T * V * m, 16)), jnp.float32),
            "v": jnp.asarray(rng.normal(0, 1.0, (16, K)), jnp.float32)}


def _posterior(k_app=2, seed=1, spread=0.05):
    rng = np.random.default_rng(seed)
    arr = lambda *s: jnp.asarray(rng.normal(0, 0.2, s), jnp.float32)  # noqa: E731
    hp = H.HeadParams(arr(k_app, K, K), arr(k_app, K), arr(k_app, K, K), arr(k_app, K))
    sq = jax.tree.map(lambda a: a**2 + spread**2, hp)
    return (H.Posterior(hp, hp, sq),)  # one stream


def _batch(n=N, m=1, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(-0.5, 0.5, (n, 3, T, V, m)), jnp.float32)


def _ar(n=N, m=1, seed=2):
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(rng.uniform(-1, 1, (n, 3, T, V, m)), jnp.float32) for _ in range(2))


def _labels(params, post, x):
    return jnp.argmax(H.summed_appended_logits((post[0].heads,), _stream_apply(params, x)), -1)


def _attack(x, labels, cfg, key=0, params=None, post=None, ar=None, **kw):
    ar1, ar2 = _ar(x.shape[0]) if ar is None else ar
    return tasar.tasar_attack(_stream_apply, _tiny_params() if params is None else params,
                              _posterior() if post is None else post, x, labels, jax.random.key(key), cfg,
                              ar1=ar1, ar2=ar2, **kw)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), which=st.sampled_from([0, 1]), amplitude=st.sampled_from([0.0, 1.0, 100.0]))
def test_iterates_stay_in_the_eps_ball_and_finite(seed, which, amplitude):
    cfg = (CFG_A, CFG_B)[which]
    x = amplitude * _batch(seed=seed)
    labels = jnp.asarray(np.random.default_rng(seed).integers(0, K, N), jnp.int32)
    r = _attack(x, labels, cfg, key=seed, post=_posterior(seed=seed % 7))  # projection runs every iteration
    assert np.isfinite(np.asarray(r.x_adv)).all() and np.isfinite(np.asarray(r.logits)).all()
    assert np.abs(np.asarray(r.x_adv) - np.asarray(x)).max() <= cfg.epsilon * (1 + 1e-6) + 1e-6


def test_zero_gradient_gives_no_nan():
    x = _batch(2)
    r = tasar.tasar_attack(lambda p, x: (jnp.zeros((x.shape[0], K)) + p,), jnp.float32(0.0), _posterior(), x,
                           jnp.zeros(2, jnp.int32), jax.random.key(0), tasar.TASARConfig(iterations=2, temporal=False))
    np.testing.assert_array_equal(r.x_adv, x)


def test_deterministic_and_independent_of_the_batch():
    x, params, post = _batch(), _tiny_params(), _posterior()
    labels, (ar1, ar2) = _labels(params, post, x), _ar()
    full, again = _attack(x, labels, CFG_A, key=7), _attack(x, labels, CFG_A, key=7)
    part = _attack(x[2:], labels[2:], CFG_A, key=7, ar=(ar1[2:], ar2[2:]), indices=jnp.arange(2, 4))
    np.testing.assert_array_equal(full.x_adv, again.x_adv)
    np.testing.assert_allclose(part.x_adv, full.x_adv[2:], atol=1e-6)


def test_scan_equals_stepping_and_early_stop_freezes_groups():
    x, params, post, ar = _batch(), _tiny_params(), _posterior(), _ar()
    targets = (_labels(params, post, x) + 1) % K
    targets = targets.at[0].set(_labels(params, post, x)[0])  # sample 0 already "fooled": frozen at x0
    r = _attack(x, targets, CFG_B, key=3)
    atk = tasar.TASAR(base.Surrogate(_stream_apply, params), post, **vars(CFG_B))
    packed = (params, atk.posterior, jax.random.key(3))
    step = jax.jit(lambda state, t: atk.spec.step(atk.surrogate.apply_fn, packed, x, targets, None, state, t,
                                                  index=jnp.arange(N), ar1=ar[0], ar2=ar[1]))
    state, active = tasar.init(x), np.ones(N, bool)
    for t in range(CFG_B.iterations):  # group size 1: a sample stops once the iterate entering t fools it
        new, logits, _ = step(state, t)
        active &= np.asarray(jnp.argmax(logits, -1) != targets)
        state = jax.tree.map(lambda n, o: jnp.where(active.reshape((-1,) + (1,) * (o.ndim - 1)), n, o), new, state)
    np.testing.assert_allclose(r.x_adv, state.x, atol=1e-6)
    assert int(r.iterations[0]) == 0 and int(r.iterations[1]) > 0
    np.testing.assert_array_equal(r.x_adv[0], x[0])


def test_one_vjp_equals_one_pass_per_posterior_draw():
    """§8: the stacked-cotangent pull-back equals the naive per-draw input gradients."""
    params, post, x = _tiny_params(), _posterior(spread=0.3), _batch(2)
    labels = _labels(params, post, x)
    cfg, key = tasar.TASARConfig(samples_per_head=3, scale=1.5), jax.random.key(5)
    g, post_grad, _ = jax.jit(lambda x: tasar.gradients(cfg, _stream_apply, params, post, x, labels, key,
                                                        jnp.arange(2)))(x)

    @jax.jit
    def naive(theta, heads_, xb, y):
        ce = lambda logits: jax.nn.logsumexp(logits) - logits[y]  # noqa: E731
        one = jax.grad(lambda xb: -ce(H.appended_logits(theta[0], _tiny_apply(params, xb[None])[0])))(xb)
        ens = jax.grad(lambda xb: -ce(H.summed_appended_logits(heads_, (_tiny_apply(params, xb[None])[0],))))(xb)
        return one, ens

    for b in range(2):
        draws = tasar._draw(cfg, jax.random.fold_in(key, b), post)
        grads = [naive(jax.tree.map(lambda a: a[i], draws), (post[0].heads,), x[b], labels[b]) for i in range(6)]
        np.testing.assert_allclose(post_grad[b], sum(o for o, _ in grads), atol=1e-5)
        np.testing.assert_allclose(g[b], grads[0][1], atol=1e-5)


def test_one_forward_and_one_batched_backward_per_iteration():
    counter = common.PassCounter()
    x, (ar1, ar2) = _batch(), _ar()
    jax.eval_shape(lambda x: tasar.tasar_attack(counter.counting(_stream_apply), _tiny_params(), _posterior(), x,
                                                jnp.zeros(N, jnp.int32), jax.random.key(0), CFG_A,
                                                ar1=ar1, ar2=ar2), x)
    # scan body traced once: 1 forward + 1 batched backward; +1 forward for the final predictions
    assert (counter.forward, counter.backward, counter.backward_batched) == (2, 1, 1)


def test_two_stream_surrogate_with_two_persons_and_odd_batch():
    params = (_tiny_params(m=2, seed=0), _tiny_params(m=2, seed=1))
    post, x = _posterior(seed=1) + _posterior(seed=2), _batch(3, m=2)
    ar1, ar2 = _ar(3, m=2)
    r = tasar.tasar_attack(_two_stream_apply, params, post, x, jnp.zeros(3, jnp.int32), jax.random.key(0),
                           tasar.TASARConfig(iterations=2, samples_per_head=2, bone_head_sees_joint=True),
                           ar1=ar1, ar2=ar2)
    assert np.isfinite(np.asarray(r.x_adv)).all() and r.x_adv.shape == x.shape
    assert np.abs(np.asarray(r.x_adv) - np.asarray(x)).max() > 0


def test_tiny_end_to_end_fools_most_samples(tmp_path):
    params, post, x = _tiny_params(), _posterior(), _batch(seed=6)
    labels = _labels(params, post, x)
    r = _attack(x, labels, CFG_A, key=1)
    assert float(np.mean(np.asarray(r.success))) >= 0.75
    adv = common.AdversarialSet(np.asarray(x), np.asarray(r.x_adv), np.asarray(labels), np.asarray(r.predictions),
                                np.asarray(r.success))
    back = common.load_adversarial(common.save_adversarial(tmp_path / "adv.npz", adv))
    for a, b in zip(adv, back):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["adv.npz"]


def test_upstream_transfer_files(upstream, tmp_path):
    pytest.importorskip("torch")
    from tasar_jax.converters import adversarial_io

    data, labels = adversarial_io.read_pair(upstream / "transfer_adv_data.pt")
    ref = np.load(upstream / "transfer_adv_data.npz")
    np.testing.assert_array_equal(data, ref["data"])
    np.testing.assert_array_equal(labels, ref["labels"])
    adv = common.AdversarialSet(ref["original_data"], ref["data"], ref["labels"], ref["visual_labels"],
                                ref["visual_labels"] != ref["labels"])
    adversarial_io.write_upstream(tmp_path, adv)
    back = adversarial_io.read_upstream(tmp_path)
    for a, b in zip(adv, back):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(adversarial_io.read_pair(tmp_path / "transfer_adv_data.pt")[0], ref["data"])


def test_attack_interface_wrapper_equals_the_function():
    from tasar_jax.attacks import base, registry

    x, params, post, (ar1, ar2) = _batch(), _tiny_params(), _posterior(), _ar()
    labels = _labels(params, post, x)
    atk = registry.constructor("tasar")(base.Surrogate(_stream_apply, params), post, steps=3, samples_per_head=2)
    assert atk.config == CFG_A
    r = atk.run(jax.random.key(4), x, labels, extras={"ar1": ar1, "ar2": ar2})
    np.testing.assert_array_equal(r.x_adv, _attack(x, labels, CFG_A, key=4).x_adv)
    with pytest.raises(TypeError, match="extras"):
        atk.run(jax.random.key(4), x, labels, extras={"motion": ar1})
    with pytest.raises(ValueError, match="motion coefficients must be those of these clips"):
        atk.run(jax.random.key(4), x, labels, extras={"ar1": ar1[:1], "ar2": ar2[:1]})


def test_pytorch_benchmark_loops_compute_the_same_attack():
    """The two PyTorch loops of ``experiments/bench_tasar.py`` (upstream structure, single batched VJP) and the JAX
    attack give the same iterates on the same weights (posterior scale 0, so the draws are the SWAG mean)."""
    torch = pytest.importorskip("torch")
    from tasar_jax import converters
    from tasar_jax.converters import reference, torch_io
    from experiments import bench_tasar, torch_tasar

    torch.manual_seed(0)
    module = reference.build("stgcn", "hdm05", width=0.125)
    model = converters.convert("stgcn", "hdm05", torch_io.to_numpy_state_dict(module.state_dict(), "ref"),
                               width=0.125)
    apply_fn, params = common.surrogate_from_model(model, streams=True)
    key = jax.random.key(0)
    x = 0.3 * jax.random.normal(key, (2, 3, 20, 25, 1))
    ar = tuple(0.5 * jax.random.uniform(jax.random.fold_in(key, i), x.shape) for i in (1, 2))
    post = bench_tasar.random_posterior(jax.random.fold_in(key, 3), 65, 2)
    cfg = tasar.TASARConfig(iterations=2, samples_per_head=2, scale=0.0)
    ours = tasar.tasar_attack(apply_fn, params, (post,), x, jnp.zeros(2, jnp.int32), key, cfg, ar1=ar[0], ar2=ar[1])
    t = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731
    heads, mean, sqmean = (tuple(t(a) for a in tree) for tree in post)
    x0, y = t(x), torch.zeros(2, dtype=torch.int64)
    for iteration in (torch_tasar.upstream_structure, torch_tasar.single_vjp):
        state = (x0.clone(), torch.zeros_like(x0), torch.zeros_like(x0))
        for _ in range(2):
            state = iteration(module, heads, mean, sqmean, state, x0, y, t(ar[0]), t(ar[1]), 2, scale=0.0)
        np.testing.assert_allclose(state[0].numpy(), ours.x_adv, atol=1e-5)
