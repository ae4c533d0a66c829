"""Tensor operations that layers use and that are not layers themselves.

    center_crop  the central window of the last two dimensions (U-Net's crop of its skips,
                 Ronneberger et al. 2015, figure 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def center_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The central size = (h, w) window of the last two dimensions (U-Net's crop of its skips).

    When the margin is odd the extra row/column is cut at the bottom/right. Only slicing, so
    numpy arrays work too.
    """
    h, w = int(size[0]), int(size[1])
    H, W = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"cannot crop {H}x{W} to a larger {h}x{w}")
    top, left = (H - h) // 2, (W - w) // 2
    return x[..., top : top + h, left : left + w]
