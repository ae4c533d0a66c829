"""From stored uint8 images to the batches a model sees.

- adapt_size: pad or resize a dataset to a model's fixed input size (LeNet-5 wants 32x32);
- InputSpec: the channels, size and normalization a trained model expects (saved in
  config.json so `deepnotes predict` prepares an image exactly as in training);
- TensorBatches: shuffled mini-batches straight from in-memory tensors, with batched
  augmentation (random crop, horizontal flip) and a seeded order that is a pure function of
  (seed, epoch), so a run resumed mid-epoch sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from deepnotes.errors import UserError

AUGMENT_PARTS = ("crop", "flip")  # what TensorBatches implements; combined with "+", or "none"


@dataclass(frozen=True)
class InputSpec:
    """What the model expects: (in_chans, H, W) and the per-channel mean/std of [0, 1] pixels."""

    in_chans: int
    img_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "InputSpec":
        return cls(int(d["in_chans"]), tuple(d["img_size"]), tuple(d["mean"]), tuple(d["std"]))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32 standardized with the training statistics."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        return (x.float().div_(255.0) - mean) / std


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), on the [0, 1] scale."""
    xf = x.float().div_(255.0).transpose(0, 1).reshape(x.shape[1], -1)  # (C, N*H*W)
    std = xf.std(dim=1).clamp_min(1e-6)
    return tuple(xf.mean(dim=1).tolist()), tuple(std.tolist())


def adapt_size(x: torch.Tensor, img_size: tuple[int, int]) -> tuple[torch.Tensor, str]:
    """Bring uint8 images (N, C, h, w) to (N, C, H, W); return them and a sentence saying how.

    A slightly smaller image (at most 8 pixels short on each side, e.g. 28 -> 32) is padded
    with zeros around the centre, as LeCun et al. 1998 did for MNIST and LeNet-5; any other
    size change is a bilinear resize (antialiased when shrinking).
    """
    h, w = x.shape[-2:]
    H, W = img_size
    if (h, w) == (H, W):
        return x, f"kept {w}x{h}"
    if 0 <= H - h <= 8 and 0 <= W - w <= 8:
        top, left = (H - h) // 2, (W - w) // 2
        padded = F.pad(x, (left, W - w - left, top, H - h - top))
        return padded, f"padded {w}x{h} -> {W}x{H} with zeros (centred)"
    out = []
    for chunk in x.split(4096):  # bounded memory for big datasets
        y = F.interpolate(chunk.float(), size=(H, W), mode="bilinear", align_corners=False, antialias=H < h or W < w)
        out.append(y.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out), f"resized {w}x{h} -> {W}x{H} (bilinear)"


def check_augment(augment: str) -> str:
    """"none", or augmentations of AUGMENT_PARTS joined by "+" (e.g. "crop+flip")."""
    parts = [] if augment == "none" else augment.split("+")
    if not all(p in AUGMENT_PARTS for p in parts) or len(set(parts)) != len(parts):
        raise UserError(f"unknown augmentation {augment!r}; write none, or {' / '.join(AUGMENT_PARTS)} joined by +, e.g. crop+flip")
    return augment


def _epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    # A separate, reproducible stream per (seed, epoch, purpose): no state to checkpoint.
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 7 + stream) % (2**63))


