"""BERT: an encoder-only Transformer trained as a masked language model.

Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", arXiv:1810.04805. Every position attends to every other (no causal mask), so a
token's vector depends on its left AND right context; the model cannot generate left to right,
it is trained to fill in hidden tokens (the masked-LM objective, section 3.1 "Task #1"):

    inputs, targets = mask_tokens(ids, vocab_size=V, mask_id=4, generator=g)   # 15% chosen, 80/10/10
    logits = model(inputs, padding_mask=ids == 0)                              # (B, T, V)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())            # -100 = not chosen: ignored
    vectors = model.encode(ids, padding_mask=ids == 0)                         # (B, T, d): contextual embeddings

The layout is HF transformers' BertForMaskedLM (modeling_bert.py), written here from the
project's layers:
- embeddings: token + learned position + token-type (segment A/B) embeddings, summed, then
  LayerNorm and dropout (section 3.2, figure 2);
- N post-norm encoder layers (deepnotes.layers.transformer.TransformerEncoderLayer with
  norm_first=False): x = LN(x + Dropout(SelfAttn(x))); x = LN(x + Dropout(FFN(x))), the FFN's
  activation the exact (erf) GELU, LayerNorm eps 1e-12, attention dropout = hidden dropout;
- MLM head: dense d -> d, GELU, LayerNorm, then a decoder to the vocabulary whose weight IS the
  token embedding (tied) with a bias of its own;
- initialization as BERT's: weights N(0, 0.02^2) truncated at 2 std (the TF code's
  truncated_normal), biases 0, LayerNorm 1 and 0, the PAD row of the token embedding 0.

Departures:
- MLM only: no pooler ([CLS] dense + tanh) and no next-sentence-prediction head (the paper's
  "Task #2"), which later work (RoBERTa, arXiv:1907.11692) found not to help; token-type ids are
  kept (default all 0) so that sentence pairs can still be told apart.
- The scratch layer applies a dropout inside the FFN (after the activation, as
  nn.TransformerEncoderLayer); BERT has none there, so it is replaced by an identity.
- Padding is a boolean key mask (padded keys get weight exactly 0) where HF adds -10000 (or the
  dtype's minimum) to the logits: the same weights up to rounding.
- mask_tokens draws the random replacement from [random_low, V), so no special id is drawn
  (the paper's code draws any vocabulary word), and picks exactly max(1, round(p * n)) of a
  row's n maskable tokens, as the paper's create_pretraining_data.py does
  (num_to_predict = max(1, round(n * masked_lm_prob))), without its max_predictions_per_seq cap.
- The ids are the task's: PAD 0, SOS 1, EOS 2, UNK 3, [MASK] 4 (config fields pad_id, mask_id);
  bert_base has bert-base-uncased's sizes, not its WordPiece ids ([MASK] = 103 there).

Parameter count, with V the vocabulary, P = max_len positions, S = type_vocab_size, d = d_model,
f = d_ff, L = n_layer:

    embeddings   V d + P d + S d + 2 d                       (token, position, type, LayerNorm)
    each layer   4 d^2 + 4 d  +  2 d f + f + d  +  4 d       (Q, K, V, O; FFN; two LayerNorms)
    MLM head     d^2 + d + 2 d + V                           (dense, LayerNorm, decoder bias; weight tied)
    total        (V + P + S) d + 2 d + L (4 d^2 + 2 d f + 9 d + f) + d^2 + 3 d + V
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.layers.attention import LearnedPositionalEmbedding, MultiHeadAttention
from deepnotes.layers.transformer import TransformerEncoder, TransformerEncoderLayer
from deepnotes.registry import Variant, register_variants

__all__ = ["BERT", "BertConfig", "IGNORE_INDEX", "mask_tokens"]

PAPER = "Devlin et al. 2019, BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding, arXiv:1810.04805"
IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index: the targets of positions not chosen
INIT_STD = 0.02  # BERT's initializer_range


@dataclass(frozen=True)
class BertConfig:
    max_len: int = 128  # learned positions (the model's block size / context)
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 256
    d_ff: int = 1024
    dropout: float = 0.1  # embeddings, attention weights, both residual branches (BERT: 0.1 everywhere)
    type_vocab_size: int = 2  # segment A / B
    mask_id: int = 4
    pad_id: int = 0
    layer_norm_eps: float = 1e-12


# --------------------------------------------------------------------------- the masking


def mask_tokens(
    ids: torch.Tensor,
    *,
    vocab_size: int,
    mask_id: int,
    generator: torch.Generator | None,
    p: float = 0.15,
    protected: Sequence[int] = (0, 1, 2, 3, 4),
    random_low: int = 5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking (section 3.1 and appendix A.1) of ids (B, T) -> (inputs, targets), both (B, T) long.

    In each row, max(1, round(p * n)) of its n maskable positions (ids not in `protected`: PAD and
    the other specials) are chosen uniformly without replacement (none when n = 0). Of the chosen
    ones, independently, 80% become mask_id, 10% a uniform random id in [random_low, vocab_size)
    (possibly the original), 10% keep their token; the model must predict all of them, and since it
    cannot tell which were kept, it has to keep a good vector for every input token. targets = the
    original id at chosen positions, IGNORE_INDEX (-100) elsewhere. `ids` is not modified; the same
    generator state gives the same result (the draws are made on the generator's device; None: torch's
    global generator on the ids' device, which a checkpoint saves, so a resumed run draws the same masks).
    """
    if ids.dim() != 2 or ids.dtype != torch.long:
        raise ValueError(f"ids must be a (B, T) long tensor, got {tuple(ids.shape)} {ids.dtype}")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id must be in [0, {vocab_size}), got {mask_id}")
    if not 0 <= random_low < vocab_size:
        raise ValueError(f"random_low must be in [0, vocab_size = {vocab_size}), got {random_low}")
    device = generator.device if generator is not None else ids.device
    ids_g = ids.to(device)
    eligible = ~torch.isin(ids_g, torch.as_tensor(list(protected), dtype=torch.long, device=device))
    n = eligible.sum(1)  # (B,)
    k = torch.where(n > 0, torch.round(n * p).long().clamp_min(1), torch.zeros_like(n))
    # a uniform random order of each row's eligible positions (ineligible ones last): the first k are chosen
    score = torch.rand(ids.shape, generator=generator, device=device).masked_fill(~eligible, 2.0)
    order = score.argsort(dim=1)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(ids.shape[1], device=device).expand_as(order))
    chosen = (rank < k[:, None]) & eligible
    u = torch.rand(ids.shape, generator=generator, device=device)
    random_ids = torch.randint(random_low, vocab_size, ids.shape, generator=generator, device=device)
    inputs = torch.where(chosen & (u < 0.8), torch.full_like(ids_g, mask_id), ids_g)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)  # the last 10% keep theirs
    targets = torch.where(chosen, ids_g, torch.full_like(ids_g, IGNORE_INDEX))
    return inputs.to(ids.device), targets.to(ids.device)


