"""deepnotes.explain.cam: CAM, Grad-CAM, Grad-CAM++, saliency (claim C23 and the machinery).

Oracles: cases worked by hand (CAM on a 2x2 map, saliency of a linear model, the closed form
of Grad-CAM++ for a GAP + linear head), the identity y^c = mean(M_c) + b_c of Zhou et al.,
and Grad-CAM computed by hand (plain autograd, no hooks) on copies of the same modules.
"""

from __future__ import annotations

import gc
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.errors import UserError
from deepnotes.explain import summarize
from deepnotes.explain.cam import CamResult, compute_cam, draw_cam, layer_names, overlay, parse_layer
from deepnotes.models import create_model

# --------------------------------------------------------------------------- tiny models


class TinyCNN(nn.Module):
    """conv-ReLU-conv(stride 2)-ReLU, GAP, linear: a CAM-able net with a 4x4 map for 8x8 input."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(6, num_classes)

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.head(self.pool(x).flatten(1))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


class Block(nn.Module):
    """A residual block whose ReLU (in place, as ResNet's) is called twice."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class TinyResNet(nn.Module):
    def __init__(self, num_classes: int = 4, fc_head: bool = False):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.ReLU())
        self.block = Block(5)
        self.fc_head = fc_head
        if fc_head:  # flatten + two linear layers: not CAM-able
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(5 * 6 * 6, 8), nn.ReLU(), nn.Linear(8, num_classes))
        else:
            self.head = nn.Linear(5, num_classes)
        for m in self.modules():  # non-trivial BatchNorm statistics
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.3, 0.3)

    def forward_features(self, x):
        return self.block(self.stem(x))

    def forward_head(self, x):
        return self.head(x) if self.fc_head else self.head(x.mean((2, 3)))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def _seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for p in model.parameters():
        p.data.normal_(0, 0.5)
    return model.eval()


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return TinyCNN().eval()


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- CAM by hand


class HandCAM(nn.Module):
    """Identity 1x1 conv (so the map is the input), GAP, linear with hand-set weights."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(2, 2, 1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.features.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
            self.head.weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 3.0]]))
            self.head.bias.copy_(torch.tensor([0.5, -1.0]))

    def forward(self, x):
        return self.head(self.pool(self.features(x)).flatten(1))


def test_cam_by_hand():
    # A_0 = [[1,0],[0,0]], A_1 = [[0,0],[0,2]]; W = [[1,-1],[2,3]], b = [0.5,-1]
    # M_0 = A_0 - A_1 = [[1,0],[0,-2]], M_1 = 2 A_0 + 3 A_1 = [[2,0],[0,6]]
    # y_0 = mean(M_0) + 0.5 = 0.25, y_1 = mean(M_1) - 1 = 1 -> predicted class 1
    x = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]]])
    r = compute_cam(HandCAM(), x, "cam")
    assert r.layer == "features" and r.layout == "map"
    assert r.predicted.tolist() == [1] and r.target.tolist() == [1]
    assert torch.allclose(r.probs, torch.softmax(torch.tensor([[0.25, 1.0]]), 1), atol=1e-6)
    assert torch.allclose(r.raw, torch.tensor([[[2.0, 0.0], [0.0, 6.0]]]), atol=1e-6)
    assert torch.allclose(r.weights, torch.tensor([[2.0, 3.0]]))
    # the map is at the input size already: min-max scaling only, (M - 0) / 6
    assert torch.allclose(r.heatmap, torch.tensor([[[1 / 3, 0.0], [0.0, 1.0]]]), atol=1e-6)
    r0 = compute_cam(HandCAM(), x, "cam", target=0)
    assert torch.allclose(r0.raw, torch.tensor([[[1.0, 0.0], [0.0, -2.0]]]), atol=1e-6)  # signed: no ReLU in CAM
    assert torch.allclose(r0.heatmap, torch.tensor([[[1.0, 2 / 3], [2 / 3, 0.0]]]), atol=1e-6)  # (M + 2) / 3


def test_cam_mean_plus_bias_is_the_logit(tiny):
    """Zhou et al.: y^c = sum_k w_k^c mean(A_k) + b_c = mean(M_c) + b_c, for every class."""
    x = _x(3, 1, 8, 8)
    logits = tiny(x)
    for c in range(3):
        r = compute_cam(tiny, x, "cam", target=c)
        assert r.raw.shape == (3, 4, 4) and r.heatmap.shape == (3, 8, 8)
        assert torch.allclose(r.raw.mean((1, 2)) + tiny.head.bias[c], logits[:, c], rtol=1e-5, atol=1e-6)
        assert torch.allclose(r.heatmap.amin((1, 2)), torch.zeros(3)) and torch.allclose(r.heatmap.amax((1, 2)), torch.ones(3))


# --------------------------------------------------------------------------- C23


def _check_gradcam_is_scaled_cam(model, x, num_classes, rtol=1e-5):
    """C23: with a GAP + linear head, dy^c/dA_kij = w_k^c / (h w), so Grad-CAM's weights are
    CAM's divided by h*w and Grad-CAM = ReLU(M_c) / (h w). Tolerance: rtol 1e-5 (float32)."""
    for c in range(num_classes):
        cam = compute_cam(model, x, "cam", target=c)
        gc_ = compute_cam(model, x, "gradcam", target=c)
        assert cam.layer == gc_.layer
        hw = cam.raw.shape[-1] * cam.raw.shape[-2]
        scale = float(cam.weights.abs().max())
        assert torch.allclose(gc_.weights, cam.weights / hw, rtol=rtol, atol=rtol * scale / hw)
        assert torch.allclose(gc_.raw, F.relu(cam.raw) / hw, rtol=rtol, atol=rtol * float(cam.raw.abs().max()) / hw)
    return cam


