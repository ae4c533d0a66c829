"""Lab experiments C52-C56 (attention on sequences): the counting, the tasks and the estimators by
hand, and the judges on hand-made numbers (tests/test_lab.py runs every quick run and its opposite)."""

import math

import pytest
import torch
import torch.nn.functional as F

from deepnotes.lab.sequences import attention as lab
from deepnotes.layers.recurrent import LSTM
from deepnotes.layers.recurrent import use_fused as recurrent_fused

# ---------------------------------------------------------------- counting (C52, C56)


def test_op_counter_by_hand():
    x = torch.randn(2, 3, 4)
    w = torch.randn(5, 4)
    c = lab.count_ops(lambda: F.linear(x, w))
    assert c["macs"] == 2 * 3 * 5 * 4 and c["product_macs"] == 0 and c["products_in_sequence"] == 1
    assert c["bytes"] == c["largest_tensor_bytes"] == 2 * 3 * 5 * 4  # one float32 (2, 3, 5) output
    a, b = torch.randn(3, 6), torch.randn(6, 2)
    c = lab.count_ops(lambda: (a @ b, a.t(), a.reshape(6, 3)))  # views write nothing
    assert c["macs"] == c["product_macs"] == 3 * 2 * 6 and c["bytes"] == 3 * 2 * 4
    h, gx = torch.randn(1, 4), torch.randn(1, 8)
    c = lab.count_ops(lambda: torch.addmm(gx, h, torch.randn(4, 8)))
    assert c["macs"] == 8 * 4 and c["product_macs"] == 0  # the recurrent product: not activation x activation


@pytest.mark.parametrize("n", [16, 32, 64])
def test_attention_layer_counts_match_the_formula(n):
    d, heads, w = 8, 2, 8
    x = torch.randn(1, n, d)
    with lab.use_fused(False):
        g = lab.count_ops(lambda: lab.SelfAttentionLayer(d, heads)(x))
        loc = lab.count_ops(lambda: lab.SelfAttentionLayer(d, heads, w)(x))
    # q, k, v and output projections 4 n d^2; q k^T and weights x v: 2 n^2 d globally, 2 n w d in blocks of w
    assert g["macs"] == 4 * n * d * d + 2 * n * n * d and g["product_macs"] == 2 * n * n * d
    assert loc["macs"] == 4 * n * d * d + 2 * n * w * d and loc["product_macs"] == 2 * n * w * d
    assert g["products_in_sequence"] == loc["products_in_sequence"] == 4  # the same at every n
    assert g["largest_tensor_bytes"] >= heads * n * n * 4  # the (heads, n, n) weights


def test_lstm_takes_one_product_per_step():
    n, d = 12, 5
    x = torch.randn(1, n, d)
    with recurrent_fused(False):
        c = lab.count_ops(lambda: LSTM(d, d, batch_first=True)(x))
    assert c["products_in_sequence"] == n + 1  # the input projection of all steps at once, then one per step
    assert c["macs"] == n * 4 * d * d + n * 4 * d * d


def test_block_local_attention_is_global_within_one_block():
    torch.manual_seed(0)
    layer = lab.SelfAttentionLayer(8, 2, window=4)
    x = torch.randn(2, 8, 8)
    torch.testing.assert_close(layer(x)[:, :4], layer.att(x[:, :4], x[:, :4], x[:, :4])[0])
    with pytest.raises(ValueError, match="divisible"):
        layer(torch.randn(1, 6, 8))


