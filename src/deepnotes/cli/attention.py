"""`deepnotes attention RUN_DIR IMAGE`: where a ViT run looks (class-token attention, rollout)."""

from __future__ import annotations

import argparse

from deepnotes.cli.common import IMAGE_FORMATS, add_figure_out, add_invert, figure_path


def add_parser(sub) -> None:
    att = sub.add_parser(
        "attention",
        help="where a ViT run looks: the class token's attention per head, and attention rollout",
        description="Draw IMAGE with the class token's attention to the patches in every head of the last layer, and "
        "the attention rollout across all layers (Abnar & Zuidema 2020: each layer's head-fused attention plus the "
        "identity for the residual path, rows renormalized, multiplied through the layers). Needs a transformer run "
        "with a patch grid (vit_*).",
    )
    att.add_argument("run_dir", metavar="RUN_DIR", help="a ViT run directory written by `deepnotes train`")
    att.add_argument("image", metavar="IMAGE", help=f"an image file ({IMAGE_FORMATS})")
    add_figure_out(att, "attention.png")
    att.add_argument("--head-fusion", default="mean", choices=("mean", "max", "min"), help="how rollout fuses the heads (default: mean)")
    att.add_argument(
        "--discard-ratio", type=float, default=0.0, metavar="R",
        help="rollout: zero this fraction of the smallest fused weights per layer, in [0, 1) (default: 0)",
    )  # fmt: skip
    add_invert(att)


def run(args: argparse.Namespace) -> int:
    from deepnotes.tasks import load_run
    from deepnotes.tasks.classification import attention_figure

    run = load_run(args.run_dir)
    r = attention_figure(run, args.image, figure_path(args, "attention.png"), head_fusion=args.head_fusion,
                         discard_ratio=args.discard_ratio, invert=args.invert)  # fmt: skip
    print(f"{args.image}: predicted {r['predicted']} ({r['probability']:.1%})")
    for note in r["notes"]:
        print(f"  ({note})")
    print(f"last layer: {r['heads']} heads; rollout over {r['depth']} layers (head fusion {args.head_fusion}, discard ratio {args.discard_ratio:g})")
    print(f"wrote {r['figure']}")
    return 0
