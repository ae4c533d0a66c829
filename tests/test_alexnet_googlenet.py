"""AlexNet (Krizhevsky et al. 2012) and GoogLeNet (Szegedy et al. 2014): published and
hand-derived parameter counts, the two towers, Inception modules, auxiliary heads, the small
forms and input checks."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F

import deepnotes.models.alexnet as alexnet_mod
import deepnotes.models.googlenet as googlenet_mod
from deepnotes.models import create_model, get_model_entry
from deepnotes.models.alexnet import TowerLRN
from deepnotes.models.googlenet import TABLE_1, Inception, InceptionSpec

NAMES = sorted(alexnet_mod.VARIANTS) + sorted(googlenet_mod.VARIANTS)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def on_meta(name: str, **overrides) -> torch.nn.Module:
    """The model's structure (hence its parameter count) without allocating its weights."""
    with torch.device("meta"):
        return create_model(name, **overrides)


def macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of the convs and linears for one forward of x (batch 1)."""
    total = 0

    def hook(m, inputs, out):
        nonlocal total
        if isinstance(m, torch.nn.Conv2d):
            total += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    return total


# --------------------------------------------------------------------------- counts


# torchvision's published counts (3 input channels, 1000 classes)
PUBLISHED = {"alexnet": 61_100_840, "googlenet": 6_624_904, "googlenet_aux": 13_004_888}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name):
    assert n_params(on_meta(name)) == PUBLISHED[name] == get_model_entry(name).num_params


@pytest.mark.parametrize("name", NAMES)
def test_registered_counts_are_the_built_ones(name):
    assert n_params(on_meta(name)) == get_model_entry(name).num_params


def test_two_tower_alexnet_count_by_hand():
    """The paper's network, layer by layer (weights + biases); groups=2 halves a kernel's depth.

    conv1  96 kernels 11x11x3:             96 * 363   + 96   =     34,944
    conv2 256 kernels  5x5x48 (one tower): 256 * 1200 + 256  =    307,456
    conv3 384 kernels  3x3x256 (both):     384 * 2304 + 384  =    885,120
    conv4 384 kernels  3x3x192 (one):      384 * 1728 + 384  =    663,936
    conv5 256 kernels  3x3x192 (one):      256 * 1728 + 256  =    442,624
                                                     convs    2,334,080
    FC6 256*6*6 = 9216 -> 4096:  9216 * 4096 + 4096          = 37,752,832
    FC7 4096 -> 4096:            4096 * 4096 + 4096          = 16,781,312
    FC8 4096 -> 1000:            4096 * 1000 + 1000          =  4,097,000
                                                       FCs   58,631,144
    total                                                    60,965,224  (the paper's "60 million")
    LRN and pooling have no parameters.
    """
    model = on_meta("alexnet_paper")
    convs = {name: n_params(block.conv) for name, block in model.features.named_children()}
    assert convs == {"conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936, "conv5": 442_624}
    fcs = {name: n_params(getattr(model.head, name)) for name in ("fc6", "fc7", "fc8")}
    assert fcs == {"fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000}
    assert sum(convs.values()) == 2_334_080 and sum(fcs.values()) == 58_631_144
    assert n_params(model) == 60_965_224
    # Without the towers, conv2/conv4/conv5 would see every input map: +307,200 + 663,552 + 442,368.
    one_tower = [spec._replace(groups=1) for spec in alexnet_mod.VARIANTS["alexnet_paper"].config.convs]
    assert n_params(on_meta("alexnet_paper", convs=one_tower)) == 62_378_344


def test_googlenet_modules_follow_table_1():
    model = on_meta("googlenet")
    inceptions = {name: m.out_chans for name, m in model.features.named_children() if isinstance(m, Inception)}
    assert inceptions == {
        "inception3a": 256, "inception3b": 480, "inception4a": 512, "inception4b": 512, "inception4c": 512,
        "inception4d": 528, "inception4e": 832, "inception5a": 832, "inception5b": 1024,
    }  # fmt: skip
    # torchvision's "5x5" branch is a 3x3 conv (kept for its weights); branch3_kernel=5 is the paper's
    assert model.features.inception3a.branch3[1].conv.kernel_size == (3, 3)
    paper = on_meta("googlenet", branch3_kernel=5)
    assert paper.features.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert n_params(paper) == 7_005_832
    assert all(not m.bias for m in model.modules() if isinstance(m, torch.nn.Conv2d))  # BN follows every conv


# --------------------------------------------------------------------------- AlexNet


def test_grouped_conv2_keeps_the_towers_apart():
    """conv2's output maps of tower A (0..127) depend on conv1's maps 0..47 only, tower B's on 48..95."""
    torch.manual_seed(0)
    conv2 = create_model("alexnet_paper", fc_width=8).features.conv2.conv
    assert conv2.groups == 2 and conv2.weight.shape == (256, 48, 5, 5)
    x = torch.randn(1, 96, 9, 9, requires_grad=True)
    out = conv2(x)
    (grad_a,) = torch.autograd.grad(out[0, 0].sum(), x, retain_graph=True)  # an output map of tower A
    (grad_b,) = torch.autograd.grad(out[0, 200].sum(), x)  # an output map of tower B
    assert grad_a[0, 48:].abs().sum() == 0 and (grad_a[0, :48].abs().sum((1, 2)) > 0).all()
    assert grad_b[0, :48].abs().sum() == 0 and (grad_b[0, 48:].abs().sum((1, 2)) > 0).all()


def test_conv3_crosses_the_towers():
    torch.manual_seed(0)
    conv3 = create_model("alexnet_paper", fc_width=8).features.conv3.conv
    x = torch.randn(1, 256, 5, 5, requires_grad=True)
    (grad,) = torch.autograd.grad(conv3(x)[0, 0].sum(), x)
    assert (grad[0].abs().sum((1, 2)) > 0).all()


def test_lrn_stays_within_a_tower():
    """Map 47 (last of tower A) is normalized by maps 45..47 with towers, by 45..49 without."""
    x = torch.rand(1, 96, 3, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(TowerLRN(5, 1e-1, 0.75, 2.0, towers=2)(x)[0, 47].sum(), x)
    assert {i for i in range(96) if grad[0, i].abs().sum() > 0} == {45, 46, 47}
    (grad,) = torch.autograd.grad(TowerLRN(5, 1e-1, 0.75, 2.0, towers=1)(x)[0, 47].sum(), x)
    assert {i for i in range(96) if grad[0, i].abs().sum() > 0} == {45, 46, 47, 48, 49}


def test_lrn_alpha_convention():
    """nn.LocalResponseNorm(n, alpha) = the paper's formula with alpha / n (section 3.3, by hand)."""
    torch.manual_seed(0)
    x = torch.rand(2, 8, 3, 3)
    n, alpha, beta, k = 5, 1e-1, 0.75, 2.0
    sq = F.pad(x.square(), (0, 0, 0, 0, n // 2, n // 2))  # zero maps beyond the edges
    window_sum = torch.stack([sq[:, i : i + n].sum(1) for i in range(8)], 1)  # sum over n adjacent maps
    paper = x / (k + (alpha / n) * window_sum) ** beta
    torch.testing.assert_close(TowerLRN(n, alpha, beta, k)(x), paper)
    torch.testing.assert_close(torch.nn.LocalResponseNorm(n, alpha, beta, k)(x), paper)


def test_paper_alexnet_shapes_and_init():
    torch.manual_seed(0)
    model = create_model("alexnet_paper", num_classes=5).eval()
    feats = model.forward_features(torch.randn(1, 3, 227, 227))
    assert feats.shape == (1, 256, 6, 6)  # the 9,216 features FC6 reads
    assert model.forward_head(feats).shape == (1, 5)
    # section 5: biases 1 in conv2, conv4, conv5, FC6, FC7; 0 in conv1, conv3, FC8
    f, h = model.features, model.head
    assert all((b == 1).all() for b in (f.conv2.conv.bias, f.conv4.conv.bias, f.conv5.conv.bias, h.fc6.bias, h.fc7.bias))
    assert all((b == 0).all() for b in (f.conv1.conv.bias, f.conv3.conv.bias, h.fc8.bias))
    assert abs(float(h.fc6.weight.detach().std()) - 0.01) < 1e-3
    with pytest.raises(ValueError, match="227"):
        model(torch.randn(1, 3, 224, 224))  # the paper's 224 gives 5x5 features


def test_single_tower_alexnet_shapes():
    model = create_model("alexnet", num_classes=5).eval()
    assert model.forward_features(torch.randn(1, 3, 64, 64)).shape == (1, 256, 1, 1)
    assert [f["num_chs"] for f in model.feature_info] == [64, 192, 384, 256, 256]
    assert [m.groups for m in model.modules() if isinstance(m, torch.nn.Conv2d)] == [1] * 5
    assert not any(isinstance(m, TowerLRN) for m in model.modules())
    with pytest.raises(ValueError, match=">= 63"):
        model(torch.randn(1, 3, 62, 62))


@pytest.mark.parametrize("name", sorted(alexnet_mod.VARIANTS))
def test_alexnet_size_arithmetic_matches_pytorch(name):
    model = on_meta(name)
    sizes = [model.min_size, model.min_size + 1, 100, 227] if model.valid_sizes is None else model.valid_sizes[:3]
    for s in sizes:
        out = model.features(torch.empty(1, model.in_chans, s, s, device="meta"))
        assert out.shape[-1] == model._feature_size(s), s


# --------------------------------------------------------------------------- GoogLeNet


def test_inception_output_is_the_concatenation_of_its_branches():
    torch.manual_seed(0)
    spec = InceptionSpec(ch1x1=8, ch3x3red=4, ch3x3=12, ch5x5red=2, ch5x5=6, pool_proj=5)
    module = Inception(10, spec).eval()
    x = torch.randn(2, 10, 7, 7)
    out = module(x)
    assert out.shape == (2, 8 + 12 + 6 + 5, 7, 7) and module.out_chans == 31
    branches = [module.branch1(x), module.branch2(x), module.branch3(x), module.branch4(x)]
    assert [b.shape[1] for b in branches] == [8, 12, 6, 5]
    torch.testing.assert_close(out, torch.cat(branches, 1))
    for name, spec in TABLE_1:  # every row of Table 1: output = 1x1 + 3x3 + 5x5 + pool proj
        if isinstance(spec, InceptionSpec):
            assert Inception(16, spec).out_chans == spec.ch1x1 + spec.ch3x3 + spec.ch5x5 + spec.pool_proj, name


def test_googlenet_aux_heads_act_only_in_training():
    torch.manual_seed(0)
    model = create_model("googlenet_aux", num_classes=7)
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([1, 4])
    logits = model.train()(x)
    assert logits.shape == (2, 7)
    assert [tuple(a.shape) for a in model.aux_outputs] == [(2, 7), (2, 7)]
    expected = 0.3 * F.cross_entropy(model.aux_outputs[0], y) + 0.3 * F.cross_entropy(model.aux_outputs[1], y)
    torch.testing.assert_close(model.aux_loss(y), expected, rtol=0, atol=0)  # each term weighted, in order
    (F.cross_entropy(logits, y) + model.aux_loss(y)).backward()
    assert all(p.grad is not None for p in model.aux_heads.parameters())
    with torch.no_grad():
        logits = model.eval()(x)
    assert logits.shape == (2, 7) and model.aux_outputs == []
    assert float(model.aux_loss(y)) == 0.0
    # the heads read 4a (512 maps) and 4d (528 maps)
    assert sorted(model.aux_heads) == ["inception4a", "inception4d"]
    assert [h.conv.conv.in_channels for h in model.aux_heads.values()] == [512, 528]


def test_googlenet_aux_copies_without_the_last_graph():
    model = create_model("googlenet_small", aux_logits=True).train()
    model(torch.randn(2, 1, 28, 28))
    assert len(model.aux_outputs) == 2
    clone = copy.deepcopy(model)  # would fail on the non-leaf aux tensors
    assert clone.aux_outputs == [] and len(model.aux_outputs) == 2


def test_googlenet_without_aux_heads_never_has_aux_outputs():
    model = on_meta("googlenet")
    assert len(model.aux_heads) == 0
    model.train()(torch.empty(2, 3, 64, 64, device="meta"))
    assert model.aux_outputs == []


@pytest.mark.parametrize("name", ["googlenet", "googlenet_small"])
def test_googlenet_size_arithmetic_matches_pytorch(name):
    model = on_meta(name).eval()
    for s in (model.min_size, model.min_size + 1, 28, 32, 64, 224):
        out = model.forward_features(torch.empty(1, model.in_chans, s, s, device="meta"))
        assert out.shape[-1] == model._feature_size(s), s
    with pytest.raises(ValueError, match=f">= {model.min_size}"):
        model(torch.empty(1, model.in_chans, model.min_size - 1, model.min_size - 1, device="meta"))


def test_googlenet_feature_layers():
    model = on_meta("googlenet")
    assert model.feature_layers == [
        "features.conv1", "features.conv3", "features.inception3b", "features.inception4e", "features.inception5b",
    ]  # fmt: skip
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    for name in model.feature_layers:
        model.get_submodule(name)


# --------------------------------------------------------------------------- small forms


@pytest.mark.parametrize("name", ["alexnet_small", "googlenet_small"])
@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 3, 32, 32)])
def test_small_forward_shapes(name, shape):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, in_chans=shape[1])
    out = model(torch.randn(shape))
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    assert model.forward_features(torch.randn(shape)).shape[-1] == 4  # 28 and 32 both end at 4x4
    for layer in model.feature_layers:
        model.get_submodule(layer)


