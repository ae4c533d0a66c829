"""Initializers: fans equal torch's, empirical variances equal the papers' formulas.

Tolerances for the statistical checks. With n i.i.d. draws of variance s2, the sample
variance has standard error
    normal:      s2 * sqrt(2 / (n - 1))            (fourth moment 3 s2^2)
    U(-b, b):    s2 * sqrt(0.8 / n)                (fourth moment b^4 / 5 = 9/5 s2^2)
and the sample mean sqrt(s2 / n). The tests allow 5 standard errors: a correct initializer
fails with probability < 1e-6 (and the generators are seeded, so runs are reproducible),
while n >= 2e5 makes 5 SE about 1.4% (normal) / 1.0% (uniform) of s2 - far below the gaps
between the formulas they must tell apart (e.g. 1/fan_in vs 2/(fan_in + fan_out) on a
256 x 1024 weight is 60%, a sqrt(3) slip in the uniform bound is a factor 3).
"""

import math

import pytest
import torch
from torch import nn

from deepnotes.layers import init as I

# Non-square shapes so that fan_in, fan_out and their mean all differ.
LINEAR = (256, 1024)  # fan_in 1024, fan_out 256; 262,144 draws
CONV2D = (128, 64, 5, 5)  # fan_in 64*25 = 1600, fan_out 128*25 = 3200; 204,800 draws
SHAPES = [LINEAR, CONV2D]


def fans(shape):
    rf = math.prod(shape[2:])
    return shape[1] * rf, shape[0] * rf


def variance_tolerance(var: float, n: int, uniform: bool) -> float:
    se = var * math.sqrt(0.8 / n) if uniform else var * math.sqrt(2.0 / (n - 1))
    return 5.0 * se


def check_moments(w: torch.Tensor, var: float, uniform: bool) -> None:
    n = w.numel()
    w = w.double()
    assert abs(w.var().item() - var) <= variance_tolerance(var, n, uniform), (w.var().item(), var)
    assert abs(w.mean().item()) <= 5.0 * math.sqrt(var / n)


# (initializer, kwargs, expected variance from (fan_in, fan_out), uniform?)
EXPECTED = [
    pytest.param("small_random", {}, lambda fi, fo: 0.01**2, False, id="small_random"),
    pytest.param("lecun_normal", {}, lambda fi, fo: 1.0 / fi, False, id="lecun_normal"),
    pytest.param("xavier_uniform", {}, lambda fi, fo: 2.0 / (fi + fo), True, id="xavier_uniform"),
    pytest.param(
        "xavier_uniform", {"gain": 5 / 3}, lambda fi, fo: (5 / 3) ** 2 * 2.0 / (fi + fo), True, id="xavier_uniform-tanh_gain"
    ),
    pytest.param("xavier_normal", {}, lambda fi, fo: 2.0 / (fi + fo), False, id="xavier_normal"),
    pytest.param("kaiming_uniform", {}, lambda fi, fo: 2.0 / fi, True, id="kaiming_uniform"),
    pytest.param("kaiming_uniform", {"mode": "fan_out"}, lambda fi, fo: 2.0 / fo, True, id="kaiming_uniform-fan_out"),
    pytest.param("kaiming_normal", {}, lambda fi, fo: 2.0 / fi, False, id="kaiming_normal"),
    pytest.param("kaiming_normal", {"mode": "fan_out"}, lambda fi, fo: 2.0 / fo, False, id="kaiming_normal-fan_out"),
    pytest.param(
        "kaiming_normal",
        {"nonlinearity": "leaky_relu", "a": 0.2},
        lambda fi, fo: 2.0 / (1 + 0.2**2) / fi,
        False,
        id="kaiming_normal-leaky0.2",
    ),
    pytest.param("kaiming_normal", {"nonlinearity": "linear"}, lambda fi, fo: 1.0 / fi, False, id="kaiming_normal-linear"),
]


