"""Activation functions written from their formulas, with hand-derived derivatives.

Each activation comes three ways:

* a plain function on tensors (``sigmoid(x)``), built from exp/expm1/erf/where only,
  so autograd can also differentiate it;
* its derivative written by hand (``sigmoid_grad(x)`` = d sigmoid / dx at x), the formula
  the notes use when they talk about saturation (C06: sigmoid' = y(1 - y) <= 1/4);
* an ``nn.Module`` (``Sigmoid()``) whose backward pass *is* the hand-written derivative
  (a ``torch.autograd.Function``), so training a network with it exercises the formula.

The fused PyTorch versions (torch.sigmoid, F.relu, F.gelu, ...) are the oracles in
tests/test_activations.py.

Papers: ReLU - Nair & Hinton 2010, "Rectified Linear Units Improve Restricted Boltzmann
Machines" (and Krizhevsky et al. 2012, AlexNet); Leaky ReLU - Maas, Hannun & Ng 2013,
"Rectifier Nonlinearities Improve Neural Network Acoustic Models"; ELU - Clevert, Unterthiner
& Hochreiter 2015, "Fast and Accurate Deep Network Learning by Exponential Linear Units",
arXiv:1511.07289; GELU - Hendrycks & Gimpel 2016, "Gaussian Error Linear Units",
arXiv:1606.08415 (exact form x * Phi(x) and their tanh approximation).

At the kinks the derivatives follow PyTorch's conventions: relu'(0) = 0,
leaky_relu'(0) = negative_slope, elu'(0) = alpha.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "GELU",
    "GELUTanh",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "elu",
    "elu_grad",
    "gelu",
    "gelu_grad",
    "leaky_relu",
    "leaky_relu_grad",
    "make_activation",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "tanh",
    "tanh_grad",
]

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715  # Hendrycks & Gimpel's cubic coefficient in the tanh approximation


# ----------------------------------------------------------------------------- the formulas


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """sigma(x) = 1 / (1 + e^-x), evaluated so that exp never overflows.

    For x >= 0 use 1 / (1 + e^-x); for x < 0 the algebraically equal e^x / (1 + e^x).
    Either way the exponent is -|x| <= 0, so e^(...) lies in (0, 1]. (The naive form
    overflows e^-x to inf for x < -88 in float32; 1/(1+inf) happens to give the right 0,
    but its gradient becomes inf/inf = nan.)
    """
    e = torch.exp(torch.where(x >= 0, -x, x))  # e^-|x|, written so autograd sees the sign at 0
    return torch.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x) = (1 - e^-2|x|) / (1 + e^-2|x|) * sign(x).

    With m = expm1(-2|x|) = e^-2|x| - 1 this is -m / (2 + m): no overflow (|m| <= 1) and no
    cancellation near 0 (expm1 is accurate for small arguments, where 1 - e^-2|x| is not).
    """
    m = torch.expm1(torch.where(x >= 0, -2.0 * x, 2.0 * x))
    t = -m / (2.0 + m)
    return torch.where(x >= 0, t, -t)


def relu(x: torch.Tensor) -> torch.Tensor:
    """relu(x) = max(0, x)."""
    return torch.where(x > 0, x, torch.zeros_like(x))


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """x for x > 0, negative_slope * x otherwise: unbounded below (C11)."""
    return torch.where(x > 0, x, negative_slope * x)


def elu(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """x for x > 0, alpha * (e^x - 1) otherwise: saturates at -alpha (C11).

    expm1 of min(x, 0): accurate near 0, and e^x is never formed for large positive x
    (where it would overflow, and torch.where would then pass 0 * inf = nan to the gradient).
    """
    return torch.where(x > 0, x, alpha * torch.expm1(torch.clamp(x, max=0.0)))


def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """GELU(x) = x * Phi(x), Phi the standard normal CDF.

    approximate="none": Phi(x) = (1 + erf(x / sqrt 2)) / 2.
    approximate="tanh": Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2.
    """
    if approximate == "none":
        return 0.5 * x * (1.0 + torch.erf(x / _SQRT_2))
    if approximate == "tanh":
        return 0.5 * x * (1.0 + tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3)))
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


# ----------------------------------------------------------------------------- the derivatives


def sigmoid_grad(x: torch.Tensor) -> torch.Tensor:
    """sigma'(x) = y (1 - y) with y = sigma(x); at most 1/4 (at x = 0)."""
    y = sigmoid(x)
    return y * (1.0 - y)


def tanh_grad(x: torch.Tensor) -> torch.Tensor:
    """tanh'(x) = 1 - y^2 with y = tanh(x); at most 1 (at x = 0)."""
    y = tanh(x)
    return 1.0 - y * y


