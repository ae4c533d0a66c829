"""Sequence to sequence: an RNN encoder-decoder, without and with attention.

- Sutskever, Vinyals & Le, "Sequence to Sequence Learning with Neural Networks", NeurIPS 2014,
  arXiv:1409.3215; Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for
  Statistical Machine Translation", EMNLP 2014, arXiv:1406.1078: the encoder reads the source
  into one fixed-size vector c, the decoder writes the target from it, one token at a time,
  starting from SOS and stopping at EOS (attention="none": c is fed at every decoder step, as
  in Cho et al.).
- Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning to Align and
  Translate", ICLR 2015, arXiv:1409.0473: a bidirectional encoder, and at every decoder step a
  context vector c_t = sum_j a_tj h_j with a_tj = softmax_j(v^T tanh(W s_{t-1} + U h_j))
  (additive attention, from the previous decoder state), fed into the step with the previous
  token (attention="bahdanau").
- Luong, Pham & Manning, "Effective Approaches to Attention-based Neural Machine Translation",
  EMNLP 2015, arXiv:1508.04025: global attention from the current decoder state h_t, with
  score(h_t, h_j) = h_t^T h_j ("dot") or h_t^T W h_j ("general"), the attentional vector
  h~_t = tanh(W_c [c_t; h_t]) predicts the token and is fed to the next step ("input feeding")
  (attention="luong-dot" / "luong-general").

    model = create_model("seq2seq_bahdanau", vocab_size=4000, num_classes=5000)
    logits = model(src, src_lengths, tgt_in)                  # teacher forcing: (B, T, num_classes)
    tokens, weights = model.greedy(src, src_lengths, max_len=30)
    tokens, weights = model.beam_search(src, src_lengths, beam_size=5, max_len=30, length_penalty=0.6)

Token ids follow deepnotes.text.vocab: PAD 0, SOS 1, EOS 2, UNK 3. The recurrent layers are the
scratch ones of deepnotes.layers.recurrent (fused=True runs torch's kernels with the same weights).

Departures, all for a laptop-sized model: one decoder layer whatever the encoder's depth; the
decoder's first state is tanh(W [h_fwd; h_bwd]) of the encoder's last layer (Bahdanau's
initialization, used for every variant); Bahdanau's maxout deep output is a linear layer on
[s_t; c_t; E y_{t-1}]; Luong's "dot" needs equal sizes, so the bidirectional encoder's 2H
outputs are projected to H once (then dot == general with that projection tied).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from deepnotes.layers.recurrent import GRU, LSTM, GRUCell, LSTMCell
from deepnotes.models.decoding import PAD, StepDecoding
from deepnotes.registry import Variant, register_variants

ATTENTIONS = ("none", "bahdanau", "luong-dot", "luong-general")
CELLS = ("gru", "lstm")
PAPERS = {
    "none": "Cho et al. 2014, arXiv:1406.1078; Sutskever et al. 2014, arXiv:1409.3215",
    "bahdanau": "Bahdanau, Cho & Bengio 2015, Neural Machine Translation by Jointly Learning to Align and Translate, arXiv:1409.0473",
    "luong": "Luong, Pham & Manning 2015, Effective Approaches to Attention-based Neural Machine Translation, arXiv:1508.04025",
}


@dataclass(frozen=True)
class Seq2SeqConfig:
    cell: str = "gru"  # gru | lstm
    attention: str = "bahdanau"  # none | bahdanau | luong-dot | luong-general
    embed_dim: int = 128
    hidden_size: int = 256
    num_layers: int = 1  # of the encoder
    dropout: float = 0.1
    teacher_forcing: float = 1.0  # the probability of feeding the true previous token in training
    fused: bool = True  # torch's recurrent kernels (the same weights as the scratch path)


# --------------------------------------------------------------------------- attention


class AdditiveAttention(nn.Module):
    """Bahdanau's score v^T tanh(W q + U k_j); U k_j is computed once per source (keys_proj)."""

    def __init__(self, query_size: int, key_size: int, attn_size: int):
        super().__init__()
        self.query = nn.Linear(query_size, attn_size, bias=False)
        self.key = nn.Linear(key_size, attn_size)
        self.v = nn.Linear(attn_size, 1, bias=False)

    def keys_proj(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key(keys)  # (B, S, A)

    def forward(self, query: torch.Tensor, keys_proj: torch.Tensor, values: torch.Tensor, pad: torch.Tensor):
        scores = self.v(torch.tanh(self.query(query).unsqueeze(1) + keys_proj)).squeeze(-1)  # (B, S)
        weights = torch.softmax(scores.masked_fill(pad, float("-inf")), dim=-1)  # a source has >= 1 real token
        return torch.bmm(weights.unsqueeze(1), values).squeeze(1), weights  # (B, V), (B, S)


class MultiplicativeAttention(nn.Module):
    """Luong's score h_t^T W h_j ("general"), or h_t^T P h_j with P the 2H -> H projection ("dot")."""

    def __init__(self, query_size: int, key_size: int, general: bool):
        super().__init__()
        self.key = nn.Linear(key_size, query_size, bias=False)  # "dot": the projection to equal sizes
        self.general = nn.Linear(query_size, query_size, bias=False) if general else None

    def keys_proj(self, keys: torch.Tensor) -> torch.Tensor:
        k = self.key(keys)  # (B, S, H)
        return self.general(k) if self.general is not None else k

    def forward(self, query: torch.Tensor, keys_proj: torch.Tensor, values: torch.Tensor, pad: torch.Tensor):
        scores = torch.bmm(keys_proj, query.unsqueeze(-1)).squeeze(-1)  # (B, S)
        weights = torch.softmax(scores.masked_fill(pad, float("-inf")), dim=-1)
        return torch.bmm(weights.unsqueeze(1), values).squeeze(1), weights


# --------------------------------------------------------------------------- the model


class Seq2Seq(StepDecoding, nn.Module):
    """A bidirectional RNN encoder and a unidirectional RNN decoder, with or without attention
    (see the module docstring). forward() is teacher-forced; greedy() and beam_search() (models.decoding) decode; the
    attention weights they return are a_tj over the source at each step."""

    def __init__(self, vocab_size: int, num_classes: int, cfg: Seq2SeqConfig = Seq2SeqConfig()):
        super().__init__()
        if cfg.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cfg.cell!r}")
        if cfg.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {cfg.attention!r}")
        if not 0 <= cfg.teacher_forcing <= 1:
            raise ValueError(f"teacher_forcing is a probability in [0, 1], got {cfg.teacher_forcing}")
        self.cfg, self.vocab_size, self.num_classes = cfg, vocab_size, num_classes
        E, H = cfg.embed_dim, cfg.hidden_size
        rnn, cell = (GRU, GRUCell) if cfg.cell == "gru" else (LSTM, LSTMCell)
        self.src_embed = nn.Embedding(vocab_size, E, padding_idx=PAD)
        self.encoder = rnn(E, H, num_layers=cfg.num_layers, batch_first=True, bidirectional=True,
                           dropout=cfg.dropout if cfg.num_layers > 1 else 0.0, fused=cfg.fused)  # fmt: skip
        self.bridge = nn.Linear(2 * H, H)  # decoder's first state: tanh(W [h_fwd; h_bwd]) (Bahdanau, appendix A.2.2)
        self.tgt_embed = nn.Embedding(num_classes, E, padding_idx=PAD)
        self.dropout = nn.Dropout(cfg.dropout)
        a = cfg.attention
        if a == "bahdanau":
            self.attn = AdditiveAttention(H, 2 * H, H)
            self.decoder = cell(E + 2 * H, H, fused=cfg.fused)  # input: [E y_{t-1}; c_t]
            out_in = H + 2 * H + E  # [s_t; c_t; E y_{t-1}]
        elif a.startswith("luong"):
            self.attn = MultiplicativeAttention(H, 2 * H, general=a == "luong-general")
            self.decoder = cell(E + H, H, fused=cfg.fused)  # input feeding: [E y_{t-1}; h~_{t-1}]
            self.combine = nn.Linear(2 * H + H, H)  # h~_t = tanh(W_c [c_t; h_t]); c_t is 2H wide
            out_in = H
        else:
            self.attn = None
            self.decoder = cell(E + H, H, fused=cfg.fused)  # input: [E y_{t-1}; c], the fixed context
            out_in = H + H + E
        self.head = nn.Linear(out_in, num_classes)
        self.classifier_modules = ("head", "tgt_embed")

    # -- encoder

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor):
        """src (B, S) ids, padded with PAD; lengths (B,). Returns the outputs (B, S, 2H) (zero at
        padding), the decoder's first state, and the padding mask (B, S)."""
        if src.dim() != 2 or src_lengths.shape != src.shape[:1]:
            raise ValueError(f"expected src (B, S) and src_lengths (B,), got {tuple(src.shape)} and {tuple(src_lengths.shape)}")
        emb = self.dropout(self.src_embed(src))  # (B, S, E)
        packed = pack_padded_sequence(emb, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, 2H)
        h = state[0] if isinstance(state, tuple) else state  # (layers * 2, B, H)
        s0 = torch.tanh(self.bridge(torch.cat([h[-2], h[-1]], dim=-1)))  # last layer, forward and backward
        init = (s0, torch.zeros_like(s0)) if self.cfg.cell == "lstm" else s0
        return out, init, src == PAD

    # -- one decoder step

    def step(self, y_prev: torch.Tensor, state, memory, feed: torch.Tensor):
        """One token: y_prev (B,) ids; `feed` is what the step gets besides the token (Bahdanau: not
        used; Luong: h~_{t-1}; none: the fixed context). Returns logits (B, V), the new state,
        the next feed and the attention weights (B, S) or None."""
        out, keys, pad = memory
        emb = self.dropout(self.tgt_embed(y_prev))  # (B, E)
        h_prev = state[0] if isinstance(state, tuple) else state
        a = self.cfg.attention
        if a == "bahdanau":
            context, weights = self.attn(h_prev, keys, out, pad)  # from s_{t-1}
            state = self.decoder(torch.cat([emb, context], dim=-1), state)
            s = state[0] if isinstance(state, tuple) else state
            logits = self.head(self.dropout(torch.cat([s, context, emb], dim=-1)))
            return logits, state, feed, weights
        if a.startswith("luong"):
            state = self.decoder(torch.cat([emb, feed], dim=-1), state)
            s = state[0] if isinstance(state, tuple) else state
            context, weights = self.attn(s, keys, out, pad)  # from h_t
            tilde = torch.tanh(self.combine(torch.cat([context, s], dim=-1)))  # (B, H)
            return self.head(self.dropout(tilde)), state, tilde, weights
        state = self.decoder(torch.cat([emb, feed], dim=-1), state)
        s = state[0] if isinstance(state, tuple) else state
        return self.head(self.dropout(torch.cat([s, feed, emb], dim=-1))), state, feed, None

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor):
        out, state, pad = self.encode(src, src_lengths)
        keys = self.attn.keys_proj(out) if self.attn is not None else None
        s0 = state[0] if isinstance(state, tuple) else state
        feed = torch.zeros_like(s0) if self.cfg.attention.startswith("luong") else s0  # none: c = the first state
        return (out, keys, pad), state, feed

    # -- training

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: tgt_in (B, T) starts with SOS; returns logits (B, T, num_classes).
        In training, with teacher_forcing < 1 each step feeds the model's own previous guess
        instead with probability 1 - teacher_forcing (drawn from the global torch RNG)."""
        memory, state, feed = self.start(src, src_lengths)
        y, logits = tgt_in[:, 0], []
        for t in range(tgt_in.shape[1]):
            step_logits, state, feed, _ = self.step(y, state, memory, feed)
            logits.append(step_logits)
            if t + 1 < tgt_in.shape[1]:
                y = tgt_in[:, t + 1]
                if self.training and self.cfg.teacher_forcing < 1:
                    own = torch.rand(y.shape, device=y.device) >= self.cfg.teacher_forcing
                    y = torch.where(own, step_logits.argmax(-1), y)
        return torch.stack(logits, dim=1)


def _seq2seq(vocab_size: int = 4000, num_classes: int = 4000, **cfg) -> Seq2Seq:
    return Seq2Seq(vocab_size, num_classes, Seq2SeqConfig(**cfg))


# --------------------------------------------------------------------------- variants

# At the registered vocabularies (4,000 source and 4,000 target tokens), E = 128, H = 256:
# embeddings 512,000 + 512,000; bidirectional GRU encoder 2 * (768 * 128 + 768 * 256 + 2 * 768)
# = 592,896 (LSTM: 2 * (1024 * 128 + 1024 * 256 + 2 * 1024) = 790,528); bridge 512 * 256 + 256
# = 131,328. Then per variant:
#   seq2seq:          decoder GRUCell(384, 256) 493,056; head 640 -> 4000: 2,564,000          = 4,805,280
#   seq2seq_bahdanau: attention 65,536 + 131,328 + 256 = 197,120; GRUCell(640, 256) 689,664;
#                     head 896 -> 4000: 3,588,000                                            = 6,223,008
#   seq2seq_luong:    attention 131,072 + 65,536 = 196,608; GRUCell(384, 256) 493,056;
#                     combine 768 -> 256: 196,864; head 256 -> 4000: 1,028,000               = 3,662,752
#   seq2seq_lstm_bahdanau: as seq2seq_bahdanau with LSTMs: LSTMCell(640, 256) 919,552       = 6,650,528
# (tests/test_models.py asserts them for every registered variant).
_TOKENS = (4000, 50)
VARIANTS: dict[str, Variant] = {
    "seq2seq": Variant(
        "RNN encoder-decoder without attention: a bidirectional GRU reads the source into one vector",
        num_params=4_805_280, input_size=_TOKENS, num_classes=4000, config=Seq2SeqConfig(attention="none"),
        paper=PAPERS["none"], task="translation", inputs="tokens",
    ),
    "seq2seq_bahdanau": Variant(
        "seq2seq with Bahdanau (additive) attention: bidirectional GRU encoder, GRU decoder",
        num_params=6_223_008, input_size=_TOKENS, num_classes=4000, config=Seq2SeqConfig(attention="bahdanau"),
        paper=PAPERS["bahdanau"], task="translation", inputs="tokens",
    ),
    "seq2seq_luong": Variant(
        "seq2seq with Luong global attention (general score, input feeding): bidirectional GRU encoder",
        num_params=3_662_752, input_size=_TOKENS, num_classes=4000, config=Seq2SeqConfig(attention="luong-general"),
        paper=PAPERS["luong"], task="translation", inputs="tokens",
    ),
    "seq2seq_lstm_bahdanau": Variant(
        "seq2seq with Bahdanau attention on LSTMs (bidirectional LSTM encoder, LSTM decoder)",
        num_params=6_650_528, input_size=_TOKENS, num_classes=4000, config=Seq2SeqConfig(cell="lstm", attention="bahdanau"),
        paper=PAPERS["bahdanau"], task="translation", inputs="tokens",
    ),
}

register_variants(_seq2seq, VARIANTS)
