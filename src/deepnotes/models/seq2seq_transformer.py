"""The Transformer encoder-decoder for translation, from deepnotes.layers.transformer.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017, arXiv:1706.03762: token embeddings
scaled by sqrt(d_model) plus sinusoidal positions (section 3.5), N encoder layers (self-attention
over the source), N decoder layers (causal self-attention over the target prefix, then
attention over the encoder's outputs), and a linear layer to the target vocabulary whose weight
is the target embedding's (section 3.4, weight tying). Here beside the RNN seq2seq family
(models/seq2seq.py) on the same data and the same decoding (models/decoding.py), so the two can
be compared.

    model = create_model("seq2seq_transformer", vocab_size=4000, num_classes=5000)
    logits = model(src, src_lengths, tgt_in)             # (B, T, num_classes), all positions at once
    tokens, weights = model.greedy(src, src_lengths, max_len=30)

Departures, for a laptop-sized model: 3 + 3 layers of width 256 with 4 heads and a 1024-unit
feed-forward (the paper's base model: 6 + 6, 512, 8, 2048); pre-norm (norm_first, with a final
LayerNorm after each stack, as Xiong et al. 2020, arXiv:2002.04745, show trains without the
warm-up the post-norm paper needs); the source embedding is not tied to the target's (two
vocabularies). Decoding recomputes the decoder over the whole prefix at every step (no key/value
cache: sentences here are short, and the code stays that of forward()).

The attention weights greedy()/beam_search() return are those of the last decoder layer's
attention over the source, averaged over its heads: one of several possible "alignments" of a
multi-head model, the one closest to the RNN's single a_tj.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from deepnotes.layers.attention import SinusoidalPositionalEncoding, causal_mask, record_attention
from deepnotes.layers.transformer import TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer
from deepnotes.models.decoding import PAD, StepDecoding
from deepnotes.registry import Variant, register_variants

PAPER = "Vaswani et al. 2017, Attention Is All You Need, arXiv:1706.03762"
MAX_POSITIONS = 512


@dataclass(frozen=True)
class TransformerSeq2SeqConfig:
    d_model: int = 256
    num_heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    dim_feedforward: int = 1024
    dropout: float = 0.1


class TransformerSeq2Seq(StepDecoding, nn.Module):
    """Encoder-decoder Transformer over token ids (see the module docstring)."""

    def __init__(self, vocab_size: int, num_classes: int, cfg: TransformerSeq2SeqConfig = TransformerSeq2SeqConfig()):
        super().__init__()
        if cfg.d_model % cfg.num_heads:
            raise ValueError(f"d_model ({cfg.d_model}) must be a multiple of num_heads ({cfg.num_heads})")
        self.cfg, self.vocab_size, self.num_classes = cfg, vocab_size, num_classes
        d = cfg.d_model
        self.src_embed = nn.Embedding(vocab_size, d, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(num_classes, d, padding_idx=PAD)
        self.position = SinusoidalPositionalEncoding(d, MAX_POSITIONS, dropout=cfg.dropout)
        enc = TransformerEncoderLayer(d, cfg.num_heads, cfg.dim_feedforward, cfg.dropout, norm_first=True)
        dec = TransformerDecoderLayer(d, cfg.num_heads, cfg.dim_feedforward, cfg.dropout, norm_first=True)
        self.encoder = TransformerEncoder(enc, cfg.encoder_layers, norm=nn.LayerNorm(d))
        self.decoder = TransformerDecoder(dec, cfg.decoder_layers, norm=nn.LayerNorm(d))
        self.head = nn.Linear(d, num_classes)
        self.head.weight = self.tgt_embed.weight  # tied (section 3.4): one parameter, counted once
        self.classifier_modules = ("head", "tgt_embed")
        nn.init.normal_(self.src_embed.weight, std=d**-0.5)  # so that sqrt(d) * embedding has unit scale
        nn.init.normal_(self.tgt_embed.weight, std=d**-0.5)
        with torch.no_grad():
            self.src_embed.weight[PAD].zero_()
            self.tgt_embed.weight[PAD].zero_()

    def _embed(self, table: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        return self.position(table(ids) * math.sqrt(self.cfg.d_model))

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor):
        """src (B, S) ids padded with PAD, lengths (B,) -> memory (B, S, d) and the padding mask (B, S)."""
        if src.dim() != 2 or src_lengths.shape != src.shape[:1]:
            raise ValueError(f"expected src (B, S) and src_lengths (B,), got {tuple(src.shape)} and {tuple(src_lengths.shape)}")
        if src.shape[1] > MAX_POSITIONS:
            raise ValueError(f"sources of at most {MAX_POSITIONS} tokens, got {src.shape[1]}")
        pad = torch.arange(src.shape[1], device=src.device)[None, :] >= src_lengths.to(src.device)[:, None]
        return self.encoder(self._embed(self.src_embed, src), src_key_padding_mask=pad), pad

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """tgt_in (B, T) starting with SOS -> logits (B, T, num_classes), position t seeing tokens <= t."""
        T = tgt_in.shape[1]
        if T > MAX_POSITIONS:
            raise ValueError(f"targets of at most {MAX_POSITIONS} tokens, got {T}")
        x = self.decoder(self._embed(self.tgt_embed, tgt_in), memory, tgt_mask=~causal_mask(T, T, device=tgt_in.device),
                         tgt_key_padding_mask=tgt_in == PAD, memory_key_padding_mask=pad)  # fmt: skip
        return self.head(x)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing, all positions in one pass: logits (B, T, num_classes)."""
        memory, pad = self.encode(src, src_lengths)
        return self.decode(tgt_in, memory, pad)

    # -- the decoding protocol of models.decoding: the state is the prefix of target tokens

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor):
        memory, pad = self.encode(src, src_lengths)
        return (memory, pad), src.new_zeros((src.shape[0], 0)), None

    def step(self, y_prev: torch.Tensor, state: torch.Tensor, memory, feed):
        prefix = torch.cat([state, y_prev[:, None]], dim=1)  # (B, t)
        cross = self.decoder.layers[-1].multihead_attn
        with record_attention(cross):
            logits = self.decode(prefix, *memory)[:, -1]
            weights = cross.last_attention[:, :, -1].mean(1)  # (B, heads, t, S) -> last query, mean over heads
        return logits, prefix, feed, weights


