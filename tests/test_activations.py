"""Scratch activations and their hand-written derivatives vs torch's fused ops and autograd.

Tolerances. float64: rtol = atol = 1e-12. Each formula is a handful of correctly rounded
operations (~1e-16 relative each); the one loss of relative accuracy is the cancellation in
1 + erf(.) / 1 + tanh(.) for negative GELU inputs, whose absolute error is ~eps * |x|
<= 2e-13 for |x| <= 1e3, so 1e-12 leaves margin and still catches any wrong constant or
formula (those err by >= 1e-4). float32: rtol 1e-5, atol 1e-5. Values agree to ~2 ulps
(eps = 1.2e-7), but the tanh-GELU derivative has a cancellation in 1 - t^2 as |t| -> 1 whose
absolute error, eps * |x| du/dx / 2, reaches ~10 eps near |x| = 5 in each implementation
(beyond |x| ~ 6, t rounds to +-1 and the term is exactly 0): ~2.4e-6 apart, measured 2.0e-6.
"""

import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from deepnotes.layers import activations as A

F64 = {"rtol": 1e-12, "atol": 1e-12}
F32 = {"rtol": 1e-5, "atol": 1e-5}

# name -> (scratch function, hand-written derivative, torch built-in, scratch module)
CASES = {
    "sigmoid": (A.sigmoid, A.sigmoid_grad, torch.sigmoid, A.Sigmoid),
    "tanh": (A.tanh, A.tanh_grad, torch.tanh, A.Tanh),
    "relu": (A.relu, A.relu_grad, F.relu, A.ReLU),
    "leaky_relu": (
        functools.partial(A.leaky_relu, negative_slope=0.2),
        functools.partial(A.leaky_relu_grad, negative_slope=0.2),
        functools.partial(F.leaky_relu, negative_slope=0.2),
        functools.partial(A.LeakyReLU, negative_slope=0.2),
    ),
    "elu": (
        functools.partial(A.elu, alpha=1.5),
        functools.partial(A.elu_grad, alpha=1.5),
        functools.partial(F.elu, alpha=1.5),
        functools.partial(A.ELU, alpha=1.5),
    ),
    "gelu": (A.gelu, A.gelu_grad, functools.partial(F.gelu, approximate="none"), A.GELU),
    "gelu_tanh": (
        functools.partial(A.gelu, approximate="tanh"),
        functools.partial(A.gelu_grad, approximate="tanh"),
        functools.partial(F.gelu, approximate="tanh"),
        A.GELUTanh,
    ),
}


def builtin_value_and_grad(fn, x):
    """torch's output and autograd's d output / d x (elementwise, so the grad of the sum)."""
    x = x.clone().requires_grad_(True)
    y = fn(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), grad


def module_value_and_grad(module, x):
    x = x.clone().requires_grad_(True)
    y = module(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), grad


# Kinks and landmarks: 0 (both signs), tiny, around the float32 exp overflow (88.7), large.
LANDMARKS = [0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 0.5, -0.5, 3.0, -3.0, 30.0, -30.0, 88.8, -88.8, 710.0, -710.0, 1e3, -1e3]

