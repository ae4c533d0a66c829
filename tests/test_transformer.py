"""Encoder and decoder layers (and stacks) against torch's, with copied weights.

torch's layers are run on their "slow path" (torch.backends.mha fast path off): the fused
inference kernel is a different computation (and with nested tensors zeroes padded rows).
Dropout is on in the constructors (0.1) and off through eval(), so eval() must turn it off
everywhere. Tolerance: rtol 1e-5 / atol 1e-5 (float32, activations ~N(0, 1), LayerNorm
divides by std); gradients rtol 1e-4 / atol 1e-5.
"""

import pytest
import torch
from torch import nn

from deepnotes.layers.attention import use_fused
from deepnotes.layers.transformer import (
    FeedForward,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

TOL = dict(rtol=1e-5, atol=1e-5)
D, H, FF = 16, 4, 40


pytestmark = pytest.mark.usefixtures("mha_slow_path")  # tests/conftest.py


def _copy(ours: nn.Module, ref: nn.Module) -> None:
    missing = ours.load_state_dict(ref.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys


def _encoder_pair(norm_first, activation="relu", bias=True):
    torch.manual_seed(0)
    kwargs = dict(dim_feedforward=FF, dropout=0.1, activation=activation, batch_first=True, norm_first=norm_first, bias=bias)
    ref = nn.TransformerEncoderLayer(D, H, **kwargs)
    ours = TransformerEncoderLayer(D, H, **kwargs)
    _copy(ours, ref)
    return ours.eval(), ref.eval()


def _decoder_pair(norm_first, activation="relu"):
    torch.manual_seed(0)
    kwargs = dict(dim_feedforward=FF, dropout=0.1, activation=activation, batch_first=True, norm_first=norm_first)
    ref = nn.TransformerDecoderLayer(D, H, **kwargs)
    ours = TransformerDecoderLayer(D, H, **kwargs)
    _copy(ours, ref)
    return ours.eval(), ref.eval()


def test_state_dict_names_equal_torch():
    for ours, ref in (
        (TransformerEncoderLayer(D, H, FF), nn.TransformerEncoderLayer(D, H, FF, batch_first=True)),
        (TransformerDecoderLayer(D, H, FF, bias=False), nn.TransformerDecoderLayer(D, H, FF, batch_first=True, bias=False)),
    ):
        assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


def _src_masks(kind, B=3, L=7):
    kpm = torch.zeros(B, L, dtype=torch.bool)
    kpm[0, L - 3 :] = True
    kpm[-1, L - 1 :] = True
    causal = nn.Transformer.generate_square_subsequent_mask(L)  # float: -inf above the diagonal
    return {
        "none": {},
        "padding": dict(src_key_padding_mask=kpm),
        "causal_float": dict(src_mask=causal),
        "causal_bool_and_padding": dict(src_mask=causal.isinf(), src_key_padding_mask=kpm),
    }[kind]


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("masks", ["none", "padding", "causal_float", "causal_bool_and_padding"])
def test_encoder_layer_equals_torch(norm_first, activation, masks):
    ours, ref = _encoder_pair(norm_first, activation)
    x = torch.randn(3, 7, D)
    m = _src_masks(masks)
    torch.testing.assert_close(ours(x, **m), ref(x, **m), **TOL)
    with use_fused(True):
        torch.testing.assert_close(ours(x, **m), ref(x, **m), **TOL)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_encoder_layer_gradients_equal_torch(norm_first):
    torch.manual_seed(0)
    kwargs = dict(dim_feedforward=FF, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first, layer_norm_eps=1e-6)
    ref = nn.TransformerEncoderLayer(D, H, **kwargs)
    ours = TransformerEncoderLayer(D, H, **kwargs)
    _copy(ours, ref)
    x = torch.randn(2, 5, D)
    m = _src_masks("padding", B=2, L=5)
    g = torch.randn(2, 5, D)
    (ours(x, **m) * g).sum().backward()
    (ref(x, **m) * g).sum().backward()
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[name].grad, rtol=1e-4, atol=1e-5)


def _tgt_masks(kind, B=3, T=6, S=8):
    tpm = torch.zeros(B, T, dtype=torch.bool)
    tpm[1, 4:] = True
    mpm = torch.zeros(B, S, dtype=torch.bool)
    mpm[0, 5:] = True
    mpm[2, 7:] = True
    causal = nn.Transformer.generate_square_subsequent_mask(T)
    memory_mask = torch.rand(T, S, generator=torch.Generator().manual_seed(0)) > 0.7
    memory_mask[:, 0] = False
    return {
        "none": {},
        "causal": dict(tgt_mask=causal, tgt_is_causal=True),
        "causal_and_padding": dict(tgt_mask=causal.isinf(), tgt_key_padding_mask=tpm, memory_key_padding_mask=mpm),
        "memory_mask": dict(tgt_mask=causal.isinf(), memory_mask=memory_mask, memory_key_padding_mask=mpm),
    }[kind]


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
@pytest.mark.parametrize("masks", ["none", "causal", "causal_and_padding", "memory_mask"])
def test_decoder_layer_equals_torch(norm_first, masks):
    ours, ref = _decoder_pair(norm_first, "gelu" if norm_first else "relu")
    tgt, memory = torch.randn(3, 6, D), torch.randn(3, 8, D)
    m = _tgt_masks(masks)
    torch.testing.assert_close(ours(tgt, memory, **m), ref(tgt, memory, **m), **TOL)
    with use_fused(True):
        torch.testing.assert_close(ours(tgt, memory, **m), ref(tgt, memory, **m), **TOL)


def test_decoder_causal_flag_builds_the_mask_and_hides_the_future():
    ours, ref = _decoder_pair(False)
    tgt, memory = torch.randn(2, 6, D), torch.randn(2, 8, D)
    expected = ref(tgt, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(6))
    out = ours(tgt, memory, tgt_is_causal=True)
    torch.testing.assert_close(out, expected, **TOL)
    tgt2 = tgt.clone()
    tgt2[:, 3:] += 1.0  # change the future: the first three outputs must not move
    assert torch.equal(ours(tgt2, memory, tgt_is_causal=True)[:, :3], out[:, :3])


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_stacks_equal_torch(norm_first):
    torch.manual_seed(0)
    kwargs = dict(dim_feedforward=FF, dropout=0.1, batch_first=True, norm_first=norm_first)
    ref_enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, **kwargs), 3, norm=nn.LayerNorm(D), enable_nested_tensor=False)
    ref_dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, **kwargs), 2, norm=nn.LayerNorm(D))
    enc = TransformerEncoder(TransformerEncoderLayer(D, H, **kwargs), 3, norm=nn.LayerNorm(D))
    dec = TransformerDecoder(TransformerDecoderLayer(D, H, **kwargs), 2, norm=nn.LayerNorm(D))
    _copy(enc, ref_enc)
    _copy(dec, ref_dec)
    for m in (enc, dec, ref_enc, ref_dec):
        m.eval()
    src, tgt = torch.randn(2, 7, D), torch.randn(2, 5, D)
    kpm = _src_masks("padding", B=2, L=7)["src_key_padding_mask"]
    memory = enc(src, src_key_padding_mask=kpm)
    torch.testing.assert_close(memory, ref_enc(src, src_key_padding_mask=kpm), **TOL)
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    out = dec(tgt, memory, tgt_mask=causal, memory_key_padding_mask=kpm)
    torch.testing.assert_close(out, ref_dec(tgt, memory, tgt_mask=causal, memory_key_padding_mask=kpm), **TOL)


