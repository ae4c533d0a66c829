"""AlexNet: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NIPS 2012 (now NeurIPS; the paper has no arXiv id).

The network that started the deep-learning era of computer vision: five convolutional layers
and three fully connected ones, ReLU instead of tanh, dropout in the first two FC layers,
overlapping max-pooling (3x3 windows, stride 2) and local response normalization (LRN),
trained on two GTX 580 GPUs with 3 GB each, which is why the paper's network is split in two
"towers" (Figure 2). Three variants live here.

`alexnet_paper` is the paper's two-tower network (section 3.5, Figure 2):

    input 3x227x227
    conv1 96 @ 11x11/4        -> 96x55x55   ReLU, LRN, max-pool 3/2 -> 96x27x27
    conv2 256 @ 5x5 pad 2     -> 256x27x27  groups=2, ReLU, LRN, max-pool 3/2 -> 256x13x13
    conv3 384 @ 3x3 pad 1     -> 384x13x13  ReLU (the one conv that crosses the towers)
    conv4 384 @ 3x3 pad 1     -> 384x13x13  groups=2, ReLU
    conv5 256 @ 3x3 pad 1     -> 256x13x13  groups=2, ReLU, max-pool 3/2 -> 256x6x6
    FC6 9216 -> 4096, ReLU, dropout 0.5; FC7 4096 -> 4096, ReLU, dropout 0.5; FC8 4096 -> 1000

- Two towers (section 3.2): the kernels of layer 3 take input from all kernel maps of layer
  2, those of layer 4 only from the maps of layer 3 on the same GPU (and so for 2 and 5).
  One GPU's half is a convolution group, so conv2, conv4 and conv5 are `groups=2`
  convolutions: each output map of tower A sees only tower A's half of the input maps, and
  its kernels are 48 (conv2) or 192 (conv4, conv5) maps deep, the depths the paper lists.
  conv3 and the FC layers connect across the towers.
- Input 227, not the paper's 224: with an 11x11 stride-4 conv and no padding, 55x55 (the
  paper's own conv1 size) needs (H - 11) / 4 + 1 = 55, i.e. H = 227; 224 gives 54.25. The
  size was fixed this way by Caffe's reference model; the other fix, 224 with 2 pixels of
  padding, is what torchvision's single-tower `alexnet` below does. Here 227..258 all give
  the 6x6x256 = 9,216 features that FC6 was sized for; other sizes are a ValueError (the
  paper's FC6 fixes the input size: this variant has no adaptive pool).
- LRN after conv1 and conv2 (after the ReLU, before the pool): b = a / (k + alpha * sum of
  a^2 over n adjacent maps)^beta with k=2, n=5, alpha=1e-4, beta=0.75. nn.LocalResponseNorm
  divides alpha by n (the Caffe convention), so nn.LocalResponseNorm(5, alpha=1e-4, ...) as
  used here applies the paper's formula with alpha = 2e-5, as Caffe's and torchvision-era
  ports do; pass lrn=(5, 5e-4, 0.75, 2.0) for the paper's formula to the letter
  (tests/test_alexnet_googlenet.py checks the convention). The sum runs over the maps of
  the same tower only, as it could on two GPUs: a map at the edge of tower A is not
  normalized by tower B's maps (`TowerLRN`).
- Initialization as in section 5: weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and
  the FC hidden layers (to give the ReLUs positive inputs early), 0 elsewhere.
Departures: no PCA colour augmentation or 10-crop testing (data/transforms matter, not the
model); one device instead of two (groups=2 computes the same function).

Parameters, with 3 input channels and 1000 classes:
    conv 2,334,080 + FC 58,631,144 = 60,965,224 (the paper's "60 million"; derived layer by
    layer in tests/test_alexnet_googlenet.py). The single-tower layout with the same widths
    would have 62,378,344: conv2, conv4 and conv5 would see all input maps, doubling their
    weights (+307,200 + 663,552 + 442,368).

`alexnet` is the single-tower variant most code uses (torchvision's, from Krizhevsky's
"One weird trick for parallelizing convolutional neural networks", arXiv:1404.5997):
64-192-384-256-256 channels, 11x11/4 conv1 with padding 2 (so 224 works), no LRN, no groups,
an adaptive average pool to 6x6 (so any input from 63x63 up works; at 224 it is the
identity), dropout *before* FC6 and FC7 (not after), PyTorch's default initialization:
61,100,840 parameters.

`alexnet_small` is a CIFAR-style AlexNet for 28x28 / 32x32 images, shaped to train on a CPU
in minutes. It keeps the five convs (a 5x5 conv2 and 3x3 conv3-5), ReLU, overlapping 3x3
stride-2 max-pools after conv1, conv2 and conv5, and the three-layer FC head with dropout;
it departs from the paper in:
- conv1 is 3x3 stride 1 (an 11x11 stride-4 conv would leave a 28x28 image 5x5 after conv1);
- the pools pad by 1, so 28 -> 14 -> 7 -> 4 and 32 -> 16 -> 8 -> 4;
- half the widths of `alexnet` (32-96-192-128-128), an adaptive average pool to 2x2 and FC
  widths 512 (4096-wide FC layers would be 8M parameters on their own);
- no LRN; BatchNorm-free like the paper, but with He initialization for the convs (and
  N(0, 0.01) for the FC layers, zero biases) instead of the paper's N(0, 0.01) everywhere
  with biases of 1, the usual start for a plain ReLU net trained from scratch.
About 1.14M parameters and 42M multiply-adds for a 1x28x28 image (55M for 3x32x32).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.models.options import check_multiplier, check_size
from deepnotes.registry import Variant, register_variants

PAPER = (
    'Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep Convolutional Neural Networks", '
    "NIPS 2012"
)
PAPER_ONE_WEIRD_TRICK = (
    'Krizhevsky 2014, "One weird trick for parallelizing convolutional neural networks", arXiv:1404.5997 '
    "(single-tower AlexNet as in torchvision); " + PAPER
)

# --------------------------------------------------------------------------- helpers


class ConvSpec(NamedTuple):
    """One conv layer of the feature extractor and what follows its ReLU."""

    out_chans: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1  # 2: the paper's two towers (each half sees only its own half of the input)
    lrn: bool = False  # local response normalization after the ReLU
    pool: bool = False  # overlapping max-pool after the ReLU (and LRN)


def _scaled(channels: int, width: float) -> int:
    """A width times the multiplier, at least 8 and rounded to a multiple of 8."""
    return max(8, round(channels * width / 8) * 8) if width != 1.0 else channels


def _init_weights(model: nn.Module, scheme: str) -> None:
    """'torch': PyTorch's defaults (torchvision); 'paper': section 5; 'kaiming': He for convs."""
    if scheme == "torch":
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "kaiming" and isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    if scheme == "paper":
        # "We initialized the neuron biases in the second, fourth, and fifth convolutional
        # layers, as well as in the fully-connected hidden layers, with the constant 1."
        f = model.features
        for block in (f.conv2, f.conv4, f.conv5):
            nn.init.ones_(block.conv.bias)
        nn.init.ones_(model.head.fc6.bias)
        nn.init.ones_(model.head.fc7.bias)


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


