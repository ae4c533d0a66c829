"""U-Net: Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015, arXiv:1505.04597.

The paper's idea: a contracting path that captures context and a symmetric expanding path
that localizes, joined level by level by skip connections, so the high-resolution features
of the encoder reach the decoder directly. Figure 1, with its parts named as in the notes:

    ConvBlock     3x3 conv -> ReLU, twice ("unpadded": each conv loses a 1-pixel border)
    EncoderBlock  ConvBlock, then 2x2 max-pool stride 2; the ConvBlock output is the skip
    DecoderBlock  2x2 up-convolution (transposed conv, stride 2) halving the channels,
                  concatenation with the centre-cropped skip of the same level, ConvBlock
    head          1x1 conv to the classes

    572 -> 570 -> 568 (64) -> 284 -> 280 (128) -> 140 -> 136 (256) -> 68 -> 64 (512)
    -> 32 -> 28 (1024, the bottom) -> up 56 -> 52 (512) -> up 104 -> 100 (256)
    -> up 200 -> 196 (128) -> up 392 -> 388 (64) -> 1x1 conv: 388x388x2

The registered `unet` is that configuration: 1 input channel, 2 classes, 64 base channels
doubling to 1024, valid convolutions, no batch norm: 31,030,658 parameters. With valid
convolutions the output is the centre of the input (388 of 572): the paper tiles large images
with overlapping inputs and mirrors the border ("overlap-tile strategy"); here the target is
centre-cropped to the output instead (deepnotes.layers.losses.segmentation_loss does it). Not every
size works: each feature map before a pool must have an even side (572 = 16 * 28 + 124; the
valid sides are 16k + 124 for depth 4); `valid_input_size` gives the next one.

The model returns logits (B, num_classes, H', W'). The sigmoid (num_classes = 1) or the
pixel-wise softmax (several classes) belongs to the loss and to prediction
(deepnotes.layers.losses.segmentation_loss, deepnotes.metrics.segmentation.mask_from_logits),
not to the model; with several classes the mask is
logits.argmax(1).

Notes where this code departs from the paper:
- `padding="same"` (3x3 convs padded by 1) keeps the size, so the output is the input's size
  and the skips need no crop; sides must then be multiples of 2**depth;
- `batch_norm=True` puts BatchNorm between each conv and its ReLU (the notes' "3x3 conv + BN +
  ReLU"; BatchNorm is from the same year and not in the paper) and drops the conv biases it
  makes redundant;
- no weight map: the paper weights the loss per pixel to separate touching cells
  (w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / 2 sigma^2)); the scenes here have exact masks and
  the plain cross-entropy is used;
- initialization: the paper's N(0, 2 / N) with N the inputs of one output unit (k * k *
  in_chans for a conv, in_chans for the 2x2 stride-2 up-convolution, whose output pixels each
  see one tap per input channel), zero biases;
- the paper's dropout "at the end of the contracting path" and its elastic-deformation
  augmentation are left to the training recipe (`dropout` adds the former before the bottom).

`unet_small` is the form for the 64x64 scenes (deepnotes.data.scenes) that trains on a CPU:
same padding, batch norm, 16 base channels (16-32-64-128, 256 at the bottom), depth 4 (the
bottom sees 4x4 with a receptive field wider than the canvas), 11 classes (10 + background).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from deepnotes.layers.ops import center_crop
from deepnotes.registry import Variant, register_variants

PAPER = 'Ronneberger, Fischer & Brox 2015, "U-Net: Convolutional Networks for Biomedical Image Segmentation", arXiv:1505.04597'
PADDINGS = ("valid", "same")

# --------------------------------------------------------------------------- blocks


class ConvBlock(nn.Sequential):
    """(3x3 conv [-> BN] -> ReLU) x 2. padding "valid" loses 2 pixels per side, "same" none."""

    def __init__(self, in_chans: int, out_chans: int, padding: str = "valid", batch_norm: bool = False):
        pad = 1 if padding == "same" else 0
        layers: list[tuple[str, nn.Module]] = []
        for i, c in enumerate((in_chans, out_chans), start=1):
            layers.append((f"conv{i}", nn.Conv2d(c, out_chans, 3, padding=pad, bias=not batch_norm)))
            if batch_norm:
                layers.append((f"bn{i}", nn.BatchNorm2d(out_chans)))
            layers.append((f"relu{i}", nn.ReLU(inplace=True)))
        super().__init__(OrderedDict(layers))


class EncoderBlock(nn.Module):
    """ConvBlock, then 2x2 max-pool. forward returns (pooled, skip), skip = the ConvBlock output."""

    def __init__(self, in_chans: int, out_chans: int, padding: str = "valid", batch_norm: bool = False):
        super().__init__()
        self.block = ConvBlock(in_chans, out_chans, padding, batch_norm)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.block(x)
        return self.pool(skip), skip


class DecoderBlock(nn.Module):
    """2x2 up-convolution (stride 2, in_chans -> in_chans // 2), concatenation [skip, up] with the
    skip centre-cropped to the upsampled size, then ConvBlock to out_chans."""

    def __init__(self, in_chans: int, skip_chans: int, out_chans: int, padding: str = "valid", batch_norm: bool = False):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_chans, in_chans // 2, 2, stride=2)
        self.block = ConvBlock(in_chans // 2 + skip_chans, out_chans, padding, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (B, in_chans // 2, 2h, 2w)
        return self.block(torch.cat([center_crop(skip, x.shape[-2:]), x], dim=1))


# --------------------------------------------------------------------------- model


class UNet(nn.Module):
    """Encoder (depth EncoderBlocks), bottom ConvBlock, decoder (depth DecoderBlocks), 1x1 head.

    Widths base_width * 2**level for level 0..depth. forward(x) -> logits (B, num_classes, H', W'),
    H' = output_size(H) (= H with same padding).
    """

    def __init__(
        self,
        num_classes: int = 2,
        in_chans: int = 1,
        base_width: int = 64,
        depth: int = 4,
        padding: str = "valid",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"unknown U-Net padding {padding!r}; choose 'valid' (the paper: 572 -> 388) or 'same'")
        if depth < 1 or base_width < 1:
            raise ValueError(f"U-Net needs depth >= 1 and base_width >= 1, got depth={depth}, base_width={base_width}")
        self.num_classes, self.in_chans, self.depth, self.padding = num_classes, in_chans, depth, padding
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList(
            EncoderBlock(c, w, padding, batch_norm) for c, w in zip([in_chans, *widths[:-2]], widths[:-1])
        )  # fmt: skip
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.bottom = ConvBlock(widths[-2], widths[-1], padding, batch_norm)
        self.decoders = nn.ModuleList(
            DecoderBlock(widths[i + 1], widths[i], widths[i], padding, batch_norm) for i in reversed(range(depth))
        )  # fmt: skip
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.classifier_modules = ("head",)  # the 1x1 conv to the classes; transfer learning replaces it
        self.num_features = widths[0]
        self.feature_info = [
            *({"module": f"encoders.{i}", "num_chs": widths[i], "reduction": 2**i} for i in range(depth)),
            {"module": "bottom", "num_chs": widths[-1], "reduction": 2**depth},
            *({"module": f"decoders.{j}", "num_chs": widths[i], "reduction": 2**i} for j, i in enumerate(reversed(range(depth)))),
        ]
        self.feature_layers = [f["module"] for f in self.feature_info]
        _init_weights(self)

    # ---- sizes

    def output_size(self, size: int) -> int | None:
        """The output side for an input side `size`, or None when `size` does not work."""
        if self.padding == "same":
            return size if size > 0 and size % 2**self.depth == 0 else None
        s = size
        for _ in range(self.depth):
            s -= 4  # two unpadded 3x3 convs
            if s <= 0 or s % 2:
                return None
            s //= 2
        s -= 4
        for _ in range(self.depth):
            if s <= 0:
                return None
            s = 2 * s - 4
        return s if s > 0 else None

    def valid_input_size(self, at_least: int = 1) -> int:
        """The smallest input side >= at_least that the network takes (572 for the paper's 388 output)."""
        s = max(1, int(at_least))
        while self.output_size(s) is None:
            s += 1
        return s

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"U-Net expects input (B, {self.in_chans}, H, W), got {tuple(x.shape)}")
        bad = [s for s in x.shape[2:] if self.output_size(int(s)) is None]
        if bad:
            s = int(bad[0])
            below = next((t for t in range(s - 1, 0, -1) if self.output_size(t) is not None), None)
            why = (
                f"a multiple of {2**self.depth} ({self.depth} poolings)"
                if self.padding == "same"
                else f"one whose maps have even sides before each of the {self.depth} poolings (e.g. 572 -> 388)"
            )
            near = " and ".join(str(t) for t in (below, self.valid_input_size(s)) if t is not None)
            raise ValueError(
                f"U-Net ({self.padding} convolutions, depth {self.depth}) cannot take a side of {s}: it needs {why}; "
                f"nearest valid: {near}; got input {tuple(x.shape)}"
            )

    # ---- forward

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        skips = []
        for enc in self.encoders:
            x, skip = enc(x)
            skips.append(skip)
        x = self.bottom(self.dropout(x))
        for dec, skip in zip(self.decoders, reversed(skips)):
            x = dec(x, skip)
        return x  # (B, base_width, H', W')

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.head(x)  # logits (B, num_classes, H', W')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(model: nn.Module) -> None:
    # The paper's N(0, sqrt(2 / N)), N = inputs of one output unit.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.in_channels * m.kernel_size[0] * m.kernel_size[1])))
        elif isinstance(m, nn.ConvTranspose2d):
            # stride == kernel: each output pixel gets exactly one tap from each input channel
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / m.in_channels))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        else:
            continue
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)


