"""Lab experiments C29-C34 (attention and ViT): a patch that does not divide the image, the pieces by
hand, the judges on hand-made numbers (tests/test_lab.py runs every quick run and its opposite evidence)."""

import itertools

import pytest
import torch
from labcheck import quiet

from deepnotes.lab import run_experiment
from deepnotes.lab.attention import self_attention as lab
from deepnotes.layers.attention import MultiHeadAttention


def test_a_patch_that_does_not_divide_the_image_pads_it(tmp_path):
    result = run_experiment("C29", tmp_path, quick=True, log=quiet, patch_size=15)
    n = result["numbers"]
    assert result["verdict"] == "does not hold"
    assert n["grid"] == [15, 15] and n["shapes"]["patches"] == [225, 675]  # ceil(224 / 15) = 15; 15 * 15 * 3
    assert "zero-padded" in result["reason"]


# ---------------------------------------------------------------- pieces by hand


def test_photo_is_a_real_rgb_crop():
    x = lab.photo(224)
    assert x.shape == (3, 224, 224) and x.dtype == torch.uint8
    assert x.float().std() > 20  # a photograph, not a blank


def test_softmax_jacobian_norm_matches_autograd():
    torch.manual_seed(0)
    logits = torch.randn(5, 7, dtype=torch.float64) * 3
    p = torch.softmax(logits, -1)
    for row, pr in zip(logits, p):
        jac = torch.autograd.functional.jacobian(lambda s: torch.softmax(s, -1), row)
        assert lab.softmax_jacobian_norm(pr).item() == pytest.approx(torch.linalg.matrix_norm(jac).item(), abs=1e-12)
    assert lab.softmax_jacobian_norm(torch.tensor([1.0, 0.0, 0.0])).item() == 0.0  # saturated: no gradient


def test_total_variation_by_hand():
    assert lab.total_variation(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).item() == 1.0
    assert lab.total_variation(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5])).item() == 0.0
    assert lab.total_variation(torch.tensor([0.7, 0.3, 0.0]), torch.tensor([0.5, 0.3, 0.2])).item() == pytest.approx(0.2)


def test_head_stats_by_hand():
    # 1x2 grid of 3-pixel patches (T = 3 with the class token); head 1: each patch attends itself,
    # head 2: each patch attends the other one (3 pixels away)
    a = torch.zeros(2, 2, 3, 3)
    a[:, :, 0, 0] = 1.0
    a[:, 0, 1, 1] = a[:, 0, 2, 2] = 1.0
    a[:, 1, 1, 2] = a[:, 1, 2, 1] = 1.0
    s = lab.head_stats(a, (1, 2), 3)
    assert s["distance"] == [0.0, 3.0]
    assert s["tv_pairs_mean_map"] == {"1-2": pytest.approx(2 / 3)}  # two of the three query rows differ completely
    assert s["tv_pairs_image"] == {"1-2": pytest.approx(2 / 3)} and s["tv_heads_image"] == pytest.approx(2 / 3)
    assert s["tv_split_half"] == 0.0 and s["tv_same_head_other_image"] == 0.0


def test_tied_heads_give_identical_maps_and_keep_values_free():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4)
    lab.tie_heads(mha)
    w = mha.in_proj_weight
    assert torch.equal(w[0:4], w[4:8]) and torch.equal(w[16:20], w[28:32])  # queries, keys: head 0's everywhere
    assert not torch.equal(w[32:36], w[36:40])  # values: each head its own
    _, maps = mha(*(torch.randn(2, 5, 16),) * 3, average_attn_weights=False)
    for h in range(1, 4):
        torch.testing.assert_close(maps[:, h], maps[:, 0], rtol=0, atol=0)


def test_local_mask_by_hand():
    m = lab.local_mask((3, 3), 1)  # True = not allowed
    allowed = (~m).sum(1).tolist()
    assert allowed == [1, 5, 7, 5, 7, 10, 7, 5, 7, 5]  # class token: itself; corner: 4 patches + class; centre: 9 + class
    assert not m[5, 1:].any() and m[0, 1:].all()
    assert lab.local_mask((3, 3), 2).sum() == 9  # window 2 covers the whole 3x3 grid; only the class row is cut


