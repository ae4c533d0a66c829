"""U-Net and FCN: the paper's geometry and parameter count, overlap-tile consistency,
convolutionalization against the original classifiers, bilinear transposed convolutions
against F.interpolate, skip fusion, and a few training steps on real scenes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.data import load_dataset
from deepnotes.data.scenes import generate_scenes
from deepnotes.layers.losses import segmentation_loss
from deepnotes.models import create_model, get_model_entry
from deepnotes.models.fcn import BilinearUpsample, bilinear_kernel, bilinear_upsampling, convolutionalize
from deepnotes.models.unet import ConvBlock, DecoderBlock, EncoderBlock, UNet
from deepnotes.tasks.segmentation import predict_mask


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- U-Net


def test_unet_paper_configuration_count_and_shapes():
    """31,030,658 parameters; figure 1's sizes 572 -> 568/280/136/64 -> 28 -> 52/100/196/388, run
    cheaply on the same geometry at base width 1 (the widths do not change the sizes)."""
    entry = get_model_entry("unet")
    assert entry.task == "segmentation" and entry.num_params == 31_030_658
    paper = create_model("unet")
    assert n_params(paper) == 31_030_658
    assert [e.block.conv2.out_channels for e in paper.encoders] == [64, 128, 256, 512]
    assert paper.bottom.conv2.out_channels == 1024 and paper.head.out_channels == 2
    assert [d.block.conv2.out_channels for d in paper.decoders] == [512, 256, 128, 64]
    model = create_model("unet", base_width=1)
    sizes = {}
    for name in model.feature_layers:
        model.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, o))
    with torch.no_grad():
        out = model(torch.randn(1, 1, 572, 572))
    assert out.shape == (1, 2, 388, 388) and model.output_size(572) == 388
    assert [sizes[f"encoders.{i}"][1].shape[-1] for i in range(4)] == [568, 280, 136, 64]  # (pooled, skip)
    assert sizes["bottom"].shape[-1] == 28
    assert [sizes[f"decoders.{j}"].shape[-1] for j in range(4)] == [52, 100, 196, 388]


def test_unet_parts():
    block = ConvBlock(3, 8, padding="valid")
    convs = [m for m in block if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3)] and all(c.bias is not None for c in convs)
    assert block(torch.randn(1, 3, 10, 10)).shape == (1, 8, 6, 6)
    bn = ConvBlock(3, 8, padding="same", batch_norm=True)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn) == 2 and all(c.bias is None for c in bn if isinstance(c, nn.Conv2d))
    pooled, skip = EncoderBlock(3, 8)(torch.randn(1, 3, 12, 12))
    assert pooled.shape == (1, 8, 4, 4) and skip.shape == (1, 8, 8, 8)
    dec = DecoderBlock(16, 8, 8)
    assert dec.up.kernel_size == (2, 2) and dec.up.stride == (2, 2) and dec.up.out_channels == 8
    # the skip is centre-cropped: 10x10 -> its central 8x8, then concatenated before the upsampled map
    x, skip = torch.randn(1, 16, 4, 4), torch.randn(1, 8, 10, 10)
    seen = {}
    dec.block.register_forward_pre_hook(lambda m, args: seen.__setitem__("in", args[0]))
    assert dec(x, skip).shape == (1, 8, 4, 4)
    torch.testing.assert_close(seen["in"][:, :8], skip[:, :, 1:9, 1:9], rtol=0, atol=0)
    torch.testing.assert_close(seen["in"][:, 8:], dec.up(x), rtol=0, atol=0)


def test_valid_unet_overlap_tile_consistency():
    """Valid convolutions: the output for a tile is the matching part of the output for the
    whole image when the tile starts on the 16-pixel grid (the paper's seamless tiling), and
    not when it does not (the 2x2 pools then group other pixels)."""
    torch.manual_seed(0)
    model = create_model("unet", base_width=4).eval()
    assert model.output_size(220) == 36 and model.valid_input_size(189) == 204
    x = torch.randn(1, 1, 220, 220)
    with torch.no_grad():
        whole = model(x)
        tile = model(x[..., 16 : 16 + 188, 32 : 32 + 188])
        shifted = model(x[..., 8 : 8 + 188, 32 : 32 + 188])
    assert whole.shape == (1, 2, 36, 36) and tile.shape == (1, 2, 4, 4)
    torch.testing.assert_close(tile, whole[..., 16:20, 32:36], rtol=1e-4, atol=1e-5)
    assert (shifted - whole[..., 8:12, 32:36]).abs().max() > 1e-3


def test_unet_size_errors_name_valid_sizes():
    with pytest.raises(ValueError, match="nearest valid: 188"):
        create_model("unet", base_width=2)(torch.randn(1, 1, 64, 64))
    model = create_model("unet_small")
    with pytest.raises(ValueError, match=r"multiple of 16 .* nearest valid: 48 and 64"):
        model(torch.randn(1, 1, 60, 60))
    with pytest.raises(ValueError, match="'valid'"):
        UNet(padding="full")


def test_unet_small_and_paper_init():
    model = create_model("unet_small")
    assert n_params(model) == get_model_entry("unet_small").num_params == 1_942_459
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 11, 64, 64)
    assert model(torch.randn(1, 1, 32, 48)).shape == (1, 11, 32, 48)
    # the paper's N(0, 2 / N): N = 9 * 64 inputs for the 64 -> 128 conv (73,728 weights; 2% tolerance)
    w = create_model("unet").encoders[1].block.conv1.weight
    assert abs(w.std().item() / math.sqrt(2 / (9 * 64)) - 1) < 0.02


def test_predict_mask_sigmoid_for_one_class_softmax_for_several():
    torch.manual_seed(0)
    x = torch.randn(3, 1, 32, 32)
    one = create_model("unet_small", num_classes=1, base_width=4).train()
    with torch.no_grad():
        logits = one.eval()(x)
    one.train()
    torch.testing.assert_close(predict_mask(one, x), (torch.sigmoid(logits[:, 0]) > 0.5).long(), rtol=0, atol=0)
    assert one.training  # mode restored
    many = create_model("unet_small", num_classes=5, base_width=4).eval()
    with torch.no_grad():
        probs = torch.softmax(many(x), dim=1)
    torch.testing.assert_close(predict_mask(many, x), probs.argmax(1), rtol=0, atol=0)


# --------------------------------------------------------------------------- convolutionalization


def small_vgg():
    """The registry's VGG with its paper FC head (FC-ReLU-dropout x2, FC) on a 7x7 map, as VGG-16's fc6."""
    torch.manual_seed(0)
    return create_model("vgg11", num_classes=10, in_chans=1, stages=[[8], [16]], fc_width=32).eval()


def test_convolutionalized_vgg_equals_the_classifier_and_runs_on_larger_input():
    clf = small_vgg()
    fcn = convolutionalize(clf, (1, 28, 28))
    convs = [m for m in fcn.head if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(7, 7), (1, 1), (1, 1)] and convs[0].in_channels == 16
    assert not any(isinstance(m, (nn.Linear, nn.AdaptiveAvgPool2d)) for m in fcn.modules())
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(fcn(x).flatten(1), clf(x), rtol=1e-4, atol=1e-5)
        scores = fcn(torch.randn(2, 1, 44, 44))  # 11x11 features -> 5x5 windows of 7x7
    assert scores.shape == (2, 10, 5, 5)
    assert clf.head[0].weight.shape == (32, 16 * 7 * 7)  # the classifier itself is unchanged


@pytest.mark.parametrize("name, stride", [("lenet5_relu", 4), ("lenet5", 4), ("mlp", 1)])
def test_score_map_is_the_classifier_on_every_window(name, stride):
    """No padding anywhere: score[i, j] is exactly the classifier on the window at (stride i, stride j)."""
    torch.manual_seed(0)
    clf = create_model(name).eval()
    size = clf.img_size[0]
    fcn = convolutionalize(clf)
    x = torch.randn(2, 1, size + 2 * stride, size + 2 * stride)
    with torch.no_grad():
        scores = fcn(x)
        assert scores.shape == (2, 10, 3, 3)
        for i in range(3):
            for j in range(3):
                window = x[..., stride * i : stride * i + size, stride * j : stride * j + size]
                torch.testing.assert_close(scores[..., i, j], clf(window), rtol=1e-4, atol=1e-5)


def test_convolutionalize_errors():
    clf = create_model("alexnet_small").eval()
    with pytest.raises(ValueError, match="where it is the identity"):
        convolutionalize(clf, (1, 28, 28))  # its adaptive pool takes 4x4 to 2x2 there
    fcn = convolutionalize(clf, (1, 14, 14))  # 2x2 features: the pool is the identity
    assert fcn(torch.randn(1, 1, 30, 30)).shape == (1, 10, 3, 3)
    with pytest.raises(ValueError, match="pass input_size"):
        convolutionalize(small_vgg())

    class NotSequential(nn.Module):  # its forward adds a constant that features -> head does not know about
        def __init__(self):
            super().__init__()
            self.features, self.head = nn.Conv2d(1, 2, 3), nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))

        def forward(self, x):
            return self.head(self.features(x)) + 1.0

    with pytest.raises(ValueError, match="does not reproduce"):
        convolutionalize(NotSequential(), (1, 6, 6))


# --------------------------------------------------------------------------- upsampling


def test_bilinear_kernel_hand_worked():
    k2 = bilinear_kernel(2, 2)
    assert k2.shape == (2, 2, 4, 4) and (k2[0, 1] == 0).all()
    torch.testing.assert_close(k2[0, 0], torch.outer(*(2 * [torch.tensor([0.25, 0.75, 0.75, 0.25])])))
    torch.testing.assert_close(bilinear_kernel(1, 3)[0, 0, 2], torch.tensor([1, 2, 3, 2, 1]) / 3)  # centre row: 1 * filter


@pytest.mark.parametrize("factor", [2, 3, 4, 8, 32])
def test_bilinear_transposed_conv_equals_interpolate_inside(factor):
    """Equal to F.interpolate(mode="bilinear", align_corners=False) except the outer factor // 2
    rows and columns (tolerance 1e-5); there the transposed conv fades into the zero border."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7)
    up = bilinear_upsampling(3, factor)
    assert isinstance(up, nn.ConvTranspose2d) and up.weight.requires_grad
    with torch.no_grad():
        got = up(x)
    want = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert got.shape == want.shape == (2, 3, 5 * factor, 7 * factor)
    b = factor // 2
    torch.testing.assert_close(got[..., b:-b, b:-b], want[..., b:-b, b:-b], rtol=1e-5, atol=1e-5)
    assert (got[..., 0, :] - want[..., 0, :]).abs().max() > 1e-2
    fixed = BilinearUpsample(3, factor)
    assert n_params(fixed) == 0
    torch.testing.assert_close(fixed(x), got, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- FCN-32s / 16s / 8s


def test_fcn_variants_shapes_counts_and_skips():
    counts = {"fcn32s_small": 941_819, "fcn16s_small": 945_174, "fcn8s_small": 947_825}
    torch.manual_seed(0)
    x = torch.randn(2, 1, 64, 64)
    for name, count in counts.items():
        model = create_model(name).eval()
        assert n_params(model) == count == get_model_entry(name).num_params
        assert model(x).shape == (2, 11, 64, 64)
    # the paper's staged training: a trained 32s initializes 16s, only the new layers are missing
    fcn32, fcn16 = create_model("fcn32s_small"), create_model("fcn16s_small")
    missing = fcn16.load_state_dict(fcn32.state_dict(), strict=False).missing_keys
    assert set(missing) == {"upscore2.weight", "score_pool4.weight", "score_pool4.bias"}


def test_fcn_skip_layers_start_at_zero_and_then_refine():
    """Zero-initialized score_pool4 / score_pool3: FCN-8s starts as upsampled coarse scores; once
    they are non-zero the pool3 path changes the output at stride-8 detail."""
    torch.manual_seed(0)
    model = create_model("fcn8s_small").eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        pool3, pool4, fc7 = model.forward_features(x)
        coarse = model.upscore(model.upscore_pool4(model.upscore2(model.score_fr(fc7))))
        torch.testing.assert_close(model(x), coarse, rtol=1e-5, atol=1e-5)
        nn.init.normal_(model.score_pool3.weight, std=0.1)
        assert (model(x) - coarse).abs().max() > 1e-2
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 1, 48, 48))


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def scene_batch():
    scenes = generate_scenes(load_dataset("digits"), 8, canvas=64, items_per_scene=(2, 3), seed=0, scale=3)
    x = torch.from_numpy(scenes.images).float() / 255.0
    return (x - 0.1) / 0.3, torch.from_numpy(scenes.masks).long()


@pytest.mark.parametrize("name, kwargs", [("unet_small", {"base_width": 8}), ("fcn8s_small", {})])
def test_a_few_steps_fit_real_scenes(name, kwargs, scene_batch):
    """25 SGD steps on 8 digit scenes: the pixel loss falls to under half of where it starts."""
    x, y = scene_batch
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(25):
        loss = segmentation_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::8]
