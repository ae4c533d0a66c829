"""FCN: Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation",
CVPR 2015, arXiv:1411.4038.

The paper's three ideas, each here as code:

1. Convolutionalization (section 3.1, lab claim C25). A fully connected layer that reads a
   C x h x w feature map is a convolution with a full-size h x w kernel (its weight matrix
   reshaped to (out, C, h, w)); later FC layers are 1x1 convolutions. The classifier then
   computes exactly the same numbers on its own input size and, on a larger input, slides
   over it and returns a map of class scores, one per window, in one pass.
   `convolutionalize(classifier)` does this to a registered classifier (VGG with its FC head,
   LeNet-5, the MLP).
2. Upsampling by a transposed convolution ("deconvolution", backwards strided convolution,
   section 3.3) initialized to bilinear interpolation. `bilinear_kernel` is the paper's
   initialization; with kernel 2f - f % 2, stride f and padding f // 2 the result equals
   F.interpolate(scale_factor=f, mode="bilinear", align_corners=False) except in the outer
   f // 2 rows and columns, where the transposed convolution sees zeros beyond the border and
   interpolate repeats the edge. It does not restore what pooling threw away: it only
   interpolates (learning can sharpen it).
3. Skip fusion (section 4.2): the stride-32 class scores are coarse; FCN-16s adds scores
   from pool4 (a 1x1 conv, zero-initialized so training starts from the FCN-32s output) to
   the 2x upsampled stride-32 scores, FCN-8s adds pool3 likewise, then one fixed bilinear
   upsampling (x32, x16 or x8) goes back to the input size.

    FCN-32s: pool5 -> fc6 -> fc7 -> score_fr ---------------------------------> x32
    FCN-16s: score_fr -> x2 (learned) + score_pool4(pool4) -------------------> x16
    FCN-8s:  (... x2 (learned) + score_pool4) -> x2 (learned) + score_pool3 ---> x8

The registered fcn32s_small / fcn16s_small / fcn8s_small are these heads on a small VGG-like
backbone for the 64x64 scenes (deepnotes.data.scenes). Departures from the paper:
- the backbone: five VGG stages (3x3 convs, each stage ending in a 2x2 max-pool, so pool3,
  pool4, pool5 are at strides 8, 16, 32 as in VGG-16) but widths 16-32-64-128-128 (one conv
  in the first two stages, two in the others; VGG-16 has 64 to 512 and 2-2-3-3-3 convs), with
  BatchNorm (no conv biases), trained from scratch (the paper fine-tunes ImageNet VGG-16);
- fc6 is a 3x3 conv to 256 channels with padding 1 (VGG-16's fc6 becomes a 7x7 conv to 4096;
  at 64x64 pool5 is 2x2), fc7 a 1x1 conv to 256, both with BatchNorm, no dropout (the paper
  keeps VGG's dropout 0.5);
- "same" padding everywhere, so sides that are multiples of 32 map exactly onto the input
  grid; the paper pads the input by 100 pixels and crops each fused map (its "crop layers")
  so that any size works;
- the score layer on fc7 is He-initialized (the paper zero-initializes it when fine-tuning
  from a pretrained classifier; from scratch that would leave the backbone without gradient
  at the first step); score_pool4 / score_pool3 are zero-initialized as in the paper;
- the paper trains FCN-16s starting from a trained FCN-32s (and 8s from 16s); the module names
  are shared, so `fcn16.load_state_dict(fcn32.state_dict(), strict=False)` does that here.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.models.options import check_size, check_sizes
from deepnotes.models.vgg import vgg_stage
from deepnotes.registry import Variant, register_variants

PAPER = 'Long, Shelhamer & Darrell 2015, "Fully Convolutional Networks for Semantic Segmentation", arXiv:1411.4038'

# --------------------------------------------------------------------------- convolutionalization


def _leaves(module: nn.Module) -> list[nn.Module]:
    """The modules of a model in forward order, nn.Sequential containers opened recursively."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _leaves(child)]
    return [module]


def _forward_order(classifier: nn.Module) -> list[nn.Module]:
    if isinstance(classifier, nn.Sequential):
        return _leaves(classifier)
    if not (hasattr(classifier, "features") and hasattr(classifier, "head")):
        raise ValueError(
            f"convolutionalize needs an nn.Sequential or a model computing head(pool(features(x))) with `features` "
            f"and `head` attributes (the deepnotes convention); {type(classifier).__name__} has neither"
        )
    pool = getattr(classifier, "pool", None)
    return [*_leaves(classifier.features), *([pool] if pool is not None else []), *_leaves(classifier.head)]


