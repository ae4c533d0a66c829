"""deepnotes.explain.summary: the library behind `deepnotes inspect`.

Receptive fields (수용 영역, claims C02/C03) are computed analytically by following the data
flow of one forward pass; here they are checked by hand on small cases and, for every
registered CNN, against the field measured from input gradients.
"""

from __future__ import annotations

import json
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.errors import UserError
from deepnotes.explain import (
    conv_output_size,
    format_table,
    inspect_model,
    measure_receptive_field,
    parse_input_size,
    summarize,
)
from deepnotes.models import create_model, get_model_entry, list_models

# --------------------------------------------------------------------------- feature-map size


@pytest.mark.parametrize(
    "n, f, p, s, d, ceil, out",
    [
        (224, 7, 3, 2, 1, False, 112),  # ResNet stem: floor((224 - 7 + 6) / 2) + 1 = 111 + 1
        (227, 11, 0, 4, 1, False, 55),  # AlexNet conv1: (227 - 11) / 4 + 1 = 54 + 1
        (224, 11, 0, 4, 1, False, 54),  # the famous 224 typo: floor(213 / 4) + 1 = 53 + 1
        (32, 5, 0, 1, 1, False, 28),  # LeNet C1
        (28, 2, 0, 2, 1, False, 14),  # LeNet S2
        (224, 3, 1, 1, 1, False, 224),  # VGG "same" 3x3
        (112, 3, 1, 2, 1, False, 56),  # ResNet max-pool
        (112, 3, 0, 2, 1, True, 56),  # GoogLeNet ceil-mode pool: ceil(109 / 2) + 1
        (7, 3, 0, 2, 1, True, 3),  # ceil(4 / 2) + 1 = 3
        (6, 2, 1, 2, 1, True, 4),  # ceil: 4; the 5th window would start in the right padding
        (10, 3, 0, 1, 2, False, 6),  # dilation 2: f_eff = 5, 10 - 5 + 1
    ],
)
def test_conv_output_size_by_hand(n, f, p, s, d, ceil, out):
    assert conv_output_size(n, f, p, s, d, ceil_mode=ceil) == out


def test_conv_output_size_matches_torch_on_random_shapes():
    rng = random.Random(0)
    for _ in range(150):
        n, f = rng.randint(1, 40), rng.randint(1, 7)
        s, d = rng.randint(1, 4), rng.randint(1, 3)
        p = rng.randint(0, f // 2)  # pools need p <= f / 2
        if n + 2 * p < d * (f - 1) + 1:
            continue
        x = torch.zeros(1, 1, n, n + 1)
        conv = F.conv2d(x, torch.zeros(1, 1, f, f), stride=s, padding=p, dilation=d)
        assert conv.shape[-2:] == (conv_output_size(n, f, p, s, d), conv_output_size(n + 1, f, p, s, d))
        for ceil in (False, True):
            pool = F.max_pool2d(x, f, stride=s, padding=p, dilation=d, ceil_mode=ceil)
            assert pool.shape[-1] == conv_output_size(n + 1, f, p, s, d, ceil_mode=ceil), (n + 1, f, p, s, d, ceil)
            if d == 1:
                avg = F.avg_pool2d(x, f, stride=s, padding=p, ceil_mode=ceil)
                assert avg.shape[-2] == conv_output_size(n, f, p, s, 1, ceil_mode=ceil)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_same_padding_with_an_even_kernel_is_checked_right():
    s = summarize(nn.Conv2d(1, 1, 4, padding="same"), (1, 9, 9))  # pads 1 left, 2 right
    (check,) = s.size_checks
    assert check["ok"] and check["observed"] == [9, 9] and s.rows[0].start == (-1, -1)


def test_summary_checks_every_conv_and_pool_size():
    s = inspect_model("resnet18")
    assert len(s.size_checks) == 21 and all(c["ok"] for c in s.size_checks)  # 20 convs + 1 max-pool
    stem = s.row("features.stem.conv").ops[0]
    assert (stem["input"], stem["kernel"], stem["stride"], stem["padding"], stem["observed"]) == (
        [224, 224], [7, 7], [2, 2], [3, 3], [112, 112],
    )  # fmt: skip


def test_parse_input_size():
    assert parse_input_size("3x224x224") == (3, 224, 224)
    assert parse_input_size(" 1X28x28 ") == (1, 28, 28)
    for bad in ("224", "3x224", "3x224xabc", "0x32x32", "3x-1x4", "", "3x32x32x2"):
        with pytest.raises(UserError, match="CxHxW"):
            parse_input_size(bad)


# --------------------------------------------------------------------------- receptive field by hand


def _rf(summary, name, call=1):
    r = summary.row(name, call)
    assert len(set(r.receptive_field)) == 1 and len(set(r.jump)) == 1, "square expected"
    return r.receptive_field[0], r.jump[0]


def test_stacked_3x3_convs_see_5_then_7():
    """C03: r = 1 + 2 + 2 = 5 for two 3x3 stride-1 convs, 7 for three; the jump stays 1."""
    net = nn.Sequential(*(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)))
    s = summarize(net, (4, 16, 16))
    assert [_rf(s, str(i)) for i in range(3)] == [(3, 1), (5, 1), (7, 1)]


