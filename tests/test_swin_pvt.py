"""Swin Transformer and PVT (deepnotes.models.swin, deepnotes.models.pvt): the shifted-window
attention against its brute-force definition, the shift mask and the relative position index
worked by hand, patch merging, PVT's spatial reduction against torch's attention, the stage
outputs as feature maps. (Parameter counts and the model contract: tests/test_models.py.)
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.errors import UserError
from deepnotes.layers.attention import record_attention
from deepnotes.models import create_model
from deepnotes.models.pvt import SpatialReductionAttention
from deepnotes.models.swin import PatchMerging, ShiftedWindowAttention, relative_position_index, shifted_window_mask, window_for

# --------------------------------------------------------------------------- shifted windows


def brute_force_window_attention(attn: ShiftedWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """The paper's definition written out, with the module's weights: full attention over all
    H * W tokens of (B, H, W, C), where token i may attend token j only when both lie in the same
    window of the grid displaced by the shift (figure 2: windows floor((y - s) / M), the border
    windows partial; no roll, no padding), plus the bias table's entry for their offset."""
    B, H, W, C = x.shape
    (wh, ww), (sh, sw) = window_for((H, W), attn.window_size, attn.shift_size)
    Mh, Mw = attn.window_size
    heads, d = attn.num_heads, attn.head_dim
    q, k, v = attn.qkv(x.reshape(B, H * W, C)).reshape(B, H * W, 3, heads, d).permute(2, 0, 3, 1, 4)  # (B, heads, L, d)
    ys, xs = torch.arange(H).repeat_interleave(W), torch.arange(W).repeat(H)
    wy, wx = torch.div(ys - sh, wh, rounding_mode="floor"), torch.div(xs - sw, ww, rounding_mode="floor")
    same = (wy[:, None] == wy[None]) & (wx[:, None] == wx[None])  # (L, L)
    row = (ys[:, None] - ys[None] + Mh - 1) * (2 * Mw - 1) + (xs[:, None] - xs[None] + Mw - 1)
    bias = attn.relative_position_bias_table[row.clamp(0, (2 * Mh - 1) * (2 * Mw - 1) - 1)].permute(2, 0, 1)  # (heads, L, L)
    scores = (q @ k.transpose(-1, -2)) / d**0.5 + bias
    out = scores.masked_fill(~same, float("-inf")).softmax(-1) @ v  # (B, heads, L, d)
    return attn.proj(out.transpose(1, 2).reshape(B, H * W, C)).reshape(B, H, W, C)


# (H, W, window, shift): windows that tile the map, padding (9x7, 5x11, 10x6), a map smaller than
# the window (one clamped window, no shift), shift 0 (W-MSA) and shifts up to M - 1
CASES = [(8, 8, 4, 2), (14, 14, 7, 3), (8, 8, 4, 3), (8, 8, 4, 1), (9, 7, 4, 2), (5, 11, 3, 1), (10, 6, 4, 3), (4, 4, 7, 3), (12, 12, 4, 0)]
TOLERANCE = 1e-12  # float64: the two computations differ only by rounding (observed <= 4e-16)


