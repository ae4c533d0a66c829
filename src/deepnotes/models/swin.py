"""Swin Transformer: Liu, Lin, Cao, Hu, Wei, Zhang, Lin & Guo, "Swin Transformer: Hierarchical
Vision Transformer using Shifted Windows", 2021 (ICCV 2021), arXiv:2103.14030.

Why it exists, after ViT (deepnotes.models.vit): ViT's attention is global, so its cost grows
with the square of the number of patches, and its tokens stay at one scale (16x16 patches), which
a detector or a segmenter cannot use as they use a CNN's pyramid. Swin keeps the transformer
block and changes two things:

1. Attention inside local windows of M x M patches (M = 7), so each layer costs N * M^2 instead
   of N^2: linear in the number of patches N. Windows alone never exchange information, so every
   second block shifts the window grid by (M/2, M/2) patches (figure 2): a window of the shifted
   layer straddles four windows of the layer before. The shifted grid has more, partly empty
   windows at the border; the paper computes it as a *cyclic* shift of the map (torch.roll) by
   -M/2, the regular partition of the rolled map, and a mask that keeps apart the tokens that the
   roll brought together from opposite borders (section 3.2, figure 4). Attention adds a learned
   relative position bias B (eq. 4): one table entry per head and per offset (dy, dx) in
   [-(M-1), M-1]^2, (2M-1)^2 = 169 entries for M = 7.
2. A hierarchy: a 4x4 patch embedding (stride 4, C channels), then stages separated by patch
   merging (each 2x2 group of neighbouring tokens concatenated, 4C, LayerNorm, linear to 2C), so
   the stages see strides 4, 8, 16, 32 with C, 2C, 4C, 8C channels, like ResNet's stages.

    224x224x3 -> 4x4 patches, linear to C=96             (56, 56, 96)    stage 1: 2 blocks
    -> merge 2x2 -> (28, 28, 192) stage 2: 2 blocks -> (14, 14, 384) stage 3: 6 blocks (Swin-T)
    -> (7, 7, 768) stage 4: 2 blocks -> LayerNorm -> average pool -> head
    block: x += W-MSA(LN(x)) (even blocks) or SW-MSA (odd blocks, shifted); x += MLP(LN(x))

Shapes: tokens are kept channel-last inside a stage, (B, H, W, C) as in torchvision; each stage
takes and returns a (B, C, H, W) map, as a CNN stage does, so `feature_info` names stages.0-3
(reductions 4, 8, 16, 32) for an FCN / U-Net / detection head, and forward_features returns the
last map after the final LayerNorm, (B, 8C, H/32, W/32).

Reference for the structure and the counts: torchvision's swin_t / swin_s / swin_b
(torchvision/models/swin_transformer.py), which reproduces the paper's ImageNet numbers. Per
block with width d and h heads: 2 LayerNorms 4d, qkv 3d^2 + 3d, projection d^2 + d, MLP
(d -> 4d -> d) 8d^2 + 5d, bias table 169h: 12d^2 + 13d + 169h. Patch merging from d: LayerNorm
8d + linear 4d * 2d (no bias) = 8d^2 + 8d. Swin-T (C=96, depths 2-2-6-2, heads 3-6-12-24):

    patch embedding  conv 3*16*96 + 96 = 4,704, LayerNorm 192                           4,896
    stage 1 (d=96)   2 x (110,592 + 1,248 + 507)                                      224,694
    merge            768 + 73,728                                                       74,496
    stage 2 (d=192)  2 x (442,368 + 2,496 + 1,014)                                    891,756
    merge            1,536 + 294,912                                                   296,448
    stage 3 (d=384)  6 x (1,769,472 + 4,992 + 2,028)                               10,658,952
    merge            3,072 + 1,179,648                                               1,182,720
    stage 4 (d=768)  2 x (7,077,888 + 9,984 + 4,056)                               14,183,856
    final LayerNorm 1,536, head 768 * 1000 + 1000 = 769,000                            770,536
    total                                                                           28,288,354

Swin-S has 18 blocks in stage 3 (+12 x 1,776,492 = 49,606,258); Swin-B has C=128 and heads
4-8-16-32 with Swin-S's depths (87,768,224). These are torchvision's published num_params.

Notes where this code departs from the paper or from torchvision:
- the shift mask blocks attention exactly (a boolean mask, weights 0), where the paper's code and
  torchvision add -100 to the logits (weights of about e^-100); this makes the cyclic shift equal
  to the brute-force definition (full attention with a mask "same shifted window") to float
  rounding, which tests/test_swin_pvt.py checks;
- maps whose sides are not multiples of the window are zero-padded at the right / bottom, as
  torchvision does, but the padded tokens are masked out as keys (torchvision lets real tokens
  attend to the zero tokens); a side smaller than the window takes a window of that side (the
  whole side, no shift: the paper's code does the same when the map is no larger than the
  window), indexing the same (2M-1)^2 bias table, so the parameters do not depend on the input
  size and Swin-T runs on 64x64 inputs (stage 4 is then 2x2, one 2x2 window);
- patch merging zero-pads odd sides (torchvision's _patch_merging_pad); the patch embedding
  zero-pads sides that are not multiples of the patch size (deepnotes.models.vit.PatchEmbed);
- patch merging sits at the start of stages 2-4 (timm's layout) rather than at the end of stages
  1-3 (torchvision's), so that each stage's output is one scale of the pyramid; same parameters;
- no stochastic depth (the paper uses 0.2 / 0.3 / 0.5 for T / S / B on ImageNet) and dropout
  `drop_rate` 0 by default; the MLP is deepnotes.layers.transformer.FeedForward (GELU);
- initialization as torchvision: Linear weights truncated normal (std 0.02), zero biases, the
  bias table truncated normal (std 0.02), the patch conv and LayerNorms PyTorch's default.

Small forms (same code, other numbers), with their counts at 10 classes:
- `swin_tiny_28` for 28x28 grey images (Fashion-MNIST): 2x2 patches (14x14 tokens), C=32,
  3 stages of 2-4-2 blocks, heads 1-2-4, window 7, MLP ratio 2: stage 1 is 2x2 windows of 7x7
  patches with the shift; stage 2 (7x7) is one window (global, no shift), stage 3 4x4 (7 padded to
  8 by the merging); 462,476 parameters, beside vit_tiny_28's 456,394;
- `swin_tiny_64` for the 64x64 scenes: 4x4 patches, C=32, 2-2-2-2 blocks, heads 1-2-4-8,
  window 4, MLP ratio 2: stages at 16x16 (4x4 windows), 8x8, 4x4 (one window), 2x2; as a
  backbone its stages give strides 4-8-16-32 with 32-64-128-256 channels; 1,582,184 parameters.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.layers.attention import fused_default, scaled_dot_product_attention
from deepnotes.layers.transformer import FeedForward
from deepnotes.models.options import check_fraction, check_size, check_sizes, pair
from deepnotes.models.vit import PatchEmbed
from deepnotes.registry import Variant, register_variants

PAPER = 'Liu et al. 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows", arXiv:2103.14030'

# --------------------------------------------------------------------------- helpers


def window_partition(x: torch.Tensor, window: Sequence[int]) -> torch.Tensor:
    """(B, H, W, C) -> (B, nW, wh * ww, C): the windows row by row, each window's tokens row by row.
    H and W must be multiples of the window (pad first)."""
    B, H, W, C = x.shape
    wh, ww = window
    x = x.reshape(B, H // wh, wh, W // ww, ww, C).permute(0, 1, 3, 2, 4, 5)  # (B, H/wh, W/ww, wh, ww, C)
    return x.reshape(B, (H // wh) * (W // ww), wh * ww, C)


def window_reverse(windows: torch.Tensor, window: Sequence[int], H: int, W: int) -> torch.Tensor:
    """(B, nW, wh * ww, C) -> (B, H, W, C), the inverse of window_partition."""
    B, C = windows.shape[0], windows.shape[-1]
    wh, ww = window
    x = windows.reshape(B, H // wh, W // ww, wh, ww, C).permute(0, 1, 3, 2, 4, 5)  # (B, H/wh, wh, W/ww, ww, C)
    return x.reshape(B, H, W, C)


@functools.lru_cache(maxsize=64)
def relative_position_index(window: tuple[int, int], table_window: tuple[int, int]) -> torch.Tensor:
    """(N, N) long, N = wh * ww: for query i and key j of a window, the row of the bias table
    (sized for table_window = (Mh, Mw), (2Mh - 1) * (2Mw - 1) rows) holding their offset:

        (dy + Mh - 1) * (2Mw - 1) + (dx + Mw - 1),   (dy, dx) = position of i - position of j

    torchvision's relative_position_index when window == table_window; a smaller window uses the
    rows of the offsets it has. Cached, on the CPU (callers move it)."""
    (wh, ww), (Mh, Mw) = window, table_window
    if wh > Mh or ww > Mw:
        raise ValueError(f"window {window} is larger than the bias table's {table_window}")
    cpu = torch.device("cpu")  # explicit: a cached tensor must not be made on a default device (e.g. meta)
    ys, xs = torch.meshgrid(torch.arange(wh, device=cpu), torch.arange(ww, device=cpu), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()  # (N,)
    dy, dx = ys[:, None] - ys[None, :], xs[:, None] - xs[None, :]  # (N, N)
    return (dy + Mh - 1) * (2 * Mw - 1) + (dx + Mw - 1)


@functools.lru_cache(maxsize=64)
def shifted_window_mask(size: tuple[int, int], window: tuple[int, int], shift: tuple[int, int]) -> torch.Tensor | None:
    """(nW, N, N) bool, True where query i of a window may attend key j, for a map of `size` (H, W)
    zero-padded to multiples of `window` and rolled by -shift (the cyclic shift); None when
    everything may attend everything (no shift, no padding). Cached, on the CPU.

    Two tokens of one window may attend each other when they come from the same region of the
    rolled map (the paper's figure 4: torchvision's slices (0, -M), (-M, -s), (-s, None) per axis,
    the last holding what the roll brought over from the other border) and the key is not padding.
    """
    (H, W), (wh, ww), (sh, sw) = size, window, shift
    Hp, Wp = -(-H // wh) * wh, -(-W // ww) * ww
    if (sh, sw) == (0, 0) and (Hp, Wp) == (H, W):
        return None
    cpu = torch.device("cpu")  # explicit: a cached tensor must not be made on a default device (e.g. meta)
    label = torch.zeros(Hp, Wp, dtype=torch.long, device=cpu)
    h_slices = ((0, Hp - wh), (Hp - wh, Hp - sh), (Hp - sh, Hp)) if sh else ((0, Hp),)
    w_slices = ((0, Wp - ww), (Wp - ww, Wp - sw), (Wp - sw, Wp)) if sw else ((0, Wp),)
    for i, (h0, h1) in enumerate(h_slices):
        for j, (w0, w1) in enumerate(w_slices):
            label[h0:h1, w0:w1] = i * len(w_slices) + j
    # position (r, c) of the rolled map holds the token from ((r + sh) % Hp, (c + sw) % Wp)
    rows, cols = (torch.arange(Hp, device=cpu) + sh) % Hp, (torch.arange(Wp, device=cpu) + sw) % Wp
    real = (rows < H)[:, None] & (cols < W)[None, :]  # (Hp, Wp): not padding
    label = window_partition(label[None, :, :, None], window)[0, :, :, 0]  # (nW, N)
    real = window_partition(real[None, :, :, None], window)[0, :, :, 0]  # (nW, N)
    return (label[:, :, None] == label[:, None, :]) & real[:, None, :]  # (nW, N, N)


def window_for(size: Sequence[int], window_size: Sequence[int], shift_size: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """The window and shift a map of `size` gets: a side no larger than the window takes a window
    of that side and no shift along it (one window covers it); otherwise the configured ones."""
    window, shift = [], []
    for n, m, s in zip(size, window_size, shift_size):
        window.append(min(n, m))
        shift.append(0 if n <= m else s)
    return (window[0], window[1]), (shift[0], shift[1])


# --------------------------------------------------------------------------- blocks


class PatchEmbedNorm(PatchEmbed):
    """ViT's patch embedding (a conv with kernel = stride = p, sides zero-padded to multiples of p)
    followed by a LayerNorm over the channels: (B, C, H, W) -> (B, h * w, D). Swin's "patch
    partition + linear embedding" and PVT's per-stage patch embedding."""

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 4, in_chans: int = 3,
                 embed_dim: int = 96, eps: float = 1e-5):  # fmt: skip
        super().__init__(img_size, patch_size, in_chans, embed_dim)
        self.norm = nn.LayerNorm(embed_dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(super().forward(x))  # (B, h * w, D)


class ShiftedWindowAttention(nn.Module):
    """W-MSA / SW-MSA (section 3.2): multi-head self-attention inside windows, with the relative
    position bias, on a (B, H, W, C) map; shift_size (sh, sw) > 0 is the shifted form.

    Steps: zero-pad H, W to multiples of the window -> roll by -shift -> partition into windows
    (B, nW, N, C) -> qkv -> softmax(q k^T / sqrt(d) + B + mask) v per window and head -> proj ->
    merge the windows -> roll back by +shift -> crop the padding. Parameters as torchvision's:
    qkv (C -> 3C), proj (C -> C), relative_position_bias_table ((2Mh - 1)(2Mw - 1), heads).
    fused: True runs the products on F.scaled_dot_product_attention, False on the scratch
    deepnotes.layers.attention.scaled_dot_product_attention, None follows fused_default().
    """

    def __init__(self, dim: int, num_heads: int, window_size: int | Sequence[int] = 7, shift_size: int | Sequence[int] = 0,
                 qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0, fused: bool | None = None):  # fmt: skip
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be a multiple of num_heads {num_heads}")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.window_size, self.shift_size = pair(window_size), pair(shift_size)
        if any(s < 0 or s >= m for s, m in zip(self.shift_size, self.window_size)):
            raise ValueError(f"shift_size {self.shift_size} must be in [0, window_size {self.window_size})")
        self.attn_drop, self.fused = float(attn_drop), fused
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        Mh, Mw = self.window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * Mh - 1) * (2 * Mw - 1), num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, window_size={self.window_size}, shift_size={self.shift_size}"

    def relative_position_bias(self, window: tuple[int, int]) -> torch.Tensor:
        """(heads, N, N): the bias B of eq. 4 for a window of `window` patches."""
        table = self.relative_position_bias_table
        index = relative_position_index(window, self.window_size).to(table.device)
        N = window[0] * window[1]
        return table[index.reshape(-1)].reshape(N, N, self.num_heads).permute(2, 0, 1)  # (heads, N, N)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        window, shift = window_for((H, W), self.window_size, self.shift_size)
        pad_b, pad_r = (-H) % window[0], (-W) % window[1]
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))  # (B, Hp, Wp, C)
        Hp, Wp = H + pad_b, W + pad_r
        if shift != (0, 0):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))  # the cyclic shift
        windows = window_partition(x, window)  # (B, nW, N, C)
        nW, N = windows.shape[1], windows.shape[2]
        qkv = self.qkv(windows).reshape(B, nW, N, 3, self.num_heads, self.head_dim).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, nW, heads, N, d)
        bias = self.relative_position_bias(window)  # (heads, N, N)
        allowed = shifted_window_mask((H, W), window, shift)
        if allowed is not None:  # (nW, N, N) -> blocked pairs get -inf: weight exactly 0
            bias = bias.masked_fill(~allowed.to(bias.device)[:, None], float("-inf"))  # (nW, heads, N, N)
        dropout_p = self.attn_drop if self.training else 0.0
        fused = fused_default() if self.fused is None else self.fused
        if fused:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=dropout_p)
        else:
            out = scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)  # (B, nW, heads, N, d)
        out = out.transpose(2, 3).reshape(B, nW, N, C)  # heads concatenated
        out = self.proj_drop(self.proj(out))
        x = window_reverse(out, window, Hp, Wp)  # (B, Hp, Wp, C)
        if shift != (0, 0):
            x = torch.roll(x, shifts=shift, dims=(1, 2))
        return x[:, :H, :W, :]


