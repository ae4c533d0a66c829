"""Scaled dot-product and multi-head attention against torch's, the fused switch, recording,
and positional encodings (values worked by hand).

Tolerances (float32, inputs ~N(0, 1)): the function against F.scaled_dot_product_attention
rtol 1e-5 / atol 1e-6 (float64: 1e-12); MultiHeadAttention against nn.MultiheadAttention
with copied weights rtol 1e-5 / atol 2e-6 (outputs and weights), gradients rtol 1e-4 / atol 1e-5.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.layers.attention import (
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    causal_mask,
    fused_default,
    record_attention,
    scaled_dot_product_attention,
    sinusoidal_position_encoding,
    use_fused,
)
from deepnotes.layers.transformer import TransformerEncoder, TransformerEncoderLayer

TOL = dict(rtol=1e-5, atol=1e-6)
MHA_TOL = dict(rtol=1e-5, atol=2e-6)

# --------------------------------------------------------------------------- the function

# (batch dims, L, S, E, Ev)
SHAPES = [((), 1, 1, 1, 1), ((2,), 5, 5, 8, 8), ((2, 3), 4, 7, 16, 5), ((1, 4), 9, 3, 32, 32), ((3, 2), 17, 17, 64, 24)]


def _qkv(shape, seed=0, dtype=torch.float32):
    batch, L, S, E, Ev = shape
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, L, E, generator=g, dtype=dtype), torch.randn(*batch, S, E, generator=g, dtype=dtype),
            torch.randn(*batch, S, Ev, generator=g, dtype=dtype))  # fmt: skip


def _masks(shape, seed=0):
    """Named masks for the scores (..., L, S) in F.sdpa's convention, with no fully masked row."""
    batch, L, S, _, _ = shape
    g = torch.Generator().manual_seed(seed + 1)
    bool_mask = torch.rand(*batch, L, S, generator=g) > 0.4
    bool_mask[..., 0] = True  # every query keeps one key
    bcast = torch.rand(L, S, generator=g) > 0.5
    bcast[:, -1] = True
    return {
        "none": None,
        "bool": bool_mask,
        "bool_broadcast": bcast,
        "float": torch.randn(*batch, L, S, generator=g),
        "float_with_-inf": torch.randn(L, S, generator=g).masked_fill(~bcast, float("-inf")),
    }


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("mask_name", ["none", "bool", "bool_broadcast", "float", "float_with_-inf"])
def test_sdpa_equals_torch(shape, mask_name):
    q, k, v = _qkv(shape)
    mask = _masks(shape)[mask_name]
    ours, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask, return_weights=True)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]), **TOL)


@pytest.mark.parametrize("shape", SHAPES[1:], ids=str)
def test_sdpa_causal_and_scale_equal_torch(shape):
    q, k, v = _qkv(shape, seed=3)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, is_causal=True), F.scaled_dot_product_attention(q, k, v, is_causal=True), **TOL)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, scale=0.3), F.scaled_dot_product_attention(q, k, v, scale=0.3), **TOL)


