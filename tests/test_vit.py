"""ViT: patch embedding (conv = unfold + matrix), shapes through the embedding, parameter
counts from the architecture, position-embedding re-sampling, the whole forward against torch's
encoder layers, and the attention explanations (rollout, CLS grid, the figure).

Tolerances: float32, rtol 1e-5 / atol 1e-5 for the patch embedding and the whole model
against torch's layers (eval, dropout off; torch's slow path).
"""

import pytest
import torch
from torch import nn

from deepnotes.explain.attention import attention_maps, attention_rollout, cls_attention_grid, draw_attention
from deepnotes.layers.attention import record_attention
from deepnotes.models import create_model, get_model_entry
from deepnotes.models.vit import PatchEmbed, ViT, ViTConfig, embedding_shapes, patchify, resample_pos_embed

TOL = dict(rtol=1e-5, atol=1e-5)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _small(img_size=28, **kwargs) -> ViT:
    torch.manual_seed(0)
    cfg = dict(patch_size=4, embed_dim=32, depth=3, num_heads=4, mlp_ratio=2.0)
    cfg.update(kwargs)
    return ViT(ViTConfig(**cfg), num_classes=10, in_chans=1, img_size=img_size).eval()


# --------------------------------------------------------------------------- patches


def test_patchify_order_by_hand():
    """Patch n = row-major grid cell (i, j); its values in (channel, row, column) order."""
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    p = patchify(x, 4)
    assert p.shape == (2, 6, 48)  # a 2 x 3 grid of 3 * 4 * 4 values
    for n, (i, j) in enumerate([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]):
        assert torch.equal(p[:, n], x[:, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].reshape(2, -1))


def test_patch_embed_conv_equals_unfold_and_matrix():
    torch.manual_seed(0)
    pe = PatchEmbed(img_size=32, patch_size=8, in_chans=3, embed_dim=20)
    x = torch.randn(2, 3, 32, 32)
    conv = pe(x)
    assert conv.shape == (2, 16, 20)
    torch.testing.assert_close(conv, pe.forward_unfold(x), **TOL)
    # and literally: every patch times the conv weight as a (D, C*p*p) matrix, plus the bias
    w = pe.proj.weight.reshape(20, -1)
    manual = torch.stack([x[:, :, 8 * i : 8 * i + 8, 8 * j : 8 * j + 8].reshape(2, -1) @ w.T for i in range(4) for j in range(4)], dim=1)
    torch.testing.assert_close(conv, manual + pe.proj.bias, **TOL)


def test_sides_that_are_not_multiples_of_the_patch_are_zero_padded():
    torch.manual_seed(0)
    pe = PatchEmbed(img_size=28, patch_size=7, in_chans=1, embed_dim=12)
    x = torch.randn(2, 1, 30, 33)
    padded = torch.zeros(2, 1, 35, 35)
    padded[..., :30, :33] = x  # right / bottom
    assert pe.grid_for((30, 33)) == (5, 5)
    torch.testing.assert_close(pe(x), pe(padded), rtol=0, atol=0)
    torch.testing.assert_close(pe.forward_unfold(x), pe(padded), **TOL)
    model = _small()  # 28x28, 4x4 patches
    assert model(torch.randn(1, 1, 30, 30)).shape == (1, 10)  # an 8x8 grid, re-sampled embedding
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        model(torch.randn(1, 3, 28, 28))


# --------------------------------------------------------------------------- shapes and counts


def test_vit_b_16_embedding_shapes():
    """The curriculum's numbers: 224x224x3 -> 196 patches of 16x16x3 = 768 -> 196 x 768 -> 197 x 768."""
    with torch.device("meta"):
        model = create_model("vit_b_16")
    shapes = embedding_shapes(model)
    assert shapes == {
        "image": (3, 224, 224),
        "patches": (196, 768),
        "patch tokens": (196, 768),
        "with class token": (197, 768),
        "encoder input": (197, 768),
    }
    assert embedding_shapes(model, 160)["encoder input"] == (101, 768)  # 10 x 10 patches + 1