def test_c23_gradcam_equals_cam_up_to_scale_tiny(tiny):
    _check_gradcam_is_scaled_cam(tiny, _x(2, 1, 8, 8), 3)


def test_c23_gradcam_equals_cam_up_to_scale_resnet20():
    torch.manual_seed(0)
    model = create_model("resnet20").eval()
    cam = _check_gradcam_is_scaled_cam(model, _x(2, 3, 32, 32), 2)
    assert cam.layer == "features.layer3.2.relu #2" and cam.raw.shape == (2, 8, 8)
    # the default layer is a row of `deepnotes inspect`, named the same way
    rows = summarize(model, (3, 32, 32)).rows
    assert cam.layer in {r.name + (f" #{r.call}" if r.call != 1 else "") for r in rows}


def test_gradcam_is_not_cam_when_the_head_is_not_gap_fc():
    """The check above can fail: with a flatten + MLP head the gradient varies over positions."""
    model = _seeded(TinyResNet(fc_head=True))
    x = _x(2, 1, 6, 6)
    r = compute_cam(model, x, "gradcam")
    A = model.forward_features(x)
    with torch.enable_grad():
        a = A.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(model.forward_head(a).gather(1, r.target[:, None]).sum(), a)
    assert float(g.std((2, 3)).max()) > 1e-3  # not constant per channel
    with pytest.raises(UserError, match=r"TinyResNet.*gradcam"):
        compute_cam(model, x, "cam")


# --------------------------------------------------------------------------- Grad-CAM(++) by hand


def test_gradcam_pp_closed_form_for_gap_fc(tiny):
    """With g_k = w_k^c / Z constant over positions and S_k = sum A_k:
    a_ij = g^2 / (2 g^2 + S g^3) = 1 / (2 + S g), w_k = Z * ReLU(g_k) / (2 + S_k g_k)."""
    x = _x(2, 1, 8, 8)
    A = tiny.forward_features(x).detach()
    Z = A.shape[-1] * A.shape[-2]
    for c in range(3):
        r = compute_cam(tiny, x, "gradcam++", target=c)
        g = (tiny.head.weight[c] / Z).detach().expand(2, -1)
        S = A.sum((2, 3))
        expected = torch.where(g != 0, Z * g.clamp_min(0) / (2 + S * g), torch.zeros_like(g))
        assert torch.allclose(r.weights, expected, rtol=1e-5, atol=1e-7)
        assert torch.allclose(r.raw, F.relu((expected[:, :, None, None] * A).sum(1)), rtol=1e-5, atol=1e-6)