def _unet(
    num_classes: int = 2,
    in_chans: int = 1,
    base_width: int = 64,
    depth: int = 4,
    padding: str = "valid",
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> UNet:
    return UNet(num_classes, in_chans, int(base_width), int(depth), padding, batch_norm, float(dropout))


# --------------------------------------------------------------------------- variants

# unet (the paper): encoder convs 640 + 36,928 | 73,856 + 147,584 | 295,168 + 590,080 |
# 1,180,160 + 2,359,808; bottom 4,719,616 + 9,438,208; decoder up-convs 2,097,664 + 524,544 +
# 131,200 + 32,832, convs 4,719,104 + 2,359,808 | 1,179,904 + 590,080 | 295,040 + 147,584 |
# 73,792 + 36,928; head 130: 31,030,658.
# unet_small (1 in, 11 classes, 16 base, BN and no conv biases): encoders 293,712, bottom 885,760,
# decoders 762,800, head 187: 1,942,459.
VARIANTS: dict[str, Variant] = {
    "unet": Variant(
        "U-Net as in the paper: valid 3x3 convs, 64-1024 channels, 2x2 up-convolutions, 572 -> 388",
        num_params=31_030_658, input_size=(1, 572, 572), num_classes=2, task="segmentation",
        config=dict(base_width=64, depth=4, padding="valid", batch_norm=False),
    ),
    "unet_small": Variant(
        "small U-Net for 64x64 scenes: same padding, BatchNorm, 16-256 channels, depth 4",
        num_params=1_942_459, input_size=(1, 64, 64), num_classes=11, task="segmentation",
        config=dict(base_width=16, depth=4, padding="same", batch_norm=True),
    ),
}

register_variants(_unet, VARIANTS, paper=PAPER)
