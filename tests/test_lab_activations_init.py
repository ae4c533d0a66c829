"""Lab experiments C05-C11 (activations and initialization): determinism, the pieces and the judges
on hand-made numbers (tests/test_lab.py runs every quick run and its opposite evidence)."""


import pytest
import torch
from labcheck import quiet

import deepnotes.lab.training.activations as act
import deepnotes.lab.training.init as ini
from deepnotes.lab import run_experiment


def test_runs_are_deterministic(tmp_path):
    a = run_experiment("C10", tmp_path / "a", quick=True, log=quiet)
    b = run_experiment("C10", tmp_path / "b", quick=True, log=quiet)
    assert a["numbers"] == b["numbers"]


# ---------------------------------------------------------------- pieces and judges


def test_collapse_equals_the_stack_and_not_a_relu_net():
    torch.manual_seed(0)
    x = torch.randn(50, 2, dtype=torch.float64)
    linear = act._mlp([2, 5, 5, 3], None, dtype=torch.float64)
    w, b = act.collapse(linear)
    assert w.shape == (3, 2)
    torch.testing.assert_close(linear(x), x @ w.T + b)
    relu = act._mlp([2, 5, 5, 3], "relu", dtype=torch.float64)
    w, b = act.collapse(relu)
    assert (relu(x) - (x @ w.T + b)).abs().max() > 1e-3


def test_sign_stats_by_hand():
    g = torch.tensor([[1.0, 2.0, 0.0], [-1.0, -3.0, -2.0], [1.0, -1.0, 2.0]])
    same, agree = act.sign_stats(g)
    assert same.tolist() == [True, True, False]
    assert agree.tolist() == pytest.approx([1.0, 1.0, 2 / 3])


def test_zigzag_path_with_positive_inputs_moves_one_sign_per_step():
    stats = act.path_stats(act.zigzag_path("sigmoid", 30, 0))
    assert stats["steps_same_sign"] == 1.0
    assert act.path_stats(act.zigzag_path("tanh", 30, 0))["steps_same_sign"] < 0.8


def test_unit_spread_and_rank():
    w = torch.ones(4, 3)
    assert ini.unit_spread(w, torch.zeros(4)) == 0.0
    assert ini.numerical_rank(w) == 1
    assert ini.unit_spread(torch.eye(3), torch.zeros(3)) > 0.5
    assert ini.numerical_rank(torch.zeros(2, 2)) == 0


def test_small_init_shrinks_each_layer_by_001_sqrt_n():
    x = torch.randn(256, 400)
    acts = ini.layer_activations(x, 4, 400, "tanh", "normal", 0, std=0.01)
    ratio = float(acts[-1].std() / acts[-2].std())
    assert ratio == pytest.approx(0.01 * 400**0.5, rel=0.1)


def test_judge_c05_needs_all_three_facts():
    good = {
        "stack_layers": 4, "stack_activation": "none", "stack_collapse_rel_error": 1e-16,
        "stack_xor_corner_accuracy": 0.75, "stack_xor_cloud_accuracy": 0.7,
        "relu_xor_corner_accuracy": 1.0, "relu_xor_cloud_accuracy": 1.0,
    }  # fmt: skip
    assert act.judge_c05(good)[0] == "holds"
    assert act.judge_c05({**good, "stack_xor_corner_accuracy": 1.0})[0] == "does not hold"
    assert act.judge_c05({**good, "relu_xor_corner_accuracy": 0.75})[0] == "does not hold"
    assert act.judge_c05({**good, "stack_collapse_rel_error": 0.3})[0] == "does not hold"


def test_judge_c06_thresholds():
    n = {
        "sigmoid_grad_max": 0.25, "sigmoid_grad_argmax": 0.0, "first_to_last_ratio": 1e-6, "per_layer_factor": 0.3,
        "relu_first_to_last_ratio": 0.9, "depth": 10, "activation": "sigmoid",
    }  # fmt: skip
    assert act.judge_c06(n)[0] == "holds"
    assert act.judge_c06({**n, "first_to_last_ratio": 0.5})[0] == "does not hold"
    assert act.judge_c06({**n, "relu_first_to_last_ratio": 1e-5})[0] == "does not hold"
    assert act.judge_c06({**n, "sigmoid_grad_max": 0.3})[0] == "does not hold"


def test_judge_c07_separates_copies_that_learn_from_copies_that_do_not():
    n = {
        "init": "zeros", "activation": "sigmoid", "width": 8, "steps": 10, "unit_spread": [0.0, 0.0], "rank": [1, 1],
        "weight_change": [1.0, 1.0], "test_accuracy": 0.2, "random_test_accuracy": 0.9, "random_unit_spread": [1.0, 1.0],
    }  # fmt: skip
    assert ini.judge_c07(n)[0] == "holds"
    assert ini.judge_c07({**n, "weight_change": [0.0, 0.0]})[0] == "holds with a correction"
    assert ini.judge_c07({**n, "unit_spread": [0.0, 0.3]})[0] == "does not hold"


def test_judge_c09_band_and_correction():
    n = {
        "tanh_init": "xavier", "relu_init": "he", "depth": 10, "relu_halving_prediction": 0.044,
        "last_to_first_std": {"xavier+tanh": 0.9, "he+tanh": 1.0, "xavier+relu": 0.04, "he+relu": 0.9},
        "saturated_last": {"xavier+tanh": 0.0, "he+tanh": 0.3},
        "power_law_exponent": {"xavier+tanh": -0.05, "he+tanh": 0.0, "xavier+relu": -1.4, "he+relu": 0.0},
    }  # fmt: skip
    assert ini.judge_c09(n)[0] == "holds"
    slow = {**n, "last_to_first_std": {**n["last_to_first_std"], "xavier+tanh": 0.35}}
    assert ini.judge_c09(slow)[0] == "holds with a correction"
    broken = {**n, "last_to_first_std": {**n["last_to_first_std"], "he+relu": 0.04}}
    assert ini.judge_c09(broken)[0] == "does not hold"
