"""Every registered model: published parameter counts, the model contract, shapes, gradients;
the registration API; LeNet-5 in detail.

The contract every family keeps (test_model_contract, for every registered name):
- forward(x) == forward_head(forward_features(x)), exactly, in eval mode;
- classification: forward_head(f, pre_logits=True) is what the last layer of `head` turns
  into the logits;
- `feature_layers` name real modules, the same as `feature_info` (where a model has it),
  whose num_chs are the channels those modules put out;
- `classifier_modules` name real modules (classification: "head" first) and are exactly the
  ones whose parameter or buffer shapes change with num_classes (transfer learning replaces them);
- a model with auxiliary outputs has aux_loss(y, loss_fn), and training through it reaches
  every parameter.
"""

import pytest
import torch
from torch import nn

from deepnotes.errors import UserError
from deepnotes.models import MODELS, builder_accepts, create_model, get_model_entry, list_models
from deepnotes.models.lenet import C3_TABLE, PartialConv2d
from deepnotes.registry import Variant, register_variants


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(name: str, **overrides) -> torch.nn.Module:
    """The model's structure (shapes, parameter count) without allocating its weights."""
    with torch.device("meta"):
        return create_model(name, **overrides)


@pytest.mark.parametrize("name", list_models())
def test_published_parameter_count(name):
    entry = get_model_entry(name)
    if entry.num_params is None:
        pytest.skip("no published count")
    assert n_params(on_meta(name)) == entry.num_params


def _tiny_build(name: str) -> tuple[dict, tuple[int, int]]:
    """Builder overrides and an input size as small as the model takes: ImageNet-size models get
    64x64 (the smallest that every stem can take), small ones 32x32, fixed-size ones their own."""
    entry = get_model_entry(name)
    size = entry.input_size[1:] if entry.fixed_input_size else ((64, 64) if entry.input_size[1] > 64 else (32, 32))
    kwargs = {"img_size": list(size)} if builder_accepts(name, "img_size") else {}
    return kwargs, tuple(size)


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    named = [*model.named_parameters(), *model.named_buffers()]  # buffers too: FCN's fixed upsampling kernel
    return {n: tuple(t.shape) for n, t in named}


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


IMAGE_MODELS = [n for n in list_models() if get_model_entry(n).inputs == "images"]
# sequence-to-sequence token models; word-vector models (word2vec, glove, ...) are tested in test_word_vectors.py
TOKEN_MODELS = [n for n in list_models() if get_model_entry(n).inputs == "tokens" and get_model_entry(n).task == "translation"]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_model_contract(name):
    """Tiny input, 7 classes: the contract in the module docstring, right shape, finite outputs,
    and backward (with the auxiliary loss, as the training loop adds it) reaches every parameter."""
    entry = get_model_entry(name)
    in_chans = entry.input_size[0]
    kwargs, size = _tiny_build(name)
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, **kwargs)
    expected: tuple[int, ...] = (2, 7)
    if entry.task == "segmentation":  # a score map per class; the paper's U-Net needs a size its valid convs fit
        if hasattr(model, "valid_input_size"):
            size = tuple(model.valid_input_size(s) for s in size)
        expected = (2, 7, *(model.output_size(s) if hasattr(model, "output_size") else s for s in size))
    x = torch.randn(2, in_chans, *size)

    # feature layers: real modules, as feature_info says, with the channels it says
    outputs = {}
    hooks = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: outputs.__setitem__(n, o)) for n in model.feature_layers
    ]
    info = getattr(model, "feature_info", None)
    if info is not None:
        assert [f["module"] for f in info] == list(model.feature_layers)

    # forward == forward_head(forward_features(x)), and pre_logits -> the head's last layer -> logits
    model.eval()
    with torch.no_grad():
        out = model(x)
        for h in hooks:
            h.remove()
        features = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(features), out, rtol=0, atol=0)
        if entry.task == "classification":
            pre = model.forward_head(features, pre_logits=True)
            last = model.head[-1] if isinstance(model.head, nn.Sequential) else model.head
            torch.testing.assert_close(last(pre), out, rtol=0, atol=0)
    assert out.shape == expected
    assert torch.isfinite(out).all()
    assert sorted(outputs) == sorted(model.feature_layers)
    for f in info or ():
        o = outputs[f["module"]]
        o = o[0] if isinstance(o, tuple) else o  # U-Net's encoder blocks give (pooled, skip)
        assert o.shape[1] == f["num_chs"], f

    # classifier modules: real, "head" first for classifiers, and exactly what num_classes changes
    classifier = tuple(model.classifier_modules)
    for n in classifier:
        model.get_submodule(n)
    if entry.task == "classification":
        assert classifier[0] == "head"
    other = _shapes(on_meta(name, num_classes=3, **kwargs))
    mine = _shapes(model)
    assert mine.keys() == other.keys()
    changed = {n for n in mine if mine[n] != other[n]}
    assert changed and all(_under(n, classifier) for n in changed), sorted(changed)
    for prefix in classifier:
        if any(_under(n, [prefix]) for n in mine):
            assert any(_under(n, [prefix]) for n in changed), f"{prefix} does not depend on num_classes"

    # training: the auxiliary loss joins as the training loop adds it; every parameter gets a gradient
    model.train()
    out = model(x)
    loss = out.square().mean()
    if hasattr(model, "aux_loss"):
        loss = loss + model.aux_loss(torch.zeros(2, dtype=torch.long), lambda a, y: a.square().mean())
    loss.backward()
    unreached = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not unreached


