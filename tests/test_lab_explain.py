"""Lab experiments C21-C24 and C47 (augmentation, templates, CAM, adversarial examples, pooling):
the pieces by hand; the judges on hand-made numbers (tests/test_lab.py runs every quick run and its
opposite evidence)."""

import numpy as np
import pytest
import torch
from torch import nn

from deepnotes.data.transforms import random_rotate
from deepnotes.lab.explain import inside as explain

# ---------------------------------------------------------------- pieces by hand


def test_random_rotate_by_hand():
    x = (torch.arange(16, dtype=torch.uint8) * 10).reshape(1, 1, 4, 4)
    assert torch.equal(random_rotate(x, 90.0), torch.rot90(x, 1, (-2, -1)))  # counter-clockwise as displayed
    assert torch.equal(random_rotate(x, -90.0), torch.rot90(x, -1, (-2, -1)))
    assert torch.equal(random_rotate(x, 0.0), x)
    f = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    out = random_rotate(f, torch.tensor([180.0, 0.0]))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[0], f[0].flip(-1).flip(-2), atol=1e-6, rtol=0)  # per-image angles
    torch.testing.assert_close(out[1], f[1], atol=1e-6, rtol=0)
    # not square: a horizontal bar through the centre of a 3x5 image turns into the centre column (clipped to 3)
    bar = torch.zeros(1, 1, 3, 5, dtype=torch.uint8)
    bar[0, 0, 1, :] = 200
    want = torch.zeros(3, 5, dtype=torch.uint8)
    want[:, 2] = 200
    assert torch.equal(random_rotate(bar, 90.0)[0, 0], want)
    # 45 degrees, by hand: the centre pixel of a 3x3 image stays, a corner pixel leaves the frame
    dot = torch.zeros(1, 1, 3, 3)
    dot[0, 0, 1, 1] = 1.0
    assert float(random_rotate(dot, 45.0)[0, 0, 1, 1]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="angles for 2 images"):
        random_rotate(f, torch.tensor([1.0, 2.0, 3.0]))


def test_shifted_and_rotated_test_sets():
    x = torch.zeros(8, 1, 6, 6, dtype=torch.uint8)
    x[:, 0, 2:4, 2:4] = 255
    s = explain.shifted(x, 2, seed=0)
    assert torch.equal(s.sum((1, 2, 3)), x.sum((1, 2, 3)))  # moved, nothing cut off
    moved = [torch.nonzero(s[i, 0])[0] - torch.tensor([2, 2]) for i in range(8)]
    assert all(sorted(m.abs().tolist()) == [0, 2] for m in moved)  # 2 px along one axis
    r = explain.rotated(x, 90.0, seed=0)
    assert torch.equal(r, x)  # a centred square looks the same after +-90 degrees


def test_scramble_tiles_permutes_whole_tiles():
    tiles = torch.tensor([[0, 1], [2, 3]], dtype=torch.uint8).repeat_interleave(2, 0).repeat_interleave(2, 1)
    x = tiles.reshape(1, 1, 4, 4).repeat(16, 1, 1, 1)
    s = explain.scramble_tiles(x, 2, seed=0)
    for img in s[:, 0]:
        blocks = img.reshape(2, 2, 2, 2).permute(0, 2, 1, 3).reshape(4, 4)
        assert all(len(set(b.tolist())) == 1 for b in blocks)  # every tile moved whole
        assert sorted(int(b[0]) for b in blocks) == [0, 1, 2, 3]
        assert not torch.equal(img, x[0, 0])  # never the original order
    with pytest.raises(ValueError, match="divide"):
        explain.scramble_tiles(x, 3, seed=0)


def test_template_correlations_by_hand():
    means = torch.randn(4, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    r = explain.template_correlations(means * 5 + 2, means)  # a scaled copy plus one image common to all
    np.testing.assert_allclose(np.diag(r), 1.0, atol=1e-12)
    r = explain.template_correlations(-means, means)
    np.testing.assert_allclose(np.diag(r), -1.0, atol=1e-12)


class _Head(nn.Module):
    def __init__(self, head: str):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1) if head == "gap" else nn.Identity()
        self.head = nn.Linear(3 if head == "gap" else 3 * 5 * 5, 4)

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, a):
        return self.head(self.pool(a).flatten(1))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


