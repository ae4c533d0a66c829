"""RNN language models: an embedding, a stack of recurrent layers, a linear layer to the vocabulary.

- Mikolov et al. 2010, "Recurrent neural network based language model", Interspeech: the
  next token from a recurrent state that carries the whole history (no fixed n).
- Zaremba, Sutskever & Vinyals 2014, "Recurrent Neural Network Regularization",
  arXiv:1409.2329: multi-layer LSTM LMs, dropout only on the non-recurrent connections (the
  embedding into the first layer, between layers, and the last layer's output before the
  softmax), never on h_{t-1} -> h_t.
- Press & Wolf 2017, "Using the Output Embedding to Improve Language Models", EACL,
  arXiv:1608.05859: the output layer's weight is the input embedding (tie=True; needs
  embed_dim == hidden_size).

    model = create_model("lstm_lm", vocab_size=65)
    logits = model(idx)                    # (B, T, V): position t scores token t + 1 from idx[:, : t + 1]

The recurrent layers are deepnotes.layers.recurrent's (fused=None: that module's default, torch's
own kernels; fused=False: the scratch loop, the same weights). cell: "lstm", "gru" or "rnn"
(Elman, tanh).

Departures: every forward starts from a zero state (stateless per block: no state is carried from
one batch to the next, unlike Zaremba et al.'s truncated BPTT over a continuous stream, so the
first positions of a block see a short history); the laptop variants are 256 wide (Zaremba's
"small" is 2 x 200, untied); initialization uniform(-0.1, 0.1) for the embedding / output weight
(Zaremba's small model; PyTorch's word_language_model example), the recurrent layers keep torch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepnotes.layers.recurrent import GRU, LSTM, RNN
from deepnotes.registry import Variant, register_variants

PAPER = "Zaremba, Sutskever & Vinyals 2014, Recurrent Neural Network Regularization, arXiv:1409.2329"
CELLS = ("lstm", "gru", "rnn")
INIT_RANGE = 0.1  # Zaremba et al.'s small model: uniform(-0.1, 0.1)


@dataclass(frozen=True)
class RNNLMConfig:
    cell: str = "lstm"  # lstm | gru | rnn (Elman, tanh)
    embed_dim: int = 256
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.2  # on the non-recurrent connections (Zaremba et al.)
    tie: bool = True  # output weight = embedding (Press & Wolf 2017); needs embed_dim == hidden_size
    fused: bool | None = None  # None: deepnotes.layers.recurrent's default (torch's kernels)


class RNNLM(nn.Module):
    """Embedding -> dropout -> recurrent layers -> dropout -> Linear to the vocabulary (see the module docstring)."""

    objective = "causal"
    context = None  # the recurrent state can carry any history
    classifier_modules = ()

    def __init__(self, vocab_size: int, num_classes: int | None = None, cfg: RNNLMConfig = RNNLMConfig()):
        super().__init__()
        if num_classes not in (None, vocab_size):
            raise ValueError(f"a language model predicts its own tokens: num_classes must be None or vocab_size ({vocab_size})")
        if cfg.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cfg.cell!r}")
        if vocab_size < 1 or cfg.embed_dim < 1:
            raise ValueError(f"vocab_size and embed_dim must be >= 1, got {vocab_size} and {cfg.embed_dim}")
        if isinstance(cfg.dropout, bool) or not 0.0 <= cfg.dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {cfg.dropout}")
        if cfg.tie and cfg.embed_dim != cfg.hidden_size:
            raise ValueError(f"tie=True shares one matrix, so embed_dim ({cfg.embed_dim}) must equal hidden_size "
                             f"({cfg.hidden_size}); pass tie=false for different sizes")  # fmt: skip
        self.cfg, self.vocab_size, self.num_classes = cfg, vocab_size, vocab_size
        rnn = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[cfg.cell]
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        between = cfg.dropout if cfg.num_layers > 1 else 0.0  # the layers' own dropout acts only between layers
        self.rnn = rnn(
            cfg.embed_dim, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True, dropout=between, fused=cfg.fused
        )
        self.head = nn.Linear(cfg.hidden_size, vocab_size)
        nn.init.uniform_(self.embed.weight, -INIT_RANGE, INIT_RANGE)
        nn.init.zeros_(self.head.bias)
        if cfg.tie:
            self.head.weight = self.embed.weight  # one tensor, counted once (Press & Wolf 2017)
        else:
            nn.init.uniform_(self.head.weight, -INIT_RANGE, INIT_RANGE)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) token ids -> logits (B, T, V), from a zero state; position t sees idx[:, : t + 1]."""
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
            raise ValueError(f"expected token ids (B, T), got {tuple(getattr(idx, 'shape', ()))}")
        out, _ = self.rnn(self.drop(self.embed(idx)))
        return self.head(self.drop(out))


def _rnn_lm(vocab_size: int = 65, num_classes: int | None = None, **cfg) -> RNNLM:
    return RNNLM(vocab_size, num_classes, RNNLMConfig(**cfg))


# At the registered vocabulary (65 characters), E = H = 256, tied (the head adds only its bias, 65):
# embedding 65 * 256 = 16,640; an LSTM layer 4 * 256 * (256 + 256) + 2 * 4 * 256 = 526,336; a tanh
# RNN layer 256 * (256 + 256) + 2 * 256 = 131,584.
# lstm_lm: 16,640 + 2 * 526,336 + 65 = 1,069,377; rnn_lm: 16,640 + 131,584 + 65 = 148,289
# (tests/test_rnnlm.py recomputes them from torch's nn.Embedding, nn.LSTM / nn.RNN and nn.Linear).
_VOCAB = 65  # tinyshakespeare's characters; the trainer builds the model for the data's own vocabulary
VARIANTS: dict[str, Variant] = {
    "lstm_lm": Variant(
        "LSTM language model: 2 layers of 256, embedding 256 tied to the output, dropout 0.2 (Zaremba et al. 2014)",
        num_params=1_069_377,
        input_size=(_VOCAB, 64),
        num_classes=_VOCAB,
        config=RNNLMConfig(),
        task="language-model",
        inputs="tokens",
    ),
    "rnn_lm": Variant(
        "Elman (tanh) RNN language model: 1 layer of 256, embedding 256 tied to the output, dropout 0.2 (Mikolov et al. 2010)",
        num_params=148_289,
        input_size=(_VOCAB, 64),
        num_classes=_VOCAB,
        config=RNNLMConfig(cell="rnn", num_layers=1),
        task="language-model",
        inputs="tokens",
        paper="Mikolov et al. 2010, Recurrent neural network based language model (Interspeech)",
    ),
}
register_variants(_rnn_lm, VARIANTS, paper=PAPER)