class SwinBlock(nn.Module):
    """x += (S)W-MSA(LN(x)); x += MLP(LN(x)), on (B, H, W, C) (figure 3b)."""

    def __init__(self, dim: int, num_heads: int, window_size: int | Sequence[int] = 7, shift_size: int | Sequence[int] = 0,
                 mlp_ratio: float = 4.0, drop_rate: float = 0.0, eps: float = 1e-5):  # fmt: skip
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = ShiftedWindowAttention(dim, num_heads, window_size, shift_size, proj_drop=drop_rate)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = FeedForward(dim, round(dim * mlp_ratio), dropout=drop_rate, activation="gelu")
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.drop(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C): each 2x2 group of tokens concatenated (4C, in
    torchvision's order x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]), LayerNorm,
    linear to 2C without bias. Odd sides are zero-padded first."""

    def __init__(self, dim: int, out_dim: int | None = None, eps: float = 1e-5):
        super().__init__()
        self.dim, self.out_dim = dim, out_dim or 2 * dim
        self.norm = nn.LayerNorm(4 * dim, eps=eps)
        self.reduction = nn.Linear(4 * dim, self.out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[1], x.shape[2]
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)  # (B, H/2, W/2, 4C)
        return self.reduction(self.norm(x))  # (B, H/2, W/2, 2C)


class SwinStage(nn.Module):
    """Patch merging (stages 2-4), then blocks alternating regular and shifted windows.
    (B, C_in, H, W) -> (B, C, H', W'): a map in and out, tokens channel-last inside."""

    def __init__(self, in_dim: int, dim: int, depth: int, num_heads: int, window_size: int, downsample: bool,
                 mlp_ratio: float = 4.0, drop_rate: float = 0.0):  # fmt: skip
        super().__init__()
        self.downsample = PatchMerging(in_dim, dim) if downsample else nn.Identity()
        shift = window_size // 2
        self.blocks = nn.Sequential(*(
            SwinBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else shift, mlp_ratio, drop_rate) for i in range(depth)
        ))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = self.blocks(self.downsample(x))
        return x.permute(0, 3, 1, 2)  # (B, C, H', W')


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class SwinConfig:
    """One Swin variant: patch size, width C of stage 1 (stage i has C * 2^(i-1)), blocks and heads
    per stage, window M, MLP ratio."""

    patch_size: int = 4
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    drop_rate: float = 0.0  # dropout after the attention projection and in the MLP


class SwinTransformer(nn.Module):
    """Patch embedding, stages of (shifted) window attention with patch merging between them,
    LayerNorm, average pooling, head.

    forward_features(x) -> (B, C_last, H/r, W/r) after the final norm (r = patch * 2^(stages-1));
    forward_head pools and applies `head`. feature_info: the stage outputs (maps, NCHW).
    """

    def __init__(self, cfg: SwinConfig, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        if len(cfg.depths) != len(cfg.num_heads) or not cfg.depths:
            raise ValueError(f"Swin needs one num_heads per stage, got depths={cfg.depths} num_heads={cfg.num_heads}")
        dims = [cfg.embed_dim * 2**i for i in range(len(cfg.depths))]
        for d, h in zip(dims, cfg.num_heads):
            if d % h:
                raise ValueError(f"stage width {d} (embed_dim * 2^i) must be a multiple of its num_heads {h}; widths {dims}")
        self.cfg, self.num_classes, self.in_chans = cfg, num_classes, in_chans
        self.patch_embed = PatchEmbedNorm(cfg.patch_size, cfg.patch_size, in_chans, cfg.embed_dim)
        self.stages = nn.Sequential(*(
            SwinStage(dims[max(i - 1, 0)], d, n, h, cfg.window_size, i > 0, cfg.mlp_ratio, cfg.drop_rate)
            for i, (d, n, h) in enumerate(zip(dims, cfg.depths, cfg.num_heads))
        ))  # fmt: skip
        self.feature_info = [
            {"module": f"stages.{i}", "num_chs": d, "reduction": cfg.patch_size * 2**i} for i, d in enumerate(dims)
        ]
        self.feature_layers = [f["module"] for f in self.feature_info]
        self.num_features = dims[-1]
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], num_classes)
        self.classifier_modules = ("head",)  # depends on the classes; transfer learning replaces it
        _init_weights(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, D, h, w): the normalized patch embedding as a map."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"Swin expects input (B, {self.in_chans}, H, W), got {tuple(x.shape)}")
        h, w = self.patch_embed.grid_for(x.shape[-2:])
        return self.patch_embed(x).transpose(1, 2).reshape(x.shape[0], -1, h, w)  # (B, N, D) -> (B, D, h, w)

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The pyramid: every stage's output map (B, C_i, H / r_i, W / r_i), as feature_info lists them."""
        x, maps = self.embed(x), []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.embed(x))  # (B, C, h, w)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # LayerNorm over C

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))  # (B, C)
        return x if pre_logits else self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(model: nn.Module) -> None:
    # torchvision's: every Linear truncated normal (std 0.02) with zero biases; the bias tables
    # were initialized where they were made; convs and LayerNorms keep PyTorch's defaults.
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _swin(
    num_classes: int = 1000,
    in_chans: int = 3,
    patch_size: int = 4,
    embed_dim: int = 96,
    depths: Sequence[int] = (2, 2, 6, 2),
    num_heads: Sequence[int] = (3, 6, 12, 24),
    window_size: int = 7,
    mlp_ratio: float = 4.0,
    drop_rate: float = 0.0,
    fused_attention: bool | None = None,
) -> SwinTransformer:
    """window_size: the window side M in patches (the shift is M // 2); a window larger than every
    map makes every layer global attention (as ViT's, inside each stage). fused_attention as ViT's."""
    if isinstance(mlp_ratio, bool) or not (isinstance(mlp_ratio, (int, float)) and math.isfinite(mlp_ratio) and mlp_ratio > 0):
        raise ValueError(f"mlp_ratio (MLP hidden size / width) must be a number > 0, e.g. 4, got {mlp_ratio!r}")
    cfg = SwinConfig(
        patch_size=check_size("patch_size", patch_size), embed_dim=check_size("embed_dim", embed_dim),
        depths=check_sizes("depths", depths), num_heads=check_sizes("num_heads", num_heads),
        window_size=check_size("window_size", window_size), mlp_ratio=float(mlp_ratio), drop_rate=check_fraction("drop_rate", drop_rate),
    )  # fmt: skip
    model = SwinTransformer(cfg, num_classes=num_classes, in_chans=in_chans)
    for m in model.modules():
        if isinstance(m, ShiftedWindowAttention):
            m.fused = fused_attention
    return model


