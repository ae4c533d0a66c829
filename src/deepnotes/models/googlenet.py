"""GoogLeNet (Inception v1): Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke &
Rabinovich, "Going Deeper with Convolutions", 2014 (CVPR 2015), arXiv:1409.4842.

The paper's idea: let the network choose its own filter size at every layer. An Inception
module runs four branches in parallel on the same input and concatenates their outputs
along the channels:

    1x1 conv | 1x1 conv -> 3x3 conv | 1x1 conv -> 5x5 conv | 3x3 max-pool (stride 1) -> 1x1 conv

The 1x1 convs before the 3x3 and 5x5 ones ("reduce") shrink the channels first, so nine
modules fit in 1.5 billion multiply-adds at 224x224 and about 7M parameters, 12x fewer than
AlexNet. Global average pooling replaces the big FC layers (Network in Network, Lin et al.
2013). Table 1 of the paper gives the widths; `TABLE_1` below holds them in its column order.

    input 3x224x224 -> conv 7x7/2 64 -> max-pool 3/2 -> conv 1x1 64 -> conv 3x3 192 -> max-pool 3/2
    -> 3a 256 -> 3b 480 @28 -> max-pool 3/2 -> 4a 512 ... 4e 832 @14 -> max-pool -> 5a 832
    -> 5b 1024 @7 -> global avg-pool -> dropout -> FC 1000

Two auxiliary classifiers on top of 4a and 4d add 0.3x their loss during training (to push
gradient into the middle of the 22-layer net) and are thrown away at inference:
    avg-pool 5x5/3 -> 4x4, conv 1x1 128, FC 1024, ReLU, dropout 0.7, FC classes.

`googlenet` (no auxiliary heads, 6,624,904 parameters) and `googlenet_aux` (with them,
13,004,888) are torchvision's GoogLeNet (aux_logits False / True), whose parameter counts
they match exactly, with torchvision's departures from the paper:
- BatchNorm (Ioffe & Szegedy 2015, a year later) after every conv, whose bias it drops
  (conv -> BN(eps=1e-3) -> ReLU, `BasicConv2d`), where the paper had biased convs and
  ReLU only;
- no local response normalization (the paper's stem has LRN after the first max-pool and
  after the 3x3 conv: BN replaces it);
- the "5x5" branch uses a 3x3 conv: a bug in the TensorFlow model torchvision's weights were
  ported from, kept for weight compatibility (pytorch/vision issue 906). The paper's 5x5
  has 25/9 of those weights: branch3_kernel=5 builds it (7,005,832 parameters without
  aux heads);
- the max-pool before 5a is 2x2/2, not 3x3/2 (the same 7x7 output at 224);
- the max-pools round their output size up (ceil_mode), as Caffe's pooling does;
- the auxiliary heads average-pool adaptively to 4x4 (the paper's 5x5/3 pool gives 4x4 only
  on a 14x14 map), so any input from 15x15 up works (64x64 in the registry test);
- dropout 0.2 before the final FC, not the paper's 0.4;
- truncated-normal(0, 0.01) initialization (the paper does not state its own).

Auxiliary-head API (googlenet_aux, or any variant built with aux_logits=True):
forward(x) always returns the main logits (B, num_classes), so the training loop,
evaluation and CAM treat every model alike. In training mode the heads' logits, after 4a and
after 4d, are also left in `model.aux_outputs` (a list of two (B, num_classes) tensors); in
eval mode, or without heads, it is []. `model.aux_loss(y, loss_fn)` is the auxiliary term of
the training loss, which the training loop adds to loss_fn(logits, y):
    aux_weight * loss_fn(aux_4a, y) + aux_weight * loss_fn(aux_4d, y)
with aux_weight = 0.3, the paper's discount (a zero tensor when there are no aux outputs).
The heads are in `classifier_modules` with `head`: they depend on the classes, so transfer
learning replaces them too.

`googlenet_small` is a CIFAR-style GoogLeNet for 28x28 / 32x32 images, shaped to train on a
CPU in minutes. It keeps the nine modules of Table 1 with the paper's real 5x5 branch, the
pools between stages 3-4 and 4-5, and global average pooling, and departs from it in:
- a CIFAR stem: conv1 is 3x3 stride 1 (not 7x7 stride 2) and of the stem's two max-pools
  only the first remains, so 28x28 reaches the modules at 14x14 (3a-3b), then 7x7 (4a-4e)
  and 4x4 (5a-5b); at 224 the paper's stem reduces by 8, this one by 2;
- every width times 0.25 (rounded to a multiple of 8, at least 8): 3a gives 16+32+8+8 = 64
  maps, 5b 96+96+32+32 = 256;
- BatchNorm as in torchvision's; no auxiliary heads (aux_logits=True adds them, their widths
  also scaled).
387,962 parameters and 20M multiply-adds for a 1x28x28 image (25M for 3x32x32); width=0.375
gives 0.87M and 45M (57M), width=0.5 1.5M and 78M.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.models.options import check_multiplier
from deepnotes.registry import Variant, register_variants

PAPER = 'Szegedy et al. 2014, "Going Deeper with Convolutions", arXiv:1409.4842'


class ConvSpec(NamedTuple):
    out_chans: int
    kernel: int
    stride: int = 1
    padding: int = 0


class PoolSpec(NamedTuple):
    """A max-pool with ceil_mode=True (output size rounds up)."""

    kernel: int
    stride: int


class InceptionSpec(NamedTuple):
    """One row of Table 1: the output widths of the module's branches."""

    ch1x1: int  # branch 1: 1x1
    ch3x3red: int  # branch 2: 1x1 "reduce" ...
    ch3x3: int  # ... -> 3x3
    ch5x5red: int  # branch 3: 1x1 "reduce" ...
    ch5x5: int  # ... -> 5x5 (torchvision: 3x3)
    pool_proj: int  # branch 4: 3x3 max-pool -> 1x1 "pool proj"


