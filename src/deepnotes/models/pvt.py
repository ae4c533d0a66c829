"""Pyramid Vision Transformer (PVT): Wang, Xie, Li, Fan, Song, Liang, Lu, Luo & Shao, "Pyramid
Vision Transformer: A Versatile Backbone for Dense Prediction without Convolutions", 2021
(ICCV 2021), arXiv:2102.12122.

Why it exists, after ViT (deepnotes.models.vit): ViT keeps one coarse scale (16x16 patches) and
global attention over all N patches, whose cost grows with N^2; at the 4x4 patches a dense
predictor needs, N is 16 times larger and the attention 256 times dearer. PVT builds a pyramid
of four stages, each a patch embedding (a strided conv without overlap, then LayerNorm) and
transformer blocks, at strides 4, 8, 16, 32 as a ResNet's stages, and keeps attention *global*
but makes it cheaper by spatial reduction (SRA, section 3.3): the queries are all N tokens, the
keys and values come from the token map reduced by a strided convolution of ratio R (kernel =
stride = R, then LayerNorm), N / R^2 tokens. The attention products cost N * N / R^2 instead of
N^2 per head-dimension: still quadratic in N for a fixed R, R^2 times smaller.

    224x224x3 -> 4x4 patches, linear + LN to 64        (56x56, 64)   2 blocks, R=8: keys 7x7
    -> 2x2 patches to 128 (28x28)                                    2 blocks, R=4: keys 7x7
    -> 2x2 patches to 320 (14x14)                                    2 blocks, R=2: keys 7x7
    -> 2x2 patches to 512 (7x7), + class token                       2 blocks, R=1
    -> LayerNorm -> the class token's state -> head                  (PVT-Tiny)
    block: x += SRA(LN(x)); x += MLP(LN(x)), MLP ratio 8-8-4-4; each stage adds its own learned
    position embedding after its patch embedding

Each stage's output is a (B, C, H, W) map (`feature_info`: stages.0-3, reductions 4-8-16-32, the
first element of a stage's (map, class token) output), the pyramid an FCN / U-Net / detection
head takes; forward_features returns the last stage's tokens after the final LayerNorm,
(B, 1 + N, C) with the class token first (as ViT's), or (B, N, C) with global_pool="avg".

Reference for the structure and the count: the authors' code, github.com/whai362/PVT,
classification/pvt.py, `pvt_tiny` (qkv_bias=True, block LayerNorms eps 1e-6; the patch-embedding
and reduction LayerNorms keep PyTorch's 1e-5). PVT-Tiny, 1000 classes, 224x224x3, counted layer by
layer from that code (per stage: patch embedding conv + LayerNorm, position embedding, blocks;
per block: 2 LayerNorms, q (d^2 + d), kv (2d^2 + 2d), proj (d^2 + d), the reduction conv
(R^2 d^2 + d) and its LayerNorm when R > 1, MLP (2 r d^2 + (r + 1) d)):

    stage 1 (d=64, R=8, r=8)    3,072+64+128 = 3,264 + pos 3,136*64 = 200,704 + 2 x 345,344       894,656
    stage 2 (d=128, R=4, r=8)   32,768+128+256 = 33,152 + pos 784*128 = 100,352 + 2 x 592,384  1,318,272
    stage 3 (d=320, R=2, r=4)   163,840+320+640 = 164,800 + pos 196*320 = 62,720 + 2 x 1,643,520 3,514,560
    stage 4 (d=512, R=1, r=4)   655,360+512+1,024 = 656,896 + pos 50*512 = 25,600 + 2 x 3,152,384 6,987,264
    final LayerNorm 1,024 + class token 512 + head 512*1000 + 1000 = 513,000                     514,536
    total                                                                                     13,229,288

which the paper's table (PVT-Tiny, 13.2M) rounds. The same sum comes out of this module
(tests/test_models.py asserts it on the meta device).

Notes where this code departs from the paper's code:
- the attention is deepnotes.layers.attention.MultiHeadAttention: its stacked q, k, v
  projections (in_proj_weight) hold exactly the reference's q and kv Linear layers (same count),
  and record_attention shows its (N, N / R^2) maps; the reduction conv is ViT's PatchEmbed
  applied to the token map (the same strided conv, R x R patches of the map);
- sides that are not multiples of a patch size or of R are zero-padded at the right / bottom
  (the reference's convs drop the remainder and fail on maps smaller than R), so every input of
  at least 1x1 runs; position embeddings are re-sampled bilinearly to the grid an input gives
  (as the reference's _get_pos_embed), the class token's kept apart;
- no stochastic depth (the reference's drop_path_rate 0.1 on ImageNet); dropout `drop_rate` 0 by
  default; the MLP is deepnotes.layers.transformer.FeedForward (GELU);
- `global_pool="avg"` drops the class token and averages the last stage's tokens (as PVT v2,
  arXiv:2106.13797); the small forms below use it.

Small forms (same code), with their counts at 10 classes:
- `pvt_tiny_28` for 28x28 grey images: 2x2 patches, then 2x2 merges: 14x14 (R=2: keys 7x7),
  7x7 (R=1), 4x4 (R=1); widths 32-64-128, heads 1-2-4, 2 blocks each, MLP ratios 4-4-2, average
  pooling: 453,482 parameters, beside vit_tiny_28's 456,394 and swin_tiny_28's 462,476;
- `pvt_tiny_64` for the 64x64 scenes: 4x4 patches, stages at 16x16 (R=4), 8x8 (R=2), 4x4, 2x2,
  widths 32-64-128-256, heads 1-2-4-8, MLP ratios 4-4-2-2, average pooling; as a backbone its
  stages give strides 4-8-16-32: 1,703,082 parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from deepnotes.layers.attention import MultiHeadAttention
from deepnotes.layers.transformer import FeedForward
from deepnotes.models.options import check_fraction, check_size, check_sizes
from deepnotes.models.swin import PatchEmbedNorm
from deepnotes.models.vit import PatchEmbed, resample_pos_embed
from deepnotes.registry import Variant, register_variants

PAPER = (
    'Wang et al. 2021, "Pyramid Vision Transformer: A Versatile Backbone for Dense Prediction without Convolutions", '
    "arXiv:2102.12122"
)

# --------------------------------------------------------------------------- blocks


class SpatialReductionAttention(nn.Module):
    """SRA (section 3.3, eq. 2-3): multi-head attention whose queries are all tokens and whose keys
    and values are the token map reduced R times per side: (B, N, C) -> (B, N, C).

        SR(x) = LayerNorm(Reshape(x, R) W^S)      the R x R patches of the map, projected: a strided conv
        SRA(Q, K, V) = MultiHead(Q, SR(K), SR(V))

    With R = 1 there is no reduction (and no conv, no norm): plain multi-head self-attention.
    Prefix tokens (a class token) are keys as they are, beside the reduced map.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int = 1, grid: Sequence[int] = (14, 14), attn_drop: float = 0.0):
        super().__init__()
        self.dim, self.num_heads, self.sr_ratio = dim, num_heads, sr_ratio
        self.attn = MultiHeadAttention(dim, num_heads, dropout=attn_drop)
        if sr_ratio > 1:
            self.sr = PatchEmbed(grid, sr_ratio, dim, dim)  # conv, kernel = stride = R
            self.norm = nn.LayerNorm(dim)

    def extra_repr(self) -> str:
        return f"sr_ratio={self.sr_ratio}"

    def reduce(self, x: torch.Tensor, grid: Sequence[int], prefix: int = 0) -> torch.Tensor:
        """(B, prefix + h * w, C) -> the keys' tokens (B, prefix + ceil(h / R) * ceil(w / R), C)."""
        if self.sr_ratio == 1:
            return x
        B, C = x.shape[0], x.shape[-1]
        cls, tokens = x[:, :prefix], x[:, prefix:]
        reduced = self.norm(self.sr(tokens.transpose(1, 2).reshape(B, C, *grid)))  # (B, N / R^2, C)
        return torch.cat([cls, reduced], dim=1) if prefix else reduced

    def forward(self, x: torch.Tensor, grid: Sequence[int], prefix: int = 0) -> torch.Tensor:
        kv = self.reduce(x, grid, prefix)
        return self.attn(x, kv, kv, need_weights=False)[0]