# --------------------------------------------------------------------------- variants

_IMAGENET = (3, 224, 224)

# Counts: the module docstring derives Swin-T layer by layer; S and B are torchvision's num_params.
VARIANTS: dict[str, Variant] = {
    # 28,288,354 (torchvision swin_t; derived in the docstring)
    "swin_t": Variant(
        "Swin-T: 4x4 patches, C=96, blocks 2-2-6-2, heads 3-6-12-24, window 7",
        num_params=28_288_354, input_size=_IMAGENET, num_classes=1000, config=SwinConfig(4, 96, (2, 2, 6, 2), (3, 6, 12, 24), 7),
    ),
    # Swin-T + 12 blocks of width 384 (12 x 1,776,492) = 49,606,258 (torchvision swin_s)
    "swin_s": Variant(
        "Swin-S: 4x4 patches, C=96, blocks 2-2-18-2, heads 3-6-12-24, window 7",
        num_params=49_606_258, input_size=_IMAGENET, num_classes=1000, config=SwinConfig(4, 96, (2, 2, 18, 2), (3, 6, 12, 24), 7),
    ),
    # embedding 6,528 + stages 2 x 198,948 + 2 x 791,112 + 18 x 3,155,088 + 2 x 12,601,632 + merges 132,096
    # + 526,336 + 2,101,248 + norm 2,048 + head 1,025,000 = 87,768,224 (torchvision swin_b)
    "swin_b": Variant(
        "Swin-B: 4x4 patches, C=128, blocks 2-2-18-2, heads 4-8-16-32, window 7",
        num_params=87_768_224, input_size=_IMAGENET, num_classes=1000, config=SwinConfig(4, 128, (2, 2, 18, 2), (4, 8, 16, 32), 7),
    ),
    # 224 + 2 x 8,713 + 8,448 + 4 x 33,810 + 33,280 + 2 x 133,156 + 256 + 1,290 = 462,476 (10 classes)
    "swin_tiny_28": Variant(
        "small Swin for 28x28: 2x2 patches (14x14), C=32, blocks 2-4-2, heads 1-2-4, window 7, MLP ratio 2",
        num_params=462_476, input_size=(1, 28, 28), num_classes=10, config=SwinConfig(2, 32, (2, 4, 2), (1, 2, 4), 7, mlp_ratio=2.0),
    ),
    # 608 + 2 x 8,593 + 8,448 + 2 x 33,570 + 33,280 + 2 x 132,676 + 132,096 + 2 x 527,496 + 512 + 2,570
    # = 1,582,184 (10 classes)
    "swin_tiny_64": Variant(
        "small Swin for 64x64 scenes: 4x4 patches, C=32, blocks 2-2-2-2, heads 1-2-4-8, window 4, MLP ratio 2",
        num_params=1_582_184, input_size=(1, 64, 64), num_classes=10,
        config=SwinConfig(4, 32, (2, 2, 2, 2), (1, 2, 4, 8), 4, mlp_ratio=2.0),
    ),
}

register_variants(_swin, VARIANTS, paper=PAPER)