def test_conv7_stride2_then_maxpool3_stride2():
    """ResNet's stem: conv 7x7/2 -> r = 7, j = 2; max-pool 3x3/2 -> r = 7 + (3 - 1) * 2 = 11, j = 4."""
    net = nn.Sequential(nn.Conv2d(3, 8, 7, stride=2, padding=3), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
    s = summarize(net, (3, 64, 64))
    assert [_rf(s, n) for n in ("0", "1", "2")] == [(7, 2), (7, 2), (11, 4)]
    # padding moves where the field is, not how big: unit 0 of the pool starts at -3 - 1 * 2
    assert s.row("2").start == (-5, -5)


def test_dilation_and_rectangular_kernels():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, (3, 5), stride=(1, 2)))
    s = summarize(net, (1, 32, 32))
    assert s.row("0").receptive_field == (5, 5)  # f_eff = 2 * (3 - 1) + 1
    assert s.row("1").receptive_field == (7, 9) and s.row("1").jump == (1, 2)  # both axes reported
    assert "7x9" in format_table(s)


def test_lenet5_receptive_fields_by_hand():
    """LeNet-5 on 32x32, r_out = r_in + (k - 1) * j_in, j_out = j_in * s:
    C1  conv 5/1:  r = 1 + 4 * 1 = 5,    j = 1
    S2  pool 2/2:  r = 5 + 1 * 1 = 6,    j = 2
    C3  conv 5/1:  r = 6 + 4 * 2 = 14,   j = 2
    S4  pool 2/2:  r = 14 + 1 * 2 = 16,  j = 4
    C5  conv 5/1:  r = 16 + 4 * 4 = 32,  j = 4   (a C5 unit sees the whole 32x32 input)
    """
    s = summarize(create_model("lenet5"), (1, 32, 32))
    got = [_rf(s, f"features.{n}") for n in ("c1", "s2", "c3", "s4", "c5")]
    assert got == [(5, 1), (6, 2), (14, 2), (16, 4), (32, 4)]
    assert s.row("features.s4").output_shape == (16, 5, 5)
    head = s.row("head.1")  # Linear after Flatten: the whole input
    assert head.is_global and head.receptive_field == (32, 32) and head.jump is None


class _Inception(nn.Module):
    """Parallel 1x1 / 3x3 / 3x3-3x3 / pool-1x1 branches, concatenated: r = max = 5."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.b1 = nn.Conv2d(c, c, 1)
        self.b2 = nn.Conv2d(c, c, 3, padding=1)
        self.b3 = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c, c, 1))
        self.out = nn.ReLU()

    def forward(self, x):
        return self.out(torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1))


class _Residual(nn.Module):
    """relu(x + conv(relu(conv(x)))): r = max(1, 5) = 5; the shared ReLU is called twice."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x + self.conv2(self.relu(self.conv1(x))))


