"""Transformer encoder and decoder layers: Vaswani et al. 2017, "Attention Is All You Need",
arXiv:1706.03762, section 3.1 and figure 1.

Each sub-layer (attention, or the position-wise feed-forward network FFN(x) =
W_2 act(W_1 x + b_1) + b_2, applied to every position alone, d_model -> d_ff -> d_model,
512 -> 2048 -> 512 in the paper) is wrapped in a residual connection and a LayerNorm:

    post-norm (the paper):  x = LayerNorm(x + Dropout(Sublayer(x)))
    pre-norm:               x = x + Dropout(Sublayer(LayerNorm(x)))

Pre-norm (Xiong et al. 2020, arXiv:2002.04745; used by GPT-2 and ViT) keeps an identity path
from input to output, which trains deep stacks without the learning-rate warm-up post-norm
needs. Encoder layer: self-attention, FFN. Decoder layer: masked (causal) self-attention,
cross-attention whose keys and values are the encoder's output ("memory"), FFN.

Both layers are built on deepnotes.layers.attention.MultiHeadAttention and carry the state-dict
names of nn.TransformerEncoderLayer / nn.TransformerDecoderLayer (self_attn, multihead_attn,
linear1, dropout, linear2, norm1..3, dropout1..3), so torch's weights load directly; the
stacks TransformerEncoder / TransformerDecoder match nn.TransformerEncoder / Decoder (layers.i,
norm). Masks follow nn.MultiheadAttention: boolean True = not allowed (True = padding).

Departures: none in the computation. The layers take batch_first=True by default (torch:
False): (B, L, d_model) inputs unless batch_first=False is passed. The FFN's linear1/linear2
sit directly on the layers (for torch's names); FeedForward is the same computation as a
module of its own. Torch's "fast path" (a fused inference kernel, with nested tensors for
padding) is not reproduced: padded query positions here get ordinary outputs, where torch's
nested-tensor stack gives zeros. A sequence that is padding throughout gets zero attention
(and zero gradients through it) in both attention paths, as F.scaled_dot_product_attention.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.layers.attention import MultiHeadAttention

__all__ = ["FeedForward", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer"]

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu}


def _activation(activation: str | Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    if callable(activation):
        return activation
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)} or a callable, got {activation!r}")
    return _ACTIVATIONS[activation]


def feed_forward(x: torch.Tensor, linear1: nn.Linear, linear2: nn.Linear, activation: Callable, dropout: nn.Module) -> torch.Tensor:
    """The position-wise FFN: linear2(dropout(act(linear1(x)))), on the last axis only."""
    return linear2(dropout(activation(linear1(x))))


class FeedForward(nn.Module):
    """Position-wise feed-forward network: (..., d_model) -> (..., dim_feedforward) -> (..., d_model)."""

    def __init__(self, d_model: int, dim_feedforward: int = 2048, dropout: float = 0.1, activation: str | Callable = "relu", bias: bool = True):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.activation = _activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return feed_forward(x, self.linear1, self.linear2, self.activation, self.dropout)


class TransformerEncoderLayer(nn.Module):
    """Self-attention and FFN, each with residual + LayerNorm (post-norm, or pre-norm with norm_first).

    forward(src (B, L, d_model), src_mask (L, L) or (B*heads, L, L), src_key_padding_mask (B, L),
    is_causal) -> (B, L, d_model). Arguments and parameter names as nn.TransformerEncoderLayer,
    except batch_first=True by default (torch: False); batch_first=False takes (L, B, d_model).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = True,
        norm_first: bool = False,
        bias: bool = True,
    ):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = _activation(activation)

    def _sa_block(self, x: torch.Tensor, attn_mask, key_padding_mask, is_causal: bool) -> torch.Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(feed_forward(x, self.linear1, self.linear2, self.activation, self.dropout))

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x


class TransformerDecoderLayer(nn.Module):
    """Masked self-attention, cross-attention on the memory, FFN; each with residual + LayerNorm.

    forward(tgt (B, T, d), memory (B, S, d), tgt_mask, memory_mask, tgt_key_padding_mask (B, T),
    memory_key_padding_mask (B, S), tgt_is_causal, memory_is_causal) -> (B, T, d). Arguments and
    parameter names as nn.TransformerDecoderLayer, except batch_first=True by default (torch:
    False). tgt_is_causal=True without tgt_mask builds the causal mask (torch needs the mask).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = True,
        norm_first: bool = False,
        bias: bool = True,
    ):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.multihead_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = _activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal: bool) -> torch.Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal: bool) -> torch.Tensor:
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(x)

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout3(feed_forward(x, self.linear1, self.linear2, self.activation, self.dropout))

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        tgt_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        tgt_key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> torch.Tensor:
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x


class TransformerEncoder(nn.Module):
    """num_layers copies of encoder_layer, then an optional final norm (pre-norm stacks need one)."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: nn.Module | None = None):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_layers))
        self.num_layers, self.norm = num_layers, norm

    def forward(
        self, src: torch.Tensor, mask: torch.Tensor | None = None, src_key_padding_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(nn.Module):
    """num_layers copies of decoder_layer, then an optional final norm."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: nn.Module | None = None):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(copy.deepcopy(decoder_layer) for _ in range(num_layers))
        self.num_layers, self.norm = num_layers, norm

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        tgt_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        tgt_key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> torch.Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask, tgt_is_causal, memory_is_causal)
        return x if self.norm is None else self.norm(x)
