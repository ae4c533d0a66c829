"""Segmentation metrics (hand-worked cases and scikit-learn as oracle), the loss, logits -> masks,
and the pictures (palette, overlay, the side-by-side PNG)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import f1_score, jaccard_score

from deepnotes.layers.losses import segmentation_loss
from deepnotes.layers.ops import center_crop
from deepnotes.metrics import confusion_matrix
from deepnotes.metrics.segmentation import (
    SegmentationMetrics,
    dice_per_class,
    iou_per_class,
    mask_from_logits,
    mean_iou,
    pixel_accuracy,
)
from deepnotes.report.masks import draw_masks, overlay_mask, palette
from deepnotes.tasks.segmentation import predict_mask

TARGET = torch.tensor([[0, 0, 1], [1, 2, 2]])
PRED = torch.tensor([[0, 1, 1], [1, 2, 0]])


def test_hand_worked_case():
    """cm rows (true) 0: [1, 1, 0], 1: [0, 2, 0], 2: [1, 0, 1].
    IoU: 0 -> 1 / (1 + 1 + 1) = 1/3, 1 -> 2 / (2 + 1 + 0) = 2/3, 2 -> 1 / (1 + 0 + 1) = 1/2; mean 1/2.
    Dice: 2/4, 4/5, 2/3. Pixel accuracy 4/6."""
    cm = confusion_matrix(TARGET, PRED, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    torch.testing.assert_close(iou_per_class(cm), torch.tensor([1 / 3, 2 / 3, 1 / 2], dtype=torch.float64))
    torch.testing.assert_close(dice_per_class(cm), torch.tensor([1 / 2, 4 / 5, 2 / 3], dtype=torch.float64))
    assert mean_iou(cm) == pytest.approx(0.5)
    assert mean_iou(cm, include_background=False) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert pixel_accuracy(cm) == pytest.approx(4 / 6)


def test_absent_classes_nan_and_left_out_but_false_positives_count():
    cm = confusion_matrix(TARGET, PRED, 5)  # classes 3, 4 in neither: NaN, not in the mean
    iou = iou_per_class(cm)
    assert math.isnan(iou[3]) and math.isnan(iou[4]) and mean_iou(cm) == pytest.approx(0.5)
    pred = PRED.clone()
    pred[0, 0] = 3  # predicted, never true: IoU 0, and it counts
    cm = confusion_matrix(TARGET, pred, 5)
    assert iou_per_class(cm)[3] == 0
    # class 0 loses its only true positive: IoU 0 / (0 + 1 + 2) = 0; then (0 + 2/3 + 1/2 + 0) / 4
    assert mean_iou(cm) == pytest.approx((0 + 2 / 3 + 1 / 2 + 0) / 4)


def test_accumulated_over_batches_equals_sklearn_on_all_pixels():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 6, (10, 16, 16), generator=g)
    pred = torch.where(torch.rand(10, 16, 16, generator=g) < 0.6, target, torch.randint(0, 6, (10, 16, 16), generator=g))
    target[target == 5] = 4  # class 5 only ever predicted
    m = SegmentationMetrics(7)  # class 6 never appears
    for i in range(0, 10, 3):  # batches of 3, 3, 3, 1
        m.update(pred[i : i + 3], target[i : i + 3])
    r = m.compute()
    t, p = target.flatten().numpy(), pred.flatten().numpy()
    labels = list(range(6))
    np.testing.assert_allclose(r["iou"][:6], jaccard_score(t, p, labels=labels, average=None, zero_division=0), rtol=1e-12)
    np.testing.assert_allclose(r["dice"][:6], f1_score(t, p, labels=labels, average=None, zero_division=0), rtol=1e-12)
    assert math.isnan(r["iou"][6]) and r["iou"][5] == 0
    assert r["mean_iou"] == pytest.approx(np.mean(r["iou"][:6]))
    assert r["pixel_accuracy"] == pytest.approx((t == p).mean())
    m.reset()
    assert int(m.confusion.sum()) == 0


def test_update_takes_logits_and_ignore_index():
    logits = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(1))
    target = torch.randint(0, 4, (2, 5, 5), generator=torch.Generator().manual_seed(2))
    a, b = SegmentationMetrics(4), SegmentationMetrics(4)
    a.update(logits, target)
    b.update(logits.argmax(1), target)
    assert torch.equal(a.confusion, b.confusion)
    ignored = target.clone()
    ignored[0] = 255
    c = SegmentationMetrics(4, ignore_index=255)
    c.update(logits, ignored)
    assert int(c.confusion.sum()) == 25 and torch.equal(c.confusion, torch.from_numpy(confusion_matrix(target[1], logits[1].argmax(0), 4)))
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        SegmentationMetrics(4).update(logits, ignored)


def test_one_class_logits_mean_sigmoid_above_half():
    logits = torch.tensor([[[[-2.0, -0.1], [0.1, 3.0]]]])
    assert mask_from_logits(logits).tolist() == [[[0, 0], [1, 1]]]
    assert torch.equal(mask_from_logits(logits), (torch.sigmoid(logits[:, 0]) > 0.5).long())


def test_loss_matches_torch_and_crops_a_larger_target():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 3, 4, 4, generator=g), torch.randint(0, 3, (2, 4, 4), generator=g)
    torch.testing.assert_close(segmentation_loss(logits, target.to(torch.uint8)), F.cross_entropy(logits, target))
    one = logits[:, :1]
    bce = F.binary_cross_entropy_with_logits(one[:, 0], (target > 0).float())
    torch.testing.assert_close(segmentation_loss(one, target), bce)
    big = torch.randint(0, 3, (2, 9, 9), generator=g)  # valid U-Net: logits cover the centre 4x4 (rows 2..5)
    torch.testing.assert_close(segmentation_loss(logits, big), F.cross_entropy(logits, big[:, 2:6, 2:6]))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        segmentation_loss(logits, target[0])


def test_center_crop_odd_margin():
    x = torch.arange(25).view(5, 5)
    assert center_crop(x, (2, 3)).tolist() == [[6, 7, 8], [11, 12, 13]]  # rows 1-2, columns 1-3
    with pytest.raises(ValueError, match="larger"):
        center_crop(x, (6, 5))


def test_predict_mask_restores_training_mode():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 1), torch.nn.BatchNorm2d(3)).train()
    x = torch.randn(2, 1, 4, 4)
    mask = predict_mask(model, x)
    assert model.training and mask.shape == (2, 4, 4) and mask.dtype == torch.int64
    with torch.no_grad():
        assert torch.equal(mask, model.eval()(x).argmax(1))


# --------------------------------------------------------------------------- pictures


def test_palette_fixed_and_distinct():
    p = palette(256)
    assert p[:4].tolist() == [[0, 0, 0], [31, 119, 180], [255, 127, 14], [44, 160, 44]]  # black, tab10
    assert p[20].tolist() == [158, 218, 229]  # the last light tab20 colour
    # VOC map from 21 on: 21 = 0b10101, bits 0, 1, 2 -> bit 7 of R, G, B; bits 3, 4, 5 -> bit 6: (128, 64, 128)
    assert p[21].tolist() == [128, 64, 128]
    assert len({tuple(c) for c in p.tolist()}) == 256
    assert palette(5).tolist() == p[:5].tolist()  # the same colours whatever the number of classes


def test_overlay_mask_hand_worked():
    image = np.full((1, 2, 2), 100, np.uint8)
    mask = np.array([[0, 1], [3, 0]])
    out = overlay_mask(image, mask, alpha=0.25)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [100, 100, 100]  # background untouched
    assert out[0, 1].tolist() == [83, 105, 120]  # 0.75 * 100 + 0.25 * (31, 119, 180), rounded
    assert out[1, 0].tolist() == [86, 115, 86]  # 0.75 * 100 + 0.25 * (44, 160, 44)
    with pytest.raises(ValueError, match="same height and width"):
        overlay_mask(image, np.zeros((3, 3), int))


def test_draw_masks_writes_a_png_in_the_palette(tmp_path):
    images = np.zeros((3, 1, 16, 16), np.uint8)
    images[:, :, 4:12, 4:12] = 200
    target = np.zeros((3, 16, 16), np.int64)
    target[:, 4:12, 4:12] = 3
    pred = target.copy()
    pred[:, 4:8, 4:12] = 1
    path = draw_masks(images, torch.from_numpy(pred), target, ["background", "a", "b", "c"], tmp_path / "masks.png")
    assert path.exists()
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    colors = {tuple(c) for c in pixels.tolist()}
    assert (44, 160, 44) in colors and (31, 119, 180) in colors  # classes 3 and 1 in their palette colours
    assert (255, 127, 14) not in colors  # class 2 appears nowhere
