"""ResNet (He et al. 2015) and DenseNet (Huang et al. 2016): published parameter counts, the
residual identity, where shortcuts appear, plain nets, dense-block and transition shapes,
the small forms and input checks."""

import pytest
import torch
from torch import nn

from deepnotes.errors import UserError
from deepnotes.models import create_model, densenet, get_model_entry, resnet
from deepnotes.models.densenet import DenseBlock, DenseLayer, Transition
from deepnotes.models.resnet import BasicBlock, Bottleneck, PadShortcut

torch.set_num_threads(1)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def blocks(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]


# torchvision's published counts (3 input channels, 1000 classes)
PUBLISHED = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
}

# He et al. 2015, table 6: CIFAR-10 ResNets, parameters in millions as printed
PAPER_CIFAR = {"resnet20": "0.27", "resnet32": "0.46", "resnet44": "0.66", "resnet56": "0.85", "resnet110": "1.7"}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name):
    with torch.device("meta"):  # the structure (hence the count) is real, no memory is used
        model = create_model(name)
    assert n_params(model) == PUBLISHED[name] == get_model_entry(name).num_params
    family = resnet if name.startswith("resnet") else densenet
    assert family.VARIANTS[name].num_params == PUBLISHED[name]


@pytest.mark.parametrize("name", sorted(PAPER_CIFAR))
def test_cifar_resnet_counts_match_table_6(name):
    model = create_model(name)
    count = n_params(model)
    printed = PAPER_CIFAR[name]
    decimals = len(printed.split(".")[1])
    assert f"{count / 1e6:.{decimals}f}" == printed
    assert count == get_model_entry(name).num_params
    # option A (zero-pad) shortcuts have no parameters: the plain twin has the same count
    plain = name.replace("resnet", "plain")
    if plain != "plain110":
        assert n_params(create_model(plain)) == count
    # option B adds the two projections 16->32 and 32->64 (1x1 conv + BN)
    assert n_params(create_model(name, shortcut="B")) == count + (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


def test_cifar_depth_is_6n_plus_2():
    model = create_model("resnet56")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == 56  # option A: no projection convs
    assert [f["num_chs"] for f in model.feature_info] == [16, 32, 64]


@pytest.mark.parametrize("block", [BasicBlock(16, 16), Bottleneck(64, 16)])
def test_zeroed_residual_branch_is_the_identity(block):
    """With the last BN's scale (and shift) at 0, F(x) = 0 and the block returns relu(x + 0)."""
    torch.manual_seed(0)
    nn.init.zeros_(block.last_bn.weight)
    x = torch.randn(2, block.conv1.in_channels, 8, 8)
    for mode in (True, False):
        block.train(mode)
        torch.testing.assert_close(block(x), torch.relu(x))


def test_zero_init_residual_starts_every_block_at_zero():
    model = create_model("resnet50", zero_init_residual=True)
    assert all((b.last_bn.weight == 0).all() for b in blocks(model))
    model = create_model("resnet18")
    assert all((b.last_bn.weight == 1).all() for b in blocks(model))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20"])
def test_shortcut_is_not_the_identity_exactly_when_the_shape_changes(name):
    model = create_model(name).eval()
    shapes = {}
    for b in blocks(model):
        b.register_forward_hook(lambda m, i, o: shapes.__setitem__(m, (i[0].shape, o.shape)))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    changed = [b for b in blocks(model) if shapes[b][0] != shapes[b][1]]
    # one per stage change; resnet50's first block also widens 64 -> 256; CIFAR nets have 3 stages
    assert len(changed) == {"resnet18": 3, "resnet50": 4, "resnet20": 2}[name]
    for b in blocks(model):
        if b in changed:
            if name == "resnet20":  # CIFAR nets: option A, parameter-free zero padding
                assert isinstance(b.shortcut, PadShortcut)
            else:  # option B: a strided 1x1 conv + BN
                conv, bn = b.shortcut
                assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and isinstance(bn, nn.BatchNorm2d)
                assert conv.stride == b.conv1.stride if isinstance(b, BasicBlock) else conv.stride == b.conv2.stride
        else:
            assert isinstance(b.shortcut, nn.Identity)


def test_option_a_shortcut_pads_with_zeros():
    x = torch.randn(2, 4, 6, 6)
    y = PadShortcut(4, 8, stride=2)(x)
    assert y.shape == (2, 8, 3, 3)
    torch.testing.assert_close(y[:, :4], x[:, :, ::2, ::2])
    assert (y[:, 4:] == 0).all()


@pytest.mark.parametrize("name", ["plain18", "plain34", "plain20", "plain56"])
def test_plain_nets_have_no_shortcuts(name):
    model = create_model(name)
    assert blocks(model) and all(b.shortcut is None for b in blocks(model))
    assert not any(isinstance(m, (PadShortcut, nn.Identity)) for m in model.modules())
    residual = create_model(name.replace("plain", "resnet"))
    assert len(blocks(model)) == len(blocks(residual))


def test_plain_block_gradient_differs_from_residual_block():
    """Same weights, branch zeroed: d out / d x is relu'(x) through the shortcut, 0 without it."""
    torch.manual_seed(0)
    res, plain = BasicBlock(8, 8), BasicBlock(8, 8, residual=False)
    plain.load_state_dict(res.state_dict())
    for b in (res, plain):
        nn.init.zeros_(b.bn2.weight)
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    (g_res,) = torch.autograd.grad(res(x).sum(), x)
    (g_plain,) = torch.autograd.grad(plain(x).sum(), x)
    torch.testing.assert_close(g_res, (x > 0).float())
    assert (g_plain == 0).all()


def test_bottleneck_stride_on_3x3_v1_5_or_on_1x1_paper():
    with torch.device("meta"):
        v15 = create_model("resnet50")
        paper = create_model("resnet50", stride_in_1x1=True)
    first = v15.features.layer2[0]
    assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)
    first = paper.features.layer2[0]
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)
    assert n_params(v15) == n_params(paper)