@pytest.mark.parametrize("shape", SHAPES, ids=["linear", "conv2d"])
@pytest.mark.parametrize(("name", "kwargs", "expected", "uniform"), EXPECTED)
def test_empirical_variance_matches_formula(shape, name, kwargs, expected, uniform):
    w = torch.empty(shape)
    I.INITIALIZERS[name](w, generator=torch.Generator().manual_seed(0), **kwargs)
    check_moments(w, expected(*fans(shape)), uniform)


@pytest.mark.parametrize("shape", SHAPES, ids=["linear", "conv2d"])
def test_uniform_bounds(shape):
    fan_in, fan_out = fans(shape)
    g = torch.Generator().manual_seed(1)
    cases = [
        (I.xavier_uniform_, {}, math.sqrt(6.0 / (fan_in + fan_out))),
        (I.xavier_uniform_, {"gain": 2.0}, 2.0 * math.sqrt(6.0 / (fan_in + fan_out))),
        (I.kaiming_uniform_, {}, math.sqrt(6.0 / fan_in)),  # gain sqrt 2 * sqrt(3 / fan_in)
        (I.kaiming_uniform_, {"mode": "fan_out"}, math.sqrt(6.0 / fan_out)),
    ]
    for init, kwargs, bound in cases:
        w = init(torch.empty(shape), generator=g, **kwargs)
        # every draw inside; and with 2e5 draws the largest within 0.1% of the bound
        # (a narrower range would survive that with probability 0.999^200000 ~ e^-200)
        assert w.abs().max().item() <= bound
        assert w.abs().max().item() >= 0.999 * bound


WEIGHT_SHAPES = [
    (10, 3),  # Linear(3, 10)
    (64, 3, 7, 7),  # Conv2d(3, 64, 7)
    (8, 4, 5),  # Conv1d(4, 8, 5)
    (16, 2, 3, 3, 3),  # Conv3d(2, 16, 3)
    tuple(nn.Conv2d(8, 16, 3, groups=4).weight.shape),  # (16, 2, 3, 3)
    tuple(nn.ConvTranspose2d(8, 4, (2, 3)).weight.shape),  # (8, 4, 2, 3)
]


@pytest.mark.parametrize("shape", WEIGHT_SHAPES)
def test_fans_equal_torch(shape):
    w = torch.empty(shape)
    assert I.fan_in_and_fan_out(w) == nn.init._calculate_fan_in_and_fan_out(w)
    assert I.fan_in_and_fan_out(shape) == nn.init._calculate_fan_in_and_fan_out(w)