def convolutionalize(
    classifier: nn.Module,
    input_size: Sequence[int] | None = None,
    *,
    check: bool = True,
    atol: float = 1e-5,
) -> nn.Sequential:
    """The classifier with its fully connected layers turned into convolutions (FCN section 3.1).

    The classifier must compute, in order, convolutional `features`, an optional `pool`, then a
    `head` of Linear layers and elementwise layers (ReLU, dropout, ...), flattening before the
    first Linear (deepnotes' VGG, AlexNet, LeNet-5 and MLP do). `input_size` (C, H, W) is the
    size it was built for (default: the model's own `in_chans` and `img_size` when it has them).
    At that size the first Linear reads a (C', h, w) map and becomes Conv2d(C', out, (h, w))
    with weight.view(out, C', h, w) (nn.Flatten's C-major order); every later Linear becomes a
    1x1 conv. Flatten layers are dropped, and so is an adaptive pool that is the identity at
    that size (VGG's pool to 7x7 at 224x224); a pool that changes the size is a ValueError.

    Returns nn.Sequential(features=..., head=...) on copies of the layers (the classifier is not
    changed), in the classifier's train/eval mode. Its output is (B, classes, H', W'): at the
    original size (B, classes, 1, 1), the classifier's output; on a larger input, the score of
    every window, with the network's stride. check=True runs both on a random input of the
    original size (in eval mode) and raises ValueError unless they agree within atol (absolute)
    and 1e-4 (relative): the same sums in another order (conv vs matmul) round differently.
    """
    if input_size is None:
        img_size = getattr(classifier, "img_size", None)
        in_chans = getattr(classifier, "in_chans", None)
        if img_size is None or in_chans is None:
            raise ValueError(
                f"{type(classifier).__name__} does not say its input size: pass input_size=(C, H, W), "
                "the size its fully connected head was built for"
            )
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        input_size = (in_chans, *img_size)
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) != 3:
        raise ValueError(f"input_size must be (C, H, W), got {input_size}")

    layers = [copy.deepcopy(m) for m in _forward_order(classifier)]
    first = next((i for i, m in enumerate(layers) if isinstance(m, nn.Linear)), None)
    if first is None:
        raise ValueError(f"{type(classifier).__name__} has no nn.Linear layer to convolutionalize")

    features: list[nn.Module] = []
    x = torch.zeros(1, *input_size)
    with torch.no_grad():
        for m in layers[:first]:
            if isinstance(m, nn.Flatten):
                continue
            was = m.training
            y = m.eval()(x)
            m.train(was)
            if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
                if y.shape != x.shape:
                    raise ValueError(
                        f"{m} turns the {tuple(x.shape[2:])} feature map into {tuple(y.shape[2:])} at input size {input_size}: "
                        f"convolutionalize at an input size where it is the identity"
                    )
                continue
            features.append(m)
            x = y
    if x.ndim != 4:
        raise ValueError(f"the layers before the first Linear give shape {tuple(x.shape)}, not a (B, C, h, w) feature map")
    _, c, h, w = x.shape

    head: list[nn.Module] = []
    for m in layers[first:]:
        if isinstance(m, nn.Linear):
            k = (h, w) if not head else (1, 1)
            fan_in = c * k[0] * k[1]
            if m.in_features != fan_in:
                raise ValueError(f"{m} reads {m.in_features} features but gets {c} x {k[0]} x {k[1]} = {fan_in} here")
            conv = nn.Conv2d(c, m.out_features, k, bias=m.bias is not None)
            with torch.no_grad():
                conv.weight.copy_(m.weight.view(m.out_features, c, *k))
                if m.bias is not None:
                    conv.bias.copy_(m.bias)
            head.append(conv)
            c = m.out_features
        elif isinstance(m, nn.Flatten):
            continue
        elif any(True for _ in m.parameters()):
            raise ValueError(f"convolutionalize handles Linear and parameter-free elementwise layers in the head, not {m}")
        else:
            head.append(m)  # ReLU, dropout, ...: elementwise, so the same on a map
    fcn = nn.Sequential(OrderedDict(features=nn.Sequential(*features), head=nn.Sequential(*head)))
    fcn.train(classifier.training)
    if check:
        _check_same(classifier, fcn, input_size, atol)
    return fcn


