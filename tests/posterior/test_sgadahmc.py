"""SG-AdaHMC: upstream's step (fixtures B.2), the intended variant, and the BlackJAX conventions."""

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax.posterior import sgadahmc
from tasar_jax.posterior.heads import HeadParams

NAMES = ("W1", "b1", "W2", "b2")


def _tree(io, suffix):
    return HeadParams(*(jnp.asarray(io[f"{n}_{suffix}"]) for n in NAMES))


@pytest.mark.parametrize("name, atol", [("sgadahmc_step.npz", 1e-9), ("sgadahmc_step_noise.npz", 2e-8)])
def test_upstream_step_matches_fixture(upstream, name, atol):
    io = np.load(upstream / name)
    noise = _tree(io, "noise") if "W1_noise" in io else None
    grad = _tree(io, "grad")
    step = jax.jit(lambda pos, noise: sgadahmc.integrate(
        jax.random.key(0), sgadahmc.init(pos), lambda _: grad, float(io["lr"]),
        num_integration_steps=int(io["L"]), tau=float(io["tao"]), friction=float(io["C"]),
        temperature=float(io["T"]), reference_quirks=True, noise=noise))
    out = step(_tree(io, "before"), noise)
    for got, n in zip(out.position, NAMES):
        np.testing.assert_allclose(got, io[f"{n}_after"], rtol=0, atol=atol, err_msg=n)


def test_upstream_step_closed_form(upstream):
    """With the quirks a step is −L ε² g/√(5e-6 + g²/2) (T = 0), independent of the carried state."""
    io = np.load(upstream / "sgadahmc_step.npz")
    g = np.asarray(io["W1_grad"], np.float64)
    expected = io["W1_before"] - 30 * 2e-3**2 * g / np.sqrt(5e-6 + g**2 / 2)
    state = sgadahmc.SGAdaHMCState(jnp.asarray(io["W1_before"]), jnp.ones((65, 65)), jnp.ones((65, 65)))
    out = sgadahmc.integrate(jax.random.key(1), state, lambda _: jnp.asarray(g, jnp.float32), 2e-3,
                             temperature=0.0, reference_quirks=True)
    np.testing.assert_allclose(out.position, expected, atol=5e-7)  # 30 float32 additions vs one float64 30·Δ


def _quadratic_problem():
    target = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}

    def grad_estimator(position, minibatch):  # log density −½‖θ − target − mean(batch)‖²
        shift = jnp.mean(minibatch)
        return jax.tree.map(lambda p, t: -(p - t - shift), position, target)

    return target, grad_estimator


@pytest.mark.parametrize("quirks", [False, True])
def test_top_level_api_composes_in_scan_and_descends(quirks):
    target, grad_estimator = _quadratic_problem()
    alg = sgadahmc.as_top_level_api(grad_estimator, reference_quirks=quirks)
    assert isinstance(alg, blackjax.base.SamplingAlgorithm)
    state = alg.init({"a": jnp.zeros(2), "b": jnp.array(0.0)}, jax.random.key(0))
    batches = jnp.zeros((400, 4))

    @jax.jit
    def run(key, state):
        def body(s, inp):
            k, b = inp
            s = alg.step(k, s, b, 0.02, 1e-5)
            return s, s.position
        return jax.lax.scan(body, state, (jax.random.split(key, 400), batches))

    final, trace = run(jax.random.key(3), state)
    assert trace["a"].shape == (400, 2)
    for leaf in jax.tree.leaves(final):
        assert np.all(np.isfinite(leaf))
    np.testing.assert_allclose(final.position["a"], target["a"], atol=0.05)
    again, _ = run(jax.random.key(3), state)
    np.testing.assert_array_equal(again.position["a"], final.position["a"])


def test_intended_variant_carries_state_and_recomputes_gradient():
    calls = []
    _, grad_estimator = _quadratic_problem()

    def counting(position, minibatch):
        calls.append(1)
        return grad_estimator(position, minibatch)

    pos = {"a": jnp.zeros(2), "b": jnp.array(0.0)}
    for quirks, expected_calls in ((False, 1), (True, 1)):
        calls.clear()
        kernel = sgadahmc.build_kernel(num_integration_steps=5, reference_quirks=quirks)
        state = kernel(jax.random.key(0), sgadahmc.init(pos), counting, jnp.zeros(3), 0.05, 0.0)
        assert len(calls) == expected_calls  # traced once: inside fori_loop (intended) or before it (quirk)
        v = state.v["a"]
        if quirks:  # state of the last inner iteration only: v = 5e-6 + g²/2 with the step's one gradient
            np.testing.assert_allclose(v, 5e-6 + np.array([1.0, 4.0]) / 2, rtol=1e-5)
        else:  # carried EMA over 5 inner iterations with moving gradients: differs from the one-iteration value
            assert not np.allclose(v, 5e-6 + np.array([1.0, 4.0]) / 2, rtol=1e-3)


def test_intended_noise_is_square_rooted():
    pos = jnp.zeros(20000)
    state = sgadahmc.SGAdaHMCState(pos, jnp.zeros_like(pos), jnp.full_like(pos, 1.0))
    zero_grad = jnp.zeros_like(pos)
    out = sgadahmc.inner_update(state, zero_grad, jax.random.normal(jax.random.key(0), pos.shape), 0.1,
                                temperature=1.0)
    v = 0.5  # v − v/τ + 0
    expected_std = np.sqrt(2 * 0.1**3 / v - 0.1**4)
    assert abs(float(jnp.std(out.position)) - expected_std) < 0.03 * expected_std


def test_carried_preconditioner_survives_zero_gradients():
    """Parameters behind a closed ReLU get g = 0 for ever; the intended kernel must not turn that into NaN."""
    state = sgadahmc.init({"w": jnp.ones((3,))})
    grad = {"w": jnp.zeros((3,))}
    for _ in range(40):  # 40 × 30 halvings would underflow v without the floor
        state = sgadahmc.integrate(jax.random.key(0), state, lambda p: grad, 2e-3)
    assert np.isfinite(state.position["w"]).all() and float(state.v["w"].min()) >= np.float32(sgadahmc.V_FLOOR)
