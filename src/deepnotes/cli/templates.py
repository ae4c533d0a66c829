"""`deepnotes templates RUN_DIR`: a linear classifier's weights drawn as one image per class."""

from __future__ import annotations

import argparse

from deepnotes.cli.common import add_figure_out, figure_path
from deepnotes.errors import UserError


def add_parser(sub) -> None:
    tp = sub.add_parser(
        "templates",
        help="a linear classifier's weights drawn as one image per class",
        description="Draw each class's weights of a linear classifier run (one Linear layer on the image, e.g. "
        "`deepnotes train mlp --model-arg hidden=[]`) as an image, in [0, 1]-pixel units: red raises the "
        "class score, blue lowers it.",
    )
    tp.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of a linear classifier")
    add_figure_out(tp, "templates.png")


def run(args: argparse.Namespace) -> int:
    from deepnotes.explain.templates import class_templates, draw_templates
    from deepnotes.tasks import load_run
    from deepnotes.tasks.images import run_input_spec

    run = load_run(args.run_dir)
    run.require("templates")
    spec, name = run_input_spec(run.config), run.config.model
    try:
        t = class_templates(run.model, (spec.in_chans, *spec.img_size), std=spec.std, model_name=name)
    except UserError as e:
        raise UserError(f"{e}; train one with `deepnotes train mlp --model-arg hidden=[] --data {run.config.dataset}`") from None
    title = f"{name} on {run.config.dataset}: weights per class (red raises the score, blue lowers it)"
    out = draw_templates(t, run.classes, figure_path(args, "templates.png"), title=title)
    print(f"{len(t)} class templates of {t.shape[1]}x{t.shape[2]}x{t.shape[3]} weights; wrote {out}")
    return 0
