"""Looking inside models: layer summaries (shapes, parameters, MACs, receptive fields), class
activation maps (CAM, Grad-CAM, Grad-CAM++, saliency) and a linear classifier's class templates.

    from deepnotes.explain import summarize, format_table
    print(format_table(summarize(model, (3, 224, 224))))

    from deepnotes.explain import compute_cam, draw_cam
    r = compute_cam(model, x, method="gradcam")      # x normalized as the model expects
    draw_cam(images, [r], "cam.png", class_names)

Adversarial attacks live in deepnotes.explain.attack (fgsm, pgd, accuracy_vs_eps, ...).
"""

from deepnotes.explain.cam import CamResult, compute_cam, draw_cam, overlay
from deepnotes.explain.summary import (
    LayerRow,
    MeasuredField,
    Summary,
    conv_output_size,
    format_table,
    inspect_model,
    measure_receptive_field,
    parse_input_size,
    summarize,
)
from deepnotes.explain.templates import class_templates, draw_templates

__all__ = [
    "CamResult",
    "LayerRow",
    "MeasuredField",
    "Summary",
    "class_templates",
    "compute_cam",
    "conv_output_size",
    "draw_cam",
    "draw_templates",
    "format_table",
    "inspect_model",
    "measure_receptive_field",
    "overlay",
    "parse_input_size",
    "summarize",
]