def _check_same(classifier: nn.Module, fcn: nn.Module, input_size: tuple[int, ...], atol: float) -> None:
    modes = classifier.training, fcn.training
    classifier.eval(), fcn.eval()
    try:
        with torch.no_grad():
            x = torch.randn(2, *input_size, generator=torch.Generator().manual_seed(0))
            want, got = classifier(x), fcn(x)
    finally:
        classifier.train(modes[0]), fcn.train(modes[1])
    if got.shape[2:] != (1, 1) or not torch.allclose(got.flatten(1), want, rtol=1e-4, atol=atol):
        raise ValueError(
            f"the convolutionalized {type(classifier).__name__} does not reproduce it (output {tuple(got.shape)}): its "
            "forward is not features -> pool -> flatten -> head"
        )


# --------------------------------------------------------------------------- upsampling


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """The FCN initialization of an x`factor` transposed conv: (channels, channels, k, k) with
    k = 2 * factor - factor % 2, each channel mapped to itself by the bilinear filter
    (1 - |i - center| / factor) (1 - |j - center| / factor), and zero across channels."""
    if factor < 1:
        raise ValueError(f"upsampling factor must be >= 1, got {factor}")
    k = 2 * factor - factor % 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = torch.arange(k, dtype=torch.float64)
    filt = 1 - (og - center).abs() / factor
    weight = torch.zeros(channels, channels, k, k, dtype=torch.float64)
    weight[range(channels), range(channels)] = torch.outer(filt, filt)
    return weight.float()