@pytest.mark.parametrize("name", TOKEN_MODELS)
def test_token_model_contract(name):
    """Token models (translation; later language models): 11 input and 7 output tokens, padded
    batches of several lengths: teacher-forced logits of the right shape, finite; every parameter
    gets a gradient; num_classes changes exactly the classifier modules; greedy and beam
    decoding give token ids; the scratch and fused recurrent paths agree (recurrent models)."""
    torch.manual_seed(0)
    recurrent = "fused" in get_model_entry(name).defaults
    model = create_model(name, vocab_size=11, num_classes=7, **({"fused": False} if recurrent else {}))
    src = torch.tensor([[4, 5, 6, 7], [8, 9, 0, 0]])  # the second is padded (PAD = 0)
    lengths = torch.tensor([4, 2])
    tgt_in = torch.tensor([[1, 4, 5], [1, 6, 0]])  # SOS = 1
    model.eval()
    with torch.no_grad():
        out = model(src, lengths, tgt_in)
        if recurrent:
            fused = create_model(name, vocab_size=11, num_classes=7, fused=True)
            fused.load_state_dict(model.state_dict())
            torch.testing.assert_close(fused.eval()(src, lengths, tgt_in), out, rtol=1e-5, atol=1e-6)
    assert out.shape == (2, 3, 7) and torch.isfinite(out).all()
    classifier = tuple(model.classifier_modules)
    mine, other = _shapes(model), _shapes(on_meta(name, vocab_size=11, num_classes=3))
    changed = {n for n in mine if mine[n] != other[n]}
    assert changed and all(_under(n, classifier) for n in changed), sorted(changed)
    tokens, _ = model.greedy(src, lengths, max_len=5)
    beams, _ = model.beam_search(src, lengths, beam_size=3, max_len=5)
    assert tokens.shape[0] == beams.shape[0] == 2 and tokens.shape[1] <= 5 and beams.shape[1] <= 5
    model.train()
    model(src, lengths, tgt_in).square().mean().backward()
    unreached = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not unreached


# --------------------------------------------------------------------------- registration


class _Linear(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 1, img_size=(4, 4), hidden: int = 3):
        super().__init__()
        self.in_chans, self.img_size, self.hidden = in_chans, tuple(img_size), hidden
        self.head = nn.Linear(in_chans * self.img_size[0] * self.img_size[1], num_classes)

    def forward(self, x):
        return self.head(x.flatten(1))