def _vit_count(D: int, depth: int, patch: int = 16, chans: int = 3, tokens: int = 197, classes: int = 1000, mlp: int = 4) -> int:
    """Counted by hand: qkv 3D^2+3D, projection D^2+D, MLP 2*mlp*D^2 + mlp*D + D, two LayerNorms 4D."""
    layer = (3 * D * D + 3 * D) + (D * D + D) + (2 * mlp * D * D + mlp * D + D) + 4 * D
    return (chans * patch * patch * D + D) + D + tokens * D + depth * layer + 2 * D + (D * classes + classes)


@pytest.mark.parametrize("name, D", [("vit_b_16", 768), ("vit_s_16", 384), ("vit_ti_16", 192)])
def test_parameter_counts_from_the_architecture(name, D):
    with torch.device("meta"):
        model = create_model(name)
    assert n_params(model) == _vit_count(D, 12) == get_model_entry(name).num_params
    assert {"vit_b_16": 86_567_656, "vit_s_16": 22_050_664, "vit_ti_16": 5_717_416}[name] == _vit_count(D, 12)


def test_small_fmnist_vit_count_and_shapes():
    entry = get_model_entry("vit_tiny_28")
    cfg = entry.defaults
    model = create_model("vit_tiny_28").eval()
    D = cfg["embed_dim"]
    grid = 28 // cfg["patch_size"]
    count = _vit_count(D, cfg["depth"], cfg["patch_size"], 1, 1 + grid * grid, 10, int(cfg["mlp_ratio"]))
    assert n_params(model) == count == entry.num_params
    x = torch.randn(2, 1, 28, 28)
    assert model(x).shape == (2, 10)
    assert embedding_shapes(model)["with class token"] == (1 + grid * grid, D)


# --------------------------------------------------------------------------- position embeddings


def test_resample_to_the_same_grid_is_the_identity_and_keeps_the_class_token():
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 14 * 14, 8)
    torch.testing.assert_close(resample_pos_embed(pos, (14, 14), (14, 14)), pos, rtol=0, atol=1e-6)
    bigger = resample_pos_embed(pos, (20, 18), (14, 14))
    assert bigger.shape == (1, 1 + 20 * 18, 8)
    assert torch.equal(bigger[:, 0], pos[:, 0])
    # bicubic weights sum to 1: a grid that is constant per feature stays constant
    const = torch.cat([pos[:, :1], torch.arange(8.0).expand(1, 196, 8)], dim=1)
    torch.testing.assert_close(resample_pos_embed(const, (10, 10), (14, 14))[:, 1:], torch.arange(8.0).expand(1, 100, 8), **TOL)


def test_224_model_runs_on_160_inputs():
    model = create_model("vit_ti_16", num_classes=5).eval()
    x = torch.randn(1, 3, 160, 160)
    with record_attention(model) as maps:
        out = model(x)
    assert out.shape == (1, 5) and torch.isfinite(out).all()
    assert maps[0].shape == (1, 3, 101, 101)
    # the embedding the model used is the re-sampled one
    torch.testing.assert_close(model.position_embedding((10, 10)), resample_pos_embed(model.pos_embed, (10, 10), (14, 14)), rtol=0, atol=0)
    assert model.position_embedding((14, 14)) is model.pos_embed


# --------------------------------------------------------------------------- the whole model


def test_vit_equals_a_forward_through_torch_layers():
    """Oracle: the ViT equations written with torch's conv, nn.TransformerEncoderLayer
    (norm_first, GELU, eps 1e-6) carrying the model's weights, LayerNorm and Linear."""
    model = _small()
    torch.manual_seed(1)
    x = torch.randn(3, 1, 28, 28)
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        tokens = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
        h = torch.cat([model.cls_token.expand(3, -1, -1), tokens], dim=1) + model.pos_embed
        for block in model.blocks:
            ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu", layer_norm_eps=1e-6, batch_first=True, norm_first=True)
            ref.load_state_dict(block.state_dict())
            h = ref.eval()(h)
        expected = model.head(model.norm(h)[:, 0])
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
    torch.testing.assert_close(model(x), expected, **TOL)
    torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x), rtol=0, atol=0)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (3, 32)
    assert model.feature_layers == ["blocks.0", "blocks.1", "blocks.2"]


