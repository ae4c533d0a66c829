"""Lab experiments C35-C37, C51 (recurrent networks): the pieces by hand and the judges on hand-made
numbers (tests/test_lab.py runs every quick run and its opposite evidence)."""

import torch

from deepnotes.lab.sequences import recurrent as lab
from deepnotes.layers.recurrent import GRU, LSTM, RNN


def _iv(mean, low, high, over="seeds"):
    return {"mean": mean, "low": low, "high": high, "runs": 3, "over": over}


# ---------------------------------------------------------------- pieces by hand


def test_block_formula_by_hand_and_against_the_modules():
    # I = H = 256, one layer: LSTM 4 * 256 * 512 + 2 * 4 * 256 = 526,336; GRU 3/4 of it = 394,752
    assert lab.block_formula("lstm", 256, 256) == 526_336
    assert lab.block_formula("gru", 256, 256) == 394_752
    assert lab.block_formula("rnn", 1, 8) == 8 * 9 + 16
    # two bidirectional layers: layer 1 reads 2 H
    assert lab.block_formula("gru", 10, 4, 2, 2) == 2 * (3 * 4 * 14 + 24) + 2 * (3 * 4 * 12 + 24)
    for kind, cls, torch_cls in (("lstm", LSTM, torch.nn.LSTM), ("gru", GRU, torch.nn.GRU), ("rnn", RNN, torch.nn.RNN)):
        ours, theirs = cls(10, 4, 2, bidirectional=True), torch_cls(10, 4, 2, bidirectional=True)
        assert lab._count(ours) == lab._count(theirs) == lab.block_formula(kind, 10, 4, 2, 2)


def test_chrono_init_sets_the_keep_gates():
    g = torch.Generator().manual_seed(0)
    lstm = LSTM(3, 5)
    lab.chrono_init(lstm, 50, g)
    b = lstm.bias_hh_l0.detach()
    f = b[5:10]
    assert (f >= 0).all() and (f <= torch.log(torch.tensor(49.0))).all()
    assert torch.equal(b[:5], -f)  # input gate -log(u)
    assert (lstm.bias_ih_l0.detach()[:10] == 0).all()
    gru = GRU(3, 5)
    before = gru.bias_hh_l0.detach().clone()
    lab.chrono_init(gru, 50, g)
    assert torch.equal(gru.bias_hh_l0.detach()[:5], before[:5])  # r untouched; z (block 2) set
    assert (gru.bias_hh_l0.detach()[5:10] >= 0).all() and (gru.bias_ih_l0.detach()[5:10] == 0).all()
    rnn = RNN(3, 5)
    state = {k: v.clone() for k, v in rnn.state_dict().items()}
    lab.chrono_init(rnn, 50, g)  # no gate: nothing changes
    assert all(torch.equal(state[k], v) for k, v in rnn.state_dict().items())


def test_causal_losses_of_a_unidirectional_model_equal_its_loss_and_a_bidirectional_one_differs():
    torch.manual_seed(0)
    x = torch.randint(0, 5, (4, 6))
    y = torch.randint(0, 5, (4, 6))
    uni = lab.SeqModel("gru", 5, 8, 5, per_step=True).eval()
    bi = lab.SeqModel("gru", 5, 8, 5, per_step=True, bidirectional=True).eval()
    with torch.no_grad():
        assert torch.allclose(lab.causal_losses(uni, x, y), lab._token_losses(uni(x), y), atol=1e-5)
        full = lab._token_losses(bi(x), y)
    causal = lab.causal_losses(bi, x, y)
    assert torch.allclose(causal[:, -1], full[:, -1], atol=1e-5)  # the last position sees no future anyway
    assert not torch.allclose(causal[:, 0], full[:, 0], atol=1e-3)


def test_interval_over_seeds_or_over_items():
    d = lab.interval([0.9, 0.8, 0.85], [0.1, 0.2, 0.15], torch.ones(3), torch.zeros(3))
    assert d["over"] == "seeds" and abs(d["mean"] - 0.7) < 1e-9 and d["low"] < 0.7 < d["high"]
    right_a = torch.tensor([True] * 90 + [False] * 10)
    right_b = torch.tensor([True] * 10 + [False] * 90)
    d = lab.interval([0.9], [0.1], right_a, right_b)
    assert d["over"] == "100 test items" and abs(d["mean"] - 0.8) < 1e-9 and d["low"] > 0.6


# ---------------------------------------------------------------- judges on hand-made numbers


def _c35(lstm, gru, distances=(5, 50)):
    arms = {a: {"mean": {str(d): 1.0 for d in distances}} for a in ("rnn", "lstm", "gru")}
    arms["rnn"]["mean"][str(distances[-1])] = 0.13
    return {"distances": list(distances), "vocab": 8, "hidden": 32, "steps": 600, "batch": 64, "seeds": [0, 1, 2], "arms": arms,
            "gated_minus_rnn": {"lstm": lstm, "gru": gru}}  # fmt: skip