def test_doubling_ratios_and_fits_by_hand():
    assert lab.doubling_ratios([1, 2, 4, 8], [1, 4, 16, 64]) == [4, 4, 4]
    assert lab.doubling_ratios([2, 3, 4], [1, 1, 5]) == [5]
    assert lab.fit_r2([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    n = [8, 16, 32, 64]
    assert lab.fit_r2(n, [math.log(2.0**k) for k in n]) == pytest.approx(1.0)  # an exponential is a line on log-linear axes
    assert lab.fit_r2(n, [math.log(k * k) for k in n]) < 0.95  # a square is not


def test_heads_cost_the_same():
    x = torch.randint(0, 8, (4, 8))
    macs, params = set(), set()
    with lab.use_fused(False):
        for h in (1, 2, 4, 8):
            m = lab.HeadsProbe(8, 32, h, 8, 2)
            macs.add(lab.count_ops(lambda: m(x))["macs"])
            params.add(sum(p.numel() for p in m.parameters()))
    assert len(macs) == 1 and len(params) == 1


# ---------------------------------------------------------------- tasks (C53, C54, C56)


def test_previous_token_task():
    x, y = lab.previous_token_task(3, 5, 4, torch.Generator().manual_seed(0))
    assert (y[:, 0] == -1).all() and torch.equal(y[:, 1:], x[:, :-1])


def test_two_lookups_task():
    x, y = lab.two_lookups_task(2, 6, 5, (1, 3), torch.Generator().manual_seed(0))
    assert y.shape == (2, 6, 2)
    assert torch.equal(y[:, 3:, 0], x[:, 2:5]) and torch.equal(y[:, 3:, 1], x[:, 0:3])


def test_padded_batch_marks_the_padding():
    x, pad = lab.padded_batch([2, 4, 1], 4, 3, torch.Generator().manual_seed(0))
    assert x.shape == (3, 4, 3)
    assert pad.tolist() == [[False, False, True, True], [False] * 4, [False, True, True, True]]


def test_learned_positions_past_the_table_are_an_error_sinusoidal_ones_are_defined():
    probe = lab.PositionProbe(4, 8, 1, "learned", 6)
    with pytest.raises(ValueError, match="L <= 6"):
        probe(torch.zeros(1, 7, dtype=torch.long))
    assert lab.PositionProbe(4, 8, 1, "sinusoidal", 64)(torch.zeros(1, 40, dtype=torch.long)).shape == (1, 40, 4)


# ---------------------------------------------------------------- soft and hard attention (C55)


def test_soft_weights_sum_to_one_and_are_differentiable_hard_ones_are_not():
    s = torch.tensor([[0.0, 1.0, 3.0]], requires_grad=True)
    w = lab.attention_weights(s, 1.0)
    assert float(w.detach().sum()) == pytest.approx(1.0, abs=1e-7)
    (w[0, 0] * 1.0).backward()
    assert s.grad.abs().sum() > 0
    hard = lab.attention_weights(torch.tensor([[0.0, 1.0, 3.0]]), 0.0)
    assert hard.tolist() == [[0.0, 0.0, 1.0]]
    s2 = torch.tensor([[0.0, 1.0, 3.0]], requires_grad=True)
    assert not lab.attention_weights(s2, 0.0).requires_grad  # argmax + one_hot: no graph back to the scores


def test_sampled_hard_attention_gives_the_scorer_no_gradient_reinforce_does():
    torch.manual_seed(0)
    model = lab.Lookup(4, 3)
    batch = lab.lookup_task(16, 5, 4, 3, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    assert lab.scorer_gradient(model, batch, "hard_backprop", g).abs().sum() == 0
    assert lab.scorer_gradient(model, batch, "hard_reinforce", g).abs().sum() > 0
    assert lab.scorer_gradient(model, batch, "soft", g).abs().sum() > 0


def test_reinforce_loss_by_hand():
    # two positions with equal scores: log p(idx) = log 1/2; logits give cross-entropy ce per item
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 1])
    scores = torch.zeros(2, 2, requires_grad=True)
    idx = torch.tensor([0, 1])
    loss, mean_reward = lab.reinforce_loss(logits, scores, idx, y, baseline=-0.5)
    ce = F.cross_entropy(logits, y, reduction="none")
    expected = ce.mean() - ((-ce + 0.5) * math.log(0.5)).mean()
    assert float(loss.detach()) == pytest.approx(float(expected))
    assert mean_reward == pytest.approx(float(-ce.mean()))
    loss.backward()
    # d/ds_j of -(r - b) log softmax(s)_idx = (r - b)(1[j = idx] - p_j) / B, with p = 1/2
    adv = (-ce + 0.5).detach()
    assert scores.grad[0].tolist() == pytest.approx([-float(adv[0]) * 0.25, float(adv[0]) * 0.25])


def test_steps_to_a_level():
    curves = [[0.1, 0.5, 0.95, 0.99], [0.1, 0.2, 0.3, 0.91], [0.1, 0.2, 0.3, 0.4]]
    assert lab.steps_to_level(curves, 10, 45, 0.9) == {"mean": 37.5, "reached": 2, "runs": 3}  # 30, and 45 (the last evaluation)


def test_relative_variance_by_hand():
    assert lab.relative_variance([torch.ones(2, 2)] * 3) == 0.0
    assert lab.relative_variance([torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0])]) == pytest.approx(0.25)


# ---------------------------------------------------------------- the judges on hand-made numbers