def _gradcam_by_hand(model: TinyResNet, x, target, point: str):
    """Grad-CAM at a point inside the block, recomputed with plain autograd (no hooks, no
    in-place ops): 'bn1' (before the in-place ReLU), 'relu' (its 1st call), 'relu #2'."""
    b = model.block
    h = model.stem(x)
    a1 = b.bn1(b.conv1(h))
    if point == "bn1":
        a1 = a1.detach().requires_grad_(True)
        A = a1
    r1 = F.relu(a1)
    if point == "relu":
        r1 = r1.detach().requires_grad_(True)
        A = r1
    out = F.relu(b.bn2(b.conv2(r1)) + h)
    if point == "relu #2":
        out = out.detach().requires_grad_(True)
        A = out
    logits = model.forward_head(out)
    (g,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), A)
    w = g.mean((2, 3))
    return F.relu((w[:, :, None, None] * A).sum(1)), w


@pytest.mark.parametrize("layer", ["block.bn1", "block.relu", "block.relu #2", "block.relu#2", ("block.relu", 2)])
def test_gradcam_layer_names_and_call_index_by_hand(layer):
    """Layers by the names `deepnotes inspect` prints, '#k' picking the k-th call of a shared
    module; the in-place ReLU after bn1 must not change the captured bn1 map. rtol 1e-5."""
    model = _seeded(TinyResNet())
    x = _x(3, 1, 6, 6)
    r = compute_cam(model, x, "gradcam", layer=layer)
    point = parse_layer(layer)[0].split(".")[1] + (" #2" if parse_layer(layer)[1] == 2 else "")
    raw, w = _gradcam_by_hand(model, x, r.predicted, point)
    assert r.layer == "block." + point
    assert torch.allclose(r.weights, w, rtol=1e-5, atol=1e-7)
    assert torch.allclose(r.raw, raw, rtol=1e-5, atol=1e-6)
    if point == "bn1":  # the map used the pre-ReLU values: some weights x activations negative
        A = model.block.bn1(model.block.conv1(model.stem(x)))
        assert float(A.detach().min()) < 0


def test_default_layer_is_the_last_stage_even_after_an_inplace_relu():
    model = _seeded(TinyResNet())
    r = compute_cam(model, _x(1, 1, 6, 6), "gradcam")
    assert r.layer == "block.relu #2"  # not "block" (a container) nor "stem.1"
    # vgg_small ends in BN -> ReLU(inplace): both return the same tensor object; the map is the ReLU's
    torch.manual_seed(0)
    vgg = create_model("vgg_small").eval()
    r = compute_cam(vgg, _x(1, 1, 28, 28), "cam")
    assert r.layer == "features.stage4.relu1" and r.raw.shape == (1, 3, 3)


# --------------------------------------------------------------------------- saliency


def test_saliency_of_a_linear_model_is_the_weight_row():
    """For y = W flatten(x) + b, dy^c/dx = W_c: the map is max over channels of |W_c|."""
    torch.manual_seed(0)
    model = create_model("mlp", num_classes=3, in_chans=2, img_size=(3, 4), hidden=()).eval()
    x = _x(2, 2, 3, 4)
    r = compute_cam(model, x, "saliency", target=[2, 0])
    W = model.head.weight.detach().view(3, 2, 3, 4)
    expected = W[[2, 0]].abs().amax(1)
    assert r.layer is None and r.layout == "input"
    assert torch.allclose(r.raw, expected, rtol=1e-6, atol=1e-7)
    lo, hi = expected.amin((1, 2), keepdim=True), expected.amax((1, 2), keepdim=True)
    assert torch.allclose(r.heatmap, (expected - lo) / (hi - lo), atol=1e-6)