class TensorBatches:
    """Mini-batches from in-memory uint8 tensors, normalized per batch.

    With world_size > 1 (DDP), every rank draws the same permutation and takes every
    world_size-th index, so the ranks see disjoint shards of equal length; batch_size is
    the global batch and each rank gets batch_size // world_size of it.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        spec: InputSpec,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        augment: str = "none",
        crop_padding: int | None = None,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
    ):
        if batch_size % world_size:
            raise UserError(f"--batch-size {batch_size} must be divisible by the number of processes ({world_size})")
        self.x, self.y, self.spec = x, y, spec
        self.batch_size = batch_size // world_size
        self.shuffle, self.seed, self.augment = shuffle, seed, check_augment(augment)
        self.crop_padding = crop_padding if crop_padding is not None else max(1, x.shape[-1] // 8)
        self.rank, self.world_size, self.channels_last = rank, world_size, channels_last
        self.num_samples = len(x) // world_size if world_size > 1 else len(x)
        # Dropping a ragged last batch only when there is more than one batch (BatchNorm
        # cannot train on a batch of 1, and a tiny last batch adds noise).
        self.drop_last = drop_last and self.num_samples >= self.batch_size

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else math.ceil(n / b)

    def indices(self, epoch: int) -> torch.Tensor:
        n = len(self.x)
        order = torch.randperm(n, generator=_epoch_generator(self.seed, epoch, 0)) if self.shuffle else torch.arange(n)
        if self.world_size > 1:
            order = order[self.rank :: self.world_size][: self.num_samples]
        return order

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x, y) for the given epoch, skipping the first `start_step` batches."""
        order = self.indices(epoch)
        shifts = flips = None
        if self.augment != "none":
            g = _epoch_generator(self.seed, epoch, 1)
            p = self.crop_padding
            shifts = torch.randint(-p, p + 1, (len(self.x), 2), generator=g)
            flips = torch.rand(len(self.x), generator=g) < 0.5
        masks = self.y.dim() == 3  # segmentation labels (N, H, W): a mask moves with its image
        for step in range(start_step, len(self)):
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            xb, yb = self.x[idx], self.y[idx]
            if "crop" in self.augment:
                xb = random_translate(xb, shifts[idx], self.crop_padding)
                if masks:  # zero fill = background, what lies outside a scene
                    yb = random_translate(yb[:, None], shifts[idx], self.crop_padding)[:, 0]
            if "flip" in self.augment:
                f = flips[idx]
                xb = torch.where(f.view(-1, 1, 1, 1), xb.flip(-1), xb)
                if masks:
                    yb = torch.where(f.view(-1, 1, 1), yb.flip(-1), yb)
            xb = self.spec.normalize(xb)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, yb


def random_translate(x: torch.Tensor, shifts: torch.Tensor, padding: int) -> torch.Tensor:
    """Per-image translation by (dy, dx) in [-padding, padding], zero-filled: the usual
    "pad by p, then random crop back to size" augmentation, done for the whole batch at once."""
    B, C, H, W = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = (padding + shifts[:, 0]).view(B, 1) + torch.arange(H).view(1, H)  # (B, H)
    cols = (padding + shifts[:, 1]).view(B, 1) + torch.arange(W).view(1, W)  # (B, W)
    b = torch.arange(B).view(B, 1, 1)
    out = padded.permute(0, 2, 3, 1)[b, rows.view(B, H, 1), cols.view(B, 1, W)]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def random_rotate(x: torch.Tensor, degrees: torch.Tensor | float) -> torch.Tensor:
    """Rotate each image about its centre by degrees[i] (counter-clockwise as displayed, row 0 at
    the top), bilinear, zero-filled outside; uint8 in, uint8 out (rounded), floats stay floats.

    90 degrees is torch.rot90(x, 1, (-2, -1)) exactly for square images. Non-square images are
    rotated in pixel units (the sampling grid is corrected for the aspect ratio), so shapes are
    not sheared. The "random" is the caller's: draw the angles, e.g. (2 * rand(B) - 1) * 30.
    """
    if x.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(x.shape)}")
    B, _, H, W = x.shape
    a = torch.as_tensor(degrees, dtype=torch.float32).reshape(-1)
    if a.numel() == 1:
        a = a.expand(B)
    if a.numel() != B:
        raise ValueError(f"{a.numel()} angles for {B} images; give one angle or one per image")
    rad = torch.deg2rad(a.double())
    cos, sin = torch.cos(rad), torch.sin(rad)
    # output pixel p_out samples the input at R^-1 p_out; in affine_grid's [-1, 1] coordinates
    # x is scaled by W/2 and y by H/2, hence the H/W and W/H factors.
    theta = torch.zeros(B, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * H / W
    theta[:, 1, 0], theta[:, 1, 1] = sin * W / H, cos
    xf = x.float() if not x.is_floating_point() else x
    grid = F.affine_grid(theta.to(xf.dtype), list(xf.shape), align_corners=False)
    out = F.grid_sample(xf, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if x.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out


def as_tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(y, dtype=np.int64))
