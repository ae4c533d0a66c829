"""Vision Transformer (ViT): Dosovitskiy, Beyer, Kolesnikov, Weissenborn, Zhai, Unterthiner,
Dehghani, Minderer, Heigold, Gelly, Uszkoreit & Houlsby, "An Image is Worth 16x16 Words:
Transformers for Image Recognition at Scale", 2020 (ICLR 2021), arXiv:2010.11929.

The paper's idea: cut the image into P x P patches, flatten each and project it linearly to
a D-dimensional token, and run a plain transformer encoder (Vaswani et al. 2017) on the
sequence, with no convolution after the first projection. A learned [class] token is put
in front and its final state, after a LayerNorm, is the image representation (eq. 1-4):

    224x224x3 image -> 14 x 14 = 196 patches of 16x16x3 = 768 values          (196, 768)
    -> linear projection E to D = 768                                         (196, 768)
    -> prepend the class token                                                (197, 768)
    -> + learned 1D position embeddings E_pos                                 (197, 768)
    -> L pre-norm encoder layers: x += MSA(LN(x)); x += MLP(LN(x)), MLP = D -> 4D -> D with GELU
    -> LN -> the class token's state -> head -> classes

Attention is global from the first layer: every patch can take from every other, where a
CNN's receptive field grows a few pixels per layer. The price is the missing inductive
bias (locality, translation equivariance), which ViT makes up for with data: it trails
ResNets when trained on ImageNet-1k alone and leads after pre-training on 14M-300M images.

The patch projection is one matrix applied to every flattened patch, which is exactly a
convolution with kernel = stride = P (PatchEmbed; PatchEmbed.forward_unfold computes the
same with F.unfold and the conv weight reshaped to a matrix).

Notes where this code departs from the paper or follows later practice:
- the head is one linear layer (the paper's fine-tuning head); pre-training used an MLP
  with one hidden layer;
- initialization as timm's default (Linear and attention projections truncated normal with
  std 0.02 and zero biases, position embedding trunc-normal 0.02, class token N(0, 1e-6^2));
  the paper's JAX code uses Xavier-uniform weights and a zero class token and head;
- dropout (after the position embedding and inside every layer) is `drop_rate`, 0 by
  default (the paper used 0.1 for some ImageNet runs), no stochastic depth;
- a different input size re-samples the position embeddings on their 2D grid (bicubic,
  the class token's embedding kept apart), as the paper does when fine-tuning at a higher
  resolution (section 3.2); a side that is not a multiple of the patch size is zero-padded
  at the right / bottom to the next multiple (timm's dynamic_img_pad), so e.g. vit_tiny_28
  takes 32x32 inputs as a 5x5 grid;
- `global_pool="avg"` averages the patch tokens instead of taking the class token (the
  paper's appendix D.3 compares the two).

Layer norms use eps 1e-6 (the paper's JAX code; torch's default is 1e-5). The encoder
layers are deepnotes.layers.transformer.TransformerEncoderLayer(norm_first=True,
activation="gelu"): their attention maps can be recorded with record_attention.

Parameter counts (1000 classes, 224x224x3): ViT-B/16 86,567,656 (torchvision's vit_b_16).
ViT-S/16 (384 wide, 6 heads, 12 layers: 22,050,664) and ViT-Ti/16 (192 wide, 3 heads, 12
layers: 5,717,416) are not in the paper; they are Touvron et al.'s DeiT-S and DeiT-Ti
("Training data-efficient image transformers", arXiv:2012.12877), named vit_small_patch16_224
and vit_tiny_patch16_224 in timm. Their counts are computed here from the architecture:
per layer 12 D^2 + 13 D (qkv 3D^2 + 3D, projection D^2 + D, MLP 8D^2 + 5D, two LayerNorms 4D),
plus the patch projection 768 D + D, class token D, 197 D of position embedding, the final
LayerNorm 2D and the head 1000 D + 1000; DeiT's paper rounds them to 22M and 5M.

`vit_tiny_28` is a small ViT for 28x28 grey images (Fashion-MNIST): 7x7 patches (a 4x4 grid,
16 tokens + class token), D = 96, 6 layers of 4 heads, MLP ratio 2; 456,394 parameters with 10
classes, 7.9M multiply-adds per image. Sized for speed on a CPU: the cost of a layer grows
with the number of tokens, and 4x4 patches (49 tokens) cost about 3x as much per image at the
same width. In a 2-epoch probe (AdamW, no augmentation) it reached 86.4% test accuracy, against
84.4% for 4x4 patches with D = 64 and 4 layers (about the same speed).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.layers.transformer import TransformerEncoderLayer
from deepnotes.models.options import check_size, pair
from deepnotes.registry import Variant, register_variants

PAPER = (
    'Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale", '
    "arXiv:2010.11929"
)

# --------------------------------------------------------------------------- helpers


def patchify(x: torch.Tensor, patch_size: int | Sequence[int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C * p * p): the flattened patches, row by row; each patch's values
    in (channel, row, column) order, the order of a conv weight's (C, p, p) flattened."""
    p = pair(patch_size)
    return F.unfold(x, kernel_size=p, stride=p).transpose(1, 2)


