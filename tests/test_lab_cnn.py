"""Lab experiments C01-C04 and C19 (convolutions and skip connections): other settings, the pieces
by hand, the judges on hand-made numbers (tests/test_lab.py runs every quick run and its opposite
evidence)."""


import numpy as np
import pytest
import torch
from labcheck import quiet
from torch import nn

from deepnotes.lab import run_experiment
from deepnotes.lab.cnn import layers as cnn


def test_dilated_stacks_see_more_than_the_claim(tmp_path):
    n = run_experiment("C03", tmp_path, quick=True, log=quiet, dilation=2, max_depth=3)["numbers"]
    assert n["stack_rf_measured"] == [5, 9, 13]  # 1 + 2n(k-1): same weights, a wider, gapped field


def test_without_batchnorm_plain_gradients_vanish_as_the_notes_say(tmp_path):
    result = run_experiment("C19", tmp_path, quick=True, log=quiet, batch_norm=False)
    assert result["verdict"] == "holds", result["reason"]
    assert result["numbers"]["nets"]["56"]["plain"]["signal_ratio"] < 0.1


# ---------------------------------------------------------------- pieces by hand


def test_expanded_matrix_reproduces_a_strided_multichannel_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1).double()
    x = torch.randn(4, 2, 7, 7, dtype=torch.float64)
    m = cnn.expanded_matrix(conv, (2, 7, 7))
    assert m.shape == (3 * 4 * 4, 2 * 7 * 7)
    with torch.no_grad():
        want = conv(x).flatten(1).numpy()
    got = x.flatten(1).numpy() @ m.T + np.repeat(conv.bias.detach().numpy(), 16)
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.unique(m[m != 0]).size == 3 * 2 * 9  # only the kernel's values


def test_locally_connected_with_one_kernel_everywhere_is_the_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1).double()
    local = cnn.LocallyConnected2d(2, 3, (5, 6), 3, padding=1).double()
    with torch.no_grad():
        local.weight.copy_(conv.weight.reshape(1, 3, 18).expand_as(local.weight))
        local.bias.copy_(conv.bias[:, None, None].expand_as(local.bias))
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(local(x), conv(x))
    assert sum(p.numel() for p in local.parameters()) == 30 * (3 * 18) + 3 * 30  # per position: kernel + bias
    m = cnn.expanded_matrix(local, (2, 5, 6))
    torch.testing.assert_close(torch.from_numpy(x.flatten(1).numpy() @ m.T), (local(x) - local.bias).flatten(1).detach())


def test_rf_formula_by_hand():
    assert cnn.rf_formula([3, 3, 3]) == [3, 5, 7]
    assert cnn.rf_formula([3, 3, 3], strides=[1, 2, 1]) == [3, 5, 9]  # after the stride each step is 2(k-1)
    assert cnn.rf_formula([3, 3], dilations=[2, 2]) == [5, 9]
    assert cnn.rf_formula([1, 1, 1]) == [1, 1, 1]


def test_two_stacked_3x3_weigh_their_field_like_a_pyramid():
    fp = cnn.footprint(cnn.conv_stack([3, 3]), (1, 9, 9), "conv2")
    tri = np.array([1, 2, 3, 2, 1]) / 9.0
    np.testing.assert_allclose(fp[2:7, 2:7], np.outer(tri, tri), atol=1e-12)
    assert fp.sum() == pytest.approx(1.0) and fp[:2].sum() == 0


def test_measured_field_of_a_stack_matches_the_analytic_one():
    rows = cnn.fields(cnn.conv_stack([3, 5], strides=[2, 1]), (1, 31, 31), ["conv1", "conv2"])
    assert [r["rf"] for r in rows] == [3, 11]
    assert all(r["analytic_extent"] == r["measured_extent"] for r in rows)


def test_skip_derivative_is_fprime_plus_one():
    assert cnn.skip_derivative_check(True)["error_vs_fprime_plus_1"] < 1e-12
    assert cnn.skip_derivative_check(False)["error_vs_fprime_plus_1"] == pytest.approx(1.0)


def test_inception_inputs_follow_table_1():
    inputs = cnn.inception_inputs()
    assert inputs["inception3a"] == (192, 28)
    assert inputs["inception4a"] == (480, 14)
    assert inputs["inception5b"] == (832, 7)


def test_inception_without_reductions_keeps_the_outputs_and_costs_more():
    from deepnotes.models.googlenet import TABLE_1, Inception

    spec = dict(TABLE_1)["inception3a"]
    with torch.device("meta"):
        a, b = Inception(192, spec, 5), cnn.NoReductionInception(192, spec, 5)
        x = torch.empty(1, 192, 28, 28)
        assert a(x).shape == b(x).shape == (1, 256, 28, 28)
    def conv_weights(m):
        return sum(c.weight.numel() for c in m.modules() if isinstance(c, nn.Conv2d))

    assert conv_weights(a) == 163_328  # 159.5K with K = 1024, the unit of the paper's Table 1 (which lists 159K)
    assert conv_weights(b) == 192 * (64 + 9 * 128 + 25 * 32 + 32)


# ---------------------------------------------------------------- judges