def test_models_without_a_map_point_to_saliency():
    model = create_model("mlp", num_classes=3, in_chans=1, img_size=8).eval()
    with pytest.raises(UserError, match="saliency"):
        compute_cam(model, _x(1, 1, 8, 8), "gradcam", model_name="mlp")


# --------------------------------------------------------------------------- transformers


class ToTokens(nn.Module):
    """(B, D, h, w) -> (B, h*w, D), row-major, optionally with a learned CLS token in front."""

    def __init__(self, dim: int, cls: bool):
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, dim)) if cls else None

    def forward(self, x):
        t = x.flatten(2).transpose(1, 2)
        return t if self.cls is None else torch.cat([self.cls.expand(len(t), -1, -1), t], 1)


class PatchCNN(nn.Module):
    def __init__(self, dim=8, num_classes=3):
        super().__init__()
        self.embed = nn.Conv2d(1, dim, 4, stride=4)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        return self.head(self.embed(x).mean((2, 3)))


class PatchTokens(nn.Module):
    """The same computation on tokens: mean over the patch tokens (CLS ignored) -> linear."""

    def __init__(self, cnn: PatchCNN, cls: bool):
        super().__init__()
        self.embed, self.head = cnn.embed, cnn.head
        self.tokens = ToTokens(cnn.embed.out_channels, cls)
        self.cls = cls

    def forward(self, x):
        t = self.tokens(self.embed(x))
        return self.head((t[:, 1:] if self.cls else t).mean(1))


@pytest.mark.parametrize("cls", [False, True])
def test_gradcam_on_tokens_equals_gradcam_on_the_map(cls):
    """Tokens (B, [1+] h*w, D) read back as (B, D, h, w): on a non-square 8x12 input (grid 2x3)
    Grad-CAM at the token layer must equal Grad-CAM at the conv map it came from. rtol 1e-5."""
    torch.manual_seed(0)
    cnn = PatchCNN().eval()
    tok = PatchTokens(cnn, cls).eval()
    x = _x(2, 1, 8, 12)
    a = compute_cam(cnn, x, "gradcam", layer="embed")
    b = compute_cam(tok, x, "gradcam", layer="tokens")
    assert a.raw.shape == b.raw.shape == (2, 2, 3)
    assert b.layout == ("tokens+cls" if cls else "tokens")
    assert torch.allclose(a.weights, b.weights, rtol=1e-5, atol=1e-7)
    assert torch.allclose(a.raw, b.raw, rtol=1e-5, atol=1e-6)
    assert torch.allclose(a.heatmap, b.heatmap, atol=1e-5)
    with pytest.raises(UserError, match="tokens.*gradcam"):
        compute_cam(tok, x, "cam", layer="tokens")


