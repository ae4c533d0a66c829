"""Weight initializers from their variance formulas: zeros, small random, LeCun, Xavier, He.

Each initializer fills a tensor in place (name ends in ``_`` as in torch.nn.init) and takes an
optional ``torch.Generator`` so a draw can be repeated. The scratch part is the scale: fans
are computed by ``fan_in_and_fan_out`` and the std / bound by the formulas below; the random
numbers themselves come from Tensor.normal_ / Tensor.uniform_.

    zeros          w = 0                           every unit of a layer stays identical (C07)
    small_random   w ~ N(0, 0.01^2)                deep activations shrink toward 0 (C08)
    lecun_normal   Var w = 1 / fan_in              LeCun et al. 1998, "Efficient BackProp"
    xavier_*       Var w = gain^2 2/(fan_in+fan_out)  Glorot & Bengio 2010, "Understanding the
                   uniform bound gain sqrt(6/(fan_in+fan_out))   difficulty of training deep
                                                                 feedforward neural networks"
    kaiming_*      Var w = gain^2 / fan, gain^2 = 2 for ReLU     He, Zhang, Ren & Sun 2015,
                   uniform bound gain sqrt(3 / fan)   "Delving Deep into Rectifiers",
                                                      arXiv:1502.01852

A uniform U(-b, b) has variance b^2 / 3, which is where sqrt(6/...) and sqrt(3/...) come from.
The notes' "Xavier, var 1/n" is the fan-in-only simplification (cs231n's W / sqrt(fan_in));
it is ``lecun_normal_`` here, and equals Glorot's formula when fan_in == fan_out.

A zero-element weight (e.g. Linear(0, 5), shape (5, 0)) has nothing to fill and a fan of 0:
kaiming_* and lecun_normal_ return it untouched with torch's warning "Initializing
zero-element tensors is a no-op" (as torch.nn.init.kaiming_*), xavier_* too when
fan_in + fan_out = 0 (shape (0, 0); torch.nn.init.xavier_* raises ZeroDivisionError there).
Arguments (mode, nonlinearity) are checked first, also for an empty weight.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = [
    "INITIALIZERS",
    "calculate_gain",
    "fan_in_and_fan_out",
    "init_model_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "small_random_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def fan_in_and_fan_out(shape: torch.Tensor | Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (or its shape).

    Linear weight (out_features, in_features): fan_in = in_features, fan_out = out_features.
    ConvNd weight (out_channels, in_channels / groups, *kernel): each output unit sees
    in_channels/groups * prod(kernel) inputs, and each input feeds out_channels * prod(kernel)
    outputs, so both fans are multiplied by the receptive field size prod(kernel).
    """
    shape = tuple(shape.shape) if isinstance(shape, torch.Tensor) else tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions, got shape {shape}")
    receptive_field = math.prod(shape[2:])  # 1 for a Linear weight
    return shape[1] * receptive_field, shape[0] * receptive_field


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which a nonlinearity's mean square output differs from its input's.

    relu: sqrt(2) (half the inputs are zeroed); leaky_relu(a): sqrt(2 / (1 + a^2));
    tanh: 5/3 (torch's empirical value); linear, sigmoid and conv: 1; selu: 3/4.
    """
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


def zeros_(tensor: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """w = 0. (generator is accepted so every initializer has the same signature.)"""
    with torch.no_grad():
        return tensor.zero_()


def small_random_(tensor: torch.Tensor, std: float = 0.01, generator: torch.Generator | None = None) -> torch.Tensor:
    """w ~ N(0, std^2), std = 0.01 as in the notes (and cs231n's 0.01 * randn)."""
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def _empty(tensor: torch.Tensor, stacklevel: int = 3) -> bool:
    """True (with torch.nn.init's warning, pointed at the initializer's caller) for a zero-element
    tensor: nothing to fill, and its fan of 0 would divide by zero."""
    if 0 not in tensor.shape:
        return False
    warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=stacklevel)
    return True


def lecun_normal_(tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """w ~ N(0, gain^2 / fan_in): keeps the forward variance of a linear unit (LeCun et al. 1998)."""
    if _empty(tensor):
        return tensor
    fan_in, _ = fan_in_and_fan_out(tensor)
    with torch.no_grad():
        return tensor.normal_(0.0, gain / math.sqrt(fan_in), generator=generator)


def xavier_uniform_(tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """w ~ U(-b, b), b = gain sqrt(6 / (fan_in + fan_out)), so Var w = gain^2 2 / (fan_in + fan_out).

    Glorot & Bengio's compromise between keeping the forward variance (1/fan_in) and the
    backward variance (1/fan_out).
    """
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    if fan_in + fan_out == 0 and _empty(tensor):
        return tensor
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def xavier_normal_(tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """w ~ N(0, gain^2 2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    if fan_in + fan_out == 0 and _empty(tensor):
        return tensor
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def _kaiming_std(tensor: torch.Tensor, a: float, mode: str, nonlinearity: str) -> float | None:
    """gain / sqrt(fan), or None for a zero-element tensor (fan 0: nothing to fill)."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    gain = calculate_gain(nonlinearity, a)
    if _empty(tensor, stacklevel=4):  # before the fans, as torch: an empty 1-D tensor is a no-op too
        return None
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return gain / math.sqrt(fan)


def kaiming_uniform_(
    tensor: torch.Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """w ~ U(-b, b), b = gain sqrt(3 / fan); for ReLU Var w = 2 / fan (He et al. 2015).

    mode="fan_in" preserves the variance of the activations in the forward pass,
    mode="fan_out" that of the gradients in the backward pass. `a` is the negative slope
    for nonlinearity="leaky_relu".
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(
    tensor: torch.Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """w ~ N(0, gain^2 / fan); for ReLU Var w = 2 / fan (He et al. 2015)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


# name -> initializer(tensor, generator=...), each with its default arguments.
INITIALIZERS: dict[str, Callable[..., torch.Tensor]] = {
    "zeros": zeros_,
    "small_random": small_random_,
    "lecun_normal": lecun_normal_,
    "xavier_uniform": xavier_uniform_,
    "xavier_normal": xavier_normal_,
    "kaiming_uniform": kaiming_uniform_,
    "kaiming_normal": kaiming_normal_,
}

_WEIGHTED = (nn.Linear, nn.modules.conv._ConvNd)


def init_model_(model: nn.Module, name: str, generator: torch.Generator | None = None, **kwargs) -> nn.Module:
    """Initialize every Linear / Conv / ConvTranspose weight of `model` with INITIALIZERS[name]; biases 0.

    kwargs go to the initializer (e.g. gain=5/3 for xavier with tanh, mode="fan_out").
    Other parameters (norm layers, embeddings) are left as they are. Returns the model.
    Note: for ConvTranspose the weight is (in, out/groups, *k), so "fan_in" is computed from
    dim 1 exactly as torch.nn.init does, i.e. it is really the fan-out of the forward pass.
    """
    if name not in INITIALIZERS:
        raise KeyError(f"unknown initializer {name!r}; choose one of {', '.join(INITIALIZERS)}")
    init = INITIALIZERS[name]
    for module in model.modules():
        if isinstance(module, _WEIGHTED):
            init(module.weight, generator=generator, **kwargs)
            if module.bias is not None:
                zeros_(module.bias)
    return model
