"""Lab experiments C18 (plain nets degrade with depth, residual nets do not) and C20 (transfer by
retraining the head): bad depths, the judges on hand-made numbers, the pieces (class subsets) by
hand (tests/test_lab.py runs every quick run and its opposite evidence)."""

import pytest
import torch
from labcheck import quiet

from deepnotes.lab import run_experiment
from deepnotes.lab.cnn.depth import judge_c18
from deepnotes.lab.cnn.transfer import class_subset, judge_c20
from deepnotes.lab.common import Data


def test_c18_depths_must_be_6n_plus_2(tmp_path):
    with pytest.raises(ValueError, match="6n \\+ 2"):
        run_experiment("C18", tmp_path, quick=True, log=quiet, depths=(8, 21))


def _c18_numbers(plain, residual):
    nets = {str(d): {"plain": {"train_error": p, "test_error": p + 0.02}, "residual": {"train_error": r, "test_error": r + 0.02}}
            for d, p, r in zip((20, 56), plain, residual)}  # fmt: skip
    return {"depths": [20, 56], "nets": nets, "margin": 0.01, "residual": True, "data": "x", "n_train": 1, "epochs": 1}


def test_c18_judge_on_hand_made_numbers():
    assert judge_c18(_c18_numbers((0.05, 0.10), (0.05, 0.04)))[0] == "holds"
    assert judge_c18(_c18_numbers((0.05, 0.055), (0.05, 0.04)))[0] == "does not hold"  # plain barely worse: noise
    assert judge_c18(_c18_numbers((0.05, 0.10), (0.05, 0.07)))[0] == "holds with a correction"  # residual degrades less
    assert judge_c18(_c18_numbers((0.05, 0.10), (0.05, 0.095)))[0] == "does not hold"  # residual degrades as much


def _c20_numbers(head, fine, scratch, head_s=1.0, fine_s=3.0):
    arm = lambda acc, s: {"test_accuracy": [acc], "seconds": [s], "trainable_params": 10}  # noqa: E731
    return {"arms": {"head-only": arm(head, head_s), "fine-tune": arm(fine, fine_s), "scratch": arm(scratch, fine_s)},
            "target_classes": [5], "source_classes": [0], "n_target_train": 1, "epochs": 1, "pretrained": True}  # fmt: skip


def test_c20_judge_on_hand_made_numbers():
    assert judge_c20(_c20_numbers(0.88, 0.90, 0.80))[0] == "holds"
    assert judge_c20(_c20_numbers(0.80, 0.90, 0.70))[0] == "holds with a correction"
    assert judge_c20(_c20_numbers(0.80, 0.90, 0.85))[0] == "does not hold"  # scratch is better
    assert judge_c20(_c20_numbers(0.88, 0.90, 0.80, head_s=2.9))[0] == "does not hold"  # not cheaper


def test_class_subset_relabels_in_the_given_order():
    x = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1)
    y = torch.tensor([0, 1, 2, 3, 2, 1])
    data = Data("toy", x, y, x, y, 4, ("a", "b", "c", "d"))
    sub = class_subset(data, [2, 1])
    assert sub.train_y.tolist() == [1, 0, 0, 1] and sub.train_x.flatten().tolist() == [1, 2, 4, 5]
    assert sub.classes == ("c", "b") and sub.num_classes == 2
    with pytest.raises(ValueError, match="distinct labels in 0..3"):
        class_subset(data, [1, 4])