class TinyViT(nn.Module):
    """Patch conv -> tokens + CLS + positions -> 2 pre-norm transformer layers -> LayerNorm -> CLS -> linear."""

    def __init__(self, dim=16, num_classes=3, img=8, patch=4):
        super().__init__()
        self.patch_embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + (img // patch) ** 2, dim) * 0.5)
        layer = dict(d_model=dim, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.Sequential(*[nn.TransformerEncoderLayer(**layer) for _ in range(2)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward_features(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(len(t), -1, -1), t], 1) + self.pos_embed
        return self.norm(self.blocks(t))

    def forward_head(self, x):
        return self.head(x[:, 0])

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def test_gradcam_works_on_a_vit_out_of_the_box():
    torch.manual_seed(0)
    model = TinyViT().eval()
    x = _x(2, 1, 8, 8)
    r = compute_cam(model, x, "gradcam")
    # after the last attention everything is per token, so the patch tokens' gradient is
    # zero there; the default is the last layer that still feeds the attention
    assert r.layer == "blocks.1.norm1" and r.layout == "tokens+cls"
    assert r.raw.shape == (2, 2, 2) and r.heatmap.shape == (2, 8, 8)
    assert float(r.raw.abs().sum()) > 0 and not r.notes
    late = compute_cam(model, x, "gradcam", layer="norm")
    assert float(late.raw.abs().sum()) == 0 and "zero everywhere" in late.notes[0]
    for method in ("gradcam++", "saliency"):
        assert compute_cam(model, x, method).heatmap.shape == (2, 8, 8)


@pytest.mark.parametrize("name", ["vit_tiny_28", "vit_ti_16"])
def test_gradcam_on_the_registered_vits(name):
    """The deepnotes ViTs (class token, 4x4 and 14x14 patch grids) give a non-zero map out of the box."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, **({"img_size": 224} if name == "vit_ti_16" else {})).eval()
    size = (28, 28) if name == "vit_tiny_28" else (224, 224)
    x = _x(1, model.patch_embed.proj.in_channels, *size)
    r = compute_cam(model, x, "gradcam")
    assert r.layout == "tokens+cls" and r.layer.endswith("norm1")
    assert r.heatmap.shape == (1, *size) and float(r.raw.abs().sum()) > 0
    assert tuple(r.raw.shape[1:]) == tuple(model.patch_embed.grid_size)  # (4, 4) and (14, 14)


# --------------------------------------------------------------------------- errors, targets


def test_wrong_layer_names(tiny):
    x = _x(1, 1, 8, 8)
    with pytest.raises(UserError, match=r"no layer 'feature\.2'.*closest: features\.2.*deepnotes inspect"):
        compute_cam(tiny, x, layer="feature.2")
    with pytest.raises(UserError, match=r"runs 1 time.*'features\.1 #2' does not exist"):
        compute_cam(tiny, x, layer="features.1 #2")
    with pytest.raises(UserError, match="not a feature map"):
        compute_cam(tiny, x, layer="head")
    with pytest.raises(UserError, match="unknown CAM method"):
        compute_cam(tiny, x, method="gradcam+")
    assert "features.2" in layer_names(tiny) and "" not in layer_names(tiny)


def test_non_gap_models_get_a_clear_cam_error():
    torch.manual_seed(0)
    model = create_model("lenet5").eval()
    with pytest.raises(UserError, match=r"lenet5 cannot give a CAM.*global average pooling.*gradcam"):
        compute_cam(model, _x(1, 1, 32, 32), "cam", model_name="lenet5")
    r = compute_cam(model, _x(1, 1, 32, 32), "gradcam")
    assert r.layer == "features.act4" and r.raw.shape == (1, 5, 5)  # c5's output is 1x1: the last real map


def test_targets(tiny):
    x = _x(3, 1, 8, 8)
    r = compute_cam(tiny, x)
    assert torch.equal(r.target, tiny(x).argmax(1)) and torch.equal(r.predicted, r.target)
    r = compute_cam(tiny, x, target=[0, 1, 2])
    assert r.target.tolist() == [0, 1, 2]
    assert torch.allclose(r.target_prob, torch.softmax(tiny(x), 1)[[0, 1, 2], [0, 1, 2]])
    # images are explained independently: one at a time gives the same maps
    for i in range(3):
        one = compute_cam(tiny, x[i : i + 1], target=i)
        assert torch.allclose(one.raw[0], r.raw[i], atol=1e-6)
    with pytest.raises(UserError, match="outside 0..2"):
        compute_cam(tiny, x, target=3)
    with pytest.raises(UserError, match="batch of 3"):
        compute_cam(tiny, x, target=[0, 1])


# --------------------------------------------------------------------------- state and leaks


def _hook_count(model: nn.Module) -> int:
    from torch.nn.modules import module as M

    n = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks) for m in model.modules())
    n += sum(len(getattr(p, "_backward_hooks", None) or {}) for p in model.parameters())
    return n + len(M._global_forward_hooks) + len(M._global_forward_pre_hooks) + len(M._global_backward_hooks)


class Exploding(TinyCNN):
    def __init__(self):
        super().__init__()
        self.explode = False

    def forward_head(self, x):
        if self.explode:
            raise RuntimeError("boom")
        return super().forward_head(x)


def test_model_state_is_restored():
    model = _seeded(TinyResNet())
    model.train()
    model.block.bn1.eval()
    model.stem[0].weight.requires_grad_(False)
    flags = [m.training for m in model.modules()]
    req = [p.requires_grad for p in model.parameters()]
    stats = model.block.bn1.running_mean.clone()
    for method in ("cam", "gradcam", "gradcam++", "saliency"):
        compute_cam(model, _x(2, 1, 6, 6), method)
    assert [m.training for m in model.modules()] == flags
    assert [p.requires_grad for p in model.parameters()] == req
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(model.block.bn1.running_mean, stats)  # ran in eval mode
    # a fully frozen model still gets its maps (the gradient flows from the input copy)
    for p in model.parameters():
        p.requires_grad_(False)
    assert float(compute_cam(model, _x(1, 1, 6, 6), "gradcam").raw.abs().sum()) > 0


def test_no_hooks_or_memory_leak_over_1000_runs():
    """1,000 runs (all methods, default and named layers, and runs that fail in the middle):
    no hook is left on any module or globally, no torch-function mode is left active, the
    training flags are back, and memory does not grow over the last 900 runs: neither the
    GC-tracked objects (bound 300) nor the blocks Python has allocated (bound 200; measured
    about -400, and leaking one bare object() per run gives about +400)."""
    model = Exploding().train()
    x = _x(2, 1, 8, 8)
    before = _hook_count(model)
    plan = [("gradcam", None), ("cam", None), ("gradcam++", "features.3"), ("saliency", None), ("gradcam", "features.1")]

    def run(i):
        method, layer = plan[i % len(plan)]
        if i % 50 == 7:  # a failure after the hooks are in place
            model.explode = True
            try:
                with pytest.raises(RuntimeError, match="boom"):
                    compute_cam(model, x, method, layer=layer)
            finally:
                model.explode = False
        elif i % 50 == 13:
            with pytest.raises(UserError):
                compute_cam(model, x, "gradcam", layer="features.1 #3")
        else:
            compute_cam(model, x, method, layer=layer)

    for i in range(100):
        run(i)
    gc.collect()
    n0, b0 = len(gc.get_objects()), sys.getallocatedblocks()
    for i in range(100, 1000):
        run(i)
    gc.collect()
    n1, b1 = len(gc.get_objects()), sys.getallocatedblocks()
    assert _hook_count(model) == before
    assert torch._C._len_torch_function_stack() == 0
    assert model.training and all(m.training for m in model.modules())
    assert n1 - n0 < 300, f"{n1 - n0} more live objects after 900 runs"
    assert b1 - b0 < 200, f"{b1 - b0} more allocated blocks after 900 runs"


# --------------------------------------------------------------------------- pictures


def test_overlay():
    img = torch.arange(16, dtype=torch.uint8).view(1, 4, 4) * 16
    heat = torch.linspace(0, 1, 16).view(4, 4)
    plain = overlay(img, heat, alpha=0.0)
    assert plain.shape == (4, 4, 3) and plain.dtype.name == "uint8"
    assert (plain == img[0, :, :, None].numpy()).all()  # gray -> RGB, unchanged
    full = overlay(img, torch.zeros(4, 4), alpha=1.0)
    assert (full == [0, 0, 128]).all()  # jet(0) = (0, 0, 0.5)
    with pytest.raises(ValueError, match="heatmap is"):
        overlay(img, torch.zeros(2, 2))


def test_draw_cam_writes_a_png(tiny, tmp_path):
    x = _x(3, 1, 8, 8)
    results = [compute_cam(tiny, x, m) for m in ("cam", "gradcam", "saliency")]
    assert all(isinstance(r, CamResult) for r in results)
    out = draw_cam(x, results, tmp_path / "cam.png", class_names=["a", "b", "c"])
    from PIL import Image

    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > im.height  # 3 rows, 4 columns
    with pytest.raises(ValueError, match="must match"):
        draw_cam(x[:2], results, tmp_path / "bad.png")
