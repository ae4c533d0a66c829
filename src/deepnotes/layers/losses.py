"""Losses beyond torch's built-in ones, for the tasks' training steps.

segmentation_loss: the pixel-wise cross-entropy of the U-Net paper ("a pixel-wise soft-max
over the final feature map combined with the cross entropy loss", Ronneberger et al. 2015,
arXiv:1505.04597), without its weight map; binary cross-entropy for a single foreground class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepnotes.layers.ops import center_crop


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean pixel loss of logits (B, C, h, w) against class masks (B, H, W) (any integer dtype).

    A target larger than the logits (a U-Net with valid convolutions predicts only the centre)
    is centre-cropped to them. C == 1: binary cross-entropy with logits against target > 0
    (ignore_index pixels left out); C > 1: cross-entropy over the classes.
    """
    if logits.ndim != 4:
        raise ValueError(f"expected logits (B, num_classes, H, W), got shape {tuple(logits.shape)}")
    if target.ndim != 3 or target.shape[0] != logits.shape[0]:
        raise ValueError(f"target must be (B, H, W) class indices for logits {tuple(logits.shape)}, got {tuple(target.shape)}")
    if target.shape[-2:] != logits.shape[-2:]:
        target = center_crop(target, logits.shape[-2:])
    target = target.long()
    if logits.shape[1] == 1:
        keep = target != ignore_index
        loss = F.binary_cross_entropy_with_logits(logits[:, 0], (target > 0).float(), reduction="none")
        return loss[keep].mean()
    return F.cross_entropy(logits, target, ignore_index=ignore_index)