@pytest.mark.parametrize("name", ["alexnet_small", "googlenet_small"])
def test_small_forms_fit_a_cpu_budget(name):
    """Under 1.5M parameters and 60M multiply-adds per 28x28 (and 32x32 RGB) image."""
    entry = get_model_entry(name)
    assert entry.input_size == (1, 28, 28) and not entry.fixed_input_size
    model = create_model(name)
    assert n_params(model) < 1_500_000
    assert macs(model, torch.randn(1, 1, 28, 28)) < 60e6
    assert macs(create_model(name, in_chans=3), torch.randn(1, 3, 32, 32)) < 60e6


@pytest.mark.parametrize("name", NAMES)
def test_registered_defaults_survive_json(name):
    """Checkpoints store the builder's keyword arguments as JSON; the model must rebuild from them."""
    defaults = json.loads(json.dumps(get_model_entry(name).defaults))
    assert n_params(on_meta(name, **defaults)) == get_model_entry(name).num_params


@pytest.mark.parametrize("name", NAMES)
def test_wrong_input_is_a_clear_error(name):
    model = on_meta(name)
    c = model.in_chans
    with pytest.raises(ValueError, match=rf"\(B, {c}, H, W\)"):
        model(torch.empty(2, c + 1, 227, 227, device="meta"))  # wrong channel count
    with pytest.raises(ValueError, match=rf"\(B, {c}, H, W\)"):
        model(torch.empty(c, 227, 227, device="meta"))  # no batch dimension


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_reaches_every_parameter(name):
    """As the registry-wide test, adding the model's auxiliary loss as the training loop does."""
    entry = get_model_entry(name)
    size = entry.input_size[1:] if entry.fixed_input_size else ((64, 64) if entry.input_size[1] > 64 else (32, 32))
    torch.manual_seed(0)
    model = create_model(name, num_classes=7)
    out = model(torch.randn(2, entry.input_size[0], *size))
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    loss = out.square().mean()
    if hasattr(model, "aux_loss"):
        loss = loss + model.aux_loss(torch.zeros(2, dtype=torch.long), lambda a, y: a.square().mean())
    loss.backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
