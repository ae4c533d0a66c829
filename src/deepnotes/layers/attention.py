"""Attention from its formula: Vaswani et al. 2017, "Attention Is All You Need", arXiv:1706.03762.

Scaled dot-product attention (section 3.2.1) on queries Q (..., L, E), keys K (..., S, E) and
values V (..., S, Ev):

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V        (..., L, Ev)

Row i of the (L, S) weight matrix says how much query i takes from each value; dividing by
sqrt(d_k) keeps the logits' variance near 1 as d_k grows, so the softmax does not saturate.
Multi-head attention (section 3.2.2) projects Q, K and V h times to d_k = d_model / h,
attends in each head, concatenates the heads and projects back:

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,  head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)

(e.g. d_model 512 = 8 heads x 64). Self-attention: Q, K, V all come from one sequence;
cross-attention: queries from one, keys and values from another (the decoder reading the
encoder's memory). Positional encodings (section 3.5) are added to the inputs because
attention by itself ignores order: permuting the tokens permutes the output.

    scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale, return_weights)
    MultiHeadAttention(embed_dim, num_heads, ...)      drop-in for nn.MultiheadAttention (but batch_first=True)
    use_fused(True) / set_fused_default / fused_default: scratch path <-> F.scaled_dot_product_attention
    record_attention(model): collect every attention map of a forward pass
    sinusoidal_position_encoding, SinusoidalPositionalEncoding, LearnedPositionalEmbedding

Mask conventions (they differ between the two torch APIs, and this file keeps each):
- scaled_dot_product_attention follows F.scaled_dot_product_attention: a boolean mask is
  True where a query MAY attend; a float mask is added to the logits (-inf blocks).
- MultiHeadAttention follows nn.MultiheadAttention: boolean attn_mask / key_padding_mask are
  True where attention is NOT allowed (True = padding); float masks are added.

Notes where this code departs from the paper or from torch:
- MultiHeadAttention (and the transformer layers built on it) take batch_first=True by
  default (torch: False): inputs are (B, L, E) unless batch_first=False is passed. Loading
  torch's weights is unaffected; code written for torch's (L, B, E) default must pass it.
- A query whose every key is masked gets all-zero weights and a zero output, and exactly
  zero gradient flows through that row (to q, k, v, and through an additive float mask),
  never NaN; also with no keys at all (S = 0). F.scaled_dot_product_attention does the same
  on this torch (2.13, both for boolean masks and for rows of -inf); nn.MultiheadAttention
  returns NaN for such rows when it computes weights (its explicit softmax path).
- is_causal=True with an explicit attn_mask: F.scaled_dot_product_attention refuses the pair;
  here both apply (their intersection), which the decoder needs (causal + padding).
- The causal mask of a non-square (L, S) score matrix is top-left aligned (query i sees keys
  0..i), as F.scaled_dot_product_attention's is_causal.
- MultiHeadAttention(is_causal=True) without attn_mask builds the causal mask itself
  (nn.MultiheadAttention requires the mask and treats is_causal as a hint); with a mask given,
  the mask is what applies (torch may use the hint instead: the same when the hint is true).
- Dropout on the attention weights is applied by the function whenever dropout_p > 0 (as
  F.scaled_dot_product_attention); MultiHeadAttention passes its dropout only in training.
  The weights returned (and recorded) are the ones used, after dropout, as torch's.
- No add_bias_kv / add_zero_attn (torch's rarely used extras).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.layers.ops import FusedSwitch

__all__ = [
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "SinusoidalPositionalEncoding",
    "causal_mask",
    "fused_default",
    "record_attention",
    "scaled_dot_product_attention",
    "set_fused_default",
    "sinusoidal_position_encoding",
    "use_fused",
]

# --------------------------------------------------------------------------- the fused switch

# False: the scratch path below (softmax written out, weights available); True: torch's
# fused F.scaled_dot_product_attention wherever the weights are not needed.
_SWITCH = FusedSwitch(False)

# fused_default(): the path modules with fused=None take; set_fused_default(v) -> the previous one;
# use_fused(v): a with-block in which the default is v
fused_default, set_fused_default, use_fused = _SWITCH.get, _SWITCH.set, _SWITCH.use


# --------------------------------------------------------------------------- the function


def causal_mask(length: int, source_length: int | None = None, device: torch.device | None = None) -> torch.Tensor:
    """(L, S) boolean mask, True where query i may attend key j: j <= i (top-left aligned)."""
    s = length if source_length is None else source_length
    return torch.ones(length, s, dtype=torch.bool, device=device).tril()


def _safe_softmax(scores: torch.Tensor) -> torch.Tensor:
    """softmax over the last axis, written out; rows that are all -inf give zeros, not NaN.

    Subtracting the row maximum changes nothing mathematically (softmax is shift-invariant)
    and keeps exp from overflowing. The maximum is detached: its gradient contributions cancel
    exactly, and for an all -inf row it would be NaN.

    A dead row (all -inf: the query may attend nowhere) is set to 0 before exp and its weights
    to 0 after the division, both by masked_fill, whose backward sends exactly 0 into the
    filled places; the division in between is then by S, never by 0. (Dividing 0 by
    sum.clamp_min(tiny) gave the same forward, but its backward g / tiny overflowed to inf and
    inf * exp'(-inf) = inf * 0 = NaN reached q and k through an additive float mask.)
    Every other row has sum >= 1 (its maximum contributes exp(0)), so its values are as before.
    """
    if scores.shape[-1] == 0:  # no keys at all: an empty (..., L, 0) weight matrix
        return scores.clone()
    top = scores.detach().amax(dim=-1, keepdim=True)
    dead = top == float("-inf")  # (..., L, 1)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp((scores - top).masked_fill(dead, 0.0))
    return (e / e.sum(dim=-1, keepdim=True)).masked_fill(dead, 0.0)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T * scale + mask) V on (..., L, E), (..., S, E), (..., S, Ev) -> (..., L, Ev).

    scale defaults to 1 / sqrt(E). attn_mask broadcasts to (..., L, S): boolean = True where
    the query may attend (F.scaled_dot_product_attention's convention), float = added to the
    logits. is_causal adds the top-left causal mask (and may be combined with attn_mask).
    Fully masked rows give zero weights and zero outputs. With return_weights, also returns
    the (..., L, S) weights (after dropout, when dropout_p > 0).
    """
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(f"attention needs (..., L, E) tensors, got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys need the same last size E, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"keys and values need the same length S, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    L, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., L, S)
    allowed = causal_mask(L, S, device=q.device) if is_causal else None
    if attn_mask is not None:
        try:
            shape = torch.broadcast_shapes(attn_mask.shape, scores.shape)
        except RuntimeError:
            shape = None
        if shape != scores.shape:
            raise ValueError(f"attn_mask {tuple(attn_mask.shape)} does not broadcast to the scores (..., L, S) = {tuple(scores.shape)}")
        if attn_mask.dtype == torch.bool:
            allowed = attn_mask if allowed is None else allowed & attn_mask
        elif attn_mask.is_floating_point():
            scores = scores + attn_mask.to(scores.dtype)
        else:
            raise ValueError(f"attn_mask must be bool (True = may attend) or float (added to the logits), got {attn_mask.dtype}")
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = _safe_softmax(scores)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    out = weights @ v  # (..., L, Ev)
    return (out, weights) if return_weights else out


# --------------------------------------------------------------------------- multi-head attention


def _each(fn, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """fn applied to query, key and value, keeping `key is query` / `value is key` true when
    they were (so self-attention keeps its single projection)."""
    q = fn(query)
    k = q if key is query else fn(key)
    v = k if value is key else fn(value)
    return q, k, v


class MultiHeadAttention(nn.Module):
    """Multi-head attention with nn.MultiheadAttention's parameters, masks and outputs.

    Parameters (names as torch's, so `load_state_dict(torch_mha.state_dict())` works):
    in_proj_weight (3E, E) and in_proj_bias (3E) holding W^Q, W^K, W^V stacked; when kdim or
    vdim differ from embed_dim, q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight
    (E, vdim) instead; out_proj (Linear E -> E) is W^O. Head i uses rows i*d..(i+1)*d of each
    projection, d = E / num_heads.

    forward(query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights,
    is_causal) -> (output, weights or None), as torch's: with batch_first, query (B, L, E),
    key (B, S, kdim), value (B, S, vdim) -> output (B, L, E), weights (B, L, S) averaged over
    heads or (B, heads, L, S); unbatched (L, E) inputs work too. key_padding_mask (B, S) and
    attn_mask (L, S) or (B * heads, L, S): boolean True = NOT allowed, float = added.

    fused: True -> F.scaled_dot_product_attention, False -> the scratch function above,
    None -> the module-level default (use_fused). The fused path cannot return weights, so
    need_weights=True (and recording) always takes the scratch path, as torch does.

    A drop-in for nn.MultiheadAttention except for one default: batch_first=True by default
    (torch: False), so (B, L, E) inputs; pass batch_first=False for torch's (L, B, E).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = True,
        fused: bool | None = None,
    ):
        super().__init__()
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"embed_dim must be a positive multiple of num_heads, got embed_dim={embed_dim}, num_heads={num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first, self.fused = float(dropout), batch_first, fused
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        # Recording (record_attention): the lists this module appends its maps to, and the last map.
        self._recorders: list[list[torch.Tensor]] = []
        self.last_attention: torch.Tensor | None = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # As nn.MultiheadAttention: Xavier-uniform projections, zero biases (out_proj.weight keeps
        # nn.Linear's default).
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                nn.init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def extra_repr(self) -> str:
        extra = "" if self._qkv_same_embed_dim else f", kdim={self.kdim}, vdim={self.vdim}"
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}{extra}, fused={self.fused}"

    # ---- pieces

    def _project(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, L, E), (B, S, kdim), (B, S, vdim) -> Q, K, V as (B, heads, L or S, head_dim)."""
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:  # self-attention: one matrix product for all three
                q, k, v = F.linear(query, w, b).chunk(3, dim=-1)
            else:
                q, k, v = F.linear(query, w[:E], bq), F.linear(key, w[E : 2 * E], bk), F.linear(value, w[2 * E :], bv)
        else:
            q = F.linear(query, self.q_proj_weight, bq)
            k = F.linear(key, self.k_proj_weight, bk)
            v = F.linear(value, self.v_proj_weight, bv)
        B, H, d = query.shape[0], self.num_heads, self.head_dim
        return tuple(t.reshape(B, t.shape[1], H, d).transpose(1, 2) for t in (q, k, v))

    def _merge_masks(
        self, attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None, B: int, L: int, S: int, dtype: torch.dtype
    ) -> torch.Tensor | None:
        """torch's masks (True = blocked) -> one mask for the (B, heads, L, S) scores in the
        function's convention (bool True = allowed, or float added), or None."""
        masks = []
        if attn_mask is not None:
            if attn_mask.shape == (L, S):
                m = attn_mask.view(1, 1, L, S)
            elif attn_mask.shape == (B * self.num_heads, L, S):
                m = attn_mask.view(B, self.num_heads, L, S)
            else:
                raise ValueError(
                    f"attn_mask must be (L, S) = ({L}, {S}) or (B * num_heads, L, S) = ({B * self.num_heads}, {L}, {S}), got {tuple(attn_mask.shape)}"
                )
            masks.append(m)
        if key_padding_mask is not None:
            if key_padding_mask.shape != (B, S):
                raise ValueError(f"key_padding_mask must be (B, S) = ({B}, {S}) (True = padding), got {tuple(key_padding_mask.shape)}")
            masks.append(key_padding_mask.view(B, 1, 1, S))
        for m in masks:
            if m.dtype != torch.bool and not m.is_floating_point():
                raise ValueError(f"masks must be bool (True = not allowed) or float (added to the logits), got {m.dtype}")
        if not masks:
            return None
        if all(m.dtype == torch.bool for m in masks):
            allowed = ~masks[0]
            for m in masks[1:]:
                allowed = allowed & ~m
            return allowed
        total = None
        for m in masks:
            m = torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(m, float("-inf")) if m.dtype == torch.bool else m.to(dtype)
            total = m if total is None else total + m
        return total

    # ---- forward

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = _each(lambda t: t.unsqueeze(0), query, key, value)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif query.dim() != 3:
            raise ValueError(f"query must be (B, L, E) (batch_first) or (L, E), got {tuple(query.shape)}")
        elif not self.batch_first:  # (L, B, E) -> (B, L, E)
            query, key, value = _each(lambda t: t.transpose(0, 1), query, key, value)
        if key.dim() != 3 or value.dim() != 3 or key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(f"key and value must match the query's batch and each other's length, got {tuple(key.shape)}, {tuple(value.shape)}")
        if query.shape[-1] != self.embed_dim or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ValueError(
                f"expected last sizes query {self.embed_dim}, key {self.kdim}, value {self.vdim}; "
                f"got {query.shape[-1]}, {key.shape[-1]}, {value.shape[-1]}"
            )
        B, L, S = query.shape[0], query.shape[1], key.shape[1]
        q, k, v = self._project(query, key, value)  # (B, H, L, d), (B, H, S, d), (B, H, S, d)
        mask = self._merge_masks(attn_mask, key_padding_mask, B, L, S, q.dtype)
        causal = is_causal and attn_mask is None  # with a mask given, the mask applies
        if causal and mask is not None:  # the fused op takes no mask with is_causal: fold it in
            c = causal_mask(L, S, device=q.device)
            mask = mask & c if mask.dtype == torch.bool else mask.masked_fill(~c, float("-inf"))
            causal = False
        dropout_p = self.dropout if self.training else 0.0
        record = bool(self._recorders)
        fused = fused_default() if self.fused is None else self.fused
        if fused and not need_weights and not record:
            out, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal), None
        else:
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p, causal, return_weights=True)
        if record:
            self.last_attention = weights.detach()  # (B, H, L, S)
            for maps in self._recorders:
                maps.append(self.last_attention)
        out = self.out_proj(out.transpose(1, 2).reshape(B, L, self.embed_dim))  # concatenate heads, W^O
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, weights.squeeze(0) if unbatched else weights