class PVTBlock(nn.Module):
    """x += SRA(LN(x)); x += MLP(LN(x)) on (B, N, C) tokens of an (h, w) grid."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, grid: Sequence[int], drop_rate: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SpatialReductionAttention(dim, num_heads, sr_ratio, grid)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = FeedForward(dim, round(dim * mlp_ratio), dropout=drop_rate, activation="gelu")
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor, grid: Sequence[int], prefix: int = 0) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), grid, prefix))
        return x + self.drop(self.mlp(self.norm2(x)))


class PVTStage(nn.Module):
    """Patch embedding (conv with kernel = stride = patch, LayerNorm), + position embedding, [class
    token], blocks: (B, C_in, H, W) -> ((B, C, H / p, W / p), class token state (B, C) or None)."""

    def __init__(self, in_chans: int, dim: int, patch_size: int, img_size: Sequence[int], depth: int, num_heads: int,
                 mlp_ratio: float, sr_ratio: int, cls_token: bool = False, drop_rate: float = 0.0):  # fmt: skip
        super().__init__()
        self.patch_embed = PatchEmbedNorm(img_size, patch_size, in_chans, dim)
        self.grid_size = self.patch_embed.grid_size
        self.num_prefix_tokens = int(cls_token)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_prefix_tokens + self.patch_embed.num_patches, dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList(PVTBlock(dim, num_heads, mlp_ratio, sr_ratio, self.grid_size, drop_rate) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        B = x.shape[0]
        grid = self.patch_embed.grid_for(x.shape[-2:])
        x = self.patch_embed(x)  # (B, h * w, C)
        pos = self.pos_embed
        if grid != self.grid_size:  # bilinear, as the reference's _get_pos_embed
            pos = resample_pos_embed(pos, grid, self.grid_size, self.num_prefix_tokens, mode="bilinear")
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # (B, 1 + h * w, C)
        x = self.pos_drop(x + pos)
        for block in self.blocks:
            x = block(x, grid, self.num_prefix_tokens)
        cls = x[:, 0] if self.cls_token is not None else None
        tokens = x[:, self.num_prefix_tokens :]
        return tokens.transpose(1, 2).reshape(B, -1, *grid), cls  # (B, C, h, w), (B, C) | None


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class PVTConfig:
    """One PVT variant: the first stage's patch size (later stages merge 2x2), and per stage the
    width, heads, MLP ratio, blocks and reduction ratio R."""

    patch_size: int = 4
    embed_dims: tuple[int, ...] = (64, 128, 320, 512)
    num_heads: tuple[int, ...] = (1, 2, 5, 8)
    mlp_ratios: tuple[float, ...] = (8, 8, 4, 4)
    depths: tuple[int, ...] = (2, 2, 2, 2)
    sr_ratios: tuple[int, ...] = (8, 4, 2, 1)
    drop_rate: float = 0.0
    global_pool: str = "token"  # "token": a class token in the last stage (PVT v1) | "avg": mean of the last tokens


class PyramidVisionTransformer(nn.Module):
    """Stages of patch embedding + SRA blocks (strides patch * 2^i), LayerNorm, head.

    forward_features(x) -> the last stage's tokens after the final norm, (B, [1 +] N, C);
    forward_head takes the class token (or the token mean) and applies `head`. feature_info: the
    stage outputs, maps (B, C_i, H / r_i, W / r_i). Inputs of another size than img_size get
    re-sampled position embeddings.
    """

    def __init__(self, cfg: PVTConfig, num_classes: int = 1000, in_chans: int = 3, img_size: int | Sequence[int] = 224):
        super().__init__()
        n = len(cfg.embed_dims)
        if not n or any(len(t) != n for t in (cfg.num_heads, cfg.mlp_ratios, cfg.depths, cfg.sr_ratios)):
            raise ValueError(f"PVT needs one num_heads, mlp_ratio, depth and sr_ratio per stage, got {cfg}")
        if cfg.global_pool not in ("token", "avg"):
            raise ValueError(f"unknown global_pool {cfg.global_pool!r}; choose 'token' (class token) or 'avg'")
        for d, h in zip(cfg.embed_dims, cfg.num_heads):
            if d % h:
                raise ValueError(f"every stage width must be a multiple of its num_heads, got embed_dims={cfg.embed_dims} num_heads={cfg.num_heads}")
        self.cfg, self.num_classes, self.in_chans = cfg, num_classes, in_chans
        size = tuple(img_size) if not isinstance(img_size, int) else (img_size, img_size)
        stages, c, self.feature_info = [], in_chans, []
        for i in range(n):
            patch = cfg.patch_size if i == 0 else 2
            last = i == n - 1
            stage = PVTStage(c, cfg.embed_dims[i], patch, size, cfg.depths[i], cfg.num_heads[i], cfg.mlp_ratios[i], cfg.sr_ratios[i],
                             cls_token=last and cfg.global_pool == "token", drop_rate=cfg.drop_rate)  # fmt: skip
            stages.append(stage)
            size, c = stage.grid_size, cfg.embed_dims[i]
            self.feature_info.append({"module": f"stages.{i}", "num_chs": c, "reduction": cfg.patch_size * 2**i})
        self.stages = nn.ModuleList(stages)
        self.img_size = stages[0].patch_embed.img_size
        self.feature_layers = [f["module"] for f in self.feature_info]
        self.num_prefix_tokens = int(cfg.global_pool == "token")
        self.num_features = c
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.head = nn.Linear(c, num_classes)
        self.classifier_modules = ("head",)  # depends on the classes; transfer learning replaces it
        _init_weights(self)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"PVT expects input (B, {self.in_chans}, H, W), got {tuple(x.shape)}")

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The pyramid: every stage's output map (B, C_i, H / r_i, W / r_i), as feature_info lists them."""
        self._check_input(x)
        maps = []
        for stage in self.stages:
            x, _ = stage(x)
            maps.append(x)
        return maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        cls = None
        for stage in self.stages:
            x, cls = stage(x)
        tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
        if cls is not None:
            tokens = torch.cat([cls[:, None], tokens], dim=1)  # (B, 1 + N, C)
        return self.norm(tokens)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0] if self.cfg.global_pool == "token" else x.mean(dim=1)  # (B, C)
        return x if pre_logits else self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(model: PyramidVisionTransformer) -> None:
    # The reference's: position embeddings and class token truncated normal (std 0.02), Linear
    # weights (q, kv: here MultiHeadAttention's stacked in_proj_weight) the same with zero biases;
    # convs PyTorch's default, LayerNorms 1 and 0.
    for stage in model.stages:
        nn.init.trunc_normal_(stage.pos_embed, std=0.02)
        if stage.cls_token is not None:
            nn.init.trunc_normal_(stage.cls_token, std=0.02)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, MultiHeadAttention):
            nn.init.trunc_normal_(m.in_proj_weight, std=0.02)
            nn.init.zeros_(m.in_proj_bias)


