"""`deepnotes predict RUN_DIR IMAGE...`: the top classes of image files, by a classification run."""

from __future__ import annotations

import argparse

from deepnotes.cli.common import IMAGE_FORMATS, add_invert
from deepnotes.errors import UserError


def add_parser(sub) -> None:
    pr = sub.add_parser("predict", help="classify image files with a trained run")
    pr.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `deepnotes train`")
    pr.add_argument("images", metavar="IMAGE", nargs="+", help=f"image files ({IMAGE_FORMATS})")
    pr.add_argument("--top", type=int, default=3, help="how many classes to show, at least 1 (default: 3)")
    add_invert(pr)


def run(args: argparse.Namespace) -> int:
    from deepnotes.tasks import load_run
    from deepnotes.tasks.classification import predict_image

    if args.top < 1:  # 0 would print no class at all, and a negative count slices from the end
        raise UserError(f"--top must be at least 1 (how many classes to show per image), got {args.top}")
    run = load_run(args.run_dir)
    for path in args.images:
        top, notes = predict_image(run, path, top=args.top, invert=args.invert)
        print(f"{path}:")
        for note in notes:
            print(f"  ({note})")
        for rank, (name, p) in enumerate(top, 1):
            print(f"  {rank}. {name:<20} {p:7.2%}")
    return 0