def test_judge_c35():
    assert lab.judge_c35(_c35(_iv(0.87, 0.8, 0.9), _iv(0.87, 0.8, 0.9)))[0] == "holds"
    verdict, reason = lab.judge_c35(_c35(_iv(0.87, 0.8, 0.9), _iv(0.3, -0.2, 0.8)))
    assert verdict == "holds with a correction" and "straddles" in reason and "GRU" in reason
    assert lab.judge_c35(_c35(_iv(0.0, 0.0, 0.0), _iv(0.0, 0.0, 0.0)))[0] == "does not hold"  # low = 0 is not above 0
    assert "+87.0%" in lab.judge_c35(_c35(_iv(0.87, 0.8, 0.9), _iv(0.87, 0.8, 0.9)))[1]


def _c36(lstm_count, gru_count, fewer="gru", more="lstm"):
    counts = {"gru": {"deepnotes": gru_count, "torch": gru_count, "formula": gru_count},
              "lstm": {"deepnotes": lstm_count, "torch": lstm_count, "formula": lstm_count}}  # fmt: skip
    import math

    a, b = counts[fewer]["deepnotes"], counts[more]["deepnotes"]
    g = math.gcd(a, b)
    row = {"input": 256, "hidden": 256, "layers": 1, "directions": 1, "counts": counts, "ratio": a / b,
           "ratio_numerator": a // g, "ratio_denominator": b // g}  # fmt: skip
    return {"fewer": fewer, "more": more, "sizes": [row]}


def test_judge_c36():
    verdict, reason = lab.judge_c36(_c36(526_336, 394_752))
    assert verdict == "holds" and "identity" in reason and "2 gates vs 3" in reason and "3/4" in reason
    assert lab.judge_c36(_c36(526_336, 526_336 * 2 // 3))[0] == "does not hold"  # 2/3: not the blocks' ratio
    bad = _c36(526_336, 394_752)
    bad["sizes"][0]["counts"]["gru"]["torch"] += 1
    assert lab.judge_c36(bad)[0] == "does not hold"
    assert lab.judge_c36(_c36(394_752, 526_336))[0] == "does not hold"  # the "fewer" one has more


def _c37(diff, max_grad=1e6):
    arm = {"max_grad_norm_max": max_grad, "median_grad_norm": 3.0, "mean_test_mse": 0.5, "clipped_fraction": 0.5, "diverged": 0}
    return {"hidden": 32, "gain": 2.0, "length": 50, "lr": 0.05, "steps": 800, "max_norm": 1.0, "diverged_mse": 10.0,
            "seeds": [0, 1, 2], "arms": {"unclipped": dict(arm), "clipped": dict(arm)}, "unclipped_minus_clipped": diff}  # fmt: skip


def test_judge_c37():
    assert lab.judge_c37(_c37(_iv(5.0, 2.0, 8.0)))[0] == "holds"
    verdict, reason = lab.judge_c37(_c37(_iv(0.0, 0.0, 0.0)))
    assert verdict == "does not hold" and "does not lower" in reason
    verdict, reason = lab.judge_c37(_c37(_iv(5.0, 2.0, 8.0), max_grad=5.0))
    assert verdict == "does not hold" and "do not explode" in reason
    assert "straddles" in lab.judge_c37(_c37(_iv(1.0, -1.0, 3.0)))[1]


def _c51(look, causal, visible=0.02, offset=3):
    return {"hidden": 32, "vocab": 8, "seeds": [0, 1, 2],
            "lookahead": {"length": 20, "offset": offset, "bi": {"mean": 0.99}, "uni": {"mean": 0.13}, "bi_minus_uni": look},
            "next_token": {"causal_floor": 0.455, "entropy_rate": 0.454, "uni": {"mean": 0.46}, "bi_visible": {"mean": visible},
                           "bi_causal": {"mean": 0.465}, "bi_causal_minus_uni": causal}}  # fmt: skip


def test_judge_c51():
    good, same = _iv(0.86, 0.85, 0.87), _iv(0.005, 0.001, 0.009)
    assert lab.judge_c51(_c51(good, same))[0] == "holds"
    assert lab.judge_c51(_c51(good, same, visible=0.44))[0] == "holds with a correction"  # no leak seen
    assert lab.judge_c51(_c51(good, _iv(-0.2, -0.3, -0.1)))[0] == "holds with a correction"  # better causally: not this claim
    verdict, reason = lab.judge_c51(_c51(_iv(-0.005, -0.008, -0.003), same, offset=-3))
    assert verdict == "does not hold" and "3 steps earlier" in reason
