"""`deepnotes cam RUN_DIR IMAGE...`: where a classification run looks (CAM, Grad-CAM, saliency)."""

from __future__ import annotations

import argparse

from deepnotes.cli.common import IMAGE_FORMATS, add_figure_out, add_invert, class_index, figure_path
from deepnotes.errors import UserError


def add_parser(sub) -> None:
    cam = sub.add_parser(
        "cam",
        help="where a trained run looks: CAM, Grad-CAM, Grad-CAM++ or saliency heat maps over images",
        description="Heat map over each image for the predicted class (or --class), drawn beside the image. "
        "cam needs a model ending in global average pooling + one linear layer; gradcam and gradcam++ "
        "work on any model with a feature map or patch tokens; saliency on any model.",
    )
    cam.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `deepnotes train`")
    cam.add_argument("images", metavar="IMAGE", nargs="+", help=f"image files ({IMAGE_FORMATS})")
    cam.add_argument("--method", default="gradcam", choices=("cam", "gradcam", "gradcam++", "saliency"), help="default: gradcam")
    cam.add_argument(
        "--layer", metavar="NAME",
        help="a layer as `deepnotes inspect` names it [the last convolutional stage; for a ViT the last token layer before attention]",
    )  # fmt: skip
    cam.add_argument("--class", dest="target", metavar="K", help="explain class K (index or name) [the predicted class]")
    add_figure_out(cam, "cam.png")
    add_invert(cam)


def run(args: argparse.Namespace) -> int:
    from deepnotes.explain.cam import draw_cam
    from deepnotes.tasks import load_run
    from deepnotes.tasks.classification import explain_images

    run = load_run(args.run_dir)
    run.require("cam")
    target = class_index(args.target, run.classes) if args.target is not None else None
    try:
        images, r, notes = explain_images(run, args.images, args.method, args.layer, target, args.invert)
    except UserError as e:  # the library names its keyword; here the user types an option
        raise UserError(str(e).replace("method='", "--method '").replace("--method 'saliency'", "--method saliency")
                        .replace("--method 'gradcam'", "--method gradcam")) from None  # fmt: skip
    if r.layer is not None:
        default = "the last token layer that still feeds attention" if r.layout.startswith("tokens") else "the last convolutional stage"
        how = "--layer" if args.layer else f"{default}; --layer NAME to choose another"
        print(f"{args.method} at layer {r.layer} ({how})")
    else:
        print(f"{args.method}: gradients with respect to the input pixels")
    for i, path in enumerate(args.images):
        pred, t = int(r.predicted[i]), int(r.target[i])
        line = f"{path}: predicted {run.classes[pred]} ({float(r.probs[i, pred]):.1%})"
        if t != pred:
            line += f"; explaining {run.classes[t]} ({float(r.probs[i, t]):.1%})"
        print(line)
        for note in notes[i]:
            print(f"  ({note})")
    for note in r.notes:
        print(f"note: {note}")
    print(f"wrote {draw_cam(images, [r], figure_path(args, 'cam.png'), run.classes)}")
    return 0