finite64 = arrays(
    np.float64,
    st.integers(1, 64),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@pytest.mark.parametrize("name", list(CASES))
@settings(max_examples=40, deadline=None, derandomize=True, database=None)  # the same examples in every CI run
@given(x=finite64)
def test_values_and_derivatives_match_torch_float64(name, x):
    fn, grad_fn, builtin, module_cls = CASES[name]
    x = torch.cat([torch.from_numpy(x), torch.tensor(LANDMARKS, dtype=torch.float64)])
    y_ref, g_ref = builtin_value_and_grad(builtin, x)
    torch.testing.assert_close(fn(x), y_ref, **F64)
    torch.testing.assert_close(grad_fn(x), g_ref, **F64)
    # the module: forward is the formula, backward is the hand-written derivative
    y_mod, g_mod = module_value_and_grad(module_cls(), x)
    torch.testing.assert_close(y_mod, y_ref, **F64)
    torch.testing.assert_close(g_mod, g_ref, **F64)
    # the plain function is differentiable by autograd as well (no nan from torch.where branches)
    _, g_auto = builtin_value_and_grad(fn, x)
    torch.testing.assert_close(g_auto, g_ref, **F64)


@pytest.mark.parametrize("name", list(CASES))
def test_float32_grid_matches_torch(name):
    fn, grad_fn, builtin, _ = CASES[name]
    x = torch.linspace(-20, 20, 4001, dtype=torch.float32)
    y_ref, g_ref = builtin_value_and_grad(builtin, x)
    torch.testing.assert_close(fn(x), y_ref, **F32)
    torch.testing.assert_close(grad_fn(x), g_ref, **F32)


# Hand-worked limits for huge inputs (float32 max is 3.4e38): sigmoid -> 0 / 1, tanh -> -1 / 1,
# ELU -> -alpha, GELU -> 0 / x; derivatives -> 0 or 1. Naive formulas overflow here (e^1e4 = inf,
# x^3 = inf) and give nan; torch's own gelu(3e38) is inf and its tanh-GELU gradient is nan
# beyond |x| ~ 1e13, so these are checked against the limits rather than against torch.
HUGE = torch.tensor([-3e38, -1e30, -1e4, -200.0, 200.0, 1e4, 1e30, 3e38], dtype=torch.float32)
NEG = HUGE < 0


@pytest.mark.parametrize(
    ("name", "value_limit", "grad_limit"),
    [
        ("sigmoid", lambda x: torch.where(NEG, 0.0, 1.0), lambda x: torch.zeros_like(x)),
        ("tanh", lambda x: torch.where(NEG, -1.0, 1.0), lambda x: torch.zeros_like(x)),
        ("relu", lambda x: torch.where(NEG, 0.0, x), lambda x: torch.where(NEG, 0.0, 1.0)),
        ("leaky_relu", lambda x: torch.where(NEG, 0.2 * x, x), lambda x: torch.where(NEG, 0.2, 1.0)),
        ("elu", lambda x: torch.where(NEG, -1.5, x), lambda x: torch.where(NEG, 0.0, 1.0)),
        ("gelu", lambda x: torch.where(NEG, 0.0, x), lambda x: torch.where(NEG, 0.0, 1.0)),
        ("gelu_tanh", lambda x: torch.where(NEG, 0.0, x), lambda x: torch.where(NEG, 0.0, 1.0)),
    ],
)
def test_huge_inputs_do_not_overflow(name, value_limit, grad_limit):
    fn, grad_fn, _, module_cls = CASES[name]
    y, g = fn(HUGE), grad_fn(HUGE)
    assert torch.isfinite(y).all() and torch.isfinite(g).all()
    torch.testing.assert_close(y, value_limit(HUGE), rtol=1e-6, atol=0.0)
    torch.testing.assert_close(g, grad_limit(HUGE), rtol=0.0, atol=0.0)
    _, g_mod = module_value_and_grad(module_cls(), HUGE)
    assert torch.isfinite(g_mod).all()


def test_hand_worked_values():
    """Numbers checked with a pencil (and the notes): sigma(0) = 1/2, sigma'(0) = 1/4 is the max."""
    x = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    torch.testing.assert_close(A.sigmoid(x), torch.tensor([0.5, 0.75], dtype=torch.float64))  # 1/(1+1/3)
    torch.testing.assert_close(A.sigmoid_grad(x), torch.tensor([0.25, 0.1875], dtype=torch.float64))  # 3/4 * 1/4
    torch.testing.assert_close(A.tanh(torch.tensor([math.log(2.0)])), torch.tensor([0.6]))  # (2 - 1/2)/(2 + 1/2)
    torch.testing.assert_close(A.tanh_grad(torch.tensor([math.log(2.0)])), torch.tensor([0.64]))
    grid = torch.linspace(-10, 10, 10001, dtype=torch.float64)
    assert A.sigmoid_grad(grid).max().item() == pytest.approx(0.25, abs=1e-12)  # C06: <= 1/4
    # GELU(1) = Phi(1) = 0.841344746...; GELU(-1) = -(1 - Phi(1))
    torch.testing.assert_close(A.gelu(torch.tensor([1.0, -1.0], dtype=torch.float64)), torch.tensor([0.8413447460685429, -0.15865525393145707], dtype=torch.float64))
    assert A.elu(torch.tensor([-1e4]), alpha=2.0).item() == -2.0  # C11: saturates at -alpha
    assert A.leaky_relu(torch.tensor([-1e4]), 0.01).item() == pytest.approx(-100.0)  # unbounded below


def test_modules_gradcheck():
    """The autograd.Function wiring (grad_out * f'(x)) against finite differences, in float64."""
    x = (torch.randn(20, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3).requires_grad_()
    for module_cls in A.ACTIVATIONS.values():
        assert torch.autograd.gradcheck(module_cls(), (x,))


def test_registry_and_factory():
    assert set(A.ACTIVATIONS) == {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh"}
    x = torch.linspace(-4, 4, 101)
    for name in A.ACTIVATIONS:
        scratch, fused = A.make_activation(name), A.make_activation(name, scratch=False)
        assert not isinstance(scratch, type(fused))
        torch.testing.assert_close(scratch(x), fused(x), **F32)
    assert A.make_activation("leaky_relu", negative_slope=0.3)(torch.tensor([-1.0])).item() == pytest.approx(-0.3)
    with pytest.raises(KeyError, match="unknown activation"):
        A.make_activation("swish")
    with pytest.raises(ValueError, match="approximate"):
        A.GELU(approximate="sigmoid")