Layer = ConvSpec | PoolSpec | InceptionSpec

# Table 1 of the paper, after the stem. maxpool4 is torchvision's 2x2/2 (the paper: 3x3/2).
TABLE_1: tuple[tuple[str, Layer], ...] = (
    ("inception3a", InceptionSpec(64, 96, 128, 16, 32, 32)),  # -> 256
    ("inception3b", InceptionSpec(128, 128, 192, 32, 96, 64)),  # -> 480
    ("maxpool3", PoolSpec(3, 2)),
    ("inception4a", InceptionSpec(192, 96, 208, 16, 48, 64)),  # -> 512, aux head 1
    ("inception4b", InceptionSpec(160, 112, 224, 24, 64, 64)),  # -> 512
    ("inception4c", InceptionSpec(128, 128, 256, 24, 64, 64)),  # -> 512
    ("inception4d", InceptionSpec(112, 144, 288, 32, 64, 64)),  # -> 528, aux head 2
    ("inception4e", InceptionSpec(256, 160, 320, 32, 128, 128)),  # -> 832
    ("maxpool4", PoolSpec(2, 2)),
    ("inception5a", InceptionSpec(256, 160, 320, 32, 128, 128)),  # -> 832
    ("inception5b", InceptionSpec(384, 192, 384, 48, 128, 128)),  # -> 1024
)

STEMS: dict[str, tuple[tuple[str, Layer], ...]] = {
    # the paper's (without its two LRNs): 224 -> 112 -> 56 -> 56 -> 56 -> 28
    "imagenet": (
        ("conv1", ConvSpec(64, 7, 2, 3)),
        ("maxpool1", PoolSpec(3, 2)),
        ("conv2", ConvSpec(64, 1)),
        ("conv3", ConvSpec(192, 3, 1, 1)),
        ("maxpool2", PoolSpec(3, 2)),
    ),
    # CIFAR-style: 28 -> 28 -> 14 -> 14 -> 14 (32 -> 32 -> 16 ...)
    "cifar": (
        ("conv1", ConvSpec(64, 3, 1, 1)),
        ("maxpool1", PoolSpec(3, 2)),
        ("conv2", ConvSpec(64, 1)),
        ("conv3", ConvSpec(192, 3, 1, 1)),
    ),
}

AUX_AFTER = ("inception4a", "inception4d")

# --------------------------------------------------------------------------- helpers


def _scaled(channels: int, width: float) -> int:
    """A width times the multiplier, at least 8 and rounded to a multiple of 8."""
    return max(8, round(channels * width / 8) * 8) if width != 1.0 else channels


def _out_size(size: int, kernel: int, stride: int, padding: int = 0, ceil: bool = False) -> int:
    """Output side of a conv / max-pool, with PyTorch's rule for ceil_mode (0 or less: too small)."""
    out = (size + 2 * padding - kernel + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input
    return out


def _init_weights(model: nn.Module) -> None:
    """torchvision's: truncated normal (std 0.01, cut at 2 std) for convs and linears; BN 1 / 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.01, a=-0.02, b=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- blocks


class BasicConv2d(nn.Sequential):
    """conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU, torchvision's unit (the paper: conv -> ReLU)."""

    def __init__(self, in_chans: int, out_chans: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(in_chans, out_chans, kernel, stride, padding, bias=False),
                bn=nn.BatchNorm2d(out_chans, eps=1e-3),
                relu=nn.ReLU(inplace=True),
            )
        )


