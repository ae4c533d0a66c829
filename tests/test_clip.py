"""Gradient clipping (deepnotes.optim.clip) against torch.nn.utils.clip_grad_norm_ / clip_grad_value_.

A derandomized hypothesis search draws parameter sets (none, one tensor passed bare, a list or a
generator; shapes with 0 elements and 0-d scalars; float32, float64 and both mixed; parameters
without a gradient), gradient scales from 1e-3 to 1e20 (a float32 2-norm overflows to inf there,
as torch's does), inf and NaN entries, norm types 1, 2, 3, 0.5 and inf, max_norm from 0 to inf and
clip values from 0 to 1e3, and compares the returned total norm and the clipped gradients with
torch's, on both of its paths (foreach=True and False), NaN positions included (equal_nan).

Tolerance, relative (atol 0): 2e-6 when a float32 gradient takes part, 1e-12 for float64 only
(torch's kernels sum in other orders; a 0.5-norm squares the sum of square roots) [worst measured
over 2,000 examples: 4.6e-7 and 6.3e-16 for the total norm, 4.2e-7 and 4.2e-16 for the clipped
gradients, which get twice the tolerance]; clipping by value is compared exactly.
"""

import math
import warnings

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch.nn.utils import clip_grad_norm_ as torch_clip_grad_norm_
from torch.nn.utils import clip_grad_value_ as torch_clip_grad_value_

from deepnotes.optim import clip_grad_norm_, clip_grad_value_

ORACLE = settings(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow], max_examples=150)
RTOL = {torch.float32: 2e-6, torch.float64: 1e-12}