def test_register_variants_in_a_scope():
    """One Variant record per name; the builder gets num_classes, in_chans and (if asked) img_size
    from it, then the config; the family's paper unless the variant names its own; gone after the scope."""
    variants = {
        "test-linear": Variant("a test model", num_params=None, input_size=(2, 4, 6), num_classes=5, config={"hidden": 7},
                               pass_img_size=True),
        "test-linear-b": Variant("another", num_params=None, input_size=(1, 4, 4), num_classes=3, config={}, paper="own paper"),
    }  # fmt: skip
    with MODELS.scoped():
        register_variants(_Linear, variants, paper="family paper")
        a, b = get_model_entry("test-linear"), get_model_entry("test-linear-b")
        assert a.defaults == {"num_classes": 5, "in_chans": 2, "img_size": (4, 6), "hidden": 7}
        assert (a.paper, b.paper, a.task, a.num_classes) == ("family paper", "own paper", "classification", 5)
        assert a.variant is variants["test-linear"]
        model = create_model("test-linear", num_classes=9)
        assert (model.in_chans, model.img_size, model.hidden, model.head.out_features) == (2, (4, 6), 7, 9)
        assert b.defaults == {"num_classes": 3, "in_chans": 1}
        with pytest.raises(ValueError, match="registered twice"):
            register_variants(_Linear, {"test-linear": variants["test-linear"]})
    assert "test-linear" not in list_models()


def test_register_variants_refuses_what_the_variant_states_itself():
    clash = Variant("x", num_params=None, input_size=(1, 4, 4), num_classes=3, config={"num_classes": 4})
    bad_task = Variant("x", num_params=None, input_size=(1, 4, 4), num_classes=3, config={}, task="")  # no task named
    with MODELS.scoped():
        with pytest.raises(ValueError, match="num_classes"):
            register_variants(_Linear, {"test-clash": clash})
        with pytest.raises(ValueError, match="task"):
            register_variants(_Linear, {"test-ok": Variant("ok", None, (1, 4, 4), {}, 3), "test-task": bad_task})
        assert "test-ok" not in list_models()  # nothing is registered when one variant is wrong


def test_unknown_model_lists_closest_names():
    with pytest.raises(UserError, match="lenet5"):
        create_model("lenet-5")


def test_unknown_override_names_accepted_ones():
    with pytest.raises(UserError, match="does not take widht"):
        create_model("mlp", widht=3)


def test_list_models_pattern():
    assert list_models("lenet*") == ["lenet5", "lenet5_relu"]


# --------------------------------------------------------------------------- LeNet-5


def test_lenet5_layer_parameter_counts_match_the_paper():
    """LeCun et al. 1998, section II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164."""
    model = create_model("lenet5")
    f = model.features
    counts = {name: n_params(getattr(f, name)) for name in ("c1", "s2", "c3", "s4", "c5")}
    assert counts == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120}
    assert n_params(model.head[1]) == 10164  # F6
    assert n_params(model) - n_params(model.head[3]) == 60000  # the paper's C1..F6 total


def test_lenet5_c3_follows_table_1():
    """Output map o depends on input map i exactly when Table I connects them."""
    torch.manual_seed(0)
    conv = PartialConv2d(6, C3_TABLE, 5)
    x = torch.randn(1, 6, 14, 14, requires_grad=True)
    for o, inputs in enumerate(C3_TABLE):
        (grad,) = torch.autograd.grad(conv(x)[0, o].sum(), x)
        depends = {i for i in range(6) if grad[0, i].abs().sum() > 0}
        assert depends == set(inputs), o
    assert sum(len(t) for t in C3_TABLE) == 60


def test_partial_conv_equals_full_conv_with_zeroed_kernels():
    """Oracle: nn.Conv2d with the unconnected kernels set to zero gives the same output."""
    torch.manual_seed(0)
    conv = PartialConv2d(6, C3_TABLE, 5)
    ref = torch.nn.Conv2d(6, 16, 5)
    with torch.no_grad():
        ref.weight.copy_(conv.full_weight())
        ref.bias.copy_(conv.bias)
    x = torch.randn(3, 6, 14, 14)
    torch.testing.assert_close(conv(x), ref(x), rtol=1e-5, atol=1e-6)


def test_lenet5_shapes_and_input_check():
    model = create_model("lenet5")
    x = torch.randn(2, 1, 32, 32)
    assert model.forward_features(x).shape == (2, 120, 1, 1)
    with pytest.raises(ValueError, match="pad 28x28"):
        model(torch.randn(2, 1, 28, 28))