def test_training_mode_uses_dropout_and_eval_does_not():
    ours, _ = _encoder_pair(False)
    x = torch.randn(2, 7, D)
    ours.train()
    torch.manual_seed(1)
    a = ours(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, ours(x))
    ours.eval()
    assert torch.equal(ours(x), ours(x))


def test_feed_forward_is_position_wise_and_matches_the_layer():
    torch.manual_seed(0)
    ff = FeedForward(D, FF, dropout=0.0, activation="gelu")
    x = torch.randn(2, 5, D)
    expected = ff.linear2(torch.nn.functional.gelu(ff.linear1(x)))
    torch.testing.assert_close(ff(x), expected, rtol=0, atol=0)
    # position-wise: each token alone gives the same as in the sequence
    torch.testing.assert_close(ff(x[:, 2:3]), ff(x)[:, 2:3], rtol=1e-6, atol=1e-6)
    layer = TransformerEncoderLayer(D, H, FF, dropout=0.0, activation="gelu").eval()
    layer.linear1.load_state_dict(ff.linear1.state_dict())
    layer.linear2.load_state_dict(ff.linear2.state_dict())
    torch.testing.assert_close(layer._ff_block(x), ff(x), rtol=0, atol=0)


def test_encoder_without_positions_is_permutation_equivariant():
    """No positional encoding: permuting the tokens permutes the outputs (and nothing else)."""
    enc = TransformerEncoder(TransformerEncoderLayer(D, H, FF, dropout=0.0), 2).eval()
    x = torch.randn(2, 7, D)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(enc(x[:, perm]), enc(x)[:, perm], **TOL)


