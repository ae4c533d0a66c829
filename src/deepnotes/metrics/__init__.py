"""Metrics: pure functions of predictions and targets, no plotting, each tested against the
field's reference implementation (scikit-learn here; COCO's evaluator, sacreBLEU and the like
as the detection, text and generative tasks arrive).

    classification   confusion_matrix, accuracy
    segmentation     IoU, Dice, pixel accuracy from one pixel confusion matrix; SegmentationMetrics

Importing the package is cheap (numpy only); the segmentation metrics import torch.
"""

from deepnotes.metrics.classification import accuracy, confusion_matrix

__all__ = ["accuracy", "confusion_matrix"]