class Inception(nn.Module):
    """Four parallel branches on the same input, concatenated along the channels.

    (B, in_chans, H, W) -> (B, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W). branch3_kernel is
    the kernel of the "5x5" branch: 5 in the paper, 3 in torchvision's (see module docstring).
    """

    def __init__(self, in_chans: int, spec: InceptionSpec, branch3_kernel: int = 5):
        super().__init__()
        s = spec
        self.branch1 = BasicConv2d(in_chans, s.ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_chans, s.ch3x3red, 1), BasicConv2d(s.ch3x3red, s.ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(
            BasicConv2d(in_chans, s.ch5x5red, 1),
            BasicConv2d(s.ch5x5red, s.ch5x5, branch3_kernel, padding=branch3_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(in_chans, s.pool_proj, 1)
        )
        self.out_chans = s.ch1x1 + s.ch3x3 + s.ch5x5 + s.pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # (B, out_chans, H, W)


class InceptionAux(nn.Module):
    """Auxiliary classifier: avg-pool to 4x4 -> 1x1 conv -> FC -> ReLU -> dropout -> FC classes."""

    def __init__(self, in_chans: int, num_classes: int, conv_width: int = 128, fc_width: int = 1024, dropout: float = 0.7):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)  # the paper: 5x5 stride-3 average pool, 14x14 -> 4x4
        self.conv = BasicConv2d(in_chans, conv_width, 1)
        self.fc1 = nn.Linear(conv_width * 4 * 4, fc_width)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(fc_width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pool(x)).flatten(1)  # (B, conv_width * 16)
        x = self.dropout(F.relu(self.fc1(x), inplace=True))  # (B, fc_width)
        return self.fc2(x)  # (B, num_classes)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class GoogLeNetConfig:
    """One GoogLeNet variant; the modules are always Table 1's, times `width`."""

    stem: str = "imagenet"  # a key of STEMS
    width: float = 1.0  # multiplier of every width (stem, modules, aux heads)
    branch3_kernel: int = 3  # the "5x5" branch: 3 in torchvision (weight compatible), 5 in the paper
    aux_logits: bool = False  # auxiliary classifiers after 4a and 4d (active only in training)
    dropout: float = 0.2  # before the final FC (the paper: 0.4)
    aux_dropout: float = 0.7
    aux_weight: float = 0.3  # the paper's weight of each auxiliary loss


class GoogLeNet(nn.Module):
    """Stem + Table 1's Inception modules (one flat `features` Sequential) + GAP + FC.

    `feature_layers` names the last layer at each resolution (CAM targets, backbone reuse)
    and `feature_info` gives their channels and reduction (as timm's feature_info).
    See the module docstring for the auxiliary heads and `aux_outputs`.
    """

    def __init__(self, cfg: GoogLeNetConfig, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        if cfg.stem not in STEMS:
            raise ValueError(f"unknown GoogLeNet stem {cfg.stem!r}; choose one of {', '.join(STEMS)}")
        if cfg.branch3_kernel not in (3, 5):
            raise ValueError(f"branch3_kernel is 5 (the paper) or 3 (torchvision), got {cfg.branch3_kernel}")
        self.cfg, self.num_classes, self.in_chans = cfg, num_classes, in_chans
        self.aux_weight = cfg.aux_weight
        self.aux_outputs: list[torch.Tensor] = []
        layers: list[tuple[str, nn.Module]] = []
        self._shape_ops: list[tuple[int, int, int, bool]] = []  # (kernel, stride, padding, ceil) of stem convs and pools
        self.feature_info: list[dict] = []
        aux: dict[str, nn.Module] = {}
        c, reduction = in_chans, 1
        for name, spec in STEMS[cfg.stem] + TABLE_1:
            reduces = isinstance(spec, PoolSpec) or (isinstance(spec, ConvSpec) and spec.stride > 1)
            if reduces and layers and not isinstance(layers[-1][1], nn.MaxPool2d):
                # the last layer at each resolution is a feature layer
                self.feature_info.append({"module": f"features.{layers[-1][0]}", "num_chs": c, "reduction": reduction})
            if isinstance(spec, PoolSpec):
                layers.append((name, nn.MaxPool2d(spec.kernel, spec.stride, ceil_mode=True)))
                self._shape_ops.append((spec.kernel, spec.stride, 0, True))
                reduction *= spec.stride
            elif isinstance(spec, ConvSpec):
                c_out = _scaled(spec.out_chans, cfg.width)
                layers.append((name, BasicConv2d(c, c_out, spec.kernel, spec.stride, spec.padding)))
                self._shape_ops.append((spec.kernel, spec.stride, spec.padding, False))
                reduction *= spec.stride
                c = c_out
            else:
                module = Inception(c, InceptionSpec(*(_scaled(w, cfg.width) for w in spec)), cfg.branch3_kernel)
                layers.append((name, module))
                c = module.out_chans
                if cfg.aux_logits and name in AUX_AFTER:
                    aux[name] = InceptionAux(c, num_classes, _scaled(128, cfg.width), _scaled(1024, cfg.width), cfg.aux_dropout)
        self.feature_info.append({"module": f"features.{layers[-1][0]}", "num_chs": c, "reduction": reduction})
        self.features = nn.Sequential(OrderedDict(layers))
        self.aux_heads = nn.ModuleDict(aux)
        self.feature_layers = [f["module"] for f in self.feature_info]
        self.num_features = c
        self.min_size = next(s for s in range(1, 4096) if self._feature_size(s) is not None)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(OrderedDict(dropout=nn.Dropout(cfg.dropout), fc=nn.Linear(c, num_classes)))
        self.classifier_modules = ("head", "aux_heads")  # both depend on the classes; transfer learning replaces them
        _init_weights(self)

    def _feature_size(self, size: int) -> int | None:
        """The side of the last feature map for an input side `size`; None if a layer gets too small."""
        for kernel, stride, padding, ceil in self._shape_ops:
            size = _out_size(size, kernel, stride, padding, ceil)
            if size < 1:
                return None
        return size

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans or min(x.shape[2:]) < self.min_size:
            raise ValueError(
                f"GoogLeNet expects input (B, {self.in_chans}, H, W) with H, W >= {self.min_size} "
                f"(smaller maps vanish in its strided conv and max-pools), got {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The stem and the modules; in training, also fills `aux_outputs` (see module docstring)."""
        self._check_input(x)
        self.aux_outputs = []
        for name, layer in self.features.named_children():
            x = layer(x)
            if self.training and name in self.aux_heads:
                self.aux_outputs.append(self.aux_heads[name](x))  # (B, num_classes)
        return x  # (B, 1024 * width, H / 32, W / 32) for the imagenet stem

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)  # (B, C)
        if pre_logits:
            return self.head.dropout(x)
        return self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def __getstate__(self) -> dict:
        # The last forward's aux logits carry its autograd graph: not part of the model, and
        # non-leaf tensors cannot be deep-copied (copy.deepcopy, EMA/SWA copies) or pickled.
        state = self.__dict__.copy()
        state["aux_outputs"] = []
        return state

    def aux_loss(
        self, y: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
    ) -> torch.Tensor:
        """The auxiliary term of the training loss for the last forward: aux_weight * loss_fn(a, y)
        summed over the aux outputs in order (after 4a, then 4d); a zero tensor when there are none
        (eval mode, or no heads). The training loop adds it once to loss_fn(logits, y)."""
        total = torch.zeros((), device=y.device)
        for a in self.aux_outputs:
            total = total + self.aux_weight * loss_fn(a, y)  # 0 + w * l1 is exactly w * l1
        return total


def _googlenet(
    num_classes: int = 1000,
    in_chans: int = 3,
    stem: str = "imagenet",
    width: float = 1.0,
    branch3_kernel: int = 3,
    aux_logits: bool = False,
    dropout: float = 0.2,
    aux_dropout: float = 0.7,
    aux_weight: float = 0.3,
) -> GoogLeNet:
    cfg = GoogLeNetConfig(
        stem=stem, width=check_multiplier("width", width), branch3_kernel=int(branch3_kernel), aux_logits=bool(aux_logits),
        dropout=float(dropout), aux_dropout=float(aux_dropout), aux_weight=float(aux_weight),
    )  # fmt: skip
    return GoogLeNet(cfg, num_classes=num_classes, in_chans=in_chans)


# --------------------------------------------------------------------------- variants

# googlenet / googlenet_aux: torchvision's counts (3 input channels, 1000 classes); the two
# aux heads add 65,792 + 2,098,176 + 1,025,000 (after 4a, 512 maps in) and 67,584 + 256 +
# 2,098,176 + 1,025,000 (after 4d, 528 in) = 6,379,984. googlenet_small (1 input channel, 10 classes): counted by the code.
VARIANTS: dict[str, Variant] = {
    "googlenet": Variant(
        "GoogLeNet / Inception v1 (torchvision: BatchNorm, 3x3 '5x5' branch), no auxiliary heads",
        num_params=6_624_904, input_size=(3, 224, 224), num_classes=1000, config=GoogLeNetConfig(),
    ),
    "googlenet_aux": Variant(
        "GoogLeNet with the two auxiliary classifiers (training only; logits in model.aux_outputs)",
        num_params=13_004_888, input_size=(3, 224, 224), num_classes=1000, config=GoogLeNetConfig(aux_logits=True),
    ),
    "googlenet_small": Variant(
        "CIFAR-style GoogLeNet for 28x28/32x32: 3x3/1 stem, Table 1's nine modules at width 0.25",
        num_params=387_962, input_size=(1, 28, 28), num_classes=10,
        config=GoogLeNetConfig(stem="cifar", width=0.25, branch3_kernel=5),
    ),
}

register_variants(_googlenet, VARIANTS, paper=PAPER)