def test_fans_by_hand_and_errors():
    assert I.fan_in_and_fan_out((128, 64, 3, 3)) == (576, 1152)  # 64*9, 128*9
    assert I.fan_in_and_fan_out((10, 784)) == (784, 10)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        I.fan_in_and_fan_out(torch.empty(5))
    with pytest.raises(ValueError, match="mode"):
        I.kaiming_normal_(torch.empty(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="nonlinearity"):
        I.calculate_gain("swish")


@pytest.mark.parametrize(
    ("nonlinearity", "param"),
    [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)],
)
def test_gain_equals_torch(nonlinearity, param):
    assert I.calculate_gain(nonlinearity, param) == pytest.approx(nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


@pytest.mark.parametrize("shape", SHAPES, ids=["linear", "conv2d"])
@pytest.mark.parametrize(
    ("ours", "theirs", "kwargs", "uniform"),
    [
        pytest.param(I.kaiming_normal_, nn.init.kaiming_normal_, {"nonlinearity": "relu"}, False, id="kaiming_normal"),
        pytest.param(
            I.kaiming_normal_,
            nn.init.kaiming_normal_,
            {"mode": "fan_out", "nonlinearity": "relu"},
            False,
            id="kaiming_normal-fan_out",
        ),
        pytest.param(I.kaiming_uniform_, nn.init.kaiming_uniform_, {"nonlinearity": "relu"}, True, id="kaiming_uniform"),
        pytest.param(I.xavier_uniform_, nn.init.xavier_uniform_, {}, True, id="xavier_uniform"),
        pytest.param(I.xavier_uniform_, nn.init.xavier_uniform_, {"gain": 5 / 3}, True, id="xavier_uniform-tanh_gain"),
        pytest.param(I.xavier_normal_, nn.init.xavier_normal_, {}, False, id="xavier_normal"),
    ],
)
def test_same_distribution_as_torch(shape, ours, theirs, kwargs, uniform):
    """Same seed, same shape: the two empirical variances agree (values are not compared)."""
    a = ours(torch.empty(shape), generator=torch.Generator().manual_seed(7), **kwargs)
    b = theirs(torch.empty(shape), generator=torch.Generator().manual_seed(7), **kwargs)
    var_a, var_b = a.double().var().item(), b.double().var().item()
    # two estimates of one variance: their difference has at most sqrt(2) times one's SE
    assert abs(var_a - var_b) <= math.sqrt(2) * variance_tolerance(var_b, b.numel(), uniform)
    if uniform:  # the same support: both maxima sit within 0.1% of the shared bound
        assert a.abs().max().item() == pytest.approx(b.abs().max().item(), rel=1e-3)


def test_zeros_and_determinism():
    w = torch.randn(4, 5)
    assert I.zeros_(w) is w and not w.any()
    a = I.kaiming_normal_(torch.empty(30, 20), generator=torch.Generator().manual_seed(3))
    b = I.kaiming_normal_(torch.empty(30, 20), generator=torch.Generator().manual_seed(3))
    c = I.kaiming_normal_(torch.empty(30, 20), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    p = nn.Parameter(torch.empty(8, 8))  # in place on a leaf that requires grad
    I.xavier_normal_(p)
    assert p.requires_grad and p.grad_fn is None


def small_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 64, 3),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 14 * 14, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def test_init_model_applies_to_every_weight():
    model = I.init_model_(small_model(), "kaiming_normal", generator=torch.Generator().manual_seed(0))
    conv, bn, fc1, fc2 = model[0], model[1], model[4], model[6]
    for layer in (conv, fc1, fc2):
        assert not layer.bias.any()
    # the 12,544 x 128 Linear has 1.6M draws: its variance must be 2 / fan_in
    check_moments(fc1.weight.detach(), 2.0 / (64 * 14 * 14), uniform=False)
    check_moments(conv.weight.detach(), 2.0 / 27, uniform=False)  # fan_in 3*3*3; 1,728 draws
    assert torch.equal(bn.weight, torch.ones(64)) and torch.equal(bn.bias, torch.zeros(64))  # untouched
    same = I.init_model_(small_model(), "kaiming_normal", generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), same.parameters(), strict=True))

    zeroed = I.init_model_(small_model(), "zeros")
    assert not any(m.weight.any() for m in zeroed.modules() if isinstance(m, nn.Linear | nn.Conv2d))
    tanh_model = I.init_model_(nn.Sequential(nn.Linear(2048, 512)), "xavier_uniform", gain=5.0 / 3.0)
    check_moments(tanh_model[0].weight.detach(), (5 / 3) ** 2 * 2 / (2048 + 512), uniform=True)
    with pytest.raises(KeyError, match="unknown initializer"):
        I.init_model_(small_model(), "orthogonal")


@pytest.mark.parametrize("shape", [(5, 0), (0, 5), (0, 0), (4, 0, 3), (4, 2, 0, 3), (0,)], ids=str)
@pytest.mark.parametrize(
    ("ours", "theirs"), [(I.kaiming_normal_, nn.init.kaiming_normal_), (I.kaiming_uniform_, nn.init.kaiming_uniform_)]
)
def test_kaiming_on_an_empty_weight_is_a_noop_with_torchs_warning(shape, ours, theirs):
    """A zero-element weight (e.g. Linear(0, 5)) has fan 0; the std gain / sqrt(fan) used to raise
    ZeroDivisionError. torch.nn.init returns the tensor untouched with a warning; so do these."""
    for init in (ours, theirs):
        w = torch.empty(shape)
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            assert init(w) is w