# --------------------------------------------------------------------------- blocks


class TowerLRN(nn.Module):
    """Local response normalization within each tower's own maps.

    b_c = a_c / (k + alpha / size * sum_{c' near c} a_c'^2) ** beta, the sum over `size`
    adjacent maps of the same tower (PyTorch's convention: alpha is divided by size). With
    towers=1 this is nn.LocalResponseNorm.
    """

    def __init__(self, size: int, alpha: float, beta: float, k: float, towers: int = 1):
        super().__init__()
        self.size, self.alpha, self.beta, self.k, self.towers = size, alpha, beta, k, towers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b * self.towers, c // self.towers, h, w)  # (B * towers, C / towers, H, W)
        x = F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        return x.reshape(b, c, h, w)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, towers={self.towers}"


def conv_block(in_chans: int, spec: ConvSpec, pool: tuple[int, int, int], lrn: tuple[int, float, float, float]) -> nn.Sequential:
    """conv -> ReLU [-> LRN] [-> max-pool]; output (B, spec.out_chans, H', W')."""
    layers: list[tuple[str, nn.Module]] = [
        ("conv", nn.Conv2d(in_chans, spec.out_chans, spec.kernel, spec.stride, spec.padding, groups=spec.groups)),
        ("relu", nn.ReLU(inplace=True)),
    ]
    if spec.lrn:
        layers.append(("lrn", TowerLRN(*lrn, towers=spec.groups)))
    if spec.pool:
        layers.append(("pool", nn.MaxPool2d(pool[0], pool[1], pool[2])))
    return nn.Sequential(OrderedDict(layers))