class _Misaligned(nn.Module):
    """Two 3x3 branches whose windows are offset by one pixel (one padded on both sides, one
    padded right/bottom only): the union of the regions is 4 wide, more than max(r) = 3."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3)
        self.out = nn.Identity()

    def forward(self, x):
        return self.a(x) + self.b(F.pad(x, (0, 2, 0, 2)))


class _Dense(nn.Module):
    """DenseNet-style: each 3x3 conv sees the concatenation of all earlier maps; r = 7."""

    def __init__(self, c: int = 2):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c * (i + 1), c, 3, padding=1) for i in range(3))

    def forward(self, x):
        feats = [x]
        for conv in self.convs:
            feats.append(conv(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


@pytest.mark.parametrize(
    "make, channels, layer, call, rf",
    [(_Inception, 4, "out", 1, 5), (_Residual, 4, "relu", 2, 5), (_Misaligned, 1, "", 1, 4), (_Dense, 2, "convs.2", 1, 7)],
    ids=["inception", "residual", "misaligned", "dense"],
)
def test_branches_take_the_union_and_match_the_gradient(make, channels, layer, call, rf):
    net, size = make(), (channels, 15, 15)
    s = summarize(net, size)
    row = s.row(layer, call)  # "" is the model itself (its output record)
    assert row.receptive_field == (rf, rf)
    (m,) = measure_receptive_field(net, size, [(layer, call)])
    assert m.size == (rf, rf) and m.extent == row.field_of(m.unit)


# --------------------------------------------------------------------------- the tracer on other constructions


def test_ops_beyond_plain_cnns():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.mix = nn.Linear(8, 8)  # channels-last pointwise "1x1 conv" (ConvNeXt style)
            self.dw = nn.Conv2d(8, 8, 5, padding=2, groups=8)  # depthwise
            self.se = nn.Linear(8, 8)  # squeeze-and-excitation: global context

        def forward(self, x):
            x = self.conv(x)
            x = self.mix(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, H, W, C) and back
            x = self.dw(x)
            crop = x[:, :, 2:-2:2, 2:-2:2]  # strided crop: start + 2, jump x 2
            flat = crop.flatten(2).transpose(1, 2)  # (B, N, C) tokens keep their fields
            tokens = F.layer_norm(flat, (8,))
            grid = tokens.transpose(1, 2).reshape(1, 8, 6, 6)
            scale = torch.sigmoid(self.se(x.mean((2, 3))))[:, :, None, None]
            return grid, x * scale

    net = Net()
    s = summarize(net, (3, 16, 16))
    assert s.row("mix").receptive_field == (3, 3)  # a Linear over channels keeps the field
    assert s.row("dw").receptive_field == (7, 7) and s.row("dw").macs == 16 * 16 * 8 * 1 * 25
    assert s.row("se").is_global
    # the token grid, traced through permute / strided slice / flatten / layer_norm / reshape
    grid = _output_record(net, (3, 16, 16), 0)
    assert (grid.receptive_field, grid.jump, grid.start) == ((7, 7), (2, 2), (-1, -1))
    assert _output_record(net, (3, 16, 16), 1).is_global  # x * SE scale sees the whole image


def _output_record(net, size, index):
    """The summary record of output `index` of net (which returns a tuple)."""

    class Pick(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.pick = net, nn.Identity()

        def forward(self, x):
            return self.pick(self.net(x)[index])

    return summarize(Pick(), size).row("pick")


def test_attention_is_global_and_counted():
    class Attn(nn.Module):
        def __init__(self, d=8):
            super().__init__()
            self.embed = nn.Conv2d(3, d, 4, stride=4)  # patch embedding: r = 4, j = 4
            self.qkv = nn.Linear(d, 3 * d)

        def forward(self, x):
            t = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, d)
            q, k, v = self.qkv(t).chunk(3, dim=-1)
            return F.scaled_dot_product_attention(q, k, v)

    s = summarize(Attn(), (3, 16, 16))
    assert s.row("embed").receptive_field == (4, 4) and s.row("qkv").receptive_field == (4, 4)
    assert s.modules[-1].is_global  # self-attention: global from the first layer (C34)
    n, d = 16, 8
    assert s.total_macs == n * d * 3 * 16 + n * 3 * d * d + 2 * n * n * d


def test_unfold_scratch_conv_equals_conv():
    """A conv written as im2col (F.unfold) + matmul + view has the field of nn.Conv2d."""

    class Scratch(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 3 * 9))

        def forward(self, x):
            cols = F.unfold(x, 3, padding=1, stride=2)  # (B, C*k*k, L)
            return (self.weight @ cols).view(1, 4, 8, 8)  # (B, C_out, H/2, W/2)

    net = nn.Sequential(Scratch(), nn.Conv2d(4, 4, 3, padding=1))
    s = summarize(net, (3, 16, 16))
    assert (s.row("0").receptive_field, s.row("0").jump) == ((3, 3), (2, 2))
    assert s.row("1").receptive_field == (7, 7)
    assert s.row("0").macs == 4 * 27 * 64


def test_upsampling_is_marked_inexact():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ConvTranspose2d(2, 1, 2, stride=2), nn.Upsample(scale_factor=2))
    s = summarize(net, (1, 16, 16))
    t = s.row("1")
    assert t.jump == (1, 1) and not t.exact and t.output_shape == (1, 16, 16)
    assert t.macs == 2 * 8 * 8 * 1 * 4  # in_h * in_w * in_c * (out_c / groups) * k_h * k_w
    assert t.ops[0]["ok"] and t.ops[0]["expected"] == [16, 16]  # (n - 1) * s - 2p + (k - 1) + 1
    assert s.row("2").jump == (0.5, 0.5)


# --------------------------------------------------------------------------- params, MACs, names


def test_macs_by_hand():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 16 * 16 * 8 * 3 * 9 = 55,296
        nn.Conv2d(8, 16, 3, groups=4),  # 14 * 14 * 16 * (8 / 4) * 9 = 56,448
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),  # 160
    )
    s = summarize(net, (3, 16, 16))
    assert [r.macs for r in s.rows] == [55_296, 56_448, 0, 0, 160]
    assert s.total_macs == 55_296 + 56_448 + 160
    assert [r.params for r in s.rows] == [224, 304, 0, 0, 170]
    assert s.row("2").is_global and s.row("2").receptive_field == (16, 16)


def test_vgg16_macs_at_224():
    """The usual count for VGG-16 (conv + FC, one 224x224 image): 15,470,264,320 MACs =
    convs 15,346,630,656 + FC 25088*4096 + 4096*4096 + 4096*1000 = 123,633,664."""
    s = inspect_model("vgg16")  # built on the meta device: no weights, no arithmetic
    assert s.total_macs == 15_470_264_320
    assert sum(r.macs for r in s.rows if r.kind == "Conv2d") == 15_346_630_656
    assert s.total_params == 138_357_544 and s.output_shape == (1000,)
    assert s.row("features.stage5.pool").receptive_field == (212, 212)  # VGG-16's well-known 212
    assert s.row("features.stage5.pool").jump == (32, 32)


@pytest.mark.parametrize(
    "name", ["lenet5", "vgg_small", "resnet20", "resnet50", "densenet_small", "alexnet_small", "googlenet", "googlenet_aux"]
)
def test_totals_and_names(name):
    if name not in list_models():
        pytest.skip(f"{name} is not registered yet")
    entry = get_model_entry(name)
    with torch.device("meta"):
        model = create_model(name)
    s = summarize(model, entry.input_size)
    assert s.total_params == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in s.rows) + s.unused_params == s.total_params
    names = dict(model.named_modules())
    assert all(r.name in names for r in s.rows), "row names must be exact module names (for --layer)"
    assert s.total_macs == sum(r.macs for r in s.rows)
    if name == "googlenet_aux":  # the aux heads only run in training mode: reported as unused
        with torch.device("meta"):
            plain = sum(p.numel() for p in create_model("googlenet").parameters())
        assert s.unused and all("aux" in n for n in s.unused) and s.unused_params == s.total_params - plain


def test_shared_module_counted_once_and_unused_reported():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.aux = nn.Linear(5, 5)  # never called (like GoogLeNet's aux heads in eval)

        def forward(self, x):
            return self.conv(self.conv(x))

    s = summarize(Net(), (2, 8, 8))
    assert [(r.name, r.call, r.params) for r in s.rows] == [("conv", 1, 38), ("conv", 2, 0)]
    assert s.row("conv", 2).receptive_field == (5, 5)
    assert s.total_params == 38 + 30 and s.unused_params == 30 and s.unused == ["aux"]
    assert "30 parameters are not used" in format_table(s)
    assert s.total_macs == 2 * 8 * 8 * 2 * 2 * 9


def test_table_and_json():
    s = inspect_model("vgg16", (3, 224, 224))
    table = format_table(s)
    lines = table.splitlines()
    rules = [i for i, line in enumerate(lines) if set(line) == {"-"}]
    body = lines[rules[0] + 1 : rules[1]]
    assert len(body) == len(s.rows) and len({len(line) for line in body}) == 1  # aligned
    assert "138,357,544" in table and "15.47G" in table and "global" in table
    assert "features.stage1.conv1" in table and "86.70M" in table
    data = json.loads(json.dumps(s.to_json()))
    assert data["totals"]["params"] == 138_357_544 and data["totals"]["macs"] == 15_470_264_320
    first = data["layers"][0]
    assert first == {
        "name": "features.stage1.conv1", "type": "Conv2d", "output_shape": [64, 224, 224], "params": 1792,
        "macs": 86_704_128, "receptive_field": [3, 3], "jump": [1, 1], "start": [-1, -1], "global": False,
        "ops": first["ops"],
    }  # fmt: skip
    assert data["layers"][-1]["global"] and data["layers"][-1]["receptive_field"] == [224, 224]
    assert data["size_checks"]["checked"] == 18 and data["size_checks"]["mismatches"] == []


def test_inspect_model_errors():
    with pytest.raises(UserError, match="1x32x32 only"):
        inspect_model("lenet5", (1, 28, 28))
    with pytest.raises(UserError, match="cannot run on input 3x16x16"):
        inspect_model("vgg16", (3, 16, 16))
    s = inspect_model("resnet18", (3, 64, 64))
    assert s.output_shape == (1000,) and s.row("features.stem.conv").output_shape == (64, 32, 32)
    s = inspect_model("vgg_small", (3, 32, 32))  # another channel count: built with in_chans=3
    assert s.row("features.stage1.conv1").params == 3 * 32 * 9


def test_summary_leaves_the_model_as_it_was():
    model = create_model("vgg_small")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summarize(model, (1, 28, 28))
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# --------------------------------------------------------------------------- analytic == measured, every CNN

_BN_BUFFERS = {"running_mean", "running_var", "num_batches_tracked"}


def _probe_size(name: str) -> tuple[int, int, int]:
    entry = get_model_entry(name)
    c, h, _ = entry.input_size
    if entry.fixed_input_size or h <= 64:
        return entry.input_size
    model = create_model(name) if entry.task == "segmentation" else None
    if hasattr(model, "valid_input_size"):  # U-Net with valid convs: 64 does not tile, 188 does
        side = model.valid_input_size(64)
        return (c, side, side)
    return (c, 64, 64)


def _build(name: str) -> tuple[nn.Module, nn.Module]:
    """(meta model for the summary, CPU model for the measurement). Models whose only buffers
    are BatchNorm statistics skip initialization (meta + to_empty: the probe overwrites every
    weight it uses, and never touches the unused head); others are built for real."""
    with torch.device("meta"):
        meta = create_model(name)
    if all(n.rsplit(".", 1)[-1] in _BN_BUFFERS for n, _ in meta.named_buffers()):
        with torch.device("meta"):
            cpu = create_model(name)
        return meta, cpu.to_empty(device="cpu")
    return meta, create_model(name)


@pytest.mark.parametrize("name", [n for n in list_models() if get_model_entry(n).inputs == "images"])
def test_receptive_field_analytic_equals_measured(name):
    """For every registered model with spatial structure, compare the analytic receptive field
    with the one measured from input gradients (measure_receptive_field: positive constant
    weights, BN as identity, max-pool -> avg-pool, so the gradient reaches the whole field).

    Layers compared: the model's feature stages (feature_layers), the last spatial layer
    before the global pooling / head, and the deepest layer whose centre unit's field lies
    inside the image. Units: the centre of each map, plus the two corner units of the deepest
    fitting layer (whose fields the border clips). The comparison is exact: the measured
    extent equals the analytic one clipped to the image, first and last pixel per axis.

    Input sizes: each model's own when fixed or <= 64 pixels; 64x64 for the 224x224 models
    (their last stages then see more than the image: compared clipped, while the deepest
    fitting layer - e.g. inside ResNet's layer2 - checks an unclipped field). All variants
    are tested (vgg16/19, resnet101/152, densenet169/201 included) in a few seconds in all.
    """
    if name == "mlp":
        pytest.skip("the MLP flattens the image first: no spatial structure, no receptive field")
    size = _probe_size(name)
    meta, model = _build(name)
    s = summarize(meta, size, name=name)
    spatial = [r for r in s.modules if r.spatial and r.exact and not r.is_global and len(r.spatial) == 2]
    if not spatial:
        pytest.skip(f"{name} has no layer with an exact spatial receptive field")
    hw = size[1:]

    def centre(r):
        return tuple((n - 1) // 2 for n in r.spatial)

    def inside(r):
        return all(lo >= 0 and hi < n for (lo, hi), n in zip(r.field_of(centre(r)), hw))

    fitting = [r for r in spatial if r.is_layer and max(r.receptive_field) > 1 and inside(r)]
    targets = {(r.name, r.call): [centre(r)] for r in spatial if r.name in getattr(meta, "feature_layers", [])}
    targets[(spatial[-1].name, spatial[-1].call)] = [centre(spatial[-1])]
    if fitting:
        deep = fitting[-1]
        far = tuple(n - 1 for n in deep.spatial)
        targets.setdefault((deep.name, deep.call), []).extend([centre(deep), (0, 0), far])
    units = [u for us in targets.values() for u in dict.fromkeys(us)]
    keys = [k for k, us in targets.items() for _ in dict.fromkeys(us)]
    measured = measure_receptive_field(model, size, keys, units)
    for (lname, call), m in zip(keys, measured):
        row = s.row(lname, call)
        expected = row.field_of(m.unit, hw)
        assert m.extent == expected, f"{name} {lname}#{call} unit {m.unit}: measured {m.extent}, analytic {expected}"
    if fitting:  # at least one field fully inside the image: the full size r was measured
        deep_m = next(m for (k, m) in zip(keys, measured) if k == (deep.name, deep.call))
        assert deep_m.size == deep.receptive_field