def _pvt(
    num_classes: int = 1000,
    in_chans: int = 3,
    img_size: int | Sequence[int] = 224,
    patch_size: int = 4,
    embed_dims: Sequence[int] = (64, 128, 320, 512),
    num_heads: Sequence[int] = (1, 2, 5, 8),
    mlp_ratios: Sequence[float] = (8, 8, 4, 4),
    depths: Sequence[int] = (2, 2, 2, 2),
    sr_ratios: Sequence[int] = (8, 4, 2, 1),
    drop_rate: float = 0.0,
    global_pool: str = "token",
    fused_attention: bool | None = None,
) -> PyramidVisionTransformer:
    """sr_ratios: R per stage (keys and values from R x R patches of the map; 1 = plain attention).
    fused_attention as ViT's."""
    if isinstance(mlp_ratios, (str, bytes)) or not all(
        not isinstance(r, bool) and isinstance(r, (int, float)) and math.isfinite(r) and r > 0 for r in mlp_ratios
    ):
        raise ValueError(f"mlp_ratios (MLP hidden size / width, per stage) must be numbers > 0, e.g. [8,8,4,4], got {mlp_ratios!r}")
    cfg = PVTConfig(
        patch_size=check_size("patch_size", patch_size), embed_dims=check_sizes("embed_dims", embed_dims),
        num_heads=check_sizes("num_heads", num_heads), mlp_ratios=tuple(float(r) for r in mlp_ratios),
        depths=check_sizes("depths", depths), sr_ratios=check_sizes("sr_ratios", sr_ratios),
        drop_rate=check_fraction("drop_rate", drop_rate), global_pool=global_pool,
    )  # fmt: skip
    model = PyramidVisionTransformer(cfg, num_classes=num_classes, in_chans=in_chans, img_size=img_size)
    for m in model.modules():
        if isinstance(m, MultiHeadAttention):
            m.fused = fused_attention
    return model