@st.composite
def parameter_sets(draw):
    mixed = draw(st.sampled_from(["float32", "float64", "mixed"]))
    specs = []
    for _ in range(draw(st.integers(0, 5))):
        dtype = draw(st.sampled_from(["float32", "float64"])) if mixed == "mixed" else mixed
        specs.append(dict(
            shape=tuple(draw(st.lists(st.integers(0, 4), max_size=3))),
            dtype=getattr(torch, dtype),
            grad=draw(st.integers(0, 4)) > 0,  # some parameters have no gradient
            special=draw(st.sampled_from(["none"] * 6 + ["inf", "-inf", "nan"])),
        ))  # fmt: skip
    return dict(
        specs=specs,
        container=draw(st.sampled_from(["list", "generator", "tensor"])),
        scale=draw(st.sampled_from([1e-3, 1.0, 1e3, 1e20])),
        norm_type=draw(st.sampled_from([1.0, 2.0, 3.0, 0.5, math.inf, "inf"])),
        max_norm=draw(st.sampled_from([0.0, 0.5, 1.0, 1e3, math.inf])),
        clip_value=draw(st.sampled_from([0.0, 0.1, 1.0, 1e3])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def _parameters(c):
    """Two identical parameter sets (ours, torch's) with gradients as the case says."""
    g = torch.Generator().manual_seed(c["seed"])
    sets = ([], [])
    for spec in c["specs"]:
        grad = (torch.randn(spec["shape"], generator=g, dtype=torch.float64) * c["scale"]).to(spec["dtype"])
        if spec["special"] != "none" and grad.numel():
            grad.view(-1)[torch.randint(grad.numel(), (1,), generator=g)] = float(spec["special"])
        for params in sets:
            p = torch.zeros(spec["shape"], dtype=spec["dtype"], requires_grad=True)
            p.grad = grad.clone() if spec["grad"] else None
            params.append(p)
    return sets


def _container(params, c):
    if c["container"] == "tensor" and len(params) == 1:
        return params[0]
    return (p for p in params) if c["container"] == "generator" else list(params)


def _same_grads(ours, theirs, rtol):
    for a, b in zip(ours, theirs, strict=True):
        if a.grad is not None and b.grad is None:  # an empty gradient torch's side did without
            assert a.grad.numel() == 0
            continue
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=rtol, atol=0, equal_nan=True)


@ORACLE
@given(c=parameter_sets(), foreach=st.booleans())
@example(  # float32 overflow: an infinite total norm scales by 0, an infinite entry becomes NaN
    c=dict(specs=[dict(shape=(3,), dtype=torch.float32, grad=True, special="inf"),
                  dict(shape=(2,), dtype=torch.float32, grad=True, special="none")],
           container="list", scale=1e20, norm_type=2.0, max_norm=1.0, clip_value=1.0, seed=0),
    foreach=True,
)  # fmt: skip
def test_clip_grad_norm_equals_torch(c, foreach):
    ours, theirs = _parameters(c)
    total = clip_grad_norm_(_container(ours, c), c["max_norm"], norm_type=c["norm_type"])
    empty = float(c["norm_type"]) == math.inf and any(p.grad is not None and p.grad.numel() == 0 for p in theirs)
    if empty:  # the departure: torch refuses the max over an empty gradient, here it adds nothing (norms are >= 0)
        with pytest.raises(RuntimeError, match="empty tensor"):
            torch_clip_grad_norm_(theirs, c["max_norm"], norm_type=c["norm_type"], foreach=foreach)
        for p in theirs:
            if p.grad is not None and p.grad.numel() == 0:
                p.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about an empty generator
        ref_total = torch_clip_grad_norm_(_container(theirs, c), c["max_norm"], norm_type=c["norm_type"], foreach=foreach)
    assert total.shape == () and (total.dtype == ref_total.dtype or empty)  # (torch's side may have lost the float64 one)
    rtol = max([RTOL[p.grad.dtype] for p in ours if p.grad is not None], default=0.0)  # the least precise dtype's
    torch.testing.assert_close(total, ref_total, rtol=rtol, atol=0, equal_nan=True, check_dtype=not empty)
    _same_grads(ours, theirs, 2 * rtol)  # the scale's error, then the product's


@ORACLE
@given(c=parameter_sets(), foreach=st.booleans())
def test_clip_grad_value_equals_torch(c, foreach):
    ours, theirs = _parameters(c)
    assert clip_grad_value_(_container(ours, c), c["clip_value"]) is None
    if all(p.grad is None for p in theirs):  # the departure: here a no-op, torch 2.13 fails inside
        with pytest.raises(RuntimeError):
            torch_clip_grad_value_(_container(theirs, c), c["clip_value"], foreach=foreach)
        return
    torch_clip_grad_value_(_container(theirs, c), c["clip_value"], foreach=foreach)
    _same_grads(ours, theirs, 0.0)


def test_clip_by_norm_by_hand():
    """g = (3, 4) and (12,): ||g||_2 = 13, ||g||_1 = 19, ||g||_inf = 12; only a norm above max_norm clips."""
    for q, norm in ((2, 13.0), (1, 19.0), (math.inf, 12.0)):
        a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
        a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([12.0])
        assert clip_grad_norm_([a, b], 1.0, norm_type=q).item() == pytest.approx(norm)
        scaled = torch.cat([a.grad, b.grad])
        assert torch.linalg.vector_norm(scaled, q).item() == pytest.approx(1.0, rel=1e-5)  # 1 / (norm + 1e-6) * norm
        assert torch.allclose(scaled, torch.tensor([3.0, 4.0, 12.0]) / norm)
        assert clip_grad_norm_([a, b], 100.0, norm_type=q).item() == pytest.approx(1.0, rel=1e-5)  # below: unchanged
        assert torch.allclose(torch.cat([a.grad, b.grad]), scaled)
    assert clip_grad_norm_([torch.zeros(2, requires_grad=True)], 1.0).item() == 0.0  # no gradient at all: tensor(0.)


def test_clip_rejects_negative_thresholds_and_non_norms():
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.ones(2)
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError, match="max_norm"):
            clip_grad_norm_([p], bad)
        with pytest.raises(ValueError, match="clip_value"):
            clip_grad_value_([p], bad)
    for bad in (0.0, -2.0):
        with pytest.raises(ValueError, match="norm_type"):
            clip_grad_norm_([p], 1.0, norm_type=bad)
    p.grad = torch.tensor([math.inf, 1.0])
    with pytest.raises(RuntimeError, match="cannot be clipped"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert torch.equal(p.grad, torch.tensor([math.inf, 1.0]))  # refused before anything changed
