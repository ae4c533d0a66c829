"""Lab experiments C12-C17 (normalization, dropout, learning rate, momentum, AdaGrad/RMSProp): the
judges and helpers checked on numbers made by hand (tests/test_lab.py runs every quick run and its
opposite evidence)."""

import math

import numpy as np
import pytest
import torch

import deepnotes.lab.training.normalization as norm
import deepnotes.lab.training.optimization as optim_lab


# ----------------------------------------------------------------------------- helpers
def test_smooth_and_steps_to():
    loss = [4.0, 2.0, 1.0, 0.5, float("nan")]
    s = norm.smooth(loss, window=2)
    assert s[:4].tolist() == [4.0, 3.0, 1.5, 0.75] and s[4] == np.inf
    assert norm.steps_to(loss, 1.5, window=2) == 3
    assert norm.steps_to(loss, 0.1, window=2) is None
    assert norm.final_loss([1.0, 2.0, 3.0, 4.0], planned_steps=4, frac=0.5) == 3.5
    assert norm.final_loss([1.0, 2.0], planned_steps=4) == math.inf  # stopped early = blew up


def test_descend_and_shrink_rate():
    from deepnotes.optim import SGD

    # lr = 1/h on a quadratic reaches the minimum of that direction in one step
    path = optim_lab.descend(lambda ps: SGD(ps, lr=1 / optim_lab.CURVATURE[1]), 3)
    assert abs(path[1, 1]) < 1e-12
    y = 0.5 ** np.arange(61)
    assert optim_lab._shrink_per_step(y, 60) == pytest.approx(0.5, rel=0.02)
    diverging = optim_lab.descend(lambda ps: SGD(ps, lr=2.5 / optim_lab.CURVATURE[1]), 100)
    assert not np.all(np.isfinite(diverging))  # stopped and padded once it left the box


# ----------------------------------------------------------------------------- judges
def _c12(std_best, raw_best, speedup, raw_trains, std_lrs=3, raw_lrs=3):
    side = lambda best, trains, n: {
        "best_lr": 0.1, "best_final_loss": best, "trains_at_shared_lr": trains, "lrs_that_train": n,
    }  # fmt: skip
    return {
        "standardized": side(std_best, True, std_lrs), "raw": side(raw_best, raw_trains, raw_lrs),
        "speedup_to_target": speedup, "shared_lr": 0.1, "target_loss": 1.0, "raw_wins_at_lrs": [], "grid_size": 6,
    }  # fmt: skip


def test_judge_c12():
    assert norm.judge_c12(_c12(0.1, 0.5, 3.0, False))[0] == "holds"
    assert norm.judge_c12(_c12(0.1, 0.5, 3.0, True))[0] == "holds with a correction"
    assert norm.judge_c12(_c12(0.1, 0.5, 3.0, True, 5, 2))[0] == "holds"
    assert norm.judge_c12(_c12(0.3, 0.3, 1.0, True))[0] == "does not hold"
    assert norm.judge_c12(_c12(0.3, None, None, False))[0] == "holds"  # raw blew up


def _c13(max_mean, steps_bn, steps_plain, final_bn, final_plain):
    stats = {"max_abs_mean": max_mean, "max_abs_var_minus_1": max_mean, "var_p5": 0.1, "var_p95": 3.0}
    return {
        "bn_normalized_stats": stats, "plain_preactivation_stats": stats,
        "steps_to_half_chance": {"bn": steps_bn, "plain": steps_plain},
        "final_loss": {"bn": final_bn, "plain": final_plain},
        "test_accuracy": {"bn": 0.9, "plain": 0.8},
    }  # fmt: skip


def test_judge_c13():
    assert norm.judge_c13(_c13(1e-6, 10, 100, 0.1, 0.5))[0] == "holds"
    assert norm.judge_c13(_c13(1e-6, 10, None, 0.1, None))[0] == "holds"
    assert norm.judge_c13(_c13(1e-6, 90, 100, 0.1, 0.5))[0] == "holds with a correction"
    assert norm.judge_c13(_c13(0.5, 100, 100, 0.5, 0.5))[0] == "does not hold"


def _c14(gaps):
    variants = {v: {"relative_gap": g, "test_over_train": 1 + g} for v, g in zip(norm.DROPOUT_VARIANTS, gaps)}
    return {"variants": variants, "tolerance": 0.02, "p": 0.5}