def test_causal_encoder_ignores_the_future_and_an_open_one_does_not():
    torch.manual_seed(0)
    model = lab.TokenEncoder(6, 16, 2, 2, position="sinusoidal").eval()
    x = torch.randn(3, 5, 6)
    worst, identical = lab.future_changes(model, x, causal=True)
    assert worst == 0.0 and identical
    worst, identical = lab.future_changes(model, x, causal=False)
    assert worst > 1e-3 and not identical
    infl = lab.influence(model, x, causal=True)
    later = torch.ones(5, 5, dtype=torch.bool).triu(1)  # (i, j), j > i: a later token, an earlier output
    assert (infl[later] == 0).all() and (infl[~later] > 0).all()


# ---------------------------------------------------------------- judges


def _c29_numbers(patch=16, tokens=196, err=1e-7):
    values = patch * patch * 3
    return {
        "model": "vit_b_16", "patch_size": patch, "embed_dim": 768, "grid": [224 // patch] * 2, "patch_divides": 224 % patch == 0,
        "num_patches": tokens, "patch_values": values, "conv_vs_unfold_rel_error": err, "conv_vs_slices_rel_error": err,
        "images_checked": 1, "other_models": {"vit_s_16": [197, 384]},
        "shapes": {"image": [3, 224, 224], "patches": [tokens, values], "patch tokens": [tokens, 768],
                   "with class token": [tokens + 1, 768], "encoder input": [tokens + 1, 768]},
    }  # fmt: skip


def test_judge_c29():
    assert lab.judge_c29(_c29_numbers())[0] == "holds"
    assert lab.judge_c29(_c29_numbers(patch=14, tokens=256))[0] == "does not hold"
    assert lab.judge_c29(_c29_numbers(err=1e-3))[0] == "does not hold"
    wrong = _c29_numbers()
    wrong["num_patches"] = 197  # shapes as claimed but not what (224/16)^2 gives
    assert lab.judge_c29(wrong)[0] == "does not hold"


def _c30_numbers(none=2e-7, sin=1.0, learned=0.08, tested="none"):
    return {"errors": {"none": none, "sinusoidal": sin, "learned": learned}, "tested": tested, "layers": 2, "sequences": 32,
            "data": "digits", "tokens": 16, "permutations": 4}  # fmt: skip


def test_judge_c30():
    assert lab.judge_c30(_c30_numbers())[0] == "holds"
    assert lab.judge_c30(_c30_numbers(tested="sinusoidal"))[0] == "does not hold"
    assert lab.judge_c30(_c30_numbers(none=1e-3))[0] == "does not hold"  # not equivariant beyond rounding
    assert lab.judge_c30(_c30_numbers(sin=1e-6, learned=1e-6))[0] == "does not hold"  # the check cannot see a break


def _c31_numbers(tested_var=(1.0, 1.0), tested_max=(0.1, 0.11), unscaled_max=(0.26, 0.95)):
    def arm(var, mx):
        return {"4": {"logit_var": var[0], "entropy": 0.89 if mx[1] < 0.5 else 0.68, "max_weight": mx[0], "jacobian_norm": 0.18},
                "1024": {"logit_var": var[1], "entropy": 0.88 if mx[1] < 0.5 else 0.03, "max_weight": mx[1],
                         "jacobian_norm": 0.19 if mx[1] < 0.5 else 0.066}}  # fmt: skip

    return {"d_k": [4, 1024], "keys": 64, "tested": "scaled",
            "arms": {"unscaled": arm((4.0, 1030.0), unscaled_max), "tested": arm(tested_var, tested_max)}}  # fmt: skip


def test_judge_c31():
    assert lab.judge_c31(_c31_numbers())[0] == "holds"
    assert lab.judge_c31(_c31_numbers(tested_var=(4.0, 1030.0), tested_max=(0.26, 0.95)))[0] == "does not hold"  # unscaled tested
    assert lab.judge_c31(_c31_numbers(tested_max=(0.1, 0.7)))[0] == "does not hold"  # variance 1 but saturating anyway
    assert lab.judge_c31(_c31_numbers(unscaled_max=(0.2, 0.3)))[0] == "does not hold"  # no danger to prevent


def _c32_numbers(future=0.0, past=0.2, leak=0.1):
    def path(f, p):
        return {"future_influence": f, "past_influence": p, "future_swap_rel": f, "bit_identical": f == 0.0}

    return {"layers": 2, "sequences": 32, "data": "digits", "tokens": 8, "tested": "causal mask",
            "arms": {"tested": {"scratch": path(future, past), "fused": path(future, past)},
                     "unmasked": {"scratch": path(leak, past), "fused": path(leak, past)}}}  # fmt: skip


def test_judge_c32():
    assert lab.judge_c32(_c32_numbers())[0] == "holds"
    assert "bit-identical" in lab.judge_c32(_c32_numbers())[1]
    assert lab.judge_c32(_c32_numbers(future=1e-7))[0] == "holds"  # rounding-level, not bit-identical
    assert lab.judge_c32(_c32_numbers(future=0.05))[0] == "does not hold"
    assert lab.judge_c32(_c32_numbers(past=0.0))[0] == "does not hold"  # a mask that cuts everything
    assert lab.judge_c32(_c32_numbers(leak=0.0))[0] == "does not hold"  # the check sees no leak even unmasked


def _c33_numbers(pair_tvs=(0.3, 0.2, 0.25, 0.4, 0.15, 0.3), noise=0.02):
    pairs = [f"{h + 1}-{g + 1}" for h, g in itertools.combinations(range(4), 2)]

    def layer(tvs, split):
        return {"tv_heads_image": max(tvs) * 1.5, "tv_pairs_mean_map": dict(zip(pairs, tvs)), "tv_split_half": split}

    return {"model": "vit", "heads": 4, "epochs": 8, "train_images": 1347, "data": "digits", "test_accuracy": 0.86, "tie_heads": False,
            "trained": {"1": layer(pair_tvs, noise), "2": layer(pair_tvs, noise)},
            "init": {"1": layer([0.003] * 6, 0.0003), "2": layer([0.003] * 6, 0.0003)}}  # fmt: skip


def test_judge_c33():
    assert lab.judge_c33(_c33_numbers())[0] == "holds"
    assert lab.judge_c33(_c33_numbers(pair_tvs=(0.3, 0.05, 0.25, 0.4, 0.15, 0.3)))[0] == "holds with a correction"  # one duplicate pair
    assert lab.judge_c33(_c33_numbers(pair_tvs=(0.0,) * 6))[0] == "does not hold"  # tied heads
    assert lab.judge_c33(_c33_numbers(noise=0.1))[0] == "does not hold"  # differences within sampling noise (floor 0.3)


def _c34_numbers(support=1.0, cnn_rf=3):
    return {"data": "digits", "images": 4, "image": [1, 28, 28], "vit_model": "vit_tiny_28", "patch": 4, "grid": [7, 7],
            "attention": "global", "cnn_model": "resnet20",
            "vit": {"tokens": 50, "min_support": support, "max_support": 1.0, "own_patch_share": 0.9},
            "cnn": {"first_rf_measured": cnn_rf, "first_rf_analytic": cnn_rf, "first_support_pixels": cnn_rf * cnn_rf,
                    "convs_to_cover": 11, "layer_to_cover": "features.layer2.1.conv2"}}  # fmt: skip


def test_judge_c34():
    assert lab.judge_c34(_c34_numbers())[0] == "holds"
    assert lab.judge_c34(_c34_numbers(support=0.18))[0] == "does not hold"
    assert lab.judge_c34(_c34_numbers(cnn_rf=28))[0] == "does not hold"  # a "CNN" that already sees everything
