"""`deepnotes segment RUN_DIR IMAGE...`: a segmentation run's masks drawn over image files."""

from __future__ import annotations

import argparse

from deepnotes.cli.common import IMAGE_FORMATS, add_figure_out, add_invert, figure_path


def add_parser(sub) -> None:
    sg = sub.add_parser(
        "segment",
        help="draw a segmentation run's predicted mask over image files",
        description="Predict the mask of each image with a segmentation run (e.g. unet_small trained on fashion-scenes), "
        "print the classes present and their share of the pixels, and draw the mask over the image, "
        "one row per image, with a legend. The image is converted to the training scenes' channels and size "
        "(each step is printed).",
    )
    sg.add_argument("run_dir", metavar="RUN_DIR", help="a segmentation run directory written by `deepnotes train`")
    sg.add_argument("images", metavar="IMAGE", nargs="+", help=f"image files ({IMAGE_FORMATS})")
    add_figure_out(sg, "segment.png")
    add_invert(sg)


def run(args: argparse.Namespace) -> int:
    from deepnotes.tasks import load_run
    from deepnotes.tasks.segmentation import draw_segmentation, segment_image

    run = load_run(args.run_dir)
    results = [segment_image(run, path, invert=args.invert) for path in args.images]
    for r in results:
        print(f"{r.path}:")
        for note in r.notes:
            print(f"  ({note})")
        for _, name, fraction in r.present:
            print(f"  {name:<20} {fraction:7.2%}")
    title = f"{run.config.model} ({run.config.dataset}): predicted masks"
    print(f"wrote {draw_segmentation(results, figure_path(args, 'segment.png'), title=title)}")
    return 0
