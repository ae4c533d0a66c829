"""The `deepnotes` command. Thin: it parses arguments, then calls library functions.

Heavy modules (torch, matplotlib, scikit-learn) are imported inside the command functions,
so `deepnotes --help` answers without importing torch.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields

from deepnotes import __version__
from deepnotes.errors import UserError
from deepnotes.train.config import AUGMENTS, DEFAULT_LR, SCHEDULES, TrainConfig

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deepnotes",
        description="A deep-learning-for-computer-vision curriculum that runs: models, training, inspection, experiments.",
        epilog="examples:\n"
        "  deepnotes list\n"
        "  deepnotes train lenet5 --data digits --epochs 30\n"
        "  deepnotes train lenet5 --data fashion-mnist --epochs 10 --out runs/lenet\n"
        "  deepnotes predict runs/lenet shoe.png\n"
        "  deepnotes inspect vgg16 --input 3x224x224\n"
        "  deepnotes lab run C05 --quick",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"deepnotes {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train a registered model on a registered dataset",
        description="Train MODEL on --data and write a run directory: config.json, model.safetensors, "
        "metrics.json, curves.png, confusion.png, report.html, checkpoints/. "
        "Defaults are in brackets.",
    )
    # Defaults live in TrainConfig (one place); None here means "not given".
    d = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    lrs = ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items())
    t.add_argument("model", metavar="MODEL", help="a registered model (deepnotes list)")
    t.add_argument("--data", metavar="DATASET", help=f"a registered dataset [{d['data']}]")
    t.add_argument("--epochs", type=int, help=f"number of epochs [{d['epochs']}]")
    t.add_argument("--batch-size", type=int, help=f"global mini-batch size [{d['batch_size']}]")
    t.add_argument("--lr", type=float, help=f"peak learning rate [by optimizer: {lrs}]")
    t.add_argument(
        "--optimizer", choices=list(DEFAULT_LR), metavar="NAME",
        help=f"{', '.join(DEFAULT_LR)}; scratch-* are written from the update equations [{d['optimizer']}]",
    )  # fmt: skip
    t.add_argument("--momentum", type=float, help=f"momentum for sgd, scratch-momentum, scratch-nesterov [{d['momentum']}]")
    t.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum (sgd)")
    t.add_argument("--weight-decay", type=float, help=f"L2 weight decay [{d['weight_decay']}]")
    t.add_argument("--schedule", choices=SCHEDULES, help=f"learning-rate schedule, stepped every batch [{d['schedule']}]")
    t.add_argument("--warmup-epochs", type=float, help=f"linear LR warmup, in epochs [{d['warmup_epochs']}]")
    t.add_argument("--label-smoothing", type=float, help=f"cross-entropy label smoothing [{d['label_smoothing']}]")
    t.add_argument("--augment", choices=AUGMENTS, help=f"training augmentation [{d['augment']}]")
    t.add_argument("--seed", type=int, help=f"random seed [{d['seed']}]")
    t.add_argument("--out", metavar="DIR", help="run directory [runs/MODEL-DATASET]")
    t.add_argument("--resume", action="store_true", default=None, help="continue the run in --out from its last checkpoint")
    t.add_argument("--target-accuracy", type=float, metavar="A", help="stop once test accuracy >= A (e.g. 0.91)")
    t.add_argument("--data-dir", metavar="DIR", help="read the dataset's files from DIR")
    t.add_argument("--from", dest="from_run", metavar="RUN_DIR", help="transfer learning: start from a trained run's weights, new head")
    t.add_argument("--freeze", action="append", metavar="MODULE", help="keep a module fixed, e.g. features (repeatable)")
    t.add_argument("--num-classes", type=int, metavar="K", help="classifier outputs [the dataset's classes]")
    t.add_argument(
        "--model-arg", dest="model_args", action="append", type=_model_arg, metavar="KEY=VALUE",
        help="a model option, e.g. width=0.5 or stages=[[32],[64]] (repeatable; values in JSON)",
    )  # fmt: skip
    t.add_argument("--threads", type=int, help="CPU threads [all cores, shared among local processes]")
    t.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=None, help="keep the NCHW memory layout")
    t.add_argument("--quiet", dest="progress", action="store_false", default=None, help="no progress output")

    pr = sub.add_parser("predict", help="classify image files with a trained run")
    pr.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `deepnotes train`")
    pr.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, BMP, GIF, TIFF, WebP)")
    pr.add_argument("--top", type=int, default=3, help="how many classes to show (default: 3)")
    inv = pr.add_mutually_exclusive_group()
    inv.add_argument("--invert", dest="invert", action="store_true", default=None, help="always invert gray levels")
    inv.add_argument("--no-invert", dest="invert", action="store_false", help="never invert gray levels")

    ins = sub.add_parser(
        "inspect",
        help="layer table: output shape, parameters, MACs, receptive field, jump",
        description="One row per layer of MODEL: output shape, parameters, MACs, receptive field (analytic) "
        "and jump (effective stride), with totals. Feature-map sizes follow floor((n - f + 2p)/s) + 1.",
    )
    ins.add_argument("model", metavar="MODEL", help="a registered model (deepnotes list)")
    ins.add_argument("--input", metavar="CxHxW", help="input size, e.g. 3x224x224 [the model's own]")
    ins.add_argument("--json", action="store_true", help="print JSON instead of the table")

    lab = sub.add_parser("lab", help="the experiments: every claim of the notes, measured")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)
    lab_sub.add_parser("list", help="every claim: id, title, Korean term, implemented or not")
    lr = lab_sub.add_parser("run", help="run experiments and write OUT/ID/result.json and figures")
    lr.add_argument("ids", metavar="ID", nargs="+", help="claim ids (C05 C06 ...), or 'all' for every implemented one")
    lr.add_argument("--quick", action="store_true", help="tiny sizes: every experiment finishes in seconds")
    lr.add_argument("--out", default="lab-out", metavar="DIR", help="output folder (default: lab-out)")
    lr.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    lrep = lab_sub.add_parser("report", help="render OUT/report.html from the results in OUT")
    lrep.add_argument("--out", default="lab-out", metavar="DIR", help="folder with the results (default: lab-out)")
    lrep.add_argument("--markdown", metavar="FILE", help="also write the results as Markdown (docs/lab.md)")

    ls = sub.add_parser("list", help="registered models, datasets and experiments")
    ls.add_argument("pattern", nargs="?", help="glob pattern, e.g. 'lenet*'")
    return p


# --------------------------------------------------------------------------- commands


def _model_arg(text: str) -> tuple[str, object]:
    import json

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. width=0.5, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a plain string


def cmd_train(args: argparse.Namespace) -> int:
    from deepnotes.train import TrainConfig, run_training

    given = {k: v for k, v in vars(args).items() if k not in ("command", "func") and v is not None}
    if "model_args" in given:
        given["model_args"] = dict(given["model_args"])
    result = run_training(TrainConfig(**given))
    return EXIT_INTERRUPTED if result.interrupted else 0


def cmd_predict(args: argparse.Namespace) -> int:
    from deepnotes.predict import load_run, predict_image

    run = load_run(args.run_dir)
    for path in args.images:
        top, notes = predict_image(run, path, top=args.top, invert=args.invert)
        print(f"{path}:")
        for note in notes:
            print(f"  ({note})")
        for rank, (name, p) in enumerate(top, 1):
            print(f"  {rank}. {name:<20} {p:7.2%}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from deepnotes.lab import list_experiments
    from deepnotes.registry import DATASETS, MODELS

    rows = []
    for name in MODELS.names(args.pattern):
        e = MODELS.get(name)
        params = f" ({e.num_params:,} params)" if e.num_params else ""
        rows.append(("model", name, e.description + params))
    for name in DATASETS.names(args.pattern):
        rows.append(("dataset", name, DATASETS.get(name).description))
    for e in list_experiments(args.pattern):
        rows.append(("experiment", e.id, f"{e.title} ({e.korean})"))
    if not rows:
        print(f"nothing registered matches {args.pattern!r}")
        return 0
    width = max(len(r[1]) for r in rows)
    for kind, name, text in rows:
        print(f"{kind:<10} {name:<{width}}  {text}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from deepnotes.explain import format_table, inspect_model, parse_input_size

    summary = inspect_model(args.model, parse_input_size(args.input) if args.input else None)
    print(json.dumps(summary.to_json(), indent=1) if args.json else format_table(summary))
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from deepnotes import lab

    if args.lab_command == "list":
        for claim, implemented in lab.claim_status():
            status = "implemented" if implemented else "-"
            print(f"{claim.id}  {status:<11}  {claim.title}  ({claim.korean})")
        return 0
    if args.lab_command == "report":
        from deepnotes.lab.report import write_lab_markdown, write_lab_report

        print(write_lab_report(args.out))
        if args.markdown:
            print(write_lab_markdown(args.out, args.markdown))
        return 0
    ids = [e.id for e in lab.list_experiments()] if args.ids == ["all"] else [i.upper() for i in args.ids]
    for i in ids:
        lab.get_experiment(i)  # unknown or unimplemented ids fail before anything runs
    for i in ids:
        r = lab.run_experiment(i, args.out, quick=args.quick, seed=args.seed, log=lambda m: print(f"  {m}", flush=True))
        print(f"{r['id']} {r['title']}: {r['verdict']} ({r['seconds']:.1f}s) - {r['reason']}", flush=True)
    print(f"results in {args.out}/; `deepnotes lab report --out {args.out}` renders them")
    return 0


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "inspect": cmd_inspect, "list": cmd_list, "lab": cmd_lab}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except UserError as e:
        print(f"deepnotes: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("deepnotes: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `deepnotes list | head`: the reader left; not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