# --------------------------------------------------------------------------- recording


@contextmanager
def record_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record every attention map of the model's MultiHeadAttention modules while inside.

        with record_attention(model) as maps:
            model(x)
        maps  # one (B, heads, Lq, Lk) tensor per attention call, in call order (detached)

    Each module also holds its latest map in `last_attention` inside the block. On leaving,
    every module is as before (its recorders and last_attention restored), also after an
    error; blocks may nest. Recorded modules take the scratch path (the fused one has no weights).
    """
    modules = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    if not modules:
        raise ValueError(f"{type(model).__name__} has no deepnotes MultiHeadAttention to record (torch's nn.MultiheadAttention is not recorded)")
    maps: list[torch.Tensor] = []
    before = [(m, m.last_attention) for m in modules]
    for m in modules:
        m._recorders.append(maps)
    try:
        yield maps
    finally:
        for m, last in before:
            # remove by identity: two empty lists compare equal
            m._recorders[:] = [r for r in m._recorders if r is not maps]
            m.last_attention = last


# --------------------------------------------------------------------------- positional encodings


def sinusoidal_position_encoding(
    length: int, dim: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """(length, dim) table of section 3.5: PE(pos, 2i) = sin(pos / 10000^(2i/dim)),
    PE(pos, 2i+1) = cos(pos / 10000^(2i/dim)). Each pair of columns is a sinusoid of its own
    wavelength (2 pi to 10000 * 2 pi), so PE(pos + k) is a linear function of PE(pos).
    An odd dim ends with a sin column. Computed in float64 and rounded once to dtype."""
    if length < 0 or dim < 1:
        raise ValueError(f"need length >= 0 and dim >= 1, got length={length}, dim={dim}")
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)  # (length, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)  # 2i = 0, 2, 4, ...
    angle = pos / torch.pow(10000.0, two_i / dim)  # (length, ceil(dim / 2))
    pe = torch.zeros(length, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return pe.to(device=device, dtype=dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """x + PE[:L] for x (B, L, dim) (batch_first), then dropout (the paper uses 0.1).

    The table is a buffer (not a parameter, and persistent=False: not in the state dict, it is a
    fixed function) for max_len positions; longer inputs are a ValueError. It is held in the
    module's dtype and recomputed from float64 whenever that changes (.double(), .half(),
    .to(dtype), round trips included), so each dtype gets the correctly rounded table, not a
    float32 one converted (.double() used to be 3e-8 off). An input of another dtype than the
    table gets its rows computed for it.
    """

    def __init__(self, dim: int, max_len: int = 5000, dropout: float = 0.0):
        super().__init__()
        self.dim, self.max_len = dim, max_len
        self.register_buffer("pe", sinusoidal_position_encoding(max_len, dim), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def _apply(self, fn, recurse=True):
        dtype = self.pe.dtype
        module = super()._apply(fn, recurse)
        if self.pe.dtype != dtype:  # a dtype change: recompute instead of converting the rounded table
            self.pe = sinusoidal_position_encoding(self.max_len, self.dim, dtype=self.pe.dtype, device=self.pe.device)
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L = x.shape[-2]
        if x.shape[-1] != self.dim or L > self.max_len:
            raise ValueError(f"expected (..., L <= {self.max_len}, {self.dim}), got {tuple(x.shape)}")
        if x.dtype == self.pe.dtype:
            pe = self.pe[:L]
        else:  # rows for this dtype, not the table converted (float32 -> float64 would keep float32's error)
            pe = sinusoidal_position_encoding(L, self.dim, dtype=x.dtype, device=x.device)
        return self.dropout(x + pe)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_len={self.max_len}"


class LearnedPositionalEmbedding(nn.Module):
    """x + P[:L] with P (max_len, dim) a learned parameter (as BERT, GPT and ViT), init N(0, 0.02^2).

    The paper found learned embeddings "nearly identical" to the sinusoids (table 3, row E);
    the sinusoids may extrapolate to longer sequences, a learned table cannot.
    """

    def __init__(self, max_len: int, dim: int):
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.weight = nn.Parameter(torch.empty(max_len, dim))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L = x.shape[-2]
        if x.shape[-1] != self.dim or L > self.max_len:
            raise ValueError(f"expected (..., L <= {self.max_len}, {self.dim}), got {tuple(x.shape)}")
        return x + self.weight[:L]

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, dim={self.dim}"