def test_sdpa_float64_and_gradients_equal_torch():
    shape = ((2, 3), 6, 9, 8, 4)
    q, k, v = (t.requires_grad_() for t in _qkv(shape, dtype=torch.float64))
    mask = _masks(shape)["bool"]
    ours = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ours)
    for a, b in zip(torch.autograd.grad(ours, (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_sdpa_by_hand():
    """One query [1, 0], keys [1, 0] and [0, 1]: logits 1/sqrt(2) and 0 -> weights e^a/(e^a+1), 1/(e^a+1)."""
    q = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    v = torch.tensor([[10.0], [20.0]], dtype=torch.float64)
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    a = math.exp(1 / math.sqrt(2))
    expected = torch.tensor([[a / (a + 1), 1 / (a + 1)]], dtype=torch.float64)
    torch.testing.assert_close(w, expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(out, expected @ v, rtol=0, atol=1e-13)


def test_fully_masked_rows_give_zeros_like_torch_sdpa():
    """A query that may attend nowhere: zero weights, zero output, zero (finite) gradients.
    F.scaled_dot_product_attention on this torch also gives zeros (bool and -inf float masks)."""
    q, k, v = (t.requires_grad_() for t in _qkv(((2,), 4, 5, 8, 3)))
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[2] = False
    fmask = torch.zeros(4, 5).masked_fill(~mask, float("-inf"))
    for m in (mask, fmask):
        out, w = scaled_dot_product_attention(q, k, v, attn_mask=m, return_weights=True)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        assert torch.equal(ref[:, 2], torch.zeros(2, 3))  # torch's own behaviour, stated
        assert torch.equal(out[:, 2], torch.zeros(2, 3)) and torch.equal(w[:, 2], torch.zeros(2, 5))
        torch.testing.assert_close(out, ref, **TOL)
        grads = torch.autograd.grad(out.sum(), (q, k, v))
        assert all(torch.isfinite(g).all() for g in grads)
        assert torch.equal(grads[0][:, 2], torch.zeros(2, 8))


def test_causal_output_ignores_future_tokens():
    q, k, v = _qkv(((2,), 6, 6, 8, 8))
    out = scaled_dot_product_attention(q, k, v, is_causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[:, 4:] += 5.0
    v2[:, 4:] -= 3.0
    out2 = scaled_dot_product_attention(q, k2, v2, is_causal=True)
    assert torch.equal(out[:, :4], out2[:, :4])
    assert not torch.allclose(out[:, 4:], out2[:, 4:])


def test_causal_and_explicit_mask_combine():
    q, k, v = _qkv(((1,), 5, 5, 4, 4))
    pad = torch.ones(5, 5, dtype=torch.bool)
    pad[:, 3:] = False  # keys 3 and 4 are padding
    both = scaled_dot_product_attention(q, k, v, attn_mask=pad, is_causal=True)
    torch.testing.assert_close(both, F.scaled_dot_product_attention(q, k, v, attn_mask=pad & causal_mask(5)), **TOL)


def test_sdpa_dropout_zeroes_and_rescales_weights():
    q, k, v = _qkv(((2, 2), 6, 7, 8, 5))
    _, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    torch.manual_seed(0)
    out, wd = scaled_dot_product_attention(q, k, v, dropout_p=0.5, return_weights=True)
    dropped = wd == 0
    assert 0.3 < dropped.float().mean() < 0.7
    torch.testing.assert_close(wd[~dropped], 2 * w[~dropped], **TOL)
    torch.testing.assert_close(out, wd @ v, **TOL)


def test_sdpa_rejects_bad_input():
    q, k, v = _qkv(((2,), 3, 4, 8, 8))
    with pytest.raises(ValueError, match="same last size E"):
        scaled_dot_product_attention(q, k[..., :5], v)
    with pytest.raises(ValueError, match="same length S"):
        scaled_dot_product_attention(q, k, v[:, :2])
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool .* or float"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(3, 4, dtype=torch.int64))


# --------------------------------------------------------------------------- multi-head attention


def _pair(seed=0, **kwargs):
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(batch_first=kwargs.pop("batch_first", True), **kwargs)
    ours = MultiHeadAttention(batch_first=ref.batch_first, **kwargs)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def test_state_dict_names_match_torch():
    for kwargs in (dict(embed_dim=16, num_heads=4), dict(embed_dim=16, num_heads=4, kdim=6, vdim=10), dict(embed_dim=8, num_heads=2, bias=False)):
        ours, ref = MultiHeadAttention(**kwargs), nn.MultiheadAttention(**kwargs)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


def _mha_inputs(B, L, S, E, kdim, vdim, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L, E, generator=g), torch.randn(B, S, kdim, generator=g), torch.randn(B, S, vdim, generator=g)


MHA_CASES = {
    "self": dict(mha=dict(embed_dim=16, num_heads=4), L=6, S=6, self_attn=True),
    "cross": dict(mha=dict(embed_dim=16, num_heads=2), L=5, S=8),
    "kdim_vdim": dict(mha=dict(embed_dim=12, num_heads=3, kdim=7, vdim=9), L=4, S=6),
    "no_bias": dict(mha=dict(embed_dim=8, num_heads=2, bias=False), L=5, S=5, self_attn=True),
    "seq_first": dict(mha=dict(embed_dim=16, num_heads=4, batch_first=False), L=5, S=7),
}


def _masks_for(B, L, S, H, kind, seed=2):
    """torch's convention: True = not allowed. No query loses every key."""
    g = torch.Generator().manual_seed(seed)
    kpm = torch.zeros(B, S, dtype=torch.bool)
    kpm[0, S // 2 :] = True  # the first sequence is padded
    am = torch.rand(L, S, generator=g) > 0.6
    am[:, 0] = False
    if kind == "none":
        return {}
    if kind == "kpm_bool":
        return dict(key_padding_mask=kpm)
    if kind == "kpm_float":
        return dict(key_padding_mask=torch.zeros(B, S).masked_fill(kpm, float("-inf")) + torch.randn(B, S, generator=g))
    if kind == "attn_bool":
        return dict(attn_mask=am)
    if kind == "attn_float":
        return dict(attn_mask=torch.randn(L, S, generator=g))
    if kind == "attn_3d_and_kpm":
        am3 = torch.rand(B * H, L, S, generator=g) > 0.6
        am3[..., 0] = False
        return dict(attn_mask=am3, key_padding_mask=kpm)
    raise AssertionError(kind)


@pytest.mark.parametrize("case", sorted(MHA_CASES))
@pytest.mark.parametrize("masks", ["none", "kpm_bool", "kpm_float", "attn_bool", "attn_float", "attn_3d_and_kpm"])
@pytest.mark.parametrize("average", [True, False])
def test_mha_equals_torch(case, masks, average):
    c = MHA_CASES[case]
    ours, ref = _pair(**c["mha"])
    E, H = c["mha"]["embed_dim"], c["mha"]["num_heads"]
    B, L, S = 3, c["L"], c["S"]
    q, k, v = _mha_inputs(B, L, S, E, c["mha"].get("kdim", E), c["mha"].get("vdim", E))
    if c.get("self_attn"):
        k = v = q
    m = _masks_for(B, L, S, H, masks)
    if not ref.batch_first:
        q, k, v = (t.transpose(0, 1) for t in (q, k, v))
        if c.get("self_attn"):
            k = v = q
    out, w = ours(q, k, v, average_attn_weights=average, **m)
    ref_out, ref_w = ref(q, k, v, average_attn_weights=average, **m)
    torch.testing.assert_close(out, ref_out, **MHA_TOL)
    torch.testing.assert_close(w, ref_w, **MHA_TOL)
    assert w.shape == ((B, L, S) if average else (B, H, L, S))
    out_nw, w_nw = ours(q, k, v, need_weights=False, **m)
    assert w_nw is None
    torch.testing.assert_close(out_nw, ref_out, **MHA_TOL)


def test_mha_gradients_equal_torch():
    ours, ref = _pair(embed_dim=16, num_heads=4)
    q, k, v = _mha_inputs(2, 5, 7, 16, 16, 16)
    kpm = torch.zeros(2, 7, dtype=torch.bool)
    kpm[1, 4:] = True
    g = torch.randn(2, 5, 16)
    (ours(q, k, v, key_padding_mask=kpm)[0] * g).sum().backward()
    (ref(q, k, v, key_padding_mask=kpm)[0] * g).sum().backward()
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[name].grad, rtol=1e-4, atol=1e-5)


def test_mha_unbatched_and_causal():
    ours, ref = _pair(embed_dim=8, num_heads=2)
    x = torch.randn(6, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(6)  # float, -inf above the diagonal
    out, w = ours(x, x, x, attn_mask=mask, average_attn_weights=False)
    ref_out, ref_w = ref(x, x, x, attn_mask=mask, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, **MHA_TOL)
    torch.testing.assert_close(w, ref_w, **MHA_TOL)
    assert w.shape == (2, 6, 6)
    # is_causal alone builds the same mask (torch needs the mask with its hint)
    torch.testing.assert_close(ours(x, x, x, is_causal=True)[0], ref_out, **MHA_TOL)


def test_mha_fully_padded_sequence_gives_the_output_bias():
    """All keys of sequence 1 are padding: torch's weights path gives NaN, its need_weights=False
    path (F.sdpa) gives zero attention, so out_proj's bias; ours gives that in both paths."""
    ours, ref = _pair(embed_dim=8, num_heads=2)
    with torch.no_grad():
        ref.out_proj.bias.normal_()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, 8)
    kpm = torch.zeros(2, 4, dtype=torch.bool)
    kpm[1] = True
    assert torch.isnan(ref(x, x, x, key_padding_mask=kpm)[0][1]).all()
    ref_out = ref(x, x, x, key_padding_mask=kpm, need_weights=False)[0]
    for fused in (False, True):
        with use_fused(fused):
            out, _ = ours(x, x, x, key_padding_mask=kpm, need_weights=False)
        torch.testing.assert_close(out, ref_out, **MHA_TOL)
        torch.testing.assert_close(out[1], ours.out_proj.bias.expand(4, 8), rtol=0, atol=0)
    out, w = ours(x, x, x, key_padding_mask=kpm)
    assert torch.equal(w[1], torch.zeros(4, 4)) and torch.isfinite(out).all()


def test_mha_rejects_bad_input():
    m = MultiHeadAttention(8, 2)
    x = torch.randn(2, 3, 8)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="expected last sizes"):
        m(x, torch.randn(2, 3, 5), torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="key_padding_mask must be"):
        m(x, x, x, key_padding_mask=torch.zeros(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask must be"):
        m(x, x, x, attn_mask=torch.zeros(4, 3, dtype=torch.bool))


# --------------------------------------------------------------------------- the fused switch


@pytest.mark.parametrize("masks", ["none", "kpm_bool", "kpm_float", "attn_bool", "attn_float", "attn_3d_and_kpm", "causal"])
def test_fused_and_scratch_paths_are_equal(masks):
    torch.manual_seed(0)
    m = MultiHeadAttention(16, 4)
    q, k, v = _mha_inputs(3, 6, 6, 16, 16, 16)
    kwargs = dict(is_causal=True) if masks == "causal" else _masks_for(3, 6, 6, 4, masks)
    results = []
    for fused in (False, True):
        qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
        with use_fused(fused):
            out, _ = m(qq, kk, vv, need_weights=False, **kwargs)
        grads = torch.autograd.grad(out.square().sum(), (qq, kk, vv, m.in_proj_weight))
        results.append((out, grads))
    torch.testing.assert_close(results[0][0], results[1][0], **MHA_TOL)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fused_switch_routes_calls(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    x = torch.randn(2, 3, 8)
    follow, scratch, fused = MultiHeadAttention(8, 2), MultiHeadAttention(8, 2, fused=False), MultiHeadAttention(8, 2, fused=True)
    assert fused_default() is False
    follow(x, x, x, need_weights=False)
    assert calls == []
    with use_fused(True):
        assert fused_default() is True
        follow(x, x, x, need_weights=False)
        assert len(calls) == 1
        scratch(x, x, x, need_weights=False)  # per-module False wins
        follow(x, x, x, need_weights=True)  # weights need the scratch path
        assert len(calls) == 1
    assert fused_default() is False
    fused(x, x, x, need_weights=False)  # per-module True wins
    assert len(calls) == 2
    with pytest.raises(RuntimeError), use_fused(True):
        raise RuntimeError("restored even after an error")
    assert fused_default() is False


# --------------------------------------------------------------------------- recording


def _encoder(depth=2):
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0)
    return TransformerEncoder(layer, depth)


def test_record_attention_returns_maps_in_call_order_and_restores_state():
    model = _encoder(3)
    x = torch.randn(2, 5, 16)
    before = model(x)
    with record_attention(model) as maps:
        out = model(x)
        assert all(layer.self_attn.last_attention is maps[i] for i, layer in enumerate(model.layers))
    torch.testing.assert_close(out, before, rtol=0, atol=0)
    assert len(maps) == 3 and all(a.shape == (2, 4, 5, 5) for a in maps)
    # each map is what that layer's attention returns as per-head weights
    h = x
    for layer, a in zip(model.layers, maps):
        _, w = layer.self_attn(h, h, h, average_attn_weights=False)
        torch.testing.assert_close(a, w, rtol=0, atol=0)
        h = layer(h)
    for m in model.modules():
        if isinstance(m, MultiHeadAttention):
            assert m.last_attention is None and m._recorders == []
    model(x)
    assert len(maps) == 3  # nothing recorded after the block


def test_record_attention_nests_survives_errors_and_forces_weights_in_fused_mode():
    model = _encoder(2)
    x = torch.randn(1, 4, 16)
    with use_fused(True), record_attention(model) as outer:
        model(x)
        with record_attention(model) as inner:
            model(x)
        model(x)
    assert len(outer) == 6 and len(inner) == 2
    with pytest.raises(KeyError), record_attention(model) as maps:
        model(x)
        raise KeyError("boom")
    assert len(maps) == 2
    assert all(m._recorders == [] and m.last_attention is None for m in model.modules() if isinstance(m, MultiHeadAttention))
    with pytest.raises(ValueError, match="no deepnotes MultiHeadAttention"), record_attention(nn.Linear(2, 2)):
        pass


# --------------------------------------------------------------------------- positional encodings


def test_sinusoidal_values_by_hand():
    """dim 4: columns sin(pos), cos(pos), sin(pos / 100), cos(pos / 100) (10000^(2/4) = 100)."""
    pe = sinusoidal_position_encoding(50, 4).double()
    for pos in (0, 1, 3, 49):
        expected = [math.sin(pos), math.cos(pos), math.sin(pos / 100), math.cos(pos / 100)]
        torch.testing.assert_close(pe[pos], torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-7)
    pe = sinusoidal_position_encoding(10, 512)
    assert pe.shape == (10, 512)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 256))  # sin 0, cos 0
    # column 2i = 100: pos / 10000^(100/512)
    assert pe[7, 100].item() == pytest.approx(math.sin(7 / 10000 ** (100 / 512)), abs=1e-6)
    assert pe[7, 101].item() == pytest.approx(math.cos(7 / 10000 ** (100 / 512)), abs=1e-6)
    odd = sinusoidal_position_encoding(3, 5)
    assert odd.shape == (3, 5) and odd[2, 4].item() == pytest.approx(math.sin(2 / 10000 ** (4 / 5)), abs=1e-7)


def test_positional_modules():
    enc = SinusoidalPositionalEncoding(8, max_len=20)
    assert list(enc.parameters()) == [] and "pe" in dict(enc.named_buffers()) and enc.state_dict() == {}
    x = torch.randn(2, 6, 8)
    torch.testing.assert_close(enc(x), x + sinusoidal_position_encoding(6, 8), rtol=0, atol=0)
    learned = LearnedPositionalEmbedding(10, 8)
    assert [n for n, _ in learned.named_parameters()] == ["weight"]
    torch.testing.assert_close(learned(x), x + learned.weight[:6], rtol=0, atol=0)
    with pytest.raises(ValueError, match="L <= 10"):
        learned(torch.randn(1, 11, 8))
    with pytest.raises(ValueError, match="L <= 20"):
        enc(torch.randn(1, 21, 8))


# --------------------------------------------------------------------------- regressions (issue: five departures from torch)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float_mask_blocking_a_whole_row_gives_torchs_gradients_not_nan(dtype):
    """The issue's case: an additive mask with one row of -inf and an upstream gradient ~100 N(0, 1).
    The old softmax divided by sum.clamp_min(tiny); its backward g / tiny overflowed to inf, and
    inf * exp'(-inf) = inf * 0 put NaN into q.grad (4) and k.grad (20). Now: torch's gradients,
    exactly zero for the blocked query (relative tolerance 1e-5 on gradients of size ~100)."""
    torch.manual_seed(0)
    q = torch.randn(1, 1, 3, 4, dtype=dtype, requires_grad=True)
    k = torch.randn(1, 1, 5, 4, dtype=dtype, requires_grad=True)
    v = torch.randn(1, 1, 5, 4, dtype=dtype, requires_grad=True)
    m = torch.zeros(3, 5, dtype=dtype)
    m[1] = float("-inf")
    out = scaled_dot_product_attention(q, k, v, attn_mask=m)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
    g = 100 * torch.randn_like(out)
    ours, theirs = torch.autograd.grad(out, (q, k, v), g, retain_graph=True), torch.autograd.grad(ref, (q, k, v), g)
    torch.testing.assert_close(out, ref, **TOL)
    assert torch.equal(out[..., 1, :], torch.zeros(1, 1, 4, dtype=dtype))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a / 100, b / 100, rtol=1e-5, atol=1e-5)
    assert torch.equal(ours[0][..., 1, :], torch.zeros(1, 1, 4, dtype=dtype))
    # the blocked query adds nothing to k's and v's gradients: the same with its upstream row zeroed
    g0 = g.clone()
    g0[..., 1, :] = 0
    for a, b in zip(ours[1:], torch.autograd.grad(out, (k, v), g0)):
        assert torch.equal(a, b)


def test_no_keys_gives_zeros_like_torch():
    """S = 0: every query attends nowhere; torch returns zeros (the scratch softmax's amax used to raise)."""
    q, k, v = torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 0, 4), torch.randn(2, 0, 5)
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    assert torch.equal(out, F.scaled_dot_product_attention(q, k, v)) and torch.equal(out, torch.zeros(2, 3, 5))
    assert w.shape == (2, 3, 0)
    (gq,) = torch.autograd.grad(out.sum(), q)
    assert torch.equal(gq, torch.zeros(2, 3, 4))


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.parametrize("fused", [False, True], ids=["scratch", "fused"])
def test_mha_padded_sequence_with_float_attn_mask_gives_torchs_gradients(fused):
    """A bool key_padding_mask that pads all of sequence 1, merged with a float attn_mask, is a float
    row of -inf: one backward pass used to put NaN into the input gradient, in_proj_weight and
    in_proj_bias. Now every gradient equals torch's need_weights=False path (F.sdpa, zeros there)."""
    ours, ref = _pair(embed_dim=8, num_heads=2)
    x = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(0))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    kpm = torch.zeros(2, 4, dtype=torch.bool)
    kpm[1] = True
    am = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    g = 100 * torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(2))
    with use_fused(fused):
        out, _ = ours(xa, xa, xa, key_padding_mask=kpm, attn_mask=am, need_weights=False)
    ref_out, _ = ref(xb, xb, xb, key_padding_mask=kpm, attn_mask=am, need_weights=False)
    torch.testing.assert_close(out, ref_out, **MHA_TOL)
    (out * g).sum().backward()
    (ref_out * g).sum().backward()
    torch.testing.assert_close(xa.grad / 100, xb.grad / 100, rtol=1e-4, atol=1e-5)
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad / 100, ref_grads[name].grad / 100, rtol=1e-4, atol=1e-5)