@pytest.mark.parametrize("fused", [False, True], ids=["scratch", "fused"])
@pytest.mark.parametrize("H, W, window, shift", CASES)
def test_shifted_window_attention_equals_brute_force(H, W, window, shift, fused):
    torch.manual_seed(0)
    attn = ShiftedWindowAttention(8, 2, window, shift, fused=fused).double()
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()  # a bias large enough to matter
    x = torch.randn(2, H, W, 8, dtype=torch.float64)
    torch.testing.assert_close(attn(x), brute_force_window_attention(attn, x), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("H, W, window, shift", [(14, 14, 7, 3), (9, 7, 4, 2)])
def test_shifted_window_attention_equals_brute_force_in_float32(H, W, window, shift):
    torch.manual_seed(0)
    attn = ShiftedWindowAttention(16, 4, window, shift)
    x = torch.randn(2, H, W, 16)
    torch.testing.assert_close(attn(x), brute_force_window_attention(attn, x), rtol=0, atol=1e-5)  # float32 rounding


def test_shifted_windows_reach_across_the_plain_windows_borders():
    """Output token (3, 3) of an 8x8 map, 4x4 windows: without the shift it depends on exactly its
    window, rows and columns 0-3; shifted by 2 on exactly rows and columns 2-5, which straddles four
    windows of the layer before (what the shift is for)."""
    torch.manual_seed(0)
    x = torch.randn(1, 8, 8, 4, requires_grad=True)
    for shift, (lo, hi) in ((0, (0, 4)), (2, (2, 6))):
        (g,) = torch.autograd.grad(ShiftedWindowAttention(4, 1, 4, shift)(x)[0, 3, 3].sum(), x)
        expected = torch.zeros(8, 8, dtype=torch.bool)
        expected[lo:hi, lo:hi] = True
        assert torch.equal(g[0].abs().sum(-1) > 0, expected), shift


def test_cyclic_shift_mask_worked_by_hand():
    """4x4 map, 2x2 windows, shift 1. After rolling by -1 the rolled map holds, row by row, the
    tokens ((r + 1) % 4, (c + 1) % 4); window (0, 0) holds original rows 1-2, cols 1-2 (one region);
    window (0, 1) original cols 3 and 0 (0 came over from the left border); window (1, 0) rows 3
    and 0; window (1, 1) four tokens from four corners, each alone."""
    mask = shifted_window_mask((4, 4), (2, 2), (1, 1))
    t, f = True, False
    expected = torch.tensor([
        [[t, t, t, t], [t, t, t, t], [t, t, t, t], [t, t, t, t]],
        [[t, f, t, f], [f, t, f, t], [t, f, t, f], [f, t, f, t]],
        [[t, t, f, f], [t, t, f, f], [f, f, t, t], [f, f, t, t]],
        [[t, f, f, f], [f, t, f, f], [f, f, t, f], [f, f, f, t]],
    ])  # fmt: skip
    assert torch.equal(mask, expected)
    assert shifted_window_mask((4, 4), (2, 2), (0, 0)) is None  # windows that tile, no shift: nothing to mask


def test_padding_is_masked_as_keys():
    """3x3 map, 2x2 windows, no shift: padded to 4x4; the padded column and row are never keys."""
    mask = shifted_window_mask((3, 3), (2, 2), (0, 0))
    assert mask.shape == (4, 4, 4)
    assert mask[0].all()  # window (0, 0): all real
    assert torch.equal(mask[1][:, [1, 3]], torch.zeros(4, 2, dtype=torch.bool))  # window (0, 1): column 3 is padding
    assert torch.equal(mask[3], torch.tensor([[True, False, False, False]] * 4))  # window (1, 1): only (2, 2) is real


def test_window_for_clamps_small_maps_and_drops_their_shift():
    assert window_for((56, 56), (7, 7), (3, 3)) == ((7, 7), (3, 3))
    assert window_for((7, 7), (7, 7), (3, 3)) == ((7, 7), (0, 0))  # Swin-T's stage 4: one window, no shift
    assert window_for((2, 9), (7, 7), (3, 3)) == ((2, 7), (0, 3))


def test_relative_position_index_worked_by_hand():
    """2x2 window, tokens (0,0), (0,1), (1,0), (1,1): row = (dy + M - 1)(2M - 1) + (dx + M - 1) with
    (dy, dx) = query - key; a 3x3 table for M = 2, and a 5x5 table for M = 3 (a clamped window)."""
    assert relative_position_index((2, 2), (2, 2)).tolist() == [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    assert relative_position_index((2, 2), (3, 3)).tolist() == [[12, 11, 7, 6], [13, 12, 8, 7], [17, 16, 12, 11], [18, 17, 13, 12]]
    idx = relative_position_index((7, 7), (7, 7))
    assert idx.shape == (49, 49) and idx.min() == 0 and idx.max() == 168 and len(idx.unique()) == 169
    assert (idx.diagonal() == 84).all()  # offset (0, 0): the centre of the 13x13 table


def test_cached_index_and_mask_are_made_on_the_cpu_even_under_a_meta_default_device():
    with torch.device("meta"):  # e.g. a forward pass of a model built on the meta device, inside the block
        idx, mask = relative_position_index((3, 5), (6, 6)), shifted_window_mask((11, 13), (3, 5), (1, 2))
    assert idx.device.type == "cpu" and mask.device.type == "cpu"


def test_relative_position_bias_is_one_entry_per_offset():
    attn = ShiftedWindowAttention(4, 2, 3)
    with torch.no_grad():
        attn.relative_position_bias_table.copy_(torch.arange(25 * 2, dtype=torch.float32).reshape(25, 2))
    bias = attn.relative_position_bias((3, 3))  # (heads, 9, 9)
    assert bias.shape == (2, 9, 9)
    assert bias[0, 4, 4] == 2 * 12 and bias[1, 4, 4] == 2 * 12 + 1  # offset (0, 0) -> row 12
    assert bias[0, 0, 8] == 2 * 0  # query (0, 0), key (2, 2): offset (-2, -2) -> row 0


# --------------------------------------------------------------------------- patch merging


def test_patch_merging_shapes_and_order():
    torch.manual_seed(0)
    merge = PatchMerging(3)
    assert merge(torch.randn(2, 4, 6, 3)).shape == (2, 2, 3, 6)
    assert merge(torch.randn(2, 5, 7, 3)).shape == (2, 3, 4, 6)  # odd sides: zero-padded
    # with the norm removed and the reduction the identity, the output is the concatenation itself
    merge = PatchMerging(1, out_dim=4)
    merge.norm = nn.Identity()
    with torch.no_grad():
        merge.reduction.weight.copy_(torch.eye(4))
    x = torch.arange(16, dtype=torch.float32).reshape(1, 4, 4, 1)
    assert merge(x)[0, 0, 0].tolist() == [0, 4, 1, 5]  # x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
    assert merge(x)[0, 1, 1].tolist() == [10, 14, 11, 15]


# --------------------------------------------------------------------------- PVT's spatial reduction


def _copy_into_torch(sra: SpatialReductionAttention) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(sra.dim, sra.num_heads, batch_first=True)
    ref.load_state_dict(sra.attn.state_dict())
    return ref


def test_spatial_reduction_ratio_1_is_plain_attention():
    torch.manual_seed(0)
    sra = SpatialReductionAttention(8, 2, sr_ratio=1).eval()
    assert not hasattr(sra, "sr")  # R = 1: no conv, no norm
    x = torch.randn(2, 12, 8)
    ref = _copy_into_torch(sra)
    torch.testing.assert_close(sra(x, (3, 4)), ref(x, x, x, need_weights=False)[0], rtol=1e-5, atol=1e-6)


def test_spatial_reduction_keys_come_from_a_strided_conv():
    """R = 2 on a 4x6 map: keys and values are LayerNorm(conv_{k=s=2}(map)), 2x3 = 6 tokens; the
    queries all 24 (torch's attention with copied weights on the reduced keys; record_attention
    shows (24, 6) maps). A class token in front is a key as it is."""
    torch.manual_seed(0)
    sra = SpatialReductionAttention(8, 2, sr_ratio=2, grid=(4, 6)).eval()
    x = torch.randn(2, 24, 8)
    m = x.transpose(1, 2).reshape(2, 8, 4, 6)
    kv = F.conv2d(m, sra.sr.proj.weight, sra.sr.proj.bias, stride=2).flatten(2).transpose(1, 2)  # (2, 6, 8)
    kv = F.layer_norm(kv, (8,), sra.norm.weight, sra.norm.bias)
    ref = _copy_into_torch(sra)
    with record_attention(sra) as maps:
        out = sra(x, (4, 6))
    torch.testing.assert_close(out, ref(x, kv, kv, need_weights=False)[0], rtol=1e-5, atol=1e-6)
    assert maps[0].shape == (2, 2, 24, 6)
    cls = torch.randn(2, 1, 8)
    keys = sra.reduce(torch.cat([cls, x], dim=1), (4, 6), prefix=1)
    assert keys.shape == (2, 7, 8) and torch.equal(keys[:, :1], cls)


def test_spatial_reduction_pads_maps_smaller_than_r():
    sra = SpatialReductionAttention(8, 1, sr_ratio=8, grid=(56, 56))
    assert sra.reduce(torch.randn(1, 3 * 5, 8), (3, 5)).shape == (1, 1, 8)  # ceil(3 / 8) * ceil(5 / 8)


# --------------------------------------------------------------------------- the pyramid


@pytest.mark.parametrize("name, size", [("swin_tiny_28", 28), ("pvt_tiny_28", 28), ("swin_tiny_64", 64), ("pvt_tiny_64", 64),
                                        ("swin_t", 64), ("pvt_tiny", 64), ("swin_tiny_28", 33)])  # fmt: skip
def test_stage_outputs_are_the_feature_maps_feature_info_describes(name, size):
    torch.manual_seed(0)
    kwargs = {"img_size": size} if name.startswith("pvt") else {}
    model = create_model(name, num_classes=5, **kwargs).eval()
    x = torch.randn(2, model.in_chans, size, size)
    hooked = {}
    for f in model.feature_info:
        model.get_submodule(f["module"]).register_forward_hook(lambda m, i, o, n=f["module"]: hooked.__setitem__(n, o))
    with torch.no_grad():
        maps = model.forward_stages(x)
        model(x)
    assert len(maps) == len(model.feature_info)
    for m, f in zip(maps, model.feature_info):
        side = -(-size // f["reduction"])  # sides that do not divide are padded: ceil
        assert m.shape == (2, f["num_chs"], side, side), f
        o = hooked[f["module"]]
        torch.testing.assert_close(o[0] if isinstance(o, tuple) else o, m, rtol=0, atol=0)


def test_swin_t_stages_at_224():
    with torch.device("meta"):
        model = create_model("swin_t")
        maps = model.forward_stages(torch.empty(1, 3, 224, 224))
    assert [tuple(m.shape[1:]) for m in maps] == [(96, 56, 56), (192, 28, 28), (384, 14, 14), (768, 7, 7)]


def test_pvt_tiny_uses_a_class_token_and_the_small_forms_average():
    torch.manual_seed(0)
    model = create_model("pvt_tiny", img_size=32, num_classes=3).eval()
    assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 1 + 1, 512)  # 32 / 32 = 1x1 grid + class token
    small = create_model("pvt_tiny_28").eval()
    assert small.forward_features(torch.randn(1, 1, 28, 28)).shape == (1, 16, 128)  # 4x4 tokens, no class token
    # another input size: position embeddings re-sampled, the output still (B, classes)
    assert small(torch.randn(1, 1, 36, 36)).shape == (1, 10)


@pytest.mark.parametrize("name, option, value", [
    ("swin_tiny_28", "window_size", 0), ("swin_tiny_28", "num_heads", [1, 2]), ("swin_tiny_28", "embed_dim", 0), ("swin_tiny_28", "num_heads", [3, 2, 4]),
    ("swin_tiny_28", "mlp_ratio", -1), ("pvt_tiny_28", "sr_ratios", [0, 1, 1]), ("pvt_tiny_28", "mlp_ratios", [4, 0, 2]),
    ("pvt_tiny_28", "embed_dims", [32, 64]), ("pvt_tiny_28", "global_pool", "max"),
])  # fmt: skip
def test_bad_options_are_one_line_user_errors(name, option, value):
    with pytest.raises(UserError, match=f"cannot be built with {option}="):
        create_model(name, **{option: value})


# --------------------------------------------------------------------------- the lab's pieces (C84, C85)


def test_attention_products_are_counted_as_worked_by_hand():
    """vit_tiny_28: 6 layers, 17 tokens, width 96: q k^T and weights x v are 2 * 17^2 * 96 MACs per layer."""
    from deepnotes.lab.attention.hierarchy import attention_product_macs

    with torch.device("meta"):
        vit = create_model("vit_tiny_28")
        swin = create_model("swin_tiny_28")
    assert attention_product_macs(vit, (1, 28, 28)) == 6 * 2 * 17**2 * 96
    # swin_tiny_28: stage 1 4 windows of 49 tokens, width 32; stage 2 one window of 49, width 64;
    # stage 3 one window of 16 (4x4), width 128; 2, 4 and 2 blocks
    assert attention_product_macs(swin, (1, 28, 28)) == 2 * (4 * 2 * 49**2 * 32) + 4 * (2 * 49**2 * 64) + 2 * (2 * 16**2 * 128)


def test_fit_exponent_recovers_a_power_law():
    from deepnotes.lab.common import fit_exponent

    n = [49, 196, 441, 784]
    assert fit_exponent(n, [3 * v**2 for v in n]) == pytest.approx(2.0)
    assert fit_exponent(n, [5 * v + 0 * v for v in n]) == pytest.approx(1.0)


def _c84_numbers(vit, swin, pvt, clock=(2.0, 1.0, 1.5)):
    arm = lambda e, c: {"exponent": {"macs": e[0], "attention_products": e[1], "seconds": c}, "by_size": {"112": {"attention_products": e[2]}}}  # noqa: E731
    return {"sizes": [28, 112], "tokens": [196, 3136], "swin_global": False,
            "arms": {"vit": arm(vit, clock[0]), "swin": arm(swin, clock[1]), "pvt": arm(pvt, clock[2])}}  # fmt: skip


def test_judge_c84_on_hand_made_exponents():
    from deepnotes.lab.attention.hierarchy import judge_c84

    assert judge_c84(_c84_numbers((1.64, 2.0, 100), (0.99, 1.04, 1), (1.35, 1.99, 4)))[0] == "holds with a correction"  # PVT's products quadratic
    assert judge_c84(_c84_numbers((1.64, 2.0, 100), (0.99, 1.04, 1), (1.2, 1.5, 4)))[0] == "holds"
    assert judge_c84(_c84_numbers((1.64, 2.0, 100), (1.6, 2.0, 90), (1.35, 1.99, 4)))[0] == "does not hold"  # Swin with global windows
    assert judge_c84(_c84_numbers((1.1, 1.2, 100), (0.99, 1.04, 1), (1.05, 1.5, 4)))[0] == "does not hold"  # ViT not quadratic


def _c85_numbers(vit, windowed, cnn):
    from deepnotes.lab.common import paired_interval

    arm = lambda accs: {"model": "m", "accuracy": accs, "mean": sum(accs) / len(accs)}  # noqa: E731
    return {"data": "d", "train_images": 10, "epochs": 1, "steps": 1, "batch_size": 1,
            "arms": {"vit": arm(vit), "windowed": arm(windowed), "cnn": arm(cnn)}, "windowed_minus_vit": paired_interval(windowed, vit)}  # fmt: skip


def test_judge_c85_on_hand_made_accuracies():
    from deepnotes.lab.attention.hierarchy import judge_c85

    assert judge_c85(_c85_numbers([0.85, 0.86, 0.85], [0.88, 0.885, 0.88], [0.885, 0.89, 0.885]))[0] == "holds"
    assert judge_c85(_c85_numbers([0.85, 0.86, 0.85], [0.87, 0.875, 0.87], [0.90, 0.90, 0.90]))[0] == "holds with a correction"
    assert judge_c85(_c85_numbers([0.85, 0.86, 0.85], [0.86, 0.85, 0.855], [0.90, 0.90, 0.90]))[0] == "does not hold"  # interval spans 0
    assert judge_c85(_c85_numbers([0.85, 0.86, 0.85], [0.85, 0.86, 0.85], [0.90, 0.90, 0.90]))[0] == "does not hold"  # the control