# --------------------------------------------------------------------------- blocks


class BertEmbeddings(nn.Module):
    """LayerNorm(token + position + token type), then dropout: (B, T) ids -> (B, T, d)."""

    def __init__(self, vocab_size: int, cfg: BertConfig):
        super().__init__()
        d = cfg.d_model
        self.word = nn.Embedding(vocab_size, d, padding_idx=cfg.pad_id)  # padding_idx as HF: PAD's input row stays 0
        self.position = LearnedPositionalEmbedding(cfg.max_len, d)
        self.token_type = nn.Embedding(cfg.type_vocab_size, d)
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, idx: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.norm(self.position(self.word(idx) + self.token_type(token_type_ids))))


class MLMHead(nn.Module):
    """dense d -> d, GELU, LayerNorm, decoder d -> V (weight tied to the token embedding, own bias)."""

    def __init__(self, embedding: nn.Embedding, cfg: BertConfig):
        super().__init__()
        vocab_size, d = embedding.weight.shape
        self.dense = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.decoder = nn.Linear(d, vocab_size)
        self.decoder.weight = embedding.weight  # tied (as BERT and HF's BertLMPredictionHead): one tensor

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(F.gelu(self.dense(h))))


# --------------------------------------------------------------------------- the model


class BERT(nn.Module):
    """A BERT encoder with the masked-LM head (see the module docstring)."""

    objective = "masked"
    classifier_modules: tuple[str, ...] = ()  # fine-tuning keeps the tokenizer and the whole model

    def __init__(self, vocab_size: int, cfg: BertConfig = BertConfig()):
        super().__init__()
        d = cfg.d_model
        if min(vocab_size, cfg.max_len, cfg.n_layer, cfg.n_head, d, cfg.d_ff, cfg.type_vocab_size) < 1:
            raise ValueError("BERT needs vocab_size, max_len, n_layer, n_head, d_model, d_ff and type_vocab_size >= 1")
        if d % cfg.n_head:
            raise ValueError(f"d_model ({d}) must be a multiple of n_head ({cfg.n_head})")
        if not 0.0 <= cfg.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
        for name in ("mask_id", "pad_id"):
            if not 0 <= getattr(cfg, name) < vocab_size:
                raise ValueError(f"{name} must be in [0, vocab_size = {vocab_size}), got {getattr(cfg, name)}")
        self.cfg, self.vocab_size, self.context = cfg, vocab_size, cfg.max_len
        self.mask_id, self.pad_id = cfg.mask_id, cfg.pad_id
        self.embeddings = BertEmbeddings(vocab_size, cfg)
        layer = TransformerEncoderLayer(d, cfg.n_head, cfg.d_ff, cfg.dropout, activation="gelu", layer_norm_eps=cfg.layer_norm_eps,
                                        batch_first=True, norm_first=False)  # fmt: skip
        layer.dropout = nn.Identity()  # BERT has no dropout between the FFN's two linears (BertIntermediate)
        self.encoder = TransformerEncoder(layer, cfg.n_layer)  # post-norm: no final LayerNorm
        self.mlm = MLMHead(self.embeddings.word, cfg)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        # BERT's initializer: truncated normal (at 2 std, the TF code's truncated_normal), zero biases
        def normal(w: torch.Tensor) -> None:
            nn.init.trunc_normal_(w, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)

        for m in self.modules():
            if isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.Linear, nn.Embedding, LearnedPositionalEmbedding)):
                normal(m.weight)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, MultiHeadAttention):  # its out_proj is an nn.Linear, done above
                normal(m.in_proj_weight)
                nn.init.zeros_(m.in_proj_bias)
        self.embeddings.word.weight[self.pad_id].zero_()  # after the decoder's pass over the same (tied) tensor

    def _check(self, idx: torch.Tensor, padding_mask: torch.Tensor | None, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        if idx.dim() != 2:
            raise ValueError(f"idx must be (B, T) token ids, got {tuple(idx.shape)}")
        if idx.shape[1] > self.context:
            raise ValueError(f"sequences of at most max_len = {self.context} tokens, got {idx.shape[1]}")
        if padding_mask is not None and (padding_mask.shape != idx.shape or padding_mask.dtype != torch.bool):
            raise ValueError(f"padding_mask must be a bool (B, T) = {tuple(idx.shape)} tensor (True = padding), "
                             f"got {tuple(padding_mask.shape)} {padding_mask.dtype}")  # fmt: skip
        if token_type_ids is None:
            return torch.zeros_like(idx)
        if token_type_ids.shape != idx.shape:
            raise ValueError(f"token_type_ids must be (B, T) = {tuple(idx.shape)}, got {tuple(token_type_ids.shape)}")
        if token_type_ids.numel() and not 0 <= int(token_type_ids.min()) <= int(token_type_ids.max()) < self.cfg.type_vocab_size:
            raise ValueError(f"token_type_ids must be in [0, {self.cfg.type_vocab_size})")
        return token_type_ids

    def encode(
        self, idx: torch.Tensor, padding_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """idx (B, T) -> the last layer's vectors (B, T, d_model), before the MLM head: contextual
        embeddings. True in padding_mask = a padded position, never attended to as a key."""
        token_type_ids = self._check(idx, padding_mask, token_type_ids)
        return self.encoder(self.embeddings(idx, token_type_ids), src_key_padding_mask=padding_mask)

    def forward(
        self, idx: torch.Tensor, padding_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """idx (B, T) -> logits (B, T, vocab_size): at every position, the distribution of its original token."""
        return self.mlm(self.encode(idx, padding_mask, token_type_ids))


def _bert(vocab_size: int = 8000, num_classes: int | None = None, **cfg) -> BERT:
    if num_classes not in (None, vocab_size):
        raise ValueError(f"a masked LM predicts tokens: num_classes must equal vocab_size ({vocab_size}), got {num_classes}")
    return BERT(vocab_size, BertConfig(**cfg))


# --------------------------------------------------------------------------- variants

# bert_mini, V = 8000, P = 128, S = 2, d = 256, f = 1024, L = 4 (a laptop size):
#   embeddings (8000 + 128 + 2) * 256 + 512 = 2,081,792; a layer 4 * 65,536 + 2 * 262,144 + 9 * 256 + 1024 = 789,760;
#   head 65,536 + 768 + 8000 = 74,304; total 2,081,792 + 4 * 789,760 + 74,304 = 5,315,136.
# bert_base, V = 30522 (bert-base-uncased's WordPiece), P = 512, S = 2, d = 768, f = 3072, L = 12:
#   embeddings 23,837,184 + 12 layers * 7,087,872 = 108,891,648 (HF's BertModel without its 590,592-parameter pooler;
#   with it 109,482,240, the paper's "110M"); head 589,824 + 768 + 1,536 + 30,522 = 622,650; total 109,514,298.
# `deepnotes train bert_*`'s defaults: words (a [MASK] token, and "bank" is one token for the contextual-
# embedding experiment); AdamW with weight decay 0.01 and a warm-up, as the paper (its 1e-4 peak is for
# batches of 256 x 512 tokens; 5e-4 suits these small batches)
TRAIN = {"tokenizer": "word", "lr": 5e-4, "weight_decay": 0.01, "warmup_epochs": 1.0}
VARIANTS: dict[str, Variant] = {
    "bert_mini": Variant(
        "BERT masked LM, 4 post-norm layers, d 256, 4 heads, FFN 1024, 128 positions, tied decoder",
        num_params=5_315_136, input_size=(8000, 128), num_classes=8000, config=BertConfig(),
        task="language-model", inputs="tokens", train=TRAIN,
    ),
    "bert_base": Variant(
        "BERT-Base masked LM (12 layers, d 768, 12 heads, FFN 3072, 512 positions), no pooler / NSP head",
        num_params=109_514_298, input_size=(30522, 512), num_classes=30522,
        config=BertConfig(max_len=512, n_layer=12, n_head=12, d_model=768, d_ff=3072),
        task="language-model", inputs="tokens", train=TRAIN,
    ),
}  # fmt: skip

register_variants(_bert, VARIANTS, paper=PAPER)