def _c52(product=lambda n: 2 * n * n * 64, tested="global"):
    lengths = [32, 64, 128, 256]
    macs = {"global": [product(n) + 4 * n * 64 * 64 for n in lengths], "local": [2 * n * 16 * 64 + 4 * n * 64 * 64 for n in lengths],
            "lstm": [8 * n * 64 * 64 for n in lengths], "rnn": [2 * n * 64 * 64 for n in lengths]}  # fmt: skip
    prod = {"global": [product(n) for n in lengths], "local": [2 * n * 16 * 64 for n in lengths], "lstm": [0] * 4, "rnn": [0] * 4}
    steps = {"global": [4] * 4, "local": [4] * 4, "lstm": [n + 1 for n in lengths], "rnn": [n + 1 for n in lengths]}
    arms, exps = {}, {}
    for a in lab.ARMS_C52:
        largest = prod[a] if a in ("global", "local") else macs[a]
        arms[a] = {"macs": macs[a], "product_macs": prod[a], "products_in_sequence": steps[a], "largest_tensor_bytes": largest}
        exps[a] = {
            "macs": lab.fit_exponent(lengths, macs[a]),
            "largest_tensor_bytes": lab.fit_exponent(lengths, largest),
            "seconds": 1.0,
        }
        if min(prod[a]) > 0:
            exps[a]["product_macs"] = lab.fit_exponent(lengths, prod[a])
    exps["global_fused"] = {"seconds": 1.0}
    fits = {a: {"loglog_r2": lab.fit_r2([math.log(n) for n in lengths], [math.log(v) for v in prod[a]]),
                "loglinear_r2": lab.fit_r2(lengths, [math.log(v) for v in prod[a]])} for a in ("global", "local")}  # fmt: skip
    return {
        "tested": tested, "lengths": lengths, "d_model": 64, "heads": 4, "arms": arms, "exponents": exps, "fits": fits,
        "by_length": {a: {str(n): {"macs": m} for n, m in zip(lengths, macs[a])} for a in lab.ARMS_C52},
        "doubling_ratios": {a: lab.doubling_ratios(lengths, prod[a]) for a in ("global", "local")},
        "seconds_per_sequence": {a: {"256": 1e-3} for a in (*lab.ARMS_C52, "global_fused")},
    }  # fmt: skip


def test_judge_c52():
    verdict, reason = lab.judge_c52(_c52())
    assert verdict == "holds with a correction" and "not exponential" in reason and "4.00-4.00" in reason
    verdict, reason = lab.judge_c52(_c52(tested="local"))
    assert verdict == "does not hold" and "not O(n^2)" in reason
    verdict, reason = lab.judge_c52(_c52(product=lambda n: 2.0 ** (n / 8)))  # an exponential cost
    assert verdict == "does not hold" and "does not look polynomial" in reason
    numbers = _c52()
    numbers["arms"]["global"]["products_in_sequence"] = [4, 5, 6, 7]
    assert lab.judge_c52(numbers)[0] == "does not hold"


def _c53(sin, learned, within=(1.0, 1.0, 1.0), beyond=True):
    return {
        "beyond": beyond, "train_length": 16, "test_length": 32 if beyond else 16, "scored_positions": [16, 31] if beyond else [1, 15],
        "seeds": [0, 1, 2], "vocab": 8, "learned_rows_past_training_moved": 0.0, "learned_table_error": "ValueError: ...",
        "arms": {"sinusoidal": {"scored_mean": sum(sin) / 3, "within_mean": sum(within) / 3},
                 "learned": {"scored_mean": sum(learned) / 3, "within_mean": 1.0}},
        "sinusoidal_minus_learned": lab.paired_interval(sin, learned),
    }  # fmt: skip


def test_judge_c53():
    assert lab.judge_c53(_c53([0.95, 0.97, 0.99], [0.15, 0.16, 0.14]))[0] == "holds"
    verdict, reason = lab.judge_c53(_c53([0.5, 0.55, 0.45], [0.15, 0.16, 0.14]))
    assert verdict == "holds with a correction" and "keeps only 50%" in reason
    verdict, reason = lab.judge_c53(_c53([0.2, 0.1, 0.15], [0.15, 0.16, 0.14]))
    assert verdict == "does not hold" and "straddles" in reason
    verdict, reason = lab.judge_c53(_c53([1.0] * 3, [1.0] * 3, beyond=False))
    assert verdict == "does not hold" and "within the training length" in reason and "moved" not in reason