def _sinusoids64(length, dim):
    """The table by hand in Python floats (math.sin / math.cos, double precision)."""
    def entry(pos, c):
        return (math.sin if c % 2 == 0 else math.cos)(pos / 10000 ** ((c - c % 2) / dim))

    rows = [[entry(pos, c) for c in range(dim)] for pos in range(length)]
    return torch.tensor(rows, dtype=torch.float64)


def test_sinusoidal_table_is_exact_in_every_dtype():
    """.double() used to give the float32 table in float64 (3e-8 off). Now the buffer is recomputed
    from float64 whenever the module changes dtype (round trips included), and an input of another
    dtype gets its own rows. Tolerance 1e-15: a correctly rounded float64 table differs from the
    hand-computed one by an ulp or two (sin of arguments up to 100: ~1e-14 absolute at worst)."""
    ref = _sinusoids64(100, 10)
    enc = SinusoidalPositionalEncoding(10, max_len=100)
    x64 = torch.zeros(1, 100, 10, dtype=torch.float64)
    torch.testing.assert_close(enc(x64)[0], ref, rtol=0, atol=1e-14)  # float64 input, float32 module
    assert torch.equal(enc.pe, ref.float())  # float32: the float64 values rounded once
    enc.half().double()
    assert enc.pe.dtype == torch.float64
    torch.testing.assert_close(enc(x64)[0], ref, rtol=0, atol=1e-14)
    torch.testing.assert_close(enc.pe, ref, rtol=0, atol=1e-14)
    assert torch.equal(enc.bfloat16().pe, ref.bfloat16())
    assert torch.equal(enc.float().pe, ref.float())
    # still a buffer kept out of the state dict (persistent=False), as before
    assert enc.state_dict() == {} and "pe" in enc._non_persistent_buffers_set and list(enc.parameters()) == []


def test_batch_first_default_departs_from_torch_and_the_docstring_says_so():
    """batch_first defaults to True here, False in torch: the drop-in docstrings state it."""
    from deepnotes.layers import attention, transformer

    assert MultiHeadAttention(8, 2).batch_first is True and nn.MultiheadAttention(8, 2).batch_first is False
    assert TransformerEncoderLayer(8, 2).self_attn.batch_first is True
    assert nn.TransformerEncoderLayer(8, 2).self_attn.batch_first is False
    for doc in (attention.__doc__, MultiHeadAttention.__doc__, transformer.__doc__, TransformerEncoderLayer.__doc__):
        assert "batch_first=True by default (torch: False)" in " ".join(doc.split()), doc[:80]
