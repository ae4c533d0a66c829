"""GPT: a decoder-only Transformer language model (Radford et al. 2018, "Improving Language
Understanding by Generative Pre-Training"; Radford et al. 2019, "Language Models are Unsupervised
Multitask Learners", GPT-2), in the layout of nanoGPT's model.py (Karpathy).

    model = create_model("gpt_nano", vocab_size=len(chars), num_classes=len(chars))   # the task's vocabulary
    logits = model(idx)                      # idx (B, T) token ids, T <= block_size -> (B, T, vocab_size)
    h = model.forward_features(idx)          # (B, T, n_embd), after the final LayerNorm
    for token in generate(model, prompt, 200, temperature=0.8, top_k=40): ...   # models/sampling.py

Token embedding plus a learned position embedding (one row per position < block_size), then
n_layer pre-norm blocks (GPT-2, section 2.3: the LayerNorm moved to each sub-block's input):

    x = x + Dropout(W_o CausalSelfAttention(LayerNorm(x)))
    x = x + Dropout(W_2 GELU_tanh(W_1 LayerNorm(x)))            (4 * n_embd hidden units)

then a final LayerNorm and a linear layer to the vocabulary whose weight IS the token embedding
(Press & Wolf 2017, "Using the Output Embedding to Improve Language Models": one tensor, counted
once). Logit t is the distribution of token t + 1 and sees tokens 0..t only (causal mask).
Initialisation as GPT-2: every Linear and Embedding weight N(0, 0.02^2), biases 0, and the two
projections that write into the residual stream (attn.c_proj, mlp.c_proj) N(0, (0.02 / sqrt(2 n_layer))^2),
so the residual's variance does not grow with depth (GPT-2, section 2.3).

Attention runs on torch's fused F.scaled_dot_product_attention(is_causal=True) for speed;
deepnotes.layers.attention has the formula written out (and its tests). tests/test_gpt.py checks a
block against nn.TransformerEncoderLayer(norm_first=True) with these weights copied in.
Parameter names are nanoGPT's (transformer.wte / wpe / h.i.{ln_1, attn.c_attn, attn.c_proj, ln_2,
mlp.c_fc, mlp.c_proj} / ln_f, lm_head), so a nanoGPT checkpoint's state_dict loads as it is.

Departures from nanoGPT: the GELU is GPT-2's tanh approximation (nanoGPT: exact erf); forward
returns the logits of every position and takes no targets (the task computes the loss);
bias=False also removes the LayerNorms' biases (as nanoGPT, via nn.LayerNorm(bias=False)).
No key/value cache (models/sampling.py recomputes the whole window at every step).

Parameter count, with V = vocab_size, C = block_size, d = n_embd, L = n_layer:

    token embedding V d (tied with the output layer) + positions C d
    + per block: c_attn 3 d^2, attn.c_proj d^2, c_fc 4 d^2, mlp.c_proj 4 d^2 = 12 d^2, two LayerNorm gains 2 d
      and with bias: + 3d + d + 4d + d (Linear biases) + 2d (LayerNorm biases) = + 11 d
    + the final LayerNorm: d (+ d with bias)

    bias=False: N = V d + C d + L (12 d^2 + 2 d) + d
    bias=True:  N = V d + C d + L (12 d^2 + 13 d) + 2 d

gpt_nano (V 65, C 64, d 128, L 4, no bias): 8,320 + 8,192 + 4 * (196,608 + 256) + 128 = 804,096
(nanoGPT prints 0.80M: it leaves out the 8,192 position parameters).
gpt_mini (V 65, C 128, d 192, L 6, no bias): 12,480 + 24,576 + 6 * (442,368 + 384) + 192 = 2,693,760.
gpt2 (V 50,257, C 1,024, d 768, L 12, bias): 38,597,376 + 786,432 + 12 * (7,077,888 + 9,984) + 1,536
= 124,439,808 (GPT-2 small, "124M").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.layers.attention import LearnedPositionalEmbedding
from deepnotes.registry import Variant, register_variants

PAPER = "Radford et al. 2019, Language Models are Unsupervised Multitask Learners (GPT-2)"
INIT_STD = 0.02  # GPT-2's (and GPT-1's) N(0, 0.02^2)


@dataclass(frozen=True)
class GPTConfig:
    """The model's shape; vocab_size comes from the builder (the task's tokenizer). Defaults: gpt_nano."""

    block_size: int = 64  # the context: most tokens the model sees at once
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False  # biases in the Linears and LayerNorms (GPT-2: True; nanoGPT's train.py default: False)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t attends to positions 0..t (Vaswani et al. 2017)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.n_embd, self.dropout = cfg.n_head, cfg.n_embd, cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v of every head in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    """The position-wise feed-forward network, d -> 4d -> d with GPT-2's tanh-approximated GELU."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One pre-norm Transformer block (GPT-2, section 2.3)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only Transformer language model (see the module docstring)."""

    objective = "causal"
    classifier_modules = ()  # fine-tuning keeps the tokenizer and the whole model

    def __init__(self, vocab_size: int, num_classes: int | None = None, cfg: GPTConfig = GPTConfig()):
        super().__init__()
        if num_classes not in (None, vocab_size):
            raise ValueError(
                f"a language model predicts its own tokens: num_classes must equal vocab_size ({vocab_size}), got {num_classes}"
            )
        sizes = {
            "vocab_size": vocab_size,
            "block_size": cfg.block_size,
            "n_layer": cfg.n_layer,
            "n_head": cfg.n_head,
            "n_embd": cfg.n_embd,
        }
        bad = [f"{k}={v!r}" for k, v in sizes.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
        if bad:
            raise ValueError(f"{', '.join(bad)}: sizes must be integers >= 1")
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"n_embd ({cfg.n_embd}) must be a multiple of n_head ({cfg.n_head})")
        if not 0 <= cfg.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
        self.cfg, self.vocab_size, self.num_classes = cfg, vocab_size, vocab_size
        self.context = cfg.block_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, cfg.n_embd),
            wpe=LearnedPositionalEmbedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer)),
            ln_f=nn.LayerNorm(cfg.n_embd, bias=cfg.bias),
        ))  # fmt: skip
        self.lm_head = nn.Linear(cfg.n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied (Press & Wolf 2017): one parameter
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2's: N(0, 0.02^2) everywhere, residual projections scaled by 1/sqrt(2 n_layer)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=INIT_STD)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.transformer.wpe.weight, std=INIT_STD)  # GPT-2's normal, not the layer's truncated one
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # two residual additions per block: 2 * n_layer in all
                nn.init.normal_(p, std=INIT_STD / math.sqrt(2 * self.cfg.n_layer))

    def forward_features(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) token ids, T <= block_size -> (B, T, n_embd) after the final LayerNorm."""
        if idx.dim() != 2:
            raise ValueError(f"expected token ids (B, T), got shape {tuple(idx.shape)}")
        if idx.shape[1] > self.context:
            raise ValueError(
                f"sequence of {idx.shape[1]} tokens is longer than the model's block_size {self.context}; crop it to the last {self.context}"
            )
        x = self.transformer.drop(self.transformer.wpe(self.transformer.wte(idx)))
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) -> logits (B, T, vocab_size); position t scores token t + 1."""
        return self.lm_head(self.forward_features(idx))


def _gpt(vocab_size: int = 65, num_classes: int | None = None, **cfg) -> GPT:
    return GPT(vocab_size, num_classes, GPTConfig(**cfg))


def gpt_num_params(vocab_size: int, block_size: int, n_layer: int, n_embd: int, bias: bool) -> int:
    """The parameter count of the module docstring's formula (tied embeddings counted once)."""
    d = n_embd
    per_block = 12 * d * d + (13 * d if bias else 2 * d)
    return vocab_size * d + block_size * d + n_layer * per_block + (2 * d if bias else d)


NANO, MINI = GPTConfig(), GPTConfig(block_size=128, n_layer=6, n_head=6, n_embd=192, dropout=0.1)
GPT2_SMALL = GPTConfig(block_size=1024, n_layer=12, n_head=12, n_embd=768, dropout=0.0, bias=True)
SHAKESPEARE_CHARS = 65  # tinyshakespeare's distinct characters (nanoGPT's data/shakespeare_char)
GPT2_VOCAB = 50257  # GPT-2's byte-level BPE: 256 bytes + 50,000 merges + <|endoftext|>

# Variant.train: the command line's defaults for the model. gpt_nano: nanoGPT's CPU recipe for
# shakespeare_char (README: batch 12, block 64; config/train_shakespeare_char.py: AdamW lr 1e-3 with
# cosine decay; train.py: weight decay 0.1, gradient clipping at 1.0); the language-model task's
# AdamW takes nanoGPT's betas (0.9, 0.99) and decays only the matrices, as train.py does. Not here:
# the 100 warm-up iterations and min_lr 1e-4 (the cosine ends at 0).
_NANO_TRAIN = {
    "optimizer": "adamw",
    "lr": 1e-3,
    "schedule": "cosine",
    "batch_size": 12,
    "weight_decay": 0.1,
    "clip_grad_norm": 1.0,
}
VARIANTS: dict[str, Variant] = {
    "gpt_nano": Variant(
        "GPT, nanoGPT's CPU recipe for character-level Shakespeare: 4 layers, 4 heads, width 128, context 64",
        num_params=804_096,
        input_size=(SHAKESPEARE_CHARS, NANO.block_size),
        num_classes=SHAKESPEARE_CHARS,
        config=NANO,
        task="language-model",
        inputs="tokens",
        train=_NANO_TRAIN,
    ),
    # A laptop model between gpt_nano and nanoGPT's "baby GPT" (6 x 6 x 384, context 256, dropout 0.2):
    # half its width and context, dropout 0.1, so an epoch of Shakespeare takes minutes on a CPU.
    "gpt_mini": Variant(
        "GPT for a laptop: 6 layers, 6 heads, width 192, context 128, dropout 0.1 (characters)",
        num_params=2_693_760,
        input_size=(SHAKESPEARE_CHARS, MINI.block_size),
        num_classes=SHAKESPEARE_CHARS,
        config=MINI,
        task="language-model",
        inputs="tokens",
        train={**_NANO_TRAIN, "batch_size": 32},
    ),
    # nanoGPT's OpenWebText recipe (train.py): AdamW lr 6e-4, weight decay 0.1, clipping 1.0, micro-batch 12
    "gpt2": Variant(
        "GPT-2 small: 12 layers, 12 heads, width 768, context 1024, BPE vocabulary of 50,257, biases",
        num_params=124_439_808,
        input_size=(GPT2_VOCAB, GPT2_SMALL.block_size),
        num_classes=GPT2_VOCAB,
        config=GPT2_SMALL,
        task="language-model",
        inputs="tokens",
        train={
            "optimizer": "adamw",
            "lr": 6e-4,
            "schedule": "cosine",
            "batch_size": 12,
            "weight_decay": 0.1,
            "clip_grad_norm": 1.0,
        },
    ),
}

register_variants(_gpt, VARIANTS, paper=PAPER)
