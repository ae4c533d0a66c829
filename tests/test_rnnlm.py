"""RNN language models (deepnotes.models.rnnlm): parameter counts against torch's own modules,
causality, the scratch and fused recurrent paths, weight tying, and that one can learn."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.errors import UserError
from deepnotes.models import create_model, get_model_entry
from deepnotes.models.rnnlm import RNNLM, RNNLMConfig


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once


def small(cell: str = "lstm", **cfg) -> RNNLM:
    return RNNLM(13, None, RNNLMConfig(cell=cell, **{"embed_dim": 16, "hidden_size": 16, "num_layers": 2, **cfg}))


@pytest.mark.parametrize("name, torch_rnn, layers", [("lstm_lm", nn.LSTM, 2), ("rnn_lm", nn.RNN, 1)])
def test_counts_equal_torch_modules(name, torch_rnn, layers):
    """Oracle: nn.Embedding + nn.LSTM / nn.RNN + nn.Linear of the same sizes, the Linear's weight
    not counted (tied to the embedding: only its bias is new)."""
    entry = get_model_entry(name)
    V, E, H = entry.input_size[0], 256, 256
    expected = n_params(nn.Embedding(V, E)) + n_params(torch_rnn(E, H, num_layers=layers)) + n_params(nn.Linear(H, V)) - H * V
    assert entry.num_params == expected
    assert n_params(create_model(name)) == expected
    assert (entry.task, entry.inputs, entry.input_size) == ("language-model", "tokens", (65, 64))


def test_contract_attributes():
    model = create_model("lstm_lm")
    assert (model.objective, model.context, model.classifier_modules) == ("causal", None, ())
    assert model.cfg.num_layers == 2 and model.cfg.dropout == 0.2 and model.rnn.dropout == 0.2
    rnn = create_model("rnn_lm")
    assert rnn.rnn.mode == "RNN_TANH" and rnn.rnn.num_layers == 1 and rnn.rnn.dropout == 0.0


def test_tied_weight_is_one_tensor():
    model = create_model("lstm_lm")
    assert model.head.weight is model.embed.weight
    names = [n for n, _ in model.named_parameters()]
    assert "embed.weight" in names and "head.weight" not in names  # named once
    untied = small(tie=False)
    assert untied.head.weight is not untied.embed.weight
    assert n_params(untied) == n_params(small()) + 13 * 16


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_causal_and_shapes(cell):
    torch.manual_seed(0)
    model = small(cell).eval()
    idx = torch.randint(0, 13, (3, 10))
    with torch.no_grad():
        out = model(idx)
        assert out.shape == (3, 10, 13) and torch.isfinite(out).all()
        for t in (0, 4, 8):
            changed = idx.clone()
            changed[:, t + 1 :] = (changed[:, t + 1 :] + 1) % 13
            other = model(changed)
            torch.testing.assert_close(other[:, : t + 1], out[:, : t + 1], rtol=0, atol=0)
            assert not torch.allclose(other[:, t + 1 :], out[:, t + 1 :])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_scratch_and_fused_paths_agree(cell):
    """The same weights through the scratch loop and torch's kernels, float32: rtol 1e-5, atol 1e-6
    (as test_models' token contract), outputs and gradients."""
    torch.manual_seed(0)
    scratch = small(cell, fused=False).eval()
    fused = small(cell, fused=True).eval()
    fused.load_state_dict(scratch.state_dict())
    assert fused.head.weight is fused.embed.weight  # loading keeps the tie
    idx = torch.randint(0, 13, (4, 12))
    a, b = scratch(idx), fused(idx)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    a.square().mean().backward()
    b.square().mean().backward()
    for (name, p), q in zip(scratch.named_parameters(), fused.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    model = small(dropout=0.5)
    idx = torch.randint(0, 13, (2, 6))
    model.eval()
    torch.testing.assert_close(model(idx), model(idx), rtol=0, atol=0)
    model.train()
    assert not torch.equal(model(idx), model(idx))


def test_overfits_a_short_repeated_sequence():
    """A period-8 sequence repeated 4 times (the token after 1 is 4 or 5: it needs the history):
    40 Adam steps take the loss from about ln 13 to under 0.05 and every next token is the argmax."""
    torch.manual_seed(0)
    model = small("lstm", num_layers=1, dropout=0.0, embed_dim=32, hidden_size=32)
    seq = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6] * 4)
    idx, targets = seq[None, :-1], seq[None, 1:]
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(idx).flatten(0, 1), targets.flatten())
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(idx).argmax(-1)
    assert losses[0] > 2.0 and losses[-1] < 0.05
    assert torch.equal(pred, targets)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="num_classes"):
        RNNLM(13, 14)
    with pytest.raises(UserError, match="num_classes"):
        create_model("lstm_lm", vocab_size=20, num_classes=21)
    assert create_model("rnn_lm", vocab_size=20, num_classes=20).head.out_features == 20
    with pytest.raises(ValueError, match="embed_dim"):
        RNNLM(13, None, RNNLMConfig(embed_dim=32, hidden_size=64))  # tie needs equal sizes
    assert RNNLM(13, None, RNNLMConfig(embed_dim=32, hidden_size=64, tie=False)).head.in_features == 64
    with pytest.raises(ValueError, match="cell"):
        RNNLM(13, None, RNNLMConfig(cell="transformer"))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        small()(torch.zeros(5, dtype=torch.long))