def test_bad_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="activation must be one of"):
        TransformerEncoderLayer(D, H, activation="swish")


def test_sequence_first_layout_equals_torch():
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(D, H, FF, dropout=0.1, batch_first=False).eval()
    ours = TransformerEncoderLayer(D, H, FF, dropout=0.1, batch_first=False).eval()
    _copy(ours, ref)
    x = torch.randn(7, 3, D)  # (L, B, D)
    kpm = _src_masks("padding")["src_key_padding_mask"]
    torch.testing.assert_close(ours(x, src_key_padding_mask=kpm), ref(x, src_key_padding_mask=kpm), **TOL)


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.parametrize("fused", [False, True], ids=["scratch", "fused"])
def test_training_step_with_a_fully_padded_sequence_leaves_every_parameter_finite(fused):
    """A language-model-style step: causal float mask (generate_square_subsequent_mask) and a bool
    padding mask with one sequence entirely padding; the two merge into float rows of -inf. The
    scratch softmax's backward used to turn those rows into NaN, and one SGD step then made every
    attention parameter NaN. Also the encoder-decoder (translation) layout with padded memory. The loss
    is scaled as in mixed-precision training, which makes gradients of the size that overflowed routine."""
    SCALE = 2.0**16
    torch.manual_seed(0)
    kwargs = dict(dim_feedforward=FF, dropout=0.1, batch_first=True)
    enc = TransformerEncoder(TransformerEncoderLayer(D, H, **kwargs), 2, norm=nn.LayerNorm(D))
    dec = TransformerDecoder(TransformerDecoderLayer(D, H, **kwargs), 2, norm=nn.LayerNorm(D))
    head = nn.Linear(D, 11)
    params = [*enc.parameters(), *dec.parameters(), *head.parameters()]
    B, L, T = 3, 6, 5
    src, tgt = torch.randn(B, L, D) * 3, torch.randn(B, T, D) * 3
    src_pad = torch.zeros(B, L, dtype=torch.bool)
    src_pad[1] = True  # a whole sequence of padding
    src_pad[2, 4:] = True
    tgt_pad = torch.zeros(B, T, dtype=torch.bool)
    tgt_pad[1] = True
    labels = torch.randint(0, 11, (B, T))
    with use_fused(fused):
        memory = enc(src, mask=nn.Transformer.generate_square_subsequent_mask(L), src_key_padding_mask=src_pad)
        out = dec(tgt, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(T), tgt_key_padding_mask=tgt_pad,
                  memory_key_padding_mask=src_pad)  # fmt: skip
        loss = nn.functional.cross_entropy(head(out).flatten(0, 1), labels.flatten())
        (loss * SCALE).backward()  # as torch.amp.GradScaler does (init_scale 2^16), then unscaled
    for p in params:
        p.grad /= SCALE
    assert all(torch.isfinite(p.grad).all() for p in params)
    with torch.no_grad():  # the SGD step, lr 0.1
        for p in params:
            p -= 0.1 * p.grad
    assert all(torch.isfinite(p).all() for p in params)


def test_layers_say_their_batch_first_default():
    """batch_first=True by default here (torch: False): the decoder layer's docstring says so too."""
    assert TransformerDecoderLayer(D, H).self_attn.batch_first is True
    assert "batch_first=True by default (torch: False)" in " ".join(TransformerDecoderLayer.__doc__.split())