def relu_grad(x: torch.Tensor) -> torch.Tensor:
    """1 for x > 0, else 0 (0 at the kink, as PyTorch)."""
    return (x > 0).to(x.dtype)


def leaky_relu_grad(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """1 for x > 0, else negative_slope (negative_slope at the kink, as PyTorch)."""
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, negative_slope))


def elu_grad(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """1 for x > 0, else alpha * e^x (= elu(x) + alpha); alpha at the kink, as PyTorch."""
    return torch.where(x > 0, torch.ones_like(x), alpha * torch.exp(torch.clamp(x, max=0.0)))


def gelu_grad(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """d/dx [x Phi(x)] = Phi(x) + x phi(x), phi the normal density e^(-x^2/2) / sqrt(2 pi).

    For approximate="tanh", with u = sqrt(2/pi) (x + c x^3) and t = tanh(u):
    d/dx = (1 + t) / 2 + x (1 - t^2) sqrt(2/pi) (1 + 3 c x^2) / 2.
    """
    if approximate == "none":
        cdf = 0.5 * (1.0 + torch.erf(x / _SQRT_2))
        pdf = _INV_SQRT_2PI * torch.exp(-0.5 * x * x)
        return cdf + x * pdf
    if approximate == "tanh":
        t = tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3))
        # 1 - t^2 is exactly 0 once |x| > ~25 (|u| > ~400); clamping x in the polynomial only
        # there keeps 0 * (x + 3c x^3) from becoming 0 * inf = nan for huge |x|.
        xc = torch.clamp(x, -1e3, 1e3)
        du_dx = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * xc * xc)
        return 0.5 * (1.0 + t) + 0.5 * xc * (1.0 - t * t) * du_dx
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


# ----------------------------------------------------------------------------- modules


class _Pointwise(torch.autograd.Function):
    """y = f(x) in forward; dL/dx = dL/dy * f'(x) in backward, f' the hand-written derivative.

    The chain rule for an elementwise function, made explicit: autograd does not look inside
    f (forward runs without graph recording), it only calls the derivative we wrote.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, fn: Callable, grad_fn: Callable) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.grad_fn = grad_fn
        return fn(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.grad_fn(x), None, None


class _Activation(nn.Module):
    """Applies self.fn in forward and self.grad_fn (hand-written) in backward."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    grad_fn: Callable[[torch.Tensor], torch.Tensor]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Pointwise.apply(x, self.fn, self.grad_fn)


class Sigmoid(_Activation):
    """Scratch nn.Sigmoid: numerically stable forward, backward y (1 - y)."""

    def __init__(self):
        super().__init__()
        self.fn, self.grad_fn = sigmoid, sigmoid_grad


class Tanh(_Activation):
    """Scratch nn.Tanh: backward 1 - y^2."""

    def __init__(self):
        super().__init__()
        self.fn, self.grad_fn = tanh, tanh_grad


class ReLU(_Activation):
    """Scratch nn.ReLU: backward passes the gradient where x > 0."""

    def __init__(self):
        super().__init__()
        self.fn, self.grad_fn = relu, relu_grad


class LeakyReLU(_Activation):
    """Scratch nn.LeakyReLU(negative_slope)."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope
        self.fn = functools.partial(leaky_relu, negative_slope=negative_slope)
        self.grad_fn = functools.partial(leaky_relu_grad, negative_slope=negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(_Activation):
    """Scratch nn.ELU(alpha)."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha
        self.fn = functools.partial(elu, alpha=alpha)
        self.grad_fn = functools.partial(elu_grad, alpha=alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(_Activation):
    """Scratch nn.GELU(approximate="none" | "tanh")."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.fn = functools.partial(gelu, approximate=approximate)
        self.grad_fn = functools.partial(gelu_grad, approximate=approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class GELUTanh(GELU):
    """GELU with the tanh approximation (as used by BERT and GPT-2)."""

    def __init__(self):
        super().__init__(approximate="tanh")


# name -> scratch module class; every class builds with no arguments (defaults as torch.nn).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "gelu": GELU,
    "gelu_tanh": GELUTanh,
}

# The fused PyTorch counterparts, for "scratch vs fused" comparisons.
_TORCH_ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "gelu_tanh": functools.partial(nn.GELU, approximate="tanh"),
}


def make_activation(name: str, *, scratch: bool = True, **kwargs) -> nn.Module:
    """The activation `name` (a key of ACTIVATIONS): the scratch module, or torch's if scratch=False.

    kwargs go to the constructor, e.g. make_activation("leaky_relu", negative_slope=0.2).
    """
    if name not in ACTIVATIONS:
        raise KeyError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return (ACTIVATIONS if scratch else _TORCH_ACTIVATIONS)[name](**kwargs)
