"""Lab experiments C25 (convolutionalization) and C48 (transposed convolution): the pieces by hand
(adjoint identity, pseudo-inverse, least-squares fit, tap counts, windows); the judges on
hand-made numbers (tests/test_lab.py runs every quick run and its opposite evidence)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.lab.dense import fcn as dense
from deepnotes.models.fcn import convolutionalize

# ---------------------------------------------------------------- C25 pieces


@pytest.mark.parametrize("size, stride", [(8, 1), (28, 4)])
def test_window_classifier_convolutionalized_is_the_classifier_on_every_hand_cropped_window(size, stride):
    torch.manual_seed(0)
    clf = dense.window_classifier(1, size, 10).eval()
    assert dense.net_stride(clf) == stride
    fcn = convolutionalize(clf, (1, size, size))
    x = torch.randn(2, 1, size + 3 * stride, size + 2 * stride)
    with torch.no_grad():
        smap = fcn(x)
    assert smap.shape == (2, 10, 4, 3)
    crops = dense.crop_scores(clf, x, (size, size), stride, (4, 3))
    torch.testing.assert_close(smap, crops, rtol=1e-4, atol=1e-5)  # float32: same sums, another order
    with torch.no_grad():  # one window by hand: rows 2s..2s+size, columns s..s+size
        torch.testing.assert_close(smap[..., 2, 1], clf(x[..., 2 * stride : 2 * stride + size, stride : stride + size]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("how", ["channels_last", "transposed"])
def test_miswired_conversions_change_the_outputs(how):
    torch.manual_seed(0)
    clf = dense.window_classifier(1, 8, 10).eval()
    x = torch.randn(5, 1, 8, 8)
    exact = convolutionalize(clf, (1, 8, 8))
    broken = dense.miswire(convolutionalize(clf, (1, 8, 8)), how)
    with torch.no_grad():
        torch.testing.assert_close(exact(x).flatten(1), clf(x), rtol=1e-4, atol=1e-5)
        assert (broken(x).flatten(1) - clf(x)).abs().max() > 1e-2
    w = exact.head[0].weight  # (64, 32, 4, 4)
    got = broken.head[0].weight
    if how == "transposed":
        torch.testing.assert_close(got, w.transpose(2, 3))
    else:  # the Linear's row read as (h, w, C): weight for (c, i, j) is row entry (i * 4 + j) * 32 + c
        row = clf.head[1].weight[7]
        assert got[7, 5, 1, 2] == row[(1 * 4 + 2) * 32 + 5] and w[7, 5, 1, 2] == row[5 * 16 + 1 * 4 + 2]
    with pytest.raises(ValueError, match="conversion must be one of"):
        dense.miswire(exact, "sideways")


def test_centred_cells_by_hand():
    placements = [np.array([[0, 5, 9], [3, 0, 14]])]
    boxes = [np.array([[9, 5, 30, 30, 3], [14, 0, 40, 20, 8]])]
    cells = dense.centred_cells(placements, boxes, 4, (15, 15))
    # top 5 -> row floor(5/4 + 0.5) = 1 (window at 4, 1 px away); left 9 -> column 2 (window at 8); class = box class - 1
    assert cells == [(0, 1, 2, 2, 1), (0, 0, 4, 7, 2)]  # left 14 -> floor(4.0) = 4 (window at 16, 2 px away)


# ---------------------------------------------------------------- C48 pieces


def test_transposed_conv_is_the_adjoint_of_the_conv_not_its_inverse():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64)
    x = torch.randn(4, 2, 9, 9, generator=g, dtype=torch.float64)
    y = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)  # conv: 9 -> 5 (stride 2, padding 1)
    lhs = (F.conv2d(x, w, stride=2, padding=1) * y).sum()
    rhs = (x * F.conv_transpose2d(y, w, stride=2, padding=1)).sum()  # 5 -> 9: no output_padding needed
    assert abs(float(lhs - rhs)) <= 1e-12 * abs(float(lhs))
    # not an inverse: convT(conv(x)) is not x
    assert (F.conv_transpose2d(F.conv2d(x, w, stride=2, padding=1), w, stride=2, padding=1) - x).abs().max() > 1.0
    checks = dense.adjoint_check(torch.rand(3, 1, 8, 8))
    assert set(checks) == {"avg_pool_2", "conv3x3_stride2"}
    assert all(c["rel_error"] < 1e-12 and c["grad_max_diff"] < 1e-12 for c in checks.values())


def test_adjoint_of_average_pooling_by_hand():
    z = torch.tensor([[[[4.0, 8.0]]]], dtype=torch.float64)
    assert dense.downsample(torch.arange(8.0, dtype=torch.float64).view(1, 1, 2, 4), 2).flatten().tolist() == [2.5, 4.5]
    assert dense.adjoint_upsample(z, 2)[0, 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]  # a / 4 in each block
    assert dense.pinv_upsample(z, 2)[0, 0].tolist() == [[4, 4, 8, 8], [4, 4, 8, 8]]  # nearest neighbour


def test_pinv_upsample_is_the_pseudo_inverse_of_the_pooling_matrix():
    # D as a matrix: pool each of the 36 basis images of 6x6 -> (9, 36); oracle torch.linalg.pinv
    basis = torch.eye(36, dtype=torch.float64).view(36, 1, 6, 6)
    d = dense.downsample(basis, 2).view(36, 9).T
    want = torch.linalg.pinv(d)  # (36, 9)
    got = dense.pinv_upsample(torch.eye(9, dtype=torch.float64).view(9, 1, 3, 3), 2).view(9, 36).T
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(got, F.interpolate(torch.eye(9, dtype=torch.float64).view(9, 1, 3, 3), scale_factor=2).view(9, 36).T)


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2), (4, 2), (5, 2), (6, 2), (12, 4), (3, 1), (1, 1)])
def test_transposed_geometry_maps_n_to_stride_n(kernel, stride):
    p, op = dense.transposed_geometry(kernel, stride)
    up = nn.ConvTranspose2d(1, 1, kernel, stride=stride, padding=p, output_padding=op)
    assert up(torch.zeros(1, 1, 7, 5)).shape[-2:] == (7 * stride, 5 * stride)


def test_least_squares_fit_recovers_a_planted_transposed_conv():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 1, 6, 6, generator=g, dtype=torch.float64)
    z = torch.randn(50, 1, 5, 5, generator=g, dtype=torch.float64)
    x = dense.apply_transposed(z, w, 0.3, 2)
    fw, fb = dense.fit_transposed_conv(z, x, 6, 2, batch=16)
    torch.testing.assert_close(fw, w, rtol=0, atol=1e-9)
    assert fb == pytest.approx(0.3, abs=1e-9)


def test_best_linear_map_is_exact_only_when_nothing_is_lost():
    g = torch.Generator().manual_seed(0)
    blocky = F.interpolate(torch.rand(200, 1, 3, 3, generator=g, dtype=torch.float64), scale_factor=2)  # constant 2x2 blocks
    a, null = dense.fit_best_linear(dense.downsample(blocky, 2), blocky, 2)
    assert null.abs().max() < 1e-15  # pooling loses nothing of block-constant images
    torch.testing.assert_close(dense.apply_best_linear(dense.downsample(blocky, 2), a, 2), blocky, rtol=0, atol=1e-12)
    noisy = torch.rand(200, 1, 6, 6, generator=g, dtype=torch.float64)  # independent pixels: the null part is unguessable
    a, _ = dense.fit_best_linear(dense.downsample(noisy[:150], 2), noisy[:150], 2)
    err = ((dense.apply_best_linear(dense.downsample(noisy[150:], 2), a, 2) - noisy[150:]) ** 2).mean()
    assert err > 0.01  # var(U(0,1)) = 1/12 per pixel, 3/4 of it in the null space of 2x2 averaging


def test_tap_counts_checkerboard_when_the_stride_does_not_divide_the_kernel():
    inner3 = dense.tap_counts(3)[3:-3, 3:-3]
    assert set(inner3.unique().tolist()) == {1.0, 2.0, 4.0}  # per axis 2, 1, 2, 1, ...: products 4, 2, 1
    assert inner3[0::2, 0::2].unique().numel() == 1 and inner3[1::2, 1::2].unique().numel() == 1
    assert (dense.tap_counts(4)[3:-3, 3:-3] == 4).all() and (dense.tap_counts(6)[3:-3, 3:-3] == 9).all()
    assert dense.ripple(dense.tap_counts(4), 3) == 0 and dense.ripple(dense.tap_counts(3), 3) == pytest.approx(3 / 2.25)  # interior mean: 1.5 per axis


# ---------------------------------------------------------------- judges


def _c25_numbers(max_diff=1e-5, grid=(15, 15), crops=1e-5, disagree=0, acc=0.8):
    return {
        "data": "fashion-mnist", "test_images": 10000, "input_size": "1x28x28", "first_kernel": "4x4", "stride": 4,
        "conversion": "exact", "tolerance": 1e-4, "classifier_test_accuracy": 0.89,
        "equal": {"max_abs_diff": max_diff, "argmax_agreement": 1.0},
        "score_map": {"grid": list(grid), "expected_grid": [15, 15], "vs_crops_max_abs_diff": crops, "argmax_disagreements": disagree,
                      "centred_accuracy": acc, "centred_items": 600, "scenes": 200, "canvas": "84x84", "items_per_scene": [2, 4]},
    }  # fmt: skip


def test_judge_c25():
    assert dense.judge_c25(_c25_numbers())[0] == "holds"
    assert dense.judge_c25(_c25_numbers(max_diff=0.5))[0] == "does not hold"  # not the same outputs
    assert dense.judge_c25(_c25_numbers(grid=(14, 15)))[0] == "does not hold"  # not the window grid
    assert dense.judge_c25(_c25_numbers(grid=(1, 1)))[0] == "does not hold"  # no map at all
    assert dense.judge_c25(_c25_numbers(crops=0.5, disagree=3))[0] == "does not hold"  # map is not the windows
    assert dense.judge_c25(_c25_numbers(acc=0.3))[0] == "does not hold"  # the map does not name the items


def _c48_numbers(best=0.02, rel=1e-16):
    r = {m: {"mse": 0.05, "psnr": 13.0} for m in dense.C48_METHODS}
    r["best_linear"] = {"mse": best, "psnr": 10 * np.log10(1 / best) if best else None}
    r.update(lost_energy_fraction=0.2, null_part_recovered=0.5)
    return {
        "data": "digits", "test_images": 450, "exact_mse": dense.EXACT_MSE, "reconstruction": {"2": r},
        "adjoint": {"avg_pool_2": {"rel_error": rel, "grad_max_diff": 0.0}},
        "checkerboard": {"tap_ratio": {"3": 4.0, "4": 1.0}, "fitted_flat_ripple": {"3": 0.1, "4": 0.01}},
    }  # fmt: skip


def test_judge_c48():
    assert dense.judge_c48(_c48_numbers())[0] == "holds"
    assert dense.judge_c48(_c48_numbers(best=0.0))[0] == "does not hold"  # an exact reconstruction
    assert dense.judge_c48(_c48_numbers(best=1e-12))[0] == "does not hold"  # exact up to round-off
    assert dense.judge_c48(_c48_numbers(rel=1e-3))[0] == "does not hold"  # convT is not the adjoint
