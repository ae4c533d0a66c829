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
from deepnotes.train.config import ADVERSARIAL, AUGMENTS, DEFAULT_LR, PRECISIONS, SCHEDULES, TrainConfig

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
        "  deepnotes train unet_small --data fashion-scenes --epochs 10 --out runs/unet\n"
        "  deepnotes segment runs/unet scene.png --out scene-mask.png\n"
        "  deepnotes attention runs/vit shoe.png\n"
        "  deepnotes inspect vgg16 --input 3x224x224\n"
        "  deepnotes cam runs/vgg shoe.png --method gradcam\n"
        "  deepnotes attack runs/vgg --method fgsm,pgd --eps 0,0.05,0.1\n"
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
        "A segmentation model (unet*, fcn*) trains on a segmentation dataset (fashion-scenes, digit-scenes): "
        "metrics are then per-class IoU, mean IoU, Dice and pixel accuracy (test_accuracy is the pixel accuracy), "
        "and masks.png shows predicted masks beside the ground truth. "
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
    t.add_argument("--augment", choices=AUGMENTS, help=f"training augmentation; segmentation moves the masks too [{d['augment']}]")
    t.add_argument("--crop-padding", type=int, metavar="P", help="crop: shift by up to P pixels each way, zero-filled [image side // 8]")
    t.add_argument("--seed", type=int, help=f"random seed [{d['seed']}]")
    t.add_argument(
        "--adversarial", choices=ADVERSARIAL,
        help=f"adversarial training (Madry et al. 2017): train on the FGSM or PGD version of every batch [{d['adversarial']}]",
    )  # fmt: skip
    t.add_argument(
        "--adv-eps", type=_eps_value, metavar="EPS",
        help=f"its L-inf radius in [0, 1] pixel units, e.g. 0.1 or 8/255 [8/255 = {d['adv_eps']:.4f}]",
    )  # fmt: skip
    t.add_argument("--adv-steps", type=int, metavar="N", help=f"PGD steps per batch [{d['adv_steps']}]")
    t.add_argument("--adv-alpha", type=_eps_value, metavar="A", help="PGD step size in [0, 1] pixel units [2.5 * eps / steps]")
    t.add_argument("--out", metavar="DIR", help="run directory [runs/MODEL-DATASET]")
    t.add_argument("--resume", action="store_true", default=None, help="continue the run in --out from its last checkpoint")
    t.add_argument(
        "--target-accuracy", type=float, metavar="A",
        help="stop once test accuracy >= A (e.g. 0.91); for segmentation once test mean IoU >= A (e.g. 0.85)",
    )  # fmt: skip
    t.add_argument("--data-dir", metavar="DIR", help="read the dataset's files from DIR")
    t.add_argument("--from", dest="from_run", metavar="RUN_DIR", help="transfer learning: start from a trained run's weights, new head")
    t.add_argument("--freeze", action="append", metavar="MODULE", help="keep a module fixed, e.g. features (repeatable)")
    t.add_argument("--num-classes", type=int, metavar="K", help="classifier outputs [the dataset's classes]")
    t.add_argument(
        "--model-arg", dest="model_args", action="append", type=parse_model_arg, metavar="KEY=VALUE",
        help="a model option, e.g. width=0.5 or stages=[[32],[64]] (repeatable; values in JSON)",
    )  # fmt: skip
    t.add_argument("--threads", type=int, help="CPU threads [all cores, shared among local processes]")
    t.add_argument(
        "--precision", choices=PRECISIONS,
        help=f"bf16: mixed precision (autocast) for the training steps; often faster on CPUs with AVX512-BF16/AMX and "
        f"recent GPUs, but measure (benchmarks/precision.py) [{d['precision']}]",
    )  # fmt: skip
    t.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=None, help="keep the NCHW memory layout")
    t.add_argument("--quiet", dest="progress", action="store_false", default=None, help="no progress output")

    pr = sub.add_parser("predict", help="classify image files with a trained run")
    pr.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `deepnotes train`")
    pr.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, BMP, GIF, TIFF, WebP)")
    pr.add_argument("--top", type=int, default=3, help="how many classes to show (default: 3)")
    inv = pr.add_mutually_exclusive_group()
    inv.add_argument("--invert", dest="invert", action="store_true", default=None, help="always invert gray levels")
    inv.add_argument("--no-invert", dest="invert", action="store_false", help="never invert gray levels")

    sg = sub.add_parser(
        "segment",
        help="draw a segmentation run's predicted mask over image files",
        description="Predict the mask of each image with a segmentation run (e.g. unet_small trained on fashion-scenes), "
        "print the classes present and their share of the pixels, and draw the mask over the image, "
        "one row per image, with a legend. The image is converted to the training scenes' channels and size "
        "(each step is printed).",
    )
    sg.add_argument("run_dir", metavar="RUN_DIR", help="a segmentation run directory written by `deepnotes train`")
    sg.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, BMP, GIF, TIFF, WebP)")
    sg.add_argument("--out", default="segment.png", metavar="PNG", help="the figure (default: segment.png)")
    sinv = sg.add_mutually_exclusive_group()
    sinv.add_argument("--invert", dest="invert", action="store_true", default=None, help="always invert gray levels")
    sinv.add_argument("--no-invert", dest="invert", action="store_false", help="never invert gray levels")

    att = sub.add_parser(
        "attention",
        help="where a ViT run looks: the class token's attention per head, and attention rollout",
        description="Draw IMAGE with the class token's attention to the patches in every head of the last layer, and "
        "the attention rollout across all layers (Abnar & Zuidema 2020: each layer's head-fused attention plus the "
        "identity for the residual path, rows renormalized, multiplied through the layers). Needs a transformer run "
        "with a patch grid (vit_*).",
    )
    att.add_argument("run_dir", metavar="RUN_DIR", help="a ViT run directory written by `deepnotes train`")
    att.add_argument("image", metavar="IMAGE", help="an image file (PNG, JPEG, BMP, GIF, TIFF, WebP)")
    att.add_argument("--out", default="attention.png", metavar="PNG", help="the figure (default: attention.png)")
    att.add_argument("--head-fusion", default="mean", choices=("mean", "max", "min"), help="how rollout fuses the heads (default: mean)")
    att.add_argument(
        "--discard-ratio", type=float, default=0.0, metavar="R",
        help="rollout: zero this fraction of the smallest fused weights per layer, in [0, 1) (default: 0)",
    )  # fmt: skip
    ainv = att.add_mutually_exclusive_group()
    ainv.add_argument("--invert", dest="invert", action="store_true", default=None, help="always invert gray levels")
    ainv.add_argument("--no-invert", dest="invert", action="store_false", help="never invert gray levels")

    ins = sub.add_parser(
        "inspect",
        help="layer table: output shape, parameters, MACs, receptive field, jump",
        description="One row per layer of MODEL: output shape, parameters, MACs, receptive field (analytic) "
        "and jump (effective stride), with totals. Feature-map sizes follow floor((n - f + 2p)/s) + 1.",
    )
    ins.add_argument("model", metavar="MODEL", help="a registered model (deepnotes list)")
    ins.add_argument("--input", metavar="CxHxW", help="input size, e.g. 3x224x224 [the model's own]")
    ins.add_argument("--json", action="store_true", help="print JSON instead of the table")

    cam = sub.add_parser(
        "cam",
        help="where a trained run looks: CAM, Grad-CAM, Grad-CAM++ or saliency heat maps over images",
        description="Heat map over each image for the predicted class (or --class), drawn beside the image. "
        "cam needs a model ending in global average pooling + one linear layer; gradcam and gradcam++ "
        "work on any model with a feature map or patch tokens; saliency on any model.",
    )
    cam.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `deepnotes train`")
    cam.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, BMP, GIF, TIFF, WebP)")
    cam.add_argument("--method", default="gradcam", choices=("cam", "gradcam", "gradcam++", "saliency"), help="default: gradcam")
    cam.add_argument("--layer", metavar="NAME", help="a layer as `deepnotes inspect` names it [the last convolutional stage; for a ViT the last token layer before attention]")
    cam.add_argument("--class", dest="target", metavar="K", help="explain class K (index or name) [the predicted class]")
    cam.add_argument("--out", default="cam.png", metavar="PNG", help="the figure (default: cam.png)")
    cinv = cam.add_mutually_exclusive_group()
    cinv.add_argument("--invert", dest="invert", action="store_true", default=None, help="always invert gray levels")
    cinv.add_argument("--no-invert", dest="invert", action="store_false", help="never invert gray levels")

    tp = sub.add_parser(
        "templates",
        help="a linear classifier's weights drawn as one image per class",
        description="Draw each class's weights of a linear classifier run (one Linear layer on the image, e.g. "
        "`deepnotes train mlp --model-arg hidden=[]`) as an image, in [0, 1]-pixel units: red raises the "
        "class score, blue lowers it.",
    )
    tp.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of a linear classifier")
    tp.add_argument("--out", default="templates.png", metavar="PNG", help="the figure (default: templates.png)")

    at = sub.add_parser(
        "attack",
        help="accuracy of a trained run under FGSM / PGD adversarial attacks, against epsilon",
        description="Attack test images with L-inf FGSM and/or PGD at each epsilon and write OUT/attack.json "
        "(the table), OUT/accuracy_vs_eps.png and OUT/examples_METHOD.png (clean, perturbation, adversarial). "
        "Epsilon is in [0, 1] pixel units (the pixels the model sees before normalization): "
        "write 0.1 or 8/255.",
    )
    at.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `deepnotes train`")
    at.add_argument("--method", default="fgsm,pgd", type=_attack_methods, metavar="M", help="fgsm, pgd or fgsm,pgd (default: fgsm,pgd)")
    at.add_argument(
        "--eps", default=_DEFAULT_EPS, type=_eps_list, metavar="LIST",
        help=f"comma-separated radii in [0, 1] pixel units, fractions allowed (default: {_DEFAULT_EPS})",
    )  # fmt: skip
    at.add_argument("--steps", type=int, default=10, metavar="N", help="PGD steps (default: 10; step size 2.5 * eps / steps)")
    at.add_argument("--n", type=int, default=1000, metavar="N", help="test images to attack, a seeded random subset (default: 1000)")
    at.add_argument("--seed", type=int, default=0, help="subset and PGD random starts (default: 0)")
    at.add_argument("--out", default="attack-out", metavar="DIR", help="output folder (default: attack-out)")

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

