"""`deepnotes inspect MODEL`: the layer table (shapes, parameters, MACs, receptive fields)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    ins = sub.add_parser(
        "inspect",
        help="layer table: output shape, parameters, MACs, receptive field, jump",
        description="One row per layer of MODEL: output shape, parameters, MACs, receptive field (analytic) "
        "and jump (effective stride), with totals. Feature-map sizes follow floor((n - f + 2p)/s) + 1.",
    )
    ins.add_argument("model", metavar="MODEL", help="a registered model (deepnotes list)")
    ins.add_argument("--input", metavar="CxHxW", help="input size, e.g. 3x224x224 [the model's own]")
    ins.add_argument("--json", action="store_true", help="print JSON instead of the table")


def run(args: argparse.Namespace) -> int:
    import json

    from deepnotes.explain import format_table, inspect_model, parse_input_size

    summary = inspect_model(args.model, parse_input_size(args.input) if args.input else None)
    print(json.dumps(summary.to_json(), indent=1) if args.json else format_table(summary))
    return 0