def fc_head(in_features: int, num_classes: int, hidden: int, dropout: float, dropout_first: bool) -> nn.Sequential:
    """FC6 -> ReLU -> FC7 -> ReLU -> FC8 with dropout before (torchvision) or after (paper) FC6/FC7."""
    layers: list[tuple[str, nn.Module]] = []
    for i, (fan_in, fan_out) in zip((6, 7), ((in_features, hidden), (hidden, hidden))):
        fc = [(f"fc{i}", nn.Linear(fan_in, fan_out)), (f"relu{i}", nn.ReLU(inplace=True))]
        drop = (f"drop{i}", nn.Dropout(dropout))
        layers += [drop, *fc] if dropout_first else [*fc, drop]
    layers.append(("fc8", nn.Linear(hidden, num_classes)))
    return nn.Sequential(OrderedDict(layers))


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class AlexNetConfig:
    """One AlexNet variant: the conv layers as data, then how the head reads them."""

    convs: tuple[ConvSpec, ...]
    pool: tuple[int, int, int] = (3, 2, 0)  # max-pool (kernel, stride, padding): overlapping 3/2
    lrn: tuple[int, float, float, float] = (5, 1e-4, 0.75, 2.0)  # (size n, alpha, beta, k)
    pool_size: int = 6  # FC6 reads C x pool_size x pool_size features
    adaptive_pool: bool = True  # False: the features must come out pool_size x pool_size (paper)
    fc_width: int = 4096
    dropout: float = 0.5
    dropout_first: bool = True  # torchvision: dropout before FC6 and FC7; paper: after them
    width: float = 1.0  # multiplier of every conv width
    init: str = "torch"  # "torch" (PyTorch defaults) | "paper" (section 5) | "kaiming"


class AlexNet(nn.Module):
    """Five conv blocks (features.conv1..conv5) and an FC head; see the module docstring.

    `feature_layers` names the conv block outputs (CAM targets, backbone reuse) and
    `feature_info` gives their channels and reduction (as timm's feature_info).
    """

    def __init__(self, cfg: AlexNetConfig, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        if cfg.init not in ("torch", "paper", "kaiming"):
            raise ValueError(f"unknown AlexNet init {cfg.init!r}; choose 'torch', 'paper' or 'kaiming'")
        if len(cfg.convs) != 5 and cfg.init == "paper":
            raise ValueError("init='paper' sets the biases of conv2, conv4 and conv5, so it needs five convs")
        self.cfg, self.num_classes, self.in_chans = cfg, num_classes, in_chans
        blocks, c, reduction, self.feature_info = [], in_chans, 1, []
        self._shape_ops: list[tuple[int, int, int]] = []  # (kernel, stride, padding) of each conv and pool
        for i, spec in enumerate(cfg.convs, start=1):
            spec = ConvSpec(*spec)
            spec = spec._replace(out_chans=_scaled(spec.out_chans, cfg.width))
            if c % spec.groups or spec.out_chans % spec.groups:
                raise ValueError(f"conv{i}: {c} -> {spec.out_chans} channels do not split into {spec.groups} groups")
            blocks.append((f"conv{i}", conv_block(c, spec, cfg.pool, cfg.lrn)))
            self._shape_ops.append((spec.kernel, spec.stride, spec.padding))
            reduction *= spec.stride
            if spec.pool:
                self._shape_ops.append(tuple(cfg.pool))
                reduction *= cfg.pool[1]
            c = spec.out_chans
            self.feature_info.append({"module": f"features.conv{i}", "num_chs": c, "reduction": reduction})
        self.features = nn.Sequential(OrderedDict(blocks))
        self.feature_layers = [f["module"] for f in self.feature_info]
        self.num_features = c
        self.min_size = next(s for s in range(1, 4096) if self._feature_size(s) is not None)
        if cfg.adaptive_pool:
            self.pool = nn.AdaptiveAvgPool2d(cfg.pool_size)
            self.valid_sizes = None
        else:
            self.pool = nn.Identity()
            self.valid_sizes = [s for s in range(1, 1024) if self._feature_size(s) == cfg.pool_size]
        self.head = fc_head(c * cfg.pool_size**2, num_classes, cfg.fc_width, cfg.dropout, cfg.dropout_first)
        self.classifier_modules = ("head",)  # FC6-FC8; transfer learning replaces them
        _init_weights(self, cfg.init)

    def _feature_size(self, size: int) -> int | None:
        """The side of the last feature map for an input side `size`; None if a layer gets too small."""
        for kernel, stride, padding in self._shape_ops:
            if size + 2 * padding < kernel:
                return None
            size = _out_size(size, kernel, stride, padding)
        return size

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"AlexNet expects input (B, {self.in_chans}, H, W), got {tuple(x.shape)}")
        if self.valid_sizes is not None and not all(s in self.valid_sizes for s in x.shape[2:]):
            lo, hi = self.valid_sizes[0], self.valid_sizes[-1]
            p = self.cfg.pool_size
            raise ValueError(
                f"this AlexNet has no adaptive pool: FC6 reads {self.num_features}x{p}x{p} features, which "
                f"inputs of {lo}..{hi} pixels give (the paper's 227 = 4 * 54 + 11); got {tuple(x.shape)}"
            )
        if min(x.shape[2:]) < self.min_size:
            raise ValueError(
                f"AlexNet expects input (B, {self.in_chans}, H, W) with H, W >= {self.min_size} "
                f"(smaller maps vanish in its strided conv and max-pools), got {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.features(x)  # (B, C, H', W'), 6x6 for the paper's 227x227

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)  # (B, C * pool_size**2)
        if pre_logits:
            return self.head[:-1](x)
        return self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _alexnet(
    num_classes: int = 1000,
    in_chans: int = 3,
    convs: Sequence[Sequence] = (),
    pool: Sequence[int] = (3, 2, 0),
    lrn: Sequence[float] = (5, 1e-4, 0.75, 2.0),
    pool_size: int = 6,
    adaptive_pool: bool = True,
    fc_width: int = 4096,
    dropout: float = 0.5,
    dropout_first: bool = True,
    width: float = 1.0,
    init: str = "torch",
) -> AlexNet:
    cfg = AlexNetConfig(
        convs=tuple(ConvSpec(*c) for c in (convs or _SINGLE_TOWER)), pool=tuple(int(p) for p in pool),
        lrn=(int(lrn[0]), float(lrn[1]), float(lrn[2]), float(lrn[3])), pool_size=check_size("pool_size", pool_size),
        adaptive_pool=adaptive_pool, fc_width=check_size("fc_width", fc_width), dropout=float(dropout), dropout_first=dropout_first,
        width=check_multiplier("width", width), init=init,
    )  # fmt: skip
    return AlexNet(cfg, num_classes=num_classes, in_chans=in_chans)