_DEFAULT_EPS = "0,1/255,2/255,4/255,8/255,16/255,32/255"


def _eps_value(text: str) -> float:
    """'0.1', '8/255' -> a float in [0, 1] (pixel units)."""
    import math

    num, sep, den = text.strip().partition("/")
    try:
        value = float(num) / (float(den) if sep else 1.0)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number like 0.1 or 8/255, got {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 1:
        hint = f"; for {num} of 255 write {num}/255" if value > 1 and not sep else ""
        raise argparse.ArgumentTypeError(f"epsilon is in [0, 1] pixel units, got {text!r} = {value:g}{hint}")
    return value


def _eps_list(text: str) -> list[float]:
    values = [_eps_value(t) for t in text.split(",") if t.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated radii such as 0,2/255,8/255, got {text!r}")
    return values


def _attack_methods(text: str) -> list[str]:
    methods = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in ("fgsm", "pgd")]
    if bad or not methods:
        raise argparse.ArgumentTypeError(f"methods are fgsm, pgd or fgsm,pgd; got {text!r}")
    return list(dict.fromkeys(methods))


def parse_model_arg(text: str) -> tuple[str, object]:
    """KEY=VALUE -> (key, value): the value as JSON if it parses, else the plain string."""
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


def _class_index(target: str, classes: list[str]) -> int:
    """--class: an index or a class name (case-insensitive)."""
    t = target.strip()
    if t.lstrip("-").isdigit():
        k = int(t)
        if 0 <= k < len(classes):
            return k
        raise UserError(f"--class {k} is outside 0..{len(classes) - 1}; the run's classes: {_class_list(classes)}")
    by_name = {c.lower(): i for i, c in enumerate(classes)}
    if t.lower() in by_name:
        return by_name[t.lower()]
    raise UserError(f"--class {t!r} is not one of the run's classes (give an index or a name): {_class_list(classes)}")


def _class_list(classes: list[str]) -> str:
    return ", ".join(f"{i} {c}" for i, c in enumerate(classes))


def cmd_cam(args: argparse.Namespace) -> int:
    import torch

    from deepnotes.data.transforms import adapt_size
    from deepnotes.explain.cam import compute_cam, draw_cam
    from deepnotes.images import load_image
    from deepnotes.predict import load_run, require_classification

    run = load_run(args.run_dir)
    require_classification(run, "cam")
    target = _class_index(args.target, run.classes) if args.target is not None else None
    data_size = tuple(run.config["input"].get("data_size", run.spec.img_size))
    pixels, notes = [], []
    for path in args.images:
        p, n = load_image(path, run.spec.in_chans, data_size, invert=args.invert)
        pixels.append(torch.tensor(p))
        notes.append(n)
    images, _ = adapt_size(torch.stack(pixels), run.spec.img_size)  # (B, C, H, W) uint8, as in training
    try:
        r = compute_cam(run.model, run.spec.normalize(images), args.method, args.layer, target, model_name=run.config["model"])
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
    print(f"wrote {draw_cam(images, [r], args.out, run.classes)}")
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    from deepnotes.explain.templates import class_templates, draw_templates
    from deepnotes.predict import load_run, require_classification

    run = load_run(args.run_dir)
    require_classification(run, "templates")
    spec, name = run.spec, run.config["model"]
    try:
        t = class_templates(run.model, (spec.in_chans, *spec.img_size), std=spec.std, model_name=name)
    except UserError as e:
        raise UserError(f"{e}; train one with `deepnotes train mlp --model-arg hidden=[] --data {run.config['dataset']}`") from None
    title = f"{name} on {run.config['dataset']}: weights per class (red raises the score, blue lowers it)"
    out = draw_templates(t, run.classes, args.out, title=title)
    print(f"{len(t)} class templates of {t.shape[1]}x{t.shape[2]}x{t.shape[3]} weights; wrote {out}")
    return 0


def cmd_attack(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from deepnotes.data import load_dataset
    from deepnotes.data.transforms import adapt_size, as_tensors
    from deepnotes.explain.attack import accuracy_vs_eps, attack, draw_attack_examples, plot_accuracy_vs_eps, predict
    from deepnotes.fileio import write_json
    from deepnotes.predict import load_run, require_classification

    if args.n < 1 or args.steps < 1:
        raise UserError(f"--n and --steps must be >= 1, got --n {args.n} --steps {args.steps}")
    run = load_run(args.run_dir)
    require_classification(run, "attack")
    spec, config = run.spec, run.config
    data = load_dataset(config["dataset"], data_dir=config["train"].get("data_dir"))
    x, y = as_tensors(data.test_x, data.test_y)
    g = torch.Generator().manual_seed(args.seed)
    idx = torch.randperm(len(x), generator=g)[: args.n]
    x, _ = adapt_size(x[idx], spec.img_size)
    y = y[idx]
    eps_list = sorted(set(args.eps))
    norm = dict(mean=spec.mean, std=spec.std)
    rows = []
    for method in args.method:
        rows += accuracy_vs_eps(run.model, x, y, eps_list, method, steps=args.steps, seed=args.seed, **norm)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{config['model']} on {len(x)} {config['dataset']} test images; eps in [0, 1] pixel units (x255 in brackets)")
    header = f"{'eps':>8} {'(/255)':>8}" + "".join(f" {m.upper() + (f' ({args.steps} steps)' if m == 'pgd' else ''):>16}" for m in args.method)
    print(header)
    for e in eps_list:
        acc = {r["method"]: r["accuracy"] for r in rows if r["eps"] == e}
        print(f"{e:>8.4f} {e * 255:>8.3g}" + "".join(f" {acc[m]:>16.1%}" for m in args.method))
    eps_show = max(eps_list)
    figures = [plot_accuracy_vs_eps(rows, out / "accuracy_vs_eps.png", title=f"{config['model']} on {config['dataset']} (n = {len(x)})")]
    if eps_show > 0:
        shown_x, shown_y = x[:8], y[:8]
        pred_c, prob_c = predict(run.model, shown_x, **norm)
        for method in args.method:
            gen = torch.Generator().manual_seed(args.seed)
            adv = attack(run.model, shown_x, shown_y, method, eps_show, steps=args.steps, generator=gen, **norm)
            pred_a, prob_a = predict(run.model, adv, **norm)
            figures.append(draw_attack_examples(
                shown_x, adv, shown_y, pred_c, pred_a, out / f"examples_{method}.png", class_names=run.classes,
                probs_clean=prob_c, probs_adv=prob_a, eps=eps_show, method=method,
            ))  # fmt: skip
    result = {"run": str(run.run_dir), "model": config["model"], "dataset": config["dataset"], "n": len(x), "seed": args.seed,
              "eps_units": "[0, 1] pixels (eps_255 = eps * 255)", "rows": rows}  # fmt: skip
    write_json(out / "attack.json", result)
    print(f"wrote {out / 'attack.json'}, " + ", ".join(str(f) for f in figures))
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from deepnotes.predict import draw_segmentation, load_run, segment_image

    run = load_run(args.run_dir)
    results = [segment_image(run, path, invert=args.invert) for path in args.images]
    for r in results:
        print(f"{r.path}:")
        for note in r.notes:
            print(f"  ({note})")
        for _, name, fraction in r.present:
            print(f"  {name:<20} {fraction:7.2%}")
    title = f"{run.config['model']} ({run.config['dataset']}): predicted masks"
    print(f"wrote {draw_segmentation(results, args.out, title=title)}")
    return 0


def cmd_attention(args: argparse.Namespace) -> int:
    import torch

    from deepnotes.explain.attention import attention_maps, draw_attention
    from deepnotes.predict import load_input, load_run, require_classification
    from deepnotes.registry import MODELS

    if not 0 <= args.discard_ratio < 1:
        raise UserError(f"--discard-ratio is a fraction in [0, 1), got {args.discard_ratio}")
    run = load_run(args.run_dir)
    patch_embed = getattr(run.model, "patch_embed", None)
    if not hasattr(patch_embed, "grid_for"):
        vits = ", ".join(n for n in MODELS.names("vit*"))
        raise UserError(
            f"{run.run_dir} holds a {run.config['model']} run, which has no attention over image patches; "
            f"`deepnotes attention` needs a transformer run ({vits}), e.g. `deepnotes train vit_tiny_28 --data fashion-mnist`"
        )
    require_classification(run, "attention")
    x, notes = load_input(run, args.image, args.invert)
    with torch.no_grad():
        probs = torch.softmax(run.model(run.spec.normalize(x[None])), dim=1)[0]
    k = int(probs.argmax())
    print(f"{args.image}: predicted {run.classes[k]} ({float(probs[k]):.1%})")
    for note in notes:
        print(f"  ({note})")
    gh, gw = patch_embed.grid_for(tuple(x.shape[-2:]))
    maps = attention_maps(run.model, run.spec.normalize(x[None]))  # per layer (1, heads, T, T)
    depth, heads = len(maps), maps[-1].shape[1]
    title = f"{run.config['model']}: class-token attention on {gh}x{gw} patches; predicted {run.classes[k]} ({float(probs[k]):.0%})"
    out = draw_attention(x, run.model, args.out, spec=run.spec, discard_ratio=args.discard_ratio, head_fusion=args.head_fusion, title=title)
    print(f"last layer: {heads} heads; rollout over {depth} layers (head fusion {args.head_fusion}, discard ratio {args.discard_ratio:g})")
    print(f"wrote {out}")
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


COMMANDS = {
    "train": cmd_train, "predict": cmd_predict, "inspect": cmd_inspect, "list": cmd_list, "lab": cmd_lab,
    "cam": cmd_cam, "templates": cmd_templates, "attack": cmd_attack, "segment": cmd_segment, "attention": cmd_attention,
}  # fmt: skip


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