def test_lenet5_relu_is_the_common_form():
    model = create_model("lenet5_relu")
    assert isinstance(model.features.c3, torch.nn.Conv2d) and n_params(model.features.c3) == 2416
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())


def test_mlp_rejects_wrong_input_shape():
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        create_model("mlp")(torch.randn(2, 1, 32, 32))


# --------------------------------------------------------------------------- bad options


# Every width-like option of every family: 0 and -1 used to be clamped to the smallest width
# (width multipliers), or built layers of 0 units, or failed in torch with a RuntimeError.
SIZE_OPTIONS = [
    ("mlp", "hidden", [[0], [16, -1], [1.5], 5]),
    ("mlp", "img_size", [0, [8, -1]]),
    ("alexnet_small", "width", [0, -1, float("inf")]),
    ("alexnet_small", "fc_width", [0, -1]),
    ("alexnet_small", "pool_size", [0, -1]),
    ("vgg_small", "width", [0, -1, float("nan")]),
    ("vgg_small", "stages", [[[0]], [[16], [-8]]]),
    ("vgg_small", "fc_width", [0, -1]),
    ("googlenet_small", "width", [0, -1]),
    ("resnet20", "width", [0, -1]),
    ("resnet20", "widths", [[0, 32, 64], [16, -1, 64]]),
    ("resnet20", "stem_width", [0, -1]),
    ("densenet_small", "growth_rate", [0, -1]),
    ("densenet_small", "num_init_features", [0, -1]),
    ("densenet_small", "bn_size", [-1]),
    ("vit_tiny_28", "embed_dim", [0, -1]),
    ("vit_tiny_28", "num_heads", [0, -1]),
    ("vit_tiny_28", "patch_size", [0, -1]),
    ("vit_tiny_28", "mlp_ratio", [0, -1]),
    ("unet_small", "base_width", [0, -1]),
    ("fcn8s_small", "fc_width", [0, -1]),
    ("fcn8s_small", "stages", [[[0], [32], [64], [128], [128]]]),
]


@pytest.mark.parametrize("name, option, values", SIZE_OPTIONS, ids=[f"{n}-{o}" for n, o, _ in SIZE_OPTIONS])
def test_bad_sizes_are_refused_naming_the_option(name, option, values):
    for value in values:
        with pytest.raises(UserError) as e:
            on_meta(name, **{option: value})
        message = str(e.value)
        assert message.startswith(f"model {name!r} cannot be built with {option}=") and option in message.split(": ", 1)[1]
        assert "\n" not in message


def test_small_positive_widths_still_build():
    # the documented floors stay (at least 8 channels for VGG/AlexNet/GoogLeNet, 1 for ResNet)
    for name in ("vgg_small", "alexnet_small", "googlenet_small", "resnet20"):
        assert n_params(on_meta(name, width=0.01)) > 0


class _Picky(nn.Module):
    """A builder that raises ValueError for depth != 1; built by default with depth=2 below."""

    def __init__(self, num_classes=10, in_chans=1, depth=1):
        super().__init__()
        if depth != 1:
            raise ValueError(f"depth must be 1, got {depth}")
        self.head = nn.Linear(in_chans, num_classes)


def test_build_errors_become_user_errors_only_for_the_users_overrides():
    with MODELS.scoped():
        register_variants(_Picky, {
            "test-picky": Variant("x", None, (1, 4, 4), {}, 3),
            "test-broken": Variant("x", None, (1, 4, 4), {"depth": 2}, 3),
        })  # fmt: skip
        with pytest.raises(UserError, match=r"^model 'test-picky' cannot be built with depth=3: depth must be 1, got 3$"):
            create_model("test-picky", depth=3)
        # the variant as registered fails: a bug, shown as such (also when the overrides repeat its defaults)
        for overrides in ({}, {"num_classes": 3, "in_chans": 1, "depth": 2}):
            with pytest.raises(ValueError, match="depth must be 1, got 2") as e:
                create_model("test-broken", **overrides)
            assert not isinstance(e.value, UserError)