# --------------------------------------------------------------------------- variants

# ConvSpec(out_chans, kernel, stride, padding, groups, lrn, pool)
_SINGLE_TOWER = (
    ConvSpec(64, 11, 4, 2, pool=True),
    ConvSpec(192, 5, 1, 2, pool=True),
    ConvSpec(384, 3, 1, 1),
    ConvSpec(256, 3, 1, 1),
    ConvSpec(256, 3, 1, 1, pool=True),
)
_TWO_TOWER = (
    ConvSpec(96, 11, 4, 0, lrn=True, pool=True),
    ConvSpec(256, 5, 1, 2, groups=2, lrn=True, pool=True),
    ConvSpec(384, 3, 1, 1),  # crosses the towers
    ConvSpec(384, 3, 1, 1, groups=2),
    ConvSpec(256, 3, 1, 1, groups=2, pool=True),
)
_SMALL = (
    ConvSpec(32, 3, 1, 1, pool=True),
    ConvSpec(96, 5, 1, 2, pool=True),
    ConvSpec(192, 3, 1, 1),
    ConvSpec(128, 3, 1, 1),
    ConvSpec(128, 3, 1, 1, pool=True),
)

# alexnet: torchvision's published count. alexnet_paper: derived layer by layer in the tests.
# alexnet_small (1 input channel, 10 classes): convs 320 + 76,896 + 166,080 + 221,312 +
# 147,584 = 612,192; FC 128*2*2 -> 512 -> 512 -> 10: 262,656 + 262,656 + 5,130 = 530,442;
# 1,142,634 in all.
VARIANTS: dict[str, Variant] = {
    "alexnet": Variant(
        "AlexNet, single tower (torchvision): 5 convs 64-192-384-256-256 + FC 4096-4096",
        num_params=61_100_840, input_size=(3, 224, 224), num_classes=1000, config=AlexNetConfig(_SINGLE_TOWER),
        paper=PAPER_ONE_WEIRD_TRICK,
    ),
    "alexnet_paper": Variant(
        "AlexNet as in the 2012 paper: two towers (grouped conv2/4/5), LRN, 96-256-384-384-256, 227x227",
        num_params=60_965_224, input_size=(3, 227, 227), num_classes=1000,
        config=AlexNetConfig(_TWO_TOWER, adaptive_pool=False, dropout_first=False, init="paper"),
        fixed_input_size=True,  # no adaptive pool: FC6 fixes the input size
    ),
    "alexnet_small": Variant(
        "CIFAR-style AlexNet for 28x28/32x32: 3x3/1 conv1, 32-96-192-128-128, FC 512-512",
        num_params=1_142_634, input_size=(1, 28, 28), num_classes=10,
        config=AlexNetConfig(_SMALL, pool=(3, 2, 1), pool_size=2, fc_width=512, init="kaiming"),
    ),
}

register_variants(_alexnet, VARIANTS, paper=PAPER)
