"""Where a transformer looks: recorded attention maps, attention rollout, and a figure.

    maps = attention_maps(model, x)                 # per layer: (B, heads, T, T)
    roll = attention_rollout(maps)                  # (B, T, T): how much each token mixes in
    grid = cls_attention_grid(maps[-1], (7, 7))     # (B, heads, 7, 7): the class token's row
    draw_attention(image, model, "attention.png")   # image | per-head CLS attention | rollout

Attention rollout: Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers",
arXiv:2005.00928. The raw attention of one layer ignores the residual connections, through
which each token also keeps itself; rollout models them by adding the identity, A = 0.5 W +
0.5 I, re-normalising the rows, and multiplying the layers: rollout = A_L ... A_2 A_1. Row i
then says how much of each input token reaches token i at the top. Heads are fused first
(mean as the paper; max or min as Gildenblat's vit-explain); `discard_ratio` zeroes the
smallest fused weights of every layer before the identity is added (vit-explain's option, not
in the paper; the class token's weight on itself is kept).

The maps come from deepnotes.layers.attention.record_attention: any model built on
deepnotes's MultiHeadAttention works (the ViT of deepnotes.models.vit, the encoder layers).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.layers.attention import record_attention

__all__ = ["attention_maps", "attention_rollout", "cls_attention_grid", "draw_attention"]


def attention_maps(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Run model(x) once in eval mode without gradients; return every attention map, in call
    order (one per layer for a ViT), each (B, heads, T, T). The model's train/eval flags are
    restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad(), record_attention(model) as maps:
            model(x)
    finally:
        for m, training in modes:
            m.training = training
    return list(maps)


def _fuse_heads(a: torch.Tensor, head_fusion: str) -> torch.Tensor:
    if a.dim() == 3:  # (B, T, T): already one map per image
        return a
    if a.dim() != 4:
        raise ValueError(f"attention maps must be (B, heads, T, T) or (B, T, T), got {tuple(a.shape)}")
    if head_fusion == "mean":
        return a.mean(dim=1)
    if head_fusion == "max":
        return a.amax(dim=1)
    if head_fusion == "min":
        return a.amin(dim=1)
    raise ValueError(f"head_fusion must be 'mean', 'max' or 'min', got {head_fusion!r}")


def attention_rollout(maps: Sequence[torch.Tensor], discard_ratio: float = 0.0, head_fusion: str = "mean") -> torch.Tensor:
    """Abnar & Zuidema's rollout of per-layer maps (B, heads, T, T) (or head-fused (B, T, T)),
    first layer first -> (B, T, T), every row summing to 1."""
    if not maps:
        raise ValueError("attention_rollout needs at least one attention map")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    result = None
    for a in maps:
        a = _fuse_heads(a.detach().to(torch.float64), head_fusion)  # (B, T, T)
        B, T, T2 = a.shape
        if T != T2 or (result is not None and result.shape != a.shape):
            raise ValueError(f"every map must be (B, T, T) with the same B and T, got {tuple(a.shape)}")
        n = int(T * T * discard_ratio)
        if n:
            flat = a.reshape(B, T * T).clone()
            lowest = flat.topk(n, dim=-1, largest=False).indices  # (B, n)
            keep_cls = flat[:, 0].clone()
            flat.scatter_(1, lowest, 0.0)
            flat[:, 0] = keep_cls
            a = flat.reshape(B, T, T)
        eye = torch.eye(T, dtype=a.dtype, device=a.device)
        a = 0.5 * a + 0.5 * eye  # the residual path
        a = a / a.sum(dim=-1, keepdim=True)
        result = a if result is None else a @ result
    return result.float()


def cls_attention_grid(attn: torch.Tensor, grid_hw: Sequence[int], num_prefix_tokens: int = 1) -> torch.Tensor:
    """The class token's attention to the patches, on the patch grid.

    attn (..., T, T) with T = prefix + gh * gw (e.g. (B, heads, T, T) or a rollout (B, T, T))
    -> (..., gh, gw): row 0, columns of the patch tokens, reshaped row by row.
    """
    gh, gw = (int(v) for v in grid_hw)
    T = attn.shape[-1]
    if attn.dim() < 2 or attn.shape[-2] != T or T != num_prefix_tokens + gh * gw:
        raise ValueError(f"attention (..., T, T) with T = {num_prefix_tokens} + {gh}x{gw} = {num_prefix_tokens + gh * gw} expected, got {tuple(attn.shape)}")
    return attn[..., 0, num_prefix_tokens:].reshape(*attn.shape[:-2], gh, gw)


def _as_image(image: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """(C, H, W) uint8 or float in [0, 1] -> (model input (1, C, H, W) float in [0, 1], HxW(x3) for imshow)."""
    x = torch.as_tensor(np.asarray(image)) if not isinstance(image, torch.Tensor) else image.detach().cpu()
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"draw_attention needs one image (C, H, W) with C = 1 or 3, got {tuple(x.shape)}")
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    shown = x.clamp(0, 1).permute(1, 2, 0).numpy()
    return x.unsqueeze(0), (shown[..., 0] if x.shape[0] == 1 else shown)


def draw_attention(
    image: torch.Tensor | np.ndarray,
    model: nn.Module,
    out_png: str | os.PathLike,
    *,
    spec=None,
    discard_ratio: float = 0.0,
    head_fusion: str = "mean",
    title: str | None = None,
) -> Path:
    """Write a PNG: the image, the class token's attention in every head of the last layer
    (upsampled over the image), and the rollout of all layers. Returns the path.

    image: (C, H, W), uint8 or float in [0, 1]. spec: an InputSpec (deepnotes.data.transforms)
    to standardize the image as in training; without it the model gets pixels in [0, 1].
    The model must have a patch grid: `patch_embed.grid_for((H, W))` (deepnotes's ViT).
    """
    from deepnotes.report.plots import new_figure, save_png

    x, shown = _as_image(image)
    if spec is not None:
        x = spec.normalize((x * 255.0).round().to(torch.uint8))
    patch_embed = getattr(model, "patch_embed", None)
    if patch_embed is None:
        raise ValueError(f"draw_attention needs a model with a patch grid (a ViT), got {type(model).__name__}")
    H, W = x.shape[-2:]
    grid = patch_embed.grid_for((H, W))
    prefix = getattr(model, "num_prefix_tokens", 1)
    maps = attention_maps(model, x)
    heads = cls_attention_grid(maps[-1][0], grid, prefix)  # (heads, gh, gw)
    rollout = cls_attention_grid(attention_rollout(maps, discard_ratio, head_fusion)[0], grid, prefix)  # (gh, gw)

    # the grid covers the image zero-padded to whole patches: upsample to that, then crop
    ph, pw = patch_embed.patch_size

    def upsample(a: torch.Tensor) -> np.ndarray:
        a = F.interpolate(a.float()[None, None], size=(grid[0] * ph, grid[1] * pw), mode="bilinear", align_corners=False)[0, 0, :H, :W]
        a = a - a.min()
        return (a / a.max().clamp_min(1e-12)).numpy()  # 0..1 per panel: the pattern, not the scale

    panels = [("image", None)] + [(f"last layer, head {h + 1}", upsample(heads[h])) for h in range(heads.shape[0])]
    panels.append((f"rollout ({len(maps)} layers)", upsample(rollout)))
    ncols = min(len(panels), 7)
    nrows = -(-len(panels) // ncols)
    fig = new_figure((2.2 * ncols, 2.4 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    cmap = "gray" if shown.ndim == 2 else None
    for ax, (name, heat) in zip(axes, panels):
        ax.imshow(shown, cmap=cmap, vmin=0, vmax=1)
        if heat is not None:
            ax.imshow(heat, cmap="inferno", alpha=0.55, vmin=0, vmax=1)
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    fig.suptitle(title or f"class-token attention, {grid[0]}x{grid[1]} patches", fontsize=10)
    fig.tight_layout()
    return save_png(fig, out_png)