def _c54(mask_change=0.0, nomask_change=0.5, tested="mask", grad=0.0):
    def path(change, g):
        return {"real_change": change, "real_change_relative": change, "pad_change": 3.0, "grad_to_padding": g}

    return {
        "tested": tested, "model": "encoder", "batch": 4, "total_length": 8, "lengths": [2, 8], "replacements": 4,
        "arms": {"mask": {"scratch": path(mask_change, grad), "fused": path(mask_change, grad)},
                 "no mask": {"scratch": path(nomask_change, 1.0), "fused": path(nomask_change, 1.0)}},
    }  # fmt: skip


def test_judge_c54():
    assert lab.judge_c54(_c54())[0] == "holds"
    assert lab.judge_c54(_c54(mask_change=1e-9))[0] == "does not hold"  # not exactly zero
    assert lab.judge_c54(_c54(grad=1e-12))[0] == "does not hold"  # a gradient leaks into the padding
    assert lab.judge_c54(_c54(tested="no mask"))[0] == "does not hold"
    verdict, reason = lab.judge_c54(_c54(nomask_change=0.0))
    assert verdict == "does not hold" and "sees nothing" in reason


def _c55(reinforce=(0.95, 0.97, 0.96), backprop=(0.23, 0.25, 0.22), soft_grad=0.1, one_batch=20.0):
    soft = (0.97, 0.98, 0.97)
    return {
        "items": 8, "classes": 8, "chance": 0.23, "steps": 100, "seeds": [0, 1, 2], "temperature": 1.0,
        "arms": {"soft": {"mean": sum(soft) / 3}, "hard_reinforce": {"mean": sum(reinforce) / 3}, "hard_backprop": {"mean": sum(backprop) / 3}},
        "reinforce_minus_backprop_only": lab.paired_interval(reinforce, backprop),
        "soft_minus_reinforce": lab.paired_interval(soft, reinforce),
        "soft": {"weight_sum_error_float32": 1e-7, "weight_sum_error_float64": 1e-16, "gradcheck": True, "scorer_grad_norm": soft_grad},
        "hard": {"backprop_scorer_grad_norm": 0.0},
        "steps_to_90": {"soft": {"mean": 60.0, "reached": 3, "runs": 3}, "hard_reinforce": {"mean": 120.0, "reached": 2, "runs": 3},
                        "hard_backprop": {"mean": None, "reached": 0, "runs": 3}},
        "gradient_relative_variance": {"soft": {"one_batch": 0.0, "over_batches": 10.0},
                                       "hard_reinforce": {"one_batch": one_batch, "over_batches": 30.0}},
    }  # fmt: skip


def test_judge_c55():
    verdict, reason = lab.judge_c55(_c55())
    assert verdict == "holds" and "identity of the softmax" in reason and "soft 60, REINFORCE 120 (2 of 3)" in reason
    verdict, reason = lab.judge_c55(_c55(soft_grad=0.0))
    assert verdict == "does not hold" and "not a differentiable" in reason
    verdict, reason = lab.judge_c55(_c55(reinforce=(0.2, 0.3, 0.25)))
    assert verdict == "does not hold" and "REINFORCE does not train" in reason
    assert lab.judge_c55(_c55(one_batch=0.0))[0] == "does not hold"


def _c56(multi, single, macs=(100, 100, 100, 100)):
    return {
        "offsets": [1, 3], "relations": 2, "length": 8, "d_model": 32, "steps": 100, "seeds": [0, 1, 2], "multi_heads": 2,
        "arms": {"1": {"mean": sum(single) / 3, "per_token_mean": 0.6}, "2": {"mean": sum(multi) / 3, "per_token_mean": 1.0}},
        "multi_minus_single": lab.paired_interval(multi, single),
        "macs_by_heads": dict(zip(("1", "2", "4", "8"), macs)), "params_by_heads": {"1": 50, "2": 50, "4": 50, "8": 50},
        "seconds_by_heads": {"1": 1e-4, "2": 1e-4, "4": 2e-4, "8": 3e-4},
    }  # fmt: skip


def test_judge_c56():
    verdict, reason = lab.judge_c56(_c56([1.0, 0.99, 1.0], [0.2, 0.25, 0.21]))
    assert verdict == "holds" and "identical" in reason
    verdict, reason = lab.judge_c56(_c56([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]))
    assert verdict == "does not hold" and "straddles" in reason
    assert lab.judge_c56(_c56([1.0, 0.99, 1.0], [0.2, 0.25, 0.21], macs=(100, 100, 120, 100)))[0] == "does not hold"