def bilinear_upsampling(channels: int, factor: int, bias: bool = False) -> nn.ConvTranspose2d:
    """A learnable x`factor` transposed conv initialized to bilinear interpolation (FCN's upscore):
    kernel 2f - f % 2, stride f, padding f // 2, so an h x w map becomes exactly fh x fw."""
    k = 2 * factor - factor % 2
    up = nn.ConvTranspose2d(channels, channels, k, stride=factor, padding=factor // 2, bias=bias)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, factor))
        if bias:
            up.bias.zero_()
    return up


class BilinearUpsample(nn.Module):
    """Fixed x`factor` bilinear upsampling as a transposed conv (FCN's final upsampling, not learned).

    The kernel is a buffer, not a parameter, and each channel is upsampled on its own (a
    depthwise transposed conv): the same numbers as bilinear_upsampling's cross-channel kernel,
    whose off-diagonal blocks are zero, at 1/channels of the cost.
    """

    def __init__(self, channels: int, factor: int):
        super().__init__()
        self.channels, self.factor = channels, factor
        k = 2 * factor - factor % 2
        self.register_buffer("weight", bilinear_kernel(1, factor).expand(channels, 1, k, k).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.weight, stride=self.factor, padding=self.factor // 2, groups=self.channels)

    def extra_repr(self) -> str:
        return f"{self.channels}, factor={self.factor}"


# --------------------------------------------------------------------------- model


class FCN(nn.Module):
    """A VGG-like backbone (five pooled stages), fc6/fc7 as convs, class scores, and skip fusion.

    skip = 32, 16 or 8 (FCN-32s / 16s / 8s). forward(x) -> logits (B, num_classes, H, W) for
    inputs whose sides are multiples of 32.
    """

    def __init__(
        self,
        num_classes: int = 11,
        in_chans: int = 1,
        skip: int = 8,
        stages: Sequence[Sequence[int]] = ((16,), (32,), (64, 64), (128, 128), (128, 128)),
        fc_width: int = 256,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if skip not in (32, 16, 8):
            raise ValueError(f"FCN skip must be 32, 16 or 8 (FCN-32s / 16s / 8s), got {skip!r}")
        if len(stages) != 5:
            raise ValueError(f"the FCN backbone needs 5 pooled stages (pool3/4/5 at strides 8/16/32), got {len(stages)}")
        self.num_classes, self.in_chans, self.skip = num_classes, in_chans, skip
        blocks, c, self.feature_info = [], in_chans, []
        for i, widths in enumerate(stages, start=1):
            widths = [int(w) for w in widths]
            blocks.append((f"stage{i}", vgg_stage(c, widths, batch_norm=batch_norm, conv_bias=not batch_norm)))
            c = widths[-1]
            self.feature_info.append({"module": f"features.stage{i}", "num_chs": c, "reduction": 2**i})
        self.features = nn.Sequential(OrderedDict(blocks))
        pool3_chans, pool4_chans = self.feature_info[2]["num_chs"], self.feature_info[3]["num_chs"]

        def conv_bn_relu(cin: int, cout: int, k: int) -> list[tuple[str, nn.Module]]:
            layers = [("conv", nn.Conv2d(cin, cout, k, padding=k // 2, bias=not batch_norm))]
            layers += [("bn", nn.BatchNorm2d(cout))] if batch_norm else []
            layers += [("relu", nn.ReLU(inplace=True))]
            layers += [("drop", nn.Dropout(dropout))] if dropout else []
            return layers

        self.fc6 = nn.Sequential(OrderedDict(conv_bn_relu(c, fc_width, 3)))
        self.fc7 = nn.Sequential(OrderedDict(conv_bn_relu(fc_width, fc_width, 1)))
        self.score_fr = nn.Conv2d(fc_width, num_classes, 1)
        self.num_features = fc_width
        self.feature_info.append({"module": "fc7", "num_chs": fc_width, "reduction": 32})
        self.feature_layers = [f["module"] for f in self.feature_info]
        _init_weights(self)
        if skip <= 16:
            self.upscore2 = bilinear_upsampling(num_classes, 2)
            self.score_pool4 = _zero_conv(pool4_chans, num_classes)
        if skip == 8:
            self.upscore_pool4 = bilinear_upsampling(num_classes, 2)
            self.score_pool3 = _zero_conv(pool3_chans, num_classes)
        self.upscore = BilinearUpsample(num_classes, skip)
        # Every module whose shape depends on the classes (transfer learning replaces them).
        heads = ("score_fr", "upscore2", "score_pool4", "upscore_pool4", "score_pool3", "upscore")
        self.classifier_modules = tuple(n for n in heads if hasattr(self, n))

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans or any(s % 32 or s == 0 for s in x.shape[2:]):
            raise ValueError(
                f"FCN expects input (B, {self.in_chans}, H, W) with H and W multiples of 32 (five 2x2 pools; "
                f"e.g. 64x64), got {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pool3, pool4, fc7) maps, at strides 8, 16 and 32."""
        self._check_input(x)
        f = self.features
        pool3 = f.stage3(f.stage2(f.stage1(x)))
        pool4 = f.stage4(pool3)
        return pool3, pool4, self.fc7(self.fc6(f.stage5(pool4)))

    def forward_head(self, feats: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        pool3, pool4, fc7 = feats
        score = self.score_fr(fc7)  # stride 32
        if self.skip <= 16:
            score = self.upscore2(score) + self.score_pool4(pool4)  # stride 16
        if self.skip == 8:
            score = self.upscore_pool4(score) + self.score_pool3(pool3)  # stride 8
        return self.upscore(score)  # (B, num_classes, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _zero_conv(in_chans: int, num_classes: int) -> nn.Conv2d:
    # Zero-initialized, as in the paper: the fused net starts as the coarser one.
    conv = nn.Conv2d(in_chans, num_classes, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _fcn(
    num_classes: int = 11,
    in_chans: int = 1,
    skip: int = 8,
    stages: Sequence[Sequence[int]] = ((16,), (32,), (64, 64), (128, 128), (128, 128)),
    fc_width: int = 256,
    batch_norm: bool = True,
    dropout: float = 0.0,
) -> FCN:
    stages = tuple(check_sizes(f"stages[{i}]", s) for i, s in enumerate(stages))
    return FCN(num_classes, in_chans, int(skip), stages, check_size("fc_width", fc_width), batch_norm, float(dropout))


# --------------------------------------------------------------------------- variants

# 1 input channel, 11 classes. Backbone (no conv biases, BN 2 * width each): 144 + 32 |
# 4,608 + 64 | 18,432 + 36,864 + 256 | 73,728 + 147,456 + 512 | 147,456 + 147,456 + 512 = 577,520;
# fc6 294,912 + 512; fc7 65,536 + 512; score_fr 2,827: FCN-32s 941,819 (the fixed x32 kernel is a
# buffer, not a parameter). FCN-16s adds upscore2 11 * 11 * 16 = 1,936 and score_pool4 1,419:
# 945,174. FCN-8s adds upscore_pool4 1,936 and score_pool3 715: 947,825.
VARIANTS: dict[str, Variant] = {
    "fcn32s_small": Variant(
        "FCN-32s on a small VGG-like backbone for 64x64 scenes: stride-32 scores, x32 bilinear",
        num_params=941_819, input_size=(1, 64, 64), num_classes=11, task="segmentation", config=dict(skip=32),
    ),
    "fcn16s_small": Variant(
        "FCN-16s (small): stride-32 scores x2 + pool4 scores, x16 bilinear",
        num_params=945_174, input_size=(1, 64, 64), num_classes=11, task="segmentation", config=dict(skip=16),
    ),
    "fcn8s_small": Variant(
        "FCN-8s (small): + pool3 scores, x8 bilinear; the finest of the three",
        num_params=947_825, input_size=(1, 64, 64), num_classes=11, task="segmentation", config=dict(skip=8),
    ),
}

register_variants(_fcn, VARIANTS, paper=PAPER)
