"""deepnotes.explain.attack: FGSM and PGD in pixel space, accuracy against eps, adversarial batches.

Oracles: FGSM on a two-class linear model worked by hand (the sign of the input gradient is
sign(W_1 - W_0) for label 0), the bounds eps / [0, 1] as facts to check, PGD with one step
of size eps from x equal to FGSM bit for bit, and a small CNN trained on digits here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.data import load_dataset
from deepnotes.data.transforms import InputSpec, as_tensors, channel_stats
from deepnotes.explain.attack import (
    accuracy_vs_eps,
    adversarial_batch,
    draw_attack_examples,
    fgsm,
    pgd,
    plot_accuracy_vs_eps,
    predict,
)


def _small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(16 * 4 * 4, 10),
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained():
    """A small CNN trained 150 steps on digits, fed as the pipeline feeds it: (p - mean) / std."""
    torch.set_num_threads(1)
    d = load_dataset("digits")
    x, y = as_tensors(d.train_x, d.train_y)
    xt, yt = as_tensors(d.test_x, d.test_y)
    mean, std = channel_stats(x)
    spec = InputSpec(1, (8, 8), mean, std)
    torch.manual_seed(0)
    model = _small_cnn()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    xn = spec.normalize(x)
    model.train()
    for _ in range(150):
        i = torch.randint(0, len(x), (64,), generator=g)
        loss = F.cross_entropy(model(xn[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model, spec, xt[:200], yt[:200]


def _loss(model, adv, spec, y) -> float:
    with torch.no_grad():
        model.eval()
        return float(F.cross_entropy(model((adv - spec.mean[0]) / spec.std[0]), y))


# --------------------------------------------------------------------------- by hand


class Linear2(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, -2.0], [0.0, 0.0]]))
            self.fc.bias.zero_()

    def forward(self, z):
        return self.fc(z.flatten(1))


def test_fgsm_by_hand_in_pixel_space():
    """Label 0: d CE / d z = W^T (q - e_0) = q_1 (W_1 - W_0) = q_1 [-1, 2], and d z / d p = 1/std > 0,
    so the step is eps * [-1, +1] in pixels: p = [0.5, 0.95] -> [0.4, 1.05 clipped to 1.0].
    The step is eps in pixels, not eps in the normalized input (which would be eps * std)."""
    p = torch.tensor([0.5, 0.95]).view(1, 1, 1, 2)
    y = torch.tensor([0])
    adv = fgsm(Linear2(), p, y, 0.1, mean=(0.3,), std=(0.2,))
    assert torch.allclose(adv.view(-1), torch.tensor([0.4, 1.0]), atol=1e-7)
    one = pgd(Linear2(), p, y, 0.1, alpha=0.1, steps=1, random_start=False, mean=(0.3,), std=(0.2,))
    assert torch.equal(one, adv)
    # without the clip the second pixel would go up by eps as well
    free = fgsm(Linear2(), p, y, 0.1, mean=(0.3,), std=(0.2,), clamp=None)
    assert torch.allclose(free.view(-1), torch.tensor([0.4, 1.05]), atol=1e-7)


def test_normalized_input_is_refused():
    p = torch.rand(2, 1, 1, 2)
    with pytest.raises(ValueError, match="not the normalized model input"):
        fgsm(Linear2(), (p - 0.5) / 0.1, torch.tensor([0, 1]), 0.1)
    with pytest.raises(ValueError, match="eps must be"):
        fgsm(Linear2(), p, torch.tensor([0, 1]), -0.1)
    with pytest.raises(ValueError, match="steps"):
        pgd(Linear2(), p, torch.tensor([0, 1]), 0.1, steps=0)


# --------------------------------------------------------------------------- on a trained model


def test_eps_zero_changes_nothing(trained):
    model, spec, x, y = trained
    p = x.float() / 255
    assert torch.equal(fgsm(model, x, y, 0.0, mean=spec.mean, std=spec.std), p)
    assert torch.equal(pgd(model, x, y, 0.0, mean=spec.mean, std=spec.std), p)  # random start of radius 0
    clean = int((predict(model, x, mean=spec.mean, std=spec.std)[0] == y).sum()) / len(y)
    for method in ("fgsm", "pgd"):
        (row,) = accuracy_vs_eps(model, x, y, [0.0], method, mean=spec.mean, std=spec.std, steps=3)
        assert row["accuracy"] == clean and row["eps"] == 0 and row["n"] == len(y)
    xb = spec.normalize(x[:8])
    assert torch.equal(adversarial_batch(model, xb, y[:8], "pgd", 0.0, mean=spec.mean, std=spec.std), xb)


@pytest.mark.parametrize("eps", [0.03, 0.2])
def test_perturbation_within_eps_and_pixel_range(trained, eps):
    model, spec, x, y = trained
    p = x.float() / 255  # digits: many pixels at exactly 0 and 1, where the clip matters
    g = torch.Generator().manual_seed(1)
    for adv in (
        fgsm(model, x, y, eps, mean=spec.mean, std=spec.std),
        pgd(model, x, y, eps, steps=5, mean=spec.mean, std=spec.std, generator=g),
        pgd(model, x, y, eps, alpha=eps, steps=5, random_start=False, mean=spec.mean, std=spec.std),
    ):
        assert float((adv - p).abs().max()) <= eps + 1e-6
        assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
        assert float((adv - p).abs().max()) > eps / 2  # it did move


def test_fgsm_lowers_accuracy_and_pgd_is_at_least_as_strong(trained):
    model, spec, x, y = trained
    rows = {m: accuracy_vs_eps(model, x, y, [0.0, 0.1], m, mean=spec.mean, std=spec.std, steps=10) for m in ("fgsm", "pgd")}
    clean, fg, pg = rows["fgsm"][0]["accuracy"], rows["fgsm"][1]["accuracy"], rows["pgd"][1]["accuracy"]
    assert clean > 0.9  # measured 0.97 (200 test digits)
    assert fg < clean - 0.2  # measured 0.49 at eps 0.1 (= 25.5/255); PGD-10 0.44
    assert pg <= fg + 0.02
    # the same batch, PGD without a random start: loss at least FGSM's (measured 1.66 vs 1.52 at eps 0.1, 0.46 vs 0.45 at 0.05)
    p = x.float() / 255
    for eps in (0.05, 0.1):
        a = fgsm(model, x, y, eps, mean=spec.mean, std=spec.std)
        b = pgd(model, x, y, eps, steps=10, random_start=False, mean=spec.mean, std=spec.std)
        assert _loss(model, b, spec, y) >= _loss(model, a, spec, y) - 1e-4
        assert _loss(model, a, spec, y) > _loss(model, p, spec, y) + 0.1


def test_one_pgd_step_of_size_eps_is_fgsm_exactly(trained):
    model, spec, x, y = trained
    for eps in (0.01, 0.1, 0.3):
        a = fgsm(model, x, y, eps, mean=spec.mean, std=spec.std)
        b = pgd(model, x, y, eps, alpha=eps, steps=1, random_start=False, mean=spec.mean, std=spec.std)
        assert torch.equal(a, b)


def test_pgd_is_reproducible_with_a_seeded_generator(trained):
    model, spec, x, y = trained
    runs = [pgd(model, x[:20], y[:20], 0.1, steps=3, mean=spec.mean, std=spec.std, generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(*runs)


def test_adversarial_batch_works_in_the_loops_space(trained):
    """In: the normalized batch a training loop holds. Out: the same space, pixels within eps."""
    model, spec, x, y = trained
    xb, yb = spec.normalize(x[:32]), y[:32]
    model.train()
    try:
        adv = adversarial_batch(model, xb, yb, "pgd", 0.1, mean=spec.mean, std=spec.std, steps=3, generator=torch.Generator().manual_seed(0))
        assert model.training
    finally:
        model.eval()
    pix = adv * spec.std[0] + spec.mean[0]
    p = x[:32].float() / 255
    assert float((pix - p).abs().max()) <= 0.1 + 1e-5
    assert float(pix.min()) >= -1e-5 and float(pix.max()) <= 1 + 1e-5
    ref = pgd(model, p, yb, 0.1, steps=3, mean=spec.mean, std=spec.std, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(pix, ref, atol=1e-5)
    fg = adversarial_batch(model, xb, yb, "fgsm", 0.1, mean=spec.mean, std=spec.std)
    assert torch.allclose(fg * spec.std[0] + spec.mean[0], fgsm(model, p, yb, 0.1, mean=spec.mean, std=spec.std), atol=1e-5)


def test_model_mode_and_gradients_are_restored(trained):
    model, spec, x, y = trained
    model.train()
    model[1].eval()  # one submodule in its own mode
    model[0].weight.requires_grad_(False)
    for p in model.parameters():
        p.grad = None
    model[-1].weight.grad = torch.full_like(model[-1].weight, 7.0)
    flags = [m.training for m in model.modules()]
    stats = model[1].running_mean.clone()
    try:
        fgsm(model, x[:16], y[:16], 0.1, mean=spec.mean, std=spec.std)
        pgd(model, x[:16], y[:16], 0.1, steps=2, mean=spec.mean, std=spec.std)
        accuracy_vs_eps(model, x[:16], y[:16], [0.1], "pgd", mean=spec.mean, std=spec.std, steps=2)
        adversarial_batch(model, spec.normalize(x[:16]), y[:16], "pgd", 0.1, mean=spec.mean, std=spec.std, steps=2)
        assert [m.training for m in model.modules()] == flags
        assert not model[0].weight.requires_grad and model[3].weight.requires_grad
        assert torch.equal(model[-1].weight.grad, torch.full_like(model[-1].weight, 7.0))
        assert all(p.grad is None for n, p in model.named_parameters() if n != "7.weight")
        assert torch.equal(model[1].running_mean, stats)  # attacks ran in eval mode: BN untouched
    finally:
        model[0].weight.requires_grad_(True)
        model[-1].weight.grad = None
        model.eval()


def test_figures(trained, tmp_path):
    from PIL import Image

    model, spec, x, y = trained
    rows = []
    for method in ("fgsm", "pgd"):
        rows += accuracy_vs_eps(model, x[:50], y[:50], [0, 2 / 255, 8 / 255], method, mean=spec.mean, std=spec.std, steps=3)
    out = plot_accuracy_vs_eps(rows, tmp_path / "acc.png")
    adv = fgsm(model, x[:6], y[:6], 0.1, mean=spec.mean, std=spec.std)
    pc, qc = predict(model, x[:6], mean=spec.mean, std=spec.std)
    pa, qa = predict(model, adv, mean=spec.mean, std=spec.std)
    ex = draw_attack_examples(x[:6], adv, y[:6], pc, pa, tmp_path / "ex.png", probs_clean=qc, probs_adv=qa, eps=0.1, method="fgsm")
    for path in (out, ex):
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width > 100
    assert [r["method"] for r in rows] == ["fgsm"] * 3 + ["pgd"] * 3 and rows[3]["steps"] == 3