def test_global_pool_avg_uses_the_patch_tokens():
    model = _small(global_pool="avg")
    feats = model.forward_features(torch.randn(2, 1, 28, 28))
    torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats[:, 1:].mean(1), rtol=0, atol=0)
    with pytest.raises(ValueError, match="global_pool"):
        _small(global_pool="max")


def test_fused_attention_option_gives_the_same_model_on_the_fused_path(monkeypatch):
    """fused_attention=True: the same weights and outputs (to float32 tolerance) as the scratch
    path, and the attention layers really call F.scaled_dot_product_attention."""
    torch.manual_seed(0)
    scratch = create_model("vit_tiny_28", fused_attention=False).eval()
    torch.manual_seed(0)
    fused = create_model("vit_tiny_28", fused_attention=True).eval()
    x = torch.randn(3, 1, 28, 28)
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    out_fused = fused(x)
    assert len(calls) == 6  # one per layer
    torch.testing.assert_close(out_fused, scratch(x), **TOL)
    assert len(calls) == 6  # the scratch model never takes it
    assert all(torch.equal(a, b) for a, b in zip(fused.state_dict().values(), scratch.state_dict().values()))
    assert len(attention_maps(fused, x)) == 6  # maps come from the scratch path all the same


# --------------------------------------------------------------------------- explanations


def test_attention_maps_from_the_model():
    model = _small()
    model.train()
    maps = attention_maps(model, torch.randn(2, 1, 28, 28))
    assert model.training and all(m.training for m in model.modules())  # modes restored
    assert len(maps) == 3 and all(m.shape == (2, 4, 50, 50) for m in maps)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 4, 50), **TOL)


def test_rollout_of_identity_attention_is_the_identity():
    eye = torch.eye(6).expand(2, 3, 6, 6)
    torch.testing.assert_close(attention_rollout([eye, eye, eye]), torch.eye(6).expand(2, 6, 6), rtol=0, atol=1e-7)


def test_rollout_by_hand_and_rows_sum_to_one():
    """Two layers of one head on 2 tokens: A_l = 0.5 W_l + 0.5 I, rollout = A_2 A_1."""
    w1 = torch.tensor([[[[0.2, 0.8], [0.6, 0.4]]]])
    w2 = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    a1 = torch.tensor([[0.6, 0.4], [0.3, 0.7]])
    a2 = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    torch.testing.assert_close(attention_rollout([w1, w2])[0], a2 @ a1, rtol=0, atol=1e-7)
    torch.manual_seed(0)
    maps = [torch.softmax(torch.randn(2, 4, 10, 10), -1) for _ in range(5)]
    for fusion in ("mean", "max", "min"):
        for discard in (0.0, 0.5):
            r = attention_rollout(maps, discard_ratio=discard, head_fusion=fusion)
            assert r.shape == (2, 10, 10)
            torch.testing.assert_close(r.sum(-1), torch.ones(2, 10), **TOL)
    with pytest.raises(ValueError, match="head_fusion"):
        attention_rollout(maps, head_fusion="median")


def test_cls_attention_grid():
    a = torch.zeros(2, 3, 1 + 6, 1 + 6)
    a[..., 0, 1:] = torch.arange(6.0)
    g = cls_attention_grid(a, (2, 3))
    assert g.shape == (2, 3, 2, 3)
    assert torch.equal(g[1, 2], torch.tensor([[0.0, 1, 2], [3, 4, 5]]))
    with pytest.raises(ValueError, match="T = 1 \\+ 3x3"):
        cls_attention_grid(a, (3, 3))


@pytest.mark.parametrize("chans", [1, 3])
def test_draw_attention_writes_a_png(tmp_path, chans):
    torch.manual_seed(0)
    model = ViT(ViTConfig(patch_size=4, embed_dim=16, depth=2, num_heads=2), num_classes=10, in_chans=chans, img_size=16)
    assert model.training
    image = torch.randint(0, 256, (chans, 16, 16), dtype=torch.uint8)
    path = draw_attention(image, model, tmp_path / "attn.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    from PIL import Image

    with Image.open(path) as im:
        im.verify()
    assert model.training  # left as it was
    with pytest.raises(ValueError, match="one image"):
        draw_attention(torch.zeros(2, chans, 16, 16), model, tmp_path / "bad.png")