@pytest.mark.parametrize("head", ["gap", "flatten"])
def test_contribution_map_adds_up_to_the_score(head):
    model = _Head(head)
    x = torch.randn(6, 1, 5, 5, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 2, 3, 0, 1])
    c = explain.contribution_map(model, x, target)
    with torch.no_grad():
        want = model(x).gather(1, target[:, None])[:, 0] - model.head.bias[target]
    torch.testing.assert_close(c.sum((1, 2)), want, atol=1e-5, rtol=1e-5)


def test_cam_relation_on_gap_and_flatten_heads():
    x = torch.randn(5, 1, 5, 5, generator=torch.Generator().manual_seed(2))
    gap = explain.cam_relation(_Head("gap"), x, "gap")
    assert gap["cam_defined"] and gap["weight_rel_error"] < 1e-6 and gap["map_rel_error"] < 1e-6
    assert gap["fitted_scale"] == pytest.approx(1 / 25, rel=1e-5)
    flat = explain.cam_relation(_Head("flatten"), x, "flat")
    assert not flat["cam_defined"] and "linear" in flat["cam_error"]


def test_pooling_measures_exact_part():
    data = explain.lab_data(True, n_train=64, n_test=40)
    torch.manual_seed(0)
    gap, flat = explain.small_cnn(data, "gap"), explain.small_cnn(data, "flatten")
    m_gap = explain.pooling_measures(gap, data, data.test_x, data.test_y, 2, seed=0)
    m_flat = explain.pooling_measures(flat, data, data.test_x, data.test_y, 2, seed=0)
    assert m_gap["map_permutation_logit_change"] < 1e-5 < 1e-2 < m_flat["map_permutation_logit_change"]
    assert m_gap["map"] == "4x4" and flat.head.in_features == 32 * 16


def test_noise_control_at_eps_zero_is_the_clean_accuracy():
    data = explain.lab_data(True, n_train=64, n_test=50)
    torch.manual_seed(0)
    model = explain.small_cnn(data)
    acc = explain.noise_accuracy(model, data.test_x, data.test_y, [0.0, 1.0], data, seed=0)
    assert acc[0] == pytest.approx(explain.accuracy_on(model, data.test_x, data.test_y, data), abs=1e-12)


# ---------------------------------------------------------------- judges


def _c21(plain=(0.97, 0.7, 0.4), aug=(0.96, 0.85, 0.7)):
    keys = ("plain", "shift 1px", "rotate 30°")
    return {"data": "digits", "n_train": 1347, "epochs": 12, "augmentation": "shift <= 1px, rotation <= 30°", "margin": 0.03,
            "tolerance": 0.02, "arms": {"plain": {"accuracy": dict(zip(keys, plain))}, "augmented": {"accuracy": dict(zip(keys, aug))}}}  # fmt: skip


def test_judge_c21():
    assert explain.judge_c21(_c21())[0] == "holds"
    assert explain.judge_c21(_c21(aug=(0.90, 0.85, 0.7)))[0] == "holds with a correction"  # 7 points lost on plain images
    assert explain.judge_c21(_c21(aug=(0.97, 0.71, 0.41)))[0] == "does not hold"  # 1 point: below the margin
    assert explain.judge_c21(_c21(aug=(0.97, 0.6, 0.3)))[0] == "does not hold"


def _c22(r):
    return {"data": "digits", "how": "20 epochs", "test_accuracy": 0.85, "correlation": np.asarray(r).tolist()}


def test_judge_c22():
    k = 5
    good = np.full((k, k), -0.1) + np.eye(k) * 0.6
    assert explain.judge_c22(_c22(good))[0] == "holds"
    mostly = good.copy()
    mostly[0] = [0.3, 0.5, 0, 0, 0]  # one template matches another class better
    assert explain.judge_c22(_c22(mostly))[0] == "holds with a correction"
    rng = np.random.default_rng(0)
    assert explain.judge_c22(_c22(rng.uniform(-0.1, 0.1, (k, k))))[0] == "does not hold"


