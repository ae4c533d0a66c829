"""GPT (models/gpt.py): causality, a block and the whole stack against torch's TransformerEncoderLayer
with the same weights, weight tying, GPT-2's initialisation, the registered parameter counts from
the formula, bad inputs, training (gradients everywhere, overfitting a short sequence), and a
state_dict round trip through safetensors.

Tolerances (float32): the oracle comparisons rtol 1e-5 / atol 1e-5 (weights re-drawn at std 0.2 so that
attention is far from uniform; activations ~N(0, 1) after each LayerNorm); causality atol 1e-6 (earlier
positions must not move at all; the fused kernel may reorder sums); the safetensors round trip exact.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.errors import UserError
from deepnotes.models.gpt import GPT, GPTConfig, gpt_num_params
from deepnotes.registry import create_model, get_model_entry
from deepnotes.rundir import RunDir

V = 11
TINY = dict(block_size=16, n_layer=2, n_head=2, n_embd=32)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(name: str, **overrides) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **overrides)


def tiny(seed: int = 0, vocab: int = V, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(vocab, None, GPTConfig(**{**TINY, "dropout": 0.0, **overrides}))


def formula(V: int, C: int, d: int, L: int, bias: bool) -> int:
    """Counted by hand, module by module (not from models/gpt.py): embeddings, blocks, final norm."""
    b = 1 if bias else 0
    layer_norm = d + b * d
    attention = (d * 3 * d + b * 3 * d) + (d * d + b * d)
    mlp = (d * 4 * d + b * 4 * d) + (4 * d * d + b * d)
    return V * d + C * d + L * (2 * layer_norm + attention + mlp) + layer_norm  # lm_head: the token embedding


# --------------------------------------------------------------------------- contract and counts


def test_attributes_shapes_and_features():
    model = tiny().eval()
    idx = torch.randint(0, V, (3, 10))
    logits = model(idx)
    assert logits.shape == (3, 10, V) and torch.isfinite(logits).all()
    features = model.forward_features(idx)
    assert features.shape == (3, 10, 32)
    torch.testing.assert_close(model.lm_head(features), logits, rtol=0, atol=0)
    assert (model.objective, model.context, tuple(model.classifier_modules)) == ("causal", 16, ())


@pytest.mark.parametrize("name, V_, C, d, L, bias", [
    ("gpt_nano", 65, 64, 128, 4, False),
    ("gpt_mini", 65, 128, 192, 6, False),
    ("gpt2", 50257, 1024, 768, 12, True),
])  # fmt: skip
def test_registered_counts_follow_the_formula(name, V_, C, d, L, bias):
    entry = get_model_entry(name)
    cfg = entry.variant.config
    assert (entry.input_size, entry.num_classes) == ((V_, C), V_)
    assert (cfg.block_size, cfg.n_embd, cfg.n_layer, cfg.bias) == (C, d, L, bias)
    assert entry.num_params == formula(V_, C, d, L, bias) == gpt_num_params(V_, C, L, d, bias)
    assert n_params(on_meta(name)) == entry.num_params
    assert (entry.task, entry.inputs) == ("language-model", "tokens")


def test_gpt2_small_is_124_439_808():
    assert n_params(on_meta("gpt2")) == 124_439_808


def test_weights_are_tied():
    model = tiny()
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.lm_head.bias is None
    names = [n for n, _ in model.named_parameters()]
    assert "transformer.wte.weight" in names and "lm_head.weight" not in names  # one parameter, listed once
    model(torch.randint(0, V, (2, 8))).sum().backward()
    assert model.transformer.wte.weight.grad is model.lm_head.weight.grad


def test_gpt2_initialisation():
    """N(0, 0.02^2) for weights and embeddings, zero biases, unit LayerNorms, residual projections
    N(0, (0.02 / sqrt(2 * n_layer))^2) (GPT-2, section 2.3); stds within 5% (>= 36,864 draws each)."""
    torch.manual_seed(0)
    model = GPT(65, None, GPTConfig(block_size=256, n_layer=6, n_head=6, n_embd=192, bias=True))
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            assert p.std().item() == pytest.approx(0.02 / math.sqrt(12), rel=0.05), name
        elif name.endswith(("c_attn.weight", "c_fc.weight", "wte.weight", "wpe.weight")):
            assert p.std().item() == pytest.approx(0.02, rel=0.05), name
        elif ".ln_" in name or "ln_f" in name:
            assert torch.equal(p, torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p)), name
        else:
            assert name.endswith(".bias") and not p.any(), name


# --------------------------------------------------------------------------- bad inputs


def test_too_long_input_is_refused():
    model = tiny()
    model(torch.randint(0, V, (1, 16)))  # exactly block_size is fine
    with pytest.raises(ValueError, match="longer than the model's block_size 16"):
        model(torch.randint(0, V, (1, 17)))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.randint(0, V, (16,)))


def test_num_classes_other_than_vocab_size_is_refused():
    with pytest.raises(ValueError, match="num_classes must equal vocab_size"):
        GPT(65, 64, GPTConfig())
    with pytest.raises(UserError, match="num_classes must equal vocab_size"):
        create_model("gpt_nano", num_classes=64)
    assert create_model("gpt_nano", vocab_size=20, num_classes=20).lm_head.out_features == 20


@pytest.mark.parametrize("option, value", [("n_head", 3), ("n_embd", 0), ("dropout", 1.0), ("block_size", -1)])
def test_bad_config_is_refused(option, value):
    with pytest.raises(UserError, match=option):
        on_meta("gpt_nano", **{option: value})


# --------------------------------------------------------------------------- computation


def test_causality():
    """Changing tokens after t leaves logits 0..t unchanged, and does change logit t + 1."""
    model = tiny().eval()
    torch.manual_seed(1)
    idx = torch.randint(0, V, (2, 16))
    with torch.no_grad():
        logits = model(idx)
        for t in range(15):
            other = idx.clone()
            other[:, t + 1 :] = (idx[:, t + 1 :] + torch.randint(1, V, idx[:, t + 1 :].shape)) % V  # every later token differs
            changed = model(other)
            torch.testing.assert_close(changed[:, : t + 1], logits[:, : t + 1], rtol=0, atol=1e-6)
            assert (changed[:, t + 1] - logits[:, t + 1]).abs().max() > 1e-3


def _oracle_layer(block, d: int, n_head: int, bias: bool) -> nn.TransformerEncoderLayer:
    """torch's pre-norm encoder layer with the block's weights: in_proj packs q, k, v as c_attn does."""
    ref = nn.TransformerEncoderLayer(d, n_head, dim_feedforward=4 * d, dropout=0.0, activation=lambda x: F.gelu(x, approximate="tanh"),
                                     batch_first=True, norm_first=True, bias=bias)  # fmt: skip
    pairs = [
        (ref.self_attn.in_proj_weight, block.attn.c_attn.weight), (ref.self_attn.out_proj.weight, block.attn.c_proj.weight),
        (ref.linear1.weight, block.mlp.c_fc.weight), (ref.linear2.weight, block.mlp.c_proj.weight),
        (ref.norm1.weight, block.ln_1.weight), (ref.norm2.weight, block.ln_2.weight),
    ]  # fmt: skip
    if bias:
        pairs += [
            (ref.self_attn.in_proj_bias, block.attn.c_attn.bias), (ref.self_attn.out_proj.bias, block.attn.c_proj.bias),
            (ref.linear1.bias, block.mlp.c_fc.bias), (ref.linear2.bias, block.mlp.c_proj.bias),
            (ref.norm1.bias, block.ln_1.bias), (ref.norm2.bias, block.ln_2.bias),
        ]  # fmt: skip
    with torch.no_grad():
        for theirs, ours in pairs:
            theirs.copy_(ours)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in block.parameters())  # nothing left out
    return ref.eval()


@pytest.mark.parametrize("bias", [False, True])
def test_block_and_stack_match_torch_transformer_encoder_layer(bias):
    """Oracle: nn.TransformerEncoderLayer(norm_first=True, gelu-tanh, dropout 0) with a causal mask,
    weights copied in; one block, then the whole model (embeddings + layers + ln_f + tied head). 1e-5."""
    model = tiny(bias=bias).eval()
    with torch.no_grad():
        for p in model.parameters():  # larger weights than GPT-2's init, so that a wrong mask or order shows
            p.normal_(0, 0.2)
    torch.manual_seed(2)
    idx = torch.randint(0, V, (3, 12))
    T = idx.shape[1]
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)  # True = may NOT attend (torch's convention)
    refs = [_oracle_layer(b, 32, 2, bias) for b in model.transformer.h]
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # torch's ordinary path, not its fused inference kernel
    try:
        with torch.no_grad():
            x = torch.randn(3, T, 32)
            torch.testing.assert_close(model.transformer.h[0](x), refs[0](x, src_mask=mask, is_causal=True), rtol=1e-5, atol=1e-5)
            h = model.transformer.wte(idx) + model.transformer.wpe.weight[:T]
            for ref in refs:
                h = ref(h, src_mask=mask, is_causal=True)
            ln_f = model.transformer.ln_f
            h = F.layer_norm(h, (32,), ln_f.weight, ln_f.bias)
            torch.testing.assert_close(model.forward_features(idx), h, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(model(idx), h @ model.transformer.wte.weight.T, rtol=1e-5, atol=1e-5)
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def test_dropout_only_in_training():
    model = tiny(dropout=0.5)
    idx = torch.randint(0, V, (2, 8))
    model.train()
    assert not torch.equal(model(idx), model(idx))
    model.eval()
    torch.testing.assert_close(model(idx), model(idx), rtol=0, atol=0)


# --------------------------------------------------------------------------- training and files


def test_gradients_reach_every_parameter():
    model = tiny(bias=True, dropout=0.1).train()
    idx = torch.randint(0, V, (2, 16))  # the whole block, so every position row is used
    F.cross_entropy(model(idx)[:, :-1].reshape(-1, V), idx[:, 1:].reshape(-1)).backward()
    unreached = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.any()]
    assert not unreached


def test_overfits_a_short_repeated_sequence():
    """A period-6 pattern with repeated tokens (the next token depends on more than the current one),
    repeated to 16 tokens: 60 Adam steps at lr 1e-2 bring the loss from ~log(11) = 2.4 below 0.05."""
    model = tiny(seed=0).train()
    seq = torch.tensor([3, 1, 4, 1, 5, 9] * 3)[:17][None]  # 1 is followed by 4 once and by 5 once
    x, y = seq[:, :-1], seq[:, 1:]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 2.0
    assert loss.item() < 0.05


def test_state_dict_round_trip_through_safetensors(tmp_path):
    model = tiny(seed=0, bias=True).eval()
    run = RunDir(tmp_path)
    run.save_weights(model.state_dict())
    other = tiny(seed=1, bias=True).eval()
    idx = torch.randint(0, V, (2, 16))
    assert not torch.equal(other(idx), model(idx))
    run.load_weights_into(other)
    assert other.lm_head.weight is other.transformer.wte.weight  # still one tensor after loading
    with torch.no_grad():
        torch.testing.assert_close(other(idx), model(idx), rtol=0, atol=0)