# --------------------------------------------------------------------------- variants

VARIANTS: dict[str, Variant] = {
    # 13,229,288: the reference code's pvt_tiny counted layer by layer (module docstring); paper: 13.2M
    "pvt_tiny": Variant(
        "PVT-Tiny: 4x4 patches, widths 64-128-320-512, 2 blocks per stage, heads 1-2-5-8, R 8-4-2-1, class token",
        num_params=13_229_288, input_size=(3, 224, 224), num_classes=1000, config=PVTConfig(), pass_img_size=True,
    ),
    # stages 40,288 + 111,488 + 300,160 + LayerNorm 256 + head 1,290 = 453,482 (10 classes)
    "pvt_tiny_28": Variant(
        "small PVT for 28x28: 2x2 patches (14x14), widths 32-64-128, heads 1-2-4, R 2-1-1, MLP ratios 4-4-2, average pooling",
        num_params=453_482, input_size=(1, 28, 28), num_classes=10, pass_img_size=True,
        config=PVTConfig(2, (32, 64, 128), (1, 2, 4), (4, 4, 2), (2, 2, 2), (2, 1, 1), global_pool="avg"),
    ),
    # stages 67,168 + 145,600 + 300,160 + 1,187,072 + LayerNorm 512 + head 2,570 = 1,703,082 (10 classes)
    "pvt_tiny_64": Variant(
        "small PVT for 64x64 scenes: 4x4 patches, widths 32-64-128-256, heads 1-2-4-8, R 4-2-1-1, MLP ratios 4-4-2-2, average pooling",
        num_params=1_703_082, input_size=(1, 64, 64), num_classes=10, pass_img_size=True,
        config=PVTConfig(4, (32, 64, 128, 256), (1, 2, 4, 8), (4, 4, 2, 2), (2, 2, 2, 2), (4, 2, 1, 1), global_pool="avg"),
    ),
}

register_variants(_pvt, VARIANTS, paper=PAPER)