def _c23(w_err=1e-7, defined=True, ctrl_defined=False):
    row = {"cam_defined": defined, "weight_rel_error": w_err, "map_rel_error": 1e-7, "map": "4x4", "fitted_scale": 0.0625,
           "expected_scale": 0.0625, "images_with_negative_cam": 0.5, "gradcam_vs_relu_contribution_rel_error": 1e-7}  # fmt: skip
    ctrl = {"cam_defined": ctrl_defined, "gradcam_vs_relu_contribution_rel_error": 0.9}
    return {"head": "gap", "models": {"small_cnn": row, "resnet20": dict(row)}, "control": ctrl}


def test_judge_c23():
    assert explain.judge_c23(_c23())[0] == "holds"
    assert explain.judge_c23(_c23(w_err=0.3))[0] == "does not hold"
    assert explain.judge_c23(_c23(defined=False))[0] == "does not hold"
    assert explain.judge_c23(_c23(ctrl_defined=True))[0] == "does not hold"


def _c24(pgd=(0.95, 0.6, 0.05), fgsm=(0.95, 0.7, 0.2), noise=(0.95, 0.94, 0.9), adv_pgd=(0.93, 0.85, 0.6)):
    models = {"standard": {"pgd": list(pgd), "fgsm": list(fgsm), "noise": list(noise)}}
    if adv_pgd is not None:
        models["adversarial"] = {"pgd": list(adv_pgd), "fgsm": list(adv_pgd), "noise": list(noise)}
    return {"data": "digits", "eps": [0.0, 0.05, 0.1], "eps_small": 0.1, "pgd_steps": 10, "n_test": 450, "adv_method": "pgd",
            "adv_eps": 0.1, "models": models}  # fmt: skip


def test_judge_c24():
    assert explain.judge_c24(_c24())[0] == "holds"
    assert explain.judge_c24(_c24(adv_pgd=None))[0] == "holds"
    assert explain.judge_c24(_c24(adv_pgd=(0.95, 0.6, 0.08)))[0] == "holds with a correction"  # adversarial training did not help
    assert explain.judge_c24(_c24(pgd=(0.95, 0.9, 0.8)))[0] == "does not hold"  # not fooled
    assert explain.judge_c24(_c24(noise=(0.95, 0.5, 0.3)))[0] == "does not hold"  # any noise does it
    assert explain.judge_c24(_c24(fgsm=(0.95, 0.3, 0.01)))[0] == "does not hold"  # PGD weaker than FGSM


def _c47(gap_change=1e-8, kept=(0.6, 0.3), cos=(0.9, 0.8)):
    m = {"accuracy": 0.95, "accuracy_scrambled": 0.5, "cos_other_class": 0.5, "map": "4x4"}
    return {"data": "digits", "grid": 2, "tile": "4x4", "gap_head": "gap", "margin": 0.1, "models": {
        "gap": {**m, "map_permutation_logit_change": gap_change, "prediction_kept": kept[0], "cos_scrambled": cos[0], "cos_same_class": cos[1]},
        "flatten": {**m, "map_permutation_logit_change": 1.0, "prediction_kept": kept[1], "cos_scrambled": 0.5, "cos_same_class": 0.6}}}  # fmt: skip


def test_judge_c47():
    assert explain.judge_c47(_c47())[0] == "holds"
    assert explain.judge_c47(_c47(cos=(0.75, 0.8)))[0] == "holds"  # 83% of the way from other class (0.5) to same class
    assert explain.judge_c47(_c47(kept=(0.35, 0.3)))[0] == "holds with a correction"
    assert explain.judge_c47(_c47(cos=(0.7, 0.8)))[0] == "holds with a correction"  # 67% of the way
    assert explain.judge_c47(_c47(gap_change=0.5))[0] == "does not hold"