def resample_pos_embed(
    pos_embed: torch.Tensor, new_grid: Sequence[int], old_grid: Sequence[int], num_prefix_tokens: int = 1, mode: str = "bicubic"
) -> torch.Tensor:
    """(1, prefix + gh * gw, D) -> (1, prefix + new_h * new_w, D): the grid part interpolated in
    2D (align_corners=False), the prefix (class token) embeddings kept as they are."""
    (gh, gw), (nh, nw) = pair(old_grid), pair(new_grid)
    n, D = num_prefix_tokens, pos_embed.shape[-1]
    if pos_embed.shape[1] != n + gh * gw:
        raise ValueError(f"pos_embed has {pos_embed.shape[1]} tokens, not {n} + {gh}x{gw}")
    prefix, grid = pos_embed[:, :n], pos_embed[:, n:]
    grid = grid.reshape(1, gh, gw, D).permute(0, 3, 1, 2)  # (1, D, gh, gw)
    grid = F.interpolate(grid, size=(nh, nw), mode=mode, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, nh * nw, D)
    return torch.cat([prefix, grid], dim=1)


# --------------------------------------------------------------------------- blocks


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, H/p * W/p, D): every p x p patch flattened and projected to D.

    `proj` is a Conv2d with kernel = stride = p, the projection E of eq. 1 applied to every
    patch; forward_unfold does it literally (patchify, then a matrix product with the conv
    weight reshaped to (D, C * p * p)). Sides that are not multiples of p are zero-padded at
    the right / bottom first (`pad`), so the grid is (ceil(H / p), ceil(W / p)).
    """

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 16, in_chans: int = 3, embed_dim: int = 768):
        super().__init__()
        self.img_size, self.patch_size = pair(img_size), pair(patch_size)
        self.in_chans, self.embed_dim = in_chans, embed_dim
        self.grid_size = self.grid_for(self.img_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def grid_for(self, hw: Sequence[int]) -> tuple[int, int]:
        """The patch grid of an input (H, W): (ceil(H / p), ceil(W / p))."""
        (H, W), (ph, pw) = pair(hw), self.patch_size
        if H < 1 or W < 1:
            raise ValueError(f"image sides must be positive, got {H}x{W}")
        return -(-H // ph), -(-W // pw)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> zero-padded at the right / bottom to multiples of the patch size."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"PatchEmbed expects (B, {self.in_chans}, H, W), got {tuple(x.shape)}")
        (gh, gw), (ph, pw) = self.grid_for(x.shape[-2:]), self.patch_size
        extra_h, extra_w = gh * ph - x.shape[-2], gw * pw - x.shape[-1]
        return F.pad(x, (0, extra_w, 0, extra_h)) if extra_h or extra_w else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pad(x)).flatten(2).transpose(1, 2)  # (B, D, h, w) -> (B, h * w, D)

    def forward_unfold(self, x: torch.Tensor) -> torch.Tensor:
        """The same result as forward, as the paper writes it: x_p E with x_p the flattened patches."""
        weight = self.proj.weight.reshape(self.embed_dim, -1)  # (D, C * p * p)
        return F.linear(patchify(self.pad(x), self.patch_size), weight, self.proj.bias)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ViTConfig:
    """One ViT variant: patch size, width D, depth L, heads and MLP ratio."""

    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0  # MLP hidden size = mlp_ratio * embed_dim
    drop_rate: float = 0.0  # dropout after the position embedding and in every layer
    global_pool: str = "token"  # "token": the class token's state | "avg": mean of the patch tokens


class ViT(nn.Module):
    """Patch embedding, class token, position embedding, pre-norm encoder layers, LayerNorm, head.

    forward_features(x) -> (B, 1 + N, D) (after the final norm); forward_head takes the class
    token (or the patch mean) and applies `head`. `blocks` holds the encoder layers, named in
    `feature_layers`. Inputs of another size than img_size get re-sampled position embeddings.
    """

    def __init__(self, cfg: ViTConfig, num_classes: int = 1000, in_chans: int = 3, img_size: int | Sequence[int] = 224):
        super().__init__()
        if cfg.global_pool not in ("token", "avg"):
            raise ValueError(f"unknown global_pool {cfg.global_pool!r}; choose 'token' (class token) or 'avg'")
        if cfg.embed_dim % cfg.num_heads or cfg.depth < 1:
            raise ValueError(f"embed_dim must be a multiple of num_heads and depth >= 1, got {cfg}")
        self.cfg, self.num_classes, self.in_chans = cfg, num_classes, in_chans
        D = self.embed_dim = self.num_features = cfg.embed_dim
        self.patch_embed = PatchEmbed(img_size, cfg.patch_size, in_chans, D)
        self.img_size, self.grid_size = self.patch_embed.img_size, self.patch_embed.grid_size
        self.num_prefix_tokens = 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.patch_embed.num_patches, D))
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        layer = dict(dim_feedforward=round(D * cfg.mlp_ratio), dropout=cfg.drop_rate, activation="gelu", layer_norm_eps=1e-6, norm_first=True)
        self.blocks = nn.Sequential(*(TransformerEncoderLayer(D, cfg.num_heads, **layer) for _ in range(cfg.depth)))
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.head = nn.Linear(D, num_classes)
        self.feature_layers = [f"blocks.{i}" for i in range(cfg.depth)]
        self.classifier_modules = ("head",)  # depends on the classes; transfer learning replaces it
        _init_weights(self)

    def position_embedding(self, grid: Sequence[int]) -> torch.Tensor:
        """(1, 1 + gh * gw, D): the learned embedding, re-sampled when the grid is not img_size's."""
        if tuple(grid) == self.grid_size:
            return self.pos_embed
        return resample_pos_embed(self.pos_embed, grid, self.grid_size, self.num_prefix_tokens)

    def _check_input(self, x: torch.Tensor) -> tuple[int, int]:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"ViT expects input (B, {self.in_chans}, H, W), got {tuple(x.shape)}")
        return self.patch_embed.grid_for(x.shape[-2:])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1 + N, D): patch tokens, class token in front, + position embedding."""
        grid = self._check_input(x)
        x = self.patch_embed(x)  # (B, N, D)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + N, D)
        return self.pos_drop(x + self.position_embedding(grid))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(self.embed(x)))  # (B, 1 + N, D)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0] if self.cfg.global_pool == "token" else x[:, self.num_prefix_tokens :].mean(dim=1)  # (B, D)
        return x if pre_logits else self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(model: ViT) -> None:
    # timm's default ("timm" mode of VisionTransformer.init_weights); the patch conv keeps
    # PyTorch's default, as timm.
    nn.init.trunc_normal_(model.pos_embed, std=0.02)
    nn.init.normal_(model.cls_token, std=1e-6)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif hasattr(m, "in_proj_weight") and m.in_proj_weight is not None:  # MultiHeadAttention's stacked q, k, v
            nn.init.trunc_normal_(m.in_proj_weight, std=0.02)
            if m.in_proj_bias is not None:
                nn.init.zeros_(m.in_proj_bias)


def embedding_shapes(model: ViT, img_size: int | Sequence[int] | None = None) -> "OrderedDict[str, tuple[int, ...]]":
    """The shapes (without the batch axis) an image takes on its way into the encoder, read from
    the model's own modules on one blank image:

        image            (C, H, W)            (3, 224, 224)
        patches          (N, C * p * p)       (196, 768)    the flattened 16x16x3 patches
        patch tokens     (N, D)               (196, 768)    after the linear projection
        with class token (1 + N, D)           (197, 768)
        encoder input    (1 + N, D)           (197, 768)    + position embedding
    """
    H, W = model.img_size if img_size is None else pair(img_size)
    x = torch.zeros(1, model.in_chans, H, W, device=model.pos_embed.device, dtype=model.pos_embed.dtype)
    grid = model._check_input(x)
    with torch.no_grad():
        patches = patchify(model.patch_embed.pad(x), model.patch_embed.patch_size)
        tokens = model.patch_embed(x)
        with_cls = torch.cat([model.cls_token.expand(1, -1, -1), tokens], dim=1)
        encoder_input = with_cls + model.position_embedding(grid)
    named = (("image", x), ("patches", patches), ("patch tokens", tokens), ("with class token", with_cls), ("encoder input", encoder_input))
    return OrderedDict((name, tuple(t.shape[1:])) for name, t in named)


def _vit(
    num_classes: int = 1000,
    in_chans: int = 3,
    img_size: int | Sequence[int] = 224,
    patch_size: int = 16,
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    mlp_ratio: float = 4.0,
    drop_rate: float = 0.0,
    global_pool: str = "token",
    fused_attention: bool | None = None,
) -> ViT:
    """fused_attention: True runs every attention layer on F.scaled_dot_product_attention (e.g.
    `deepnotes train vit_b_16 --model-arg fused_attention=true`; it pays for long sequences, see
    benchmarks/attention.py, but not for vit_tiny_28's 17 tokens on a CPU: benchmarks/precision.py),
    False on the scratch softmax, None follows deepnotes.layers.attention.use_fused. The weights are
    the same either way, and record_attention (maps, rollout) takes the scratch path regardless."""
    if isinstance(mlp_ratio, bool) or not (isinstance(mlp_ratio, (int, float)) and math.isfinite(mlp_ratio) and mlp_ratio > 0):
        raise ValueError(f"mlp_ratio (MLP hidden size / embed_dim) must be a number > 0, e.g. 4, got {mlp_ratio!r}")
    cfg = ViTConfig(
        patch_size=check_size("patch_size", patch_size), embed_dim=check_size("embed_dim", embed_dim), depth=check_size("depth", depth),
        num_heads=check_size("num_heads", num_heads), mlp_ratio=float(mlp_ratio), drop_rate=float(drop_rate), global_pool=global_pool,
    )  # fmt: skip
    model = ViT(cfg, num_classes=num_classes, in_chans=in_chans, img_size=img_size)
    for block in model.blocks:
        block.self_attn.fused = fused_attention
    return model


# --------------------------------------------------------------------------- variants

_IMAGENET = (3, 224, 224)
_FMNIST = (1, 28, 28)

# The counts: see the module docstring.
VARIANTS: dict[str, Variant] = {
    "vit_b_16": Variant(
        "ViT-B/16: 16x16 patches, D=768, 12 layers, 12 heads",
        num_params=86_567_656, input_size=_IMAGENET, num_classes=1000, config=ViTConfig(16, 768, 12, 12), pass_img_size=True,
    ),
    "vit_s_16": Variant(
        "ViT-S/16 (DeiT-S): 16x16 patches, D=384, 12 layers, 6 heads",
        num_params=22_050_664, input_size=_IMAGENET, num_classes=1000, config=ViTConfig(16, 384, 12, 6), pass_img_size=True,
    ),
    "vit_ti_16": Variant(
        "ViT-Ti/16 (DeiT-Ti): 16x16 patches, D=192, 12 layers, 3 heads",
        num_params=5_717_416, input_size=_IMAGENET, num_classes=1000, config=ViTConfig(16, 192, 12, 3), pass_img_size=True,
    ),
    "vit_tiny_28": Variant(
        "small ViT for 28x28: 7x7 patches (16 + 1 tokens), D=96, 6 layers, 4 heads",
        num_params=456_394, input_size=_FMNIST, num_classes=10, config=ViTConfig(7, 96, 6, 4, mlp_ratio=2.0), pass_img_size=True,
    ),
}

register_variants(_vit, VARIANTS, paper=PAPER)
