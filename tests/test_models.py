"""Every registered model: published parameter counts, shapes, gradients; LeNet-5 in detail."""

import pytest
import torch

from deepnotes.errors import UserError
from deepnotes.models.lenet import C3_TABLE, PartialConv2d
from deepnotes.registry import (
    builder_accepts,
    create_model,
    get_model_entry,
    list_models,
)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_published_parameter_count(name):
    entry = get_model_entry(name)
    if entry.num_params is None:
        pytest.skip("no published count")
    assert n_params(create_model(name)) == entry.num_params


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_num_classes_override(name):
    """Tiny input, 7 classes: right shape, finite, and backward reaches every parameter."""
    entry = get_model_entry(name)
    in_chans = entry.input_size[0]
    # ImageNet-size models get 64x64 (the smallest that every stem can take), small ones 32x32
    size = entry.input_size[1:] if entry.fixed_input_size else ((64, 64) if entry.input_size[1] > 64 else (32, 32))
    kwargs = {"num_classes": 7}
    if builder_accepts(name, "img_size"):
        kwargs["img_size"] = list(size)
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    expected: tuple[int, ...] = (2, 7)
    if entry.task == "segmentation":  # a score map per class; the paper's U-Net needs a size its valid convs fit
        if hasattr(model, "valid_input_size"):
            size = tuple(model.valid_input_size(s) for s in size)
        expected = (2, 7, *(model.output_size(s) if hasattr(model, "output_size") else s for s in size))
    out = model(torch.randn(2, in_chans, *size))
    assert out.shape == expected
    assert torch.isfinite(out).all()
    # GoogLeNet's auxiliary heads act in training: their outputs join the loss (as in the loop)
    loss = out.square().mean() + sum(a.square().mean() for a in getattr(model, "aux_outputs", []))
    loss.backward()
    unreached = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not unreached


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