@pytest.mark.parametrize(
    "name, chans, reductions",
    [
        ("resnet18", [64, 128, 256, 512], [4, 8, 16, 32]),
        ("resnet50", [256, 512, 1024, 2048], [4, 8, 16, 32]),
        ("resnet20", [16, 32, 64], [1, 2, 4]),
        ("densenet121", [256, 512, 1024, 1024], [4, 8, 16, 32]),
        ("densenet_small", [96, 120, 132], [1, 2, 4]),
    ],
)
def test_feature_info(name, chans, reductions):
    with torch.device("meta"):
        model = create_model(name)
    assert [f["num_chs"] for f in model.feature_info] == chans
    assert [f["reduction"] for f in model.feature_info] == reductions
    assert model.feature_layers == [f["module"] for f in model.feature_info]
    for layer in model.feature_layers:  # the names resolve to real modules (CAM targets)
        model.get_submodule(layer)


def test_forward_features_shapes_and_width_multiplier():
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=5, width=0.25).eval()
    x = torch.randn(1, 3, 64, 64)
    feats = model.forward_features(x)
    assert feats.shape == (1, 128, 2, 2)
    assert model.forward_head(feats, pre_logits=True).shape == (1, 128)
    assert model.forward_head(feats).shape == (1, 5)
    wide = create_model("resnet20", width=2)
    assert [f["num_chs"] for f in wide.feature_info] == [32, 64, 128]
    assert wide(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_dense_block_output_channels():
    torch.manual_seed(0)
    block = DenseBlock(10, num_layers=5, growth_rate=7)
    assert block(torch.randn(2, 10, 6, 6)).shape == (2, 10 + 5 * 7, 6, 6)
    assert [layer[0].num_features for layer in block.layers] == [10, 17, 24, 31, 38]  # each sees all before it
    # bottleneck: BN-ReLU-1x1 conv (4k)-BN-ReLU-3x3 conv (k)
    convs = [m for m in block.layers[0] if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.out_channels) for c in convs] == [((1, 1), 28), ((3, 3), 7)]
    basic = [m for m in DenseLayer(10, 7, bn_size=0) if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.out_channels) for c in basic] == [((3, 3), 7)]


def test_dense_block_keeps_its_input():
    """The block's output starts with its input, untouched (concatenation, not addition)."""
    x = torch.randn(1, 6, 4, 4)
    torch.testing.assert_close(DenseBlock(6, 3, 4).eval()(x)[:, :6], x)


def test_transition_halves_channels_and_size():
    t = Transition(45)
    assert t(torch.randn(2, 45, 8, 6)).shape == (2, 22, 4, 3)
    assert Transition(40, compression=1.0)(torch.randn(1, 40, 8, 8)).shape == (1, 40, 4, 4)


def test_densenet121_layers_follow_table_1():
    with torch.device("meta"):
        model = create_model("densenet121")
    f = model.features
    assert [len(f.get_submodule(f"denseblock{i}").layers) for i in range(1, 5)] == [6, 12, 24, 16]
    assert [f.get_submodule(f"transition{i}").out_chans for i in range(1, 4)] == [128, 256, 512]
    assert model.head.in_features == 1024


def test_densenet_bc100_is_the_papers_cifar_net():
    model = create_model("densenet_bc100")
    assert f"{n_params(model) / 1e6:.1f}" == "0.8"  # table 2: DenseNet-BC (L=100, k=12) 0.8M
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == 100  # L counts the convs and the FC layer


@pytest.mark.parametrize("name", ["resnet20", "plain20", "densenet_small", "resnet18", "densenet121"])
@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 28, 28)])
def test_forward_small_inputs_with_num_classes_override(name, shape):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_chans=shape[1], **({"width": 0.25} if "18" in name else {}))
    if name == "densenet121" and shape[-1] < model.min_size:
        with pytest.raises(ValueError, match="H, W >= 29"):
            model(torch.randn(shape))
        return
    out = model(torch.randn(shape))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["resnet20", "resnet18", "densenet_small", "densenet121"])
def test_wrong_input_shape_gives_a_clear_error(name):
    with torch.device("meta"):
        model = create_model(name)
    family = "ResNet" if name.startswith("resnet") else "DenseNet"
    for bad in [(2, 1, 32, 32), (3, 32, 32), (2, 3, 1, 1)]:
        with pytest.raises(ValueError, match=rf"{family} expects input \(B, 3, H, W\) with H, W >= \d+"):
            model.forward_features(torch.randn(bad, device="meta"))


def test_bad_options_are_rejected():
    """Bad options reach the user as one line (create_model turns the builder's ValueError into a UserError)."""
    with pytest.raises(UserError, match="shortcut"):
        create_model("resnet20", shortcut="C")
    with pytest.raises(UserError, match="block"):
        create_model("resnet18", block="wide")
    with pytest.raises(UserError, match="compression"):
        create_model("densenet_small", compression=0)