def test_judge_c14():
    assert norm.judge_c14(_c14([0.001, 0.003, 1.0]))[0] == "holds"
    assert norm.judge_c14(_c14([0.001, 1.0, 1.0]))[0] == "does not hold"
    assert norm.judge_c14(_c14([0.001, 0.001, 0.001]))[0] == "does not hold"


def _c15(early, final):
    keys = ("small", "medium", "large", "decay")
    return {
        "early_loss": dict(zip(keys, early)), "final_loss": dict(zip(keys, final)),
        "late_noise": dict(zip(keys, (0.1,) * 4)), "schedule": "cosine",
    }  # fmt: skip


def test_judge_c15():
    assert optim_lab.judge_c15(_c15((2, 1, 0.5, 0.5), (0.6, 0.4, 0.4, 0.2)))[0] == "holds"
    # large not fastest early: a correction
    assert optim_lab.judge_c15(_c15((2, 0.4, 0.5, 0.5), (0.6, 0.4, 0.4, 0.2)))[0] == "holds with a correction"
    # decay no better than the large LR, or worse than the medium one: does not hold
    assert optim_lab.judge_c15(_c15((2, 1, 0.5, 0.5), (0.6, 0.4, 0.4, 0.4)))[0] == "does not hold"
    assert optim_lab.judge_c15(_c15((2, 1, 0.5, 0.5), (0.6, 0.1, 0.4, 0.2)))[0] == "does not hold"


def _c16(left_sgd, left_mom, slower=(), quiet=(), steps=(300, 100)):
    return {
        "lr_times_h": 1.98, "lr": 0.0792, "momentum": 0.9, "steps": 60,
        "main": {
            "y_left_sgd": left_sgd, "y_left_momentum": left_mom,
            "crossings": {"sgd": 50, "momentum": 25 if left_mom < left_sgd else 50},
            "steps_to_tol": {"sgd": steps[0], "momentum": steps[1]},
        },
        "sweep": {"momentum_slower_at": list(slower), "momentum_rings_where_sgd_does_not": list(quiet),
                  "stable_up_to": {"nesterov": 1.3}},
    }  # fmt: skip


def test_judge_c16():
    assert optim_lab.judge_c16(_c16(0.5, 0.1))[0] == "holds"
    verdict, reason = optim_lab.judge_c16(_c16(0.5, 0.1, slower=(1.2, 1.8), quiet=(0.5,)))
    assert verdict == "holds with a correction" and "1.2-1.8" in reason and "Nesterov" in reason
    assert optim_lab.judge_c16(_c16(0.5, 0.5))[0] == "does not hold"


def _c17(ada, rms, final_ada=10.0, final_rms=1e-9):
    return {
        "slope": {"adagrad": ada, "rmsprop": rms}, "rmsprop_alpha": 0.99, "stream_steps": 100,
        "adagrad_end_over_start": 0.1,
        "surface": {"steps": 10, "final_loss": {"adagrad": final_ada, "rmsprop": final_rms}},
    }  # fmt: skip


def test_judge_c17():
    assert optim_lab.judge_c17(_c17([-0.5, -0.5], [0.0, -0.02]))[0] == "holds"
    assert optim_lab.judge_c17(_c17([-0.5, -0.5], [0.0, 0.0], final_rms=5.0))[0] == "holds with a correction"
    assert optim_lab.judge_c17(_c17([-0.5, -0.5], [-0.5, -0.5]))[0] == "does not hold"
    assert optim_lab.judge_c17(_c17([-0.1, -0.1], [0.0, 0.0]))[0] == "does not hold"


def test_effective_step_matches_formula():
    """The measured effective step (step / gradient) is AdaGrad's lr / (sqrt(sum g^2) + eps)."""
    from deepnotes.optim import Adagrad

    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    mean, std = torch.tensor([0.5, 0.05], dtype=torch.float64), torch.tensor([1.0, 0.1], dtype=torch.float64)
    eff = optim_lab._effective_steps(Adagrad([w], lr=0.1), 50, mean, std, seed=0)
    g = torch.Generator().manual_seed(0)
    grads = torch.stack([mean + std * torch.randn(2, generator=g, dtype=torch.float64) for _ in range(50)])
    expected = 0.1 / (grads.pow(2).cumsum(0).sqrt() + 1e-10)
    np.testing.assert_allclose(eff, expected.numpy(), rtol=1e-9)