def _c01_numbers(**kw):
    row = {"name": "ImageNet", "input": "3x224x224", "c_out": 64, "n": 150528, "h": 3211264, "fc_weights": 150528 * 3211264,
           "local_weights": 86704128, "layer_weights": 1728, "claimed_conv_weights": 1728}  # fmt: skip
    n = {"layer": "conv", "inputs": [row], "expanded_rel_error": 1e-16, "expanded_distinct_values": 36,
         "expanded_kernel_weights": 36, "expanded_shape": [256, 64], "expanded_nonzeros": 1936}  # fmt: skip
    n.update(kw)
    return n


def test_judge_c01():
    assert cnn.judge_c01(_c01_numbers())[0] == "holds"
    assert cnn.judge_c01(_c01_numbers(expanded_distinct_values=1936))[0] == "does not hold"
    assert cnn.judge_c01(_c01_numbers(expanded_rel_error=1e-3))[0] == "does not hold"
    unshared = _c01_numbers()
    unshared["inputs"] = [{**unshared["inputs"][0], "layer_weights": 86704128}]
    assert cnn.judge_c01(unshared)[0] == "does not hold"


def _c02_numbers(k3=(3, 5, 7), k3_s2=(3, 5, 9), measured=None):
    def stack(rf):
        return {"analytic": list(rf), "measured": list(measured or rf), "formula": list(rf)}

    return {
        "depth": 3, "stride2_at": 2, "footprint_growth_exponent": 0.5,
        "stacks": {"stride1": {"3": stack(k3), "5": stack((5, 9, 13))}, "stride2": {"3": stack(k3_s2), "5": stack((5, 9, 17))}},
        "models": {"vgg": {"layers_checked": 4, "extents_equal": 4, "last_rf": 40, "input": "3x64x64"}},
    }  # fmt: skip


def test_judge_c02():
    assert cnn.judge_c02(_c02_numbers())[0] == "holds"
    assert cnn.judge_c02(_c02_numbers(measured=(3, 5, 6)))[0] == "does not hold"  # measured != analytic
    assert cnn.judge_c02(_c02_numbers(k3=(3, 3, 3), k3_s2=(3, 3, 3)))[0] == "does not hold"  # no growth
    broken = _c02_numbers()
    broken["models"]["vgg"]["extents_equal"] = 3
    assert cnn.judge_c02(broken)[0] == "does not hold"


def _c03_numbers(stack2=18, rf2=5):
    def counts(per_c2, single):
        return {str(c): {"stack_weights": per_c2 * c * c, "single_weights": single * c * c, "stack_biases": 2 * c, "single_biases": c}
                for c in (64, 512)}  # fmt: skip

    return {"kernel": 3, "claims": {
        "2": {"counts": counts(stack2, 25), "stack_rf_measured": rf2, "single_rf_measured": 5, "relus": 2, "stack_centre_to_corner": 9},
        "3": {"counts": counts(27, 49), "stack_rf_measured": 7, "single_rf_measured": 7, "relus": 3, "stack_centre_to_corner": 27},
    }}  # fmt: skip


def test_judge_c03():
    assert cnn.judge_c03(_c03_numbers())[0] == "holds"
    assert cnn.judge_c03(_c03_numbers(stack2=2))[0] == "does not hold"
    assert cnn.judge_c03(_c03_numbers(rf2=9))[0] == "does not hold"


def test_judge_c04():
    branches = {b: {"with": {"params": 1}, "without": {"params": 2}} for b in ("branch1", "branch2", "branch3", "branch4")}
    n = {
        "reduce_channels": {"inception3a": [96, 16]},
        "modules": {"inception3a": {"with": {"params": 160}, "without": {"params": 390}, "param_ratio": 2.4, "branches": branches}},
        "network": {"with": {"params": 7e6, "macs": 1.6e9}, "without": {"params": 25e6, "macs": 4.4e9}, "param_ratio": 3.6, "mac_ratio": 2.8},
    }  # fmt: skip
    assert cnn.judge_c04(n)[0] == "holds"
    worse = {**n, "modules": {"inception3a": {**n["modules"]["inception3a"], "with": {"params": 470}}}}
    assert cnn.judge_c04(worse)[0] == "does not hold"


def _c19_numbers(res=(4.0, 12.0), plain=(16.0, 3000.0), hand=1e-16):
    return {
        "data": "digits", "residual": True, "batch_norm": True, "depths": [20, 56], "hand_check_error": hand,
        "nets": {d: {"residual": {"signal_ratio": r}, "plain": {"signal_ratio": p}} for d, r, p in zip(("20", "56"), res, plain)},
        "no_bn_plain_ratio": {"20": 0.01, "56": 1e-5},
    }  # fmt: skip


def test_judge_c19():
    assert cnn.judge_c19(_c19_numbers())[0] == "holds with a correction"  # plain explodes, skip evens
    assert cnn.judge_c19(_c19_numbers(plain=(0.05, 1e-4)))[0] == "holds"  # plain vanishes: the notes' picture
    assert cnn.judge_c19(_c19_numbers(hand=1.0))[0] == "does not hold"
    assert cnn.judge_c19(_c19_numbers(res=(0.5, 0.01), plain=(0.05, 1e-4)))[0] == "does not hold"  # residual vanishes too
    assert cnn.judge_c19(_c19_numbers(res=(4.0, 12.0), plain=(3.0, 20.0)))[0] == "does not hold"  # plain just as alive


def test_runs_are_deterministic(tmp_path):
    a = run_experiment("C19", tmp_path / "a", quick=True, log=quiet)
    b = run_experiment("C19", tmp_path / "b", quick=True, log=quiet)
    assert a["numbers"] == b["numbers"]
