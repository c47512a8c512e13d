"""``layers.conv_general_dilated``: the same values and derivatives as ``lax.conv_general_dilated``, and input
gradients that stay canonical (kernel laid out spatial, I, O) inside a ``lax.scan`` body on XLA CPU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from tasar_jax.models import layers

DN = lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))  # NHWC / HWIO, as nnx.Conv passes them


def _convs(stride, kernel):
    pad = ((kernel // 2, kernel // 2), (0, 0))
    args = dict(window_strides=(stride, 1), padding=pad, lhs_dilation=(1, 1), rhs_dilation=(1, 1),
                dimension_numbers=DN, precision=None)
    plain = lambda x, w: lax.conv_general_dilated(x, w, **args)  # noqa: E731
    return plain, lambda x, w: layers.conv_general_dilated(x, w, **args)


@pytest.mark.parametrize("stride,kernel", [(1, 9), (2, 9), (2, 1), (1, 1)])
def test_values_and_derivatives_match_lax(stride, kernel):
    kx, kw, ku = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (2, 10, 5, 3))
    w = jax.random.normal(kw, (kernel, 1, 3, 4))
    plain, fast = _convs(stride, kernel)
    np.testing.assert_allclose(fast(x, w), plain(x, w), rtol=1e-6, atol=1e-6)
    loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))  # noqa: E731
    for a, b in zip(jax.grad(loss(fast), (0, 1))(x, w), jax.grad(loss(plain), (0, 1))(x, w)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    u = jax.random.normal(ku, (2, *plain(x, w).shape))  # batched pullback, as the attacks use it
    pulled = lambda f: jax.vmap(jax.vjp(lambda x_: f(x_, w), x)[1])(u)[0]  # noqa: E731
    np.testing.assert_allclose(pulled(fast), pulled(plain), rtol=1e-5, atol=1e-5)
    tangent = lambda f: jax.jvp(lambda x_: f(x_, w), (x,), (jnp.ones_like(x),))[1]  # noqa: E731
    np.testing.assert_allclose(tangent(fast), tangent(plain), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel, stride, dilation, pad", [((3, 3), (1, 2), (1, 1), ((1, 1), (0, 2))),
                                                          ((5, 1), (2, 1), (2, 1), ((4, 4), (0, 0))),
                                                          ((4, 2), (3, 1), (1, 2), ((0, 1), (1, 0)))])
def test_weight_gradient_per_kernel_offset_equals_lax(kernel, stride, dilation, pad):
    """The kernel tangent as one product per kernel offset (decision X9): the same weight gradient as lax's
    filter-gradient convolution, for 2-D kernels, strides, kernel dilation and uneven padding, in float64 to
    rounding."""
    with jax.enable_x64(True):
        kx, kw = jax.random.split(jax.random.key(1))
        x = jax.random.normal(kx, (2, 11, 7, 3), jnp.float64)
        w = jax.random.normal(kw, (*kernel, 3, 4), jnp.float64)
        args = dict(window_strides=stride, padding=pad, lhs_dilation=(1, 1), rhs_dilation=dilation,
                    dimension_numbers=DN, precision=None)
        loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w, **args)))  # noqa: E731
        fast = jax.grad(loss(layers.conv_general_dilated), (0, 1))(x, w)
        plain = jax.grad(loss(lax.conv_general_dilated), (0, 1))(x, w)
        for a, b in zip(fast, plain):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        tangent = jax.jvp(lambda w_: layers.conv_general_dilated(x, w_, **args), (w,), (jnp.ones_like(w),))[1]
        np.testing.assert_allclose(tangent, lax.conv_general_dilated(x, jnp.ones_like(w), **args), rtol=1e-12,
                                   atol=1e-12)


def _kernel_layouts(conv, stride):
    """dim_labels of every convolution in the compiled scan of (forward + pulled-back input gradient)."""
    def run(x, w, u):
        def body(c, _):
            _, pullback = jax.vjp(lambda x_: jnp.tanh(conv(x_, w)), c)
            return c + 1e-3 * pullback(u)[0], None
        return lax.scan(body, x, None, length=2)[0]
    x, w = jnp.ones((2, 10, 5, 3)), jnp.ones((9, 1, 3, 4))
    u = jnp.ones((2, 10 // stride, 5, 4))
    text = jax.jit(run).lower(x, w, u).compile().as_text()
    return {line.split("dim_labels=")[1].split(",")[0] for line in text.splitlines() if " convolution(" in line}


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="an XLA CPU layout property")
@pytest.mark.parametrize("stride", [1, 2])
def test_input_gradient_is_canonical_inside_scan(stride):
    _, fast = _convs(stride, 9)  # lax's own transpose gives b01f_01oi->b01f there (XLA's slow loop, jax 0.10.2)
    assert _kernel_layouts(fast, stride) == {"b01f_01io->b01f"}
