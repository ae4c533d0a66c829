"""VGG (Simonyan & Zisserman 2014): published parameter counts, the small form's shapes,
gradients and input checks."""

import pytest
import torch

from deepnotes.errors import UserError
from deepnotes.models import create_model, get_model_entry
from deepnotes.models.vgg import VARIANTS, VGG


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# torchvision's published counts (3 input channels, 1000 classes)
PUBLISHED = {
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name):
    # Built on the meta device: the structure (hence the count) is real, no memory is used.
    with torch.device("meta"):
        model = create_model(name)
    assert n_params(model) == PUBLISHED[name] == get_model_entry(name).num_params
    assert VARIANTS[name].num_params == PUBLISHED[name]


def test_vgg16_layer_structure_follows_table_1():
    """Configuration D: 13 convs in stages of 2-2-3-3-3, widths 64..512, 3 FC layers."""
    with torch.device("meta"):
        model = create_model("vgg16")
    convs = [m for m in model.features.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1) for c in convs)
    assert [len([m for m in s if isinstance(m, torch.nn.Conv2d)]) for s in model.features] == [2, 2, 3, 3, 3]
    fcs = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(25088, 4096), (4096, 4096), (4096, 1000)]


def test_vgg11_feature_shapes_at_small_input():
    """Five stages halve 32x32 down to 1x1; the 7x7 adaptive pool still feeds the FC head."""
    torch.manual_seed(0)
    model = create_model("vgg11", num_classes=5, width=0.125).eval()  # 64 channels at the end
    feats = model.forward_features(torch.randn(1, 3, 32, 32))
    assert feats.shape == (1, 64, 1, 1)
    assert model.forward_head(feats).shape == (1, 5)
    assert model.feature_layers == [f"features.stage{i}" for i in range(1, 6)]
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]


@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 3, 32, 32)])
def test_small_forward_shapes(shape):
    torch.manual_seed(0)
    model = create_model("vgg_small", in_chans=shape[1])
    out = model(torch.randn(shape))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    size = shape[-1] // 8  # three max-pools; the last stage keeps its size for the GAP head
    assert model.forward_features(torch.randn(shape)).shape == (2, 256, size, size)


def test_small_parameter_count_and_feature_layers():
    model = create_model("vgg_small")
    assert n_params(model) == get_model_entry("vgg_small").num_params == 390_890
    assert model.feature_layers == [f"features.stage{i}" for i in range(1, 5)]
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 8]
    for name in model.feature_layers:  # the names resolve to real modules (CAM targets)
        assert isinstance(model.get_submodule(name), torch.nn.Sequential)


def test_small_options():
    model = create_model("vgg_small", num_classes=7, width=0.5, stages=[[16], [32], [64], [128]])
    assert [f["num_chs"] for f in model.feature_info] == [8, 16, 32, 64]
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 7)
    wide = create_model("vgg_small", width=2.0)
    assert wide.num_features == 512
    pooled = create_model("vgg_small", pool_last=True)  # every stage ends with its max-pool
    assert pooled.forward_features(torch.randn(2, 1, 28, 28)).shape == (2, 256, 1, 1)


def test_small_pool_before_norm_matches_the_usual_order_at_init():
    """Max-pool commutes with ReLU; with BN in eval mode at its initial identity statistics,
    conv -> pool -> BN -> ReLU equals conv -> BN -> ReLU -> pool exactly."""
    torch.manual_seed(0)
    fast = create_model("vgg_small").eval()
    torch.manual_seed(0)
    usual = create_model("vgg_small", pool_before_norm=False).eval()
    usual.load_state_dict(fast.state_dict())
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(fast(x), usual(x))


def test_small_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = create_model("vgg_small", num_classes=3)
    model(torch.randn(4, 1, 28, 28)).logsumexp(1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_small_channels_last_gives_the_same_output():
    torch.manual_seed(0)
    model = create_model("vgg_small").eval()
    x = torch.randn(2, 1, 28, 28)
    ref = model(x)
    model = model.to(memory_format=torch.channels_last)
    out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "shape, match",
    [
        ((1, 28, 28), r"\(B, 1, H, W\)"),  # no batch dimension
        ((2, 3, 28, 28), r"\(B, 1, H, W\)"),  # wrong channel count
        ((2, 1, 4, 4), "H, W >= 8"),  # too small for three halvings
    ],
)
def test_small_rejects_wrong_input(shape, match):
    model = create_model("vgg_small")
    with pytest.raises(ValueError, match=match):
        model(torch.randn(shape))


def test_full_vgg_rejects_too_small_input():
    with torch.device("meta"):
        model = create_model("vgg11")
    with pytest.raises(ValueError, match=r"H, W >= 32"):
        model(torch.randn(1, 3, 28, 28, device="meta"))


def test_config_errors_are_clear():
    """Bad options reach the user as one line (create_model turns the builder's ValueError into a UserError)."""
    with pytest.raises(UserError, match="needs batch_norm"):
        create_model("vgg_small", batch_norm=False)
    with pytest.raises(UserError, match="unknown VGG head"):
        create_model("vgg_small", head="mlp")
    assert isinstance(create_model("vgg_small"), VGG)
