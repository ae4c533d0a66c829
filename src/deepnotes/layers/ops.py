"""Tensor operations that layers use and that are not layers themselves.

    center_crop  the central window of the last two dimensions (U-Net's crop of its skips,
                 Ronneberger et al. 2015, figure 1)
    FusedSwitch  the scratch / fused default of a layer module (attention, recurrent)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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


class FusedSwitch:
    """A module-level default for layers that have a scratch path and torch's fused one
    (attention, recurrent): `get()` the path modules with fused=None take, `set(v)` it (returns
    the previous one), `use(v)` it inside a with-block. Each layer module holds its own switch."""

    def __init__(self, default: bool):
        self.default = bool(default)

    def get(self) -> bool:
        return self.default

    def set(self, fused: bool) -> bool:
        previous, self.default = self.default, bool(fused)
        return previous

    @contextmanager
    def use(self, fused: bool = True) -> Iterator[None]:
        previous = self.set(fused)
        try:
            yield
        finally:
            self.set(previous)