def _seq2seq_transformer(vocab_size: int = 4000, num_classes: int = 4000, **cfg) -> TransformerSeq2Seq:
    return TransformerSeq2Seq(vocab_size, num_classes, TransformerSeq2SeqConfig(**cfg))


# At the registered vocabularies (4,000 + 4,000 tokens), d = 256, 4 heads, FFN 1024, 3 + 3 layers:
# embeddings 2 * 4000 * 256 = 2,048,000 (the head's weight is the target embedding; its bias 4,000);
# an attention block 4 * 256 * 256 + 4 * 256 = 263,168; a feed-forward block 256 * 1024 + 1024 +
# 1024 * 256 + 256 = 525,568; a LayerNorm 512. Encoder layer 263,168 + 525,568 + 2 * 512 = 789,760;
# decoder layer 2 * 263,168 + 525,568 + 3 * 512 = 1,053,440; 3 of each and two final norms:
# 2,048,000 + 4,000 + 3 * 789,760 + 3 * 1,053,440 + 1,024 = 7,582,624.
VARIANTS: dict[str, Variant] = {
    "seq2seq_transformer": Variant(
        "Transformer encoder-decoder (3 + 3 pre-norm layers, d 256, 4 heads), tied target embedding",
        num_params=7_582_624, input_size=(4000, 50), num_classes=4000, config=TransformerSeq2SeqConfig(),
        paper=PAPER, task="translation", inputs="tokens",
    ),
}

register_variants(_seq2seq_transformer, VARIANTS)
