"""`deepnotes train MODEL --data DATASET`: train through the task of the model, write a run directory."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

from deepnotes.cli.common import EXIT_INTERRUPTED, eps_value, model_arg_text, model_arg_value
from deepnotes.train.config import ADVERSARIAL, AUGMENTS, DEFAULT_LR, PRECISIONS, SCHEDULES, TrainConfig


def add_parser(sub) -> None:
    t = sub.add_parser(
        "train",
        help="train a registered model on a registered dataset",
        description="Train MODEL on --data and write the run directory --out: config.json, model.safetensors, "
        "metrics.json, curves.png, the task's figures, report.html, checkpoints/. The task comes from the model "
        "(deepnotes list): a classifier trains on an image dataset (confusion.png); a segmentation model (unet*, "
        "fcn*) on a scenes dataset (fashion-scenes, digit-scenes), scored by per-class IoU, mean IoU, Dice and pixel "
        "accuracy (test_accuracy is the pixel accuracy), with masks.png beside the ground truth. "
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
    t.add_argument("--label-smoothing", type=float, help=f"cross-entropy label smoothing (classification) [{d['label_smoothing']}]")
    t.add_argument("--augment", choices=AUGMENTS, help=f"training augmentation; segmentation moves the masks too [{d['augment']}]")
    t.add_argument("--crop-padding", type=int, metavar="P", help="crop: shift by up to P pixels each way, zero-filled [image side // 8]")
    t.add_argument("--seed", type=int, help=f"random seed [{d['seed']}]")
    t.add_argument(
        "--adversarial", choices=ADVERSARIAL,
        help=f"adversarial training (Madry et al. 2017): train on the FGSM or PGD version of every batch [{d['adversarial']}]",
    )  # fmt: skip
    t.add_argument(
        "--adv-eps", type=eps_value, metavar="EPS",
        help=f"its L-inf radius in [0, 1] pixel units, e.g. 0.1 or 8/255 [8/255 = {d['adv_eps']:.4f}]",
    )  # fmt: skip
    t.add_argument("--adv-steps", type=int, metavar="N", help=f"PGD steps per batch [{d['adv_steps']}]")
    t.add_argument("--adv-alpha", type=eps_value, metavar="A", help="PGD step size in [0, 1] pixel units [2.5 * eps / steps]")
    t.add_argument("--out", metavar="DIR", help="the run directory to write [runs/MODEL-DATASET]")
    t.add_argument("--resume", action="store_true", default=None, help="continue the run in --out from its last checkpoint")
    t.add_argument(
        "--target-accuracy", type=float, metavar="A",
        help="stop once the task's headline metric reaches A: test accuracy (e.g. 0.91), for segmentation test mean IoU (e.g. 0.85)",
    )  # fmt: skip
    t.add_argument("--data-dir", metavar="DIR", help="read the dataset's files from DIR")
    t.add_argument("--from", dest="from_run", metavar="RUN_DIR", help="transfer learning: start from a trained run's weights, new head")
    t.add_argument("--freeze", action="append", metavar="MODULE", help="keep a module fixed, e.g. features (repeatable)")
    t.add_argument("--num-classes", type=int, metavar="K", help="classifier outputs [the dataset's classes]")
    t.add_argument(
        "--model-arg", dest="model_args", action="append", type=model_arg_text, metavar="KEY=VALUE",
        help="a model option, e.g. width=0.5 or stages=[[32],[64]] (repeatable; values in JSON)",
    )  # fmt: skip
    t.add_argument(
        "--clip-grad-norm", type=float, metavar="N",
        help="clip the gradients' joint L2 norm to N before every step (Pascanu et al. 2013) [no clipping]",
    )  # fmt: skip
    t.add_argument("--tokenizer", metavar="NAME", help="language models: char, word or bpe[:MERGES] [the model's, else char]")
    t.add_argument("--block-size", type=int, metavar="T", help="language models: tokens per training sequence [the model's context]")
    t.add_argument(
        "--steps-per-epoch", type=int, metavar="N", help="language models: steps between evaluations [250]"
    )
    t.add_argument("--threads", type=int, help="CPU threads [all cores, shared among local processes]")
    t.add_argument(
        "--precision", choices=PRECISIONS,
        help=f"bf16: mixed precision (autocast) for the training steps; often faster on CPUs with AVX512-BF16/AMX and "
        f"recent GPUs, but measure (benchmarks/precision.py) [{d['precision']}]",
    )  # fmt: skip
    t.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=None, help="keep the NCHW memory layout")
    t.add_argument("--quiet", dest="progress", action="store_false", default=None, help="no progress output")


def run(args: argparse.Namespace) -> int:
    from deepnotes.tasks import run_training

    given = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    given = {**_task_defaults(given["model"]), **given}
    if "model_args" in given:  # the values are read here, so that a bad one is one line (argparse would add its usage)
        given["model_args"] = {key: model_arg_value(key, value) for key, value in given["model_args"]}
    result = run_training(TrainConfig(**given))
    return EXIT_INTERRUPTED if result.interrupted else 0


def _task_defaults(model: str) -> dict:
    """The defaults of the model's task and of the model itself for options not given (word vectors:
    SGD, lr 0.025, linear decay; GloVe: AdaGrad, lr 0.5, 25 epochs)."""
    from deepnotes.models import MODELS
    from deepnotes.tasks import get_task

    if model not in MODELS:
        return {}  # TrainConfig / the registry name the unknown model
    entry = MODELS.get(model)
    return {**get_task(entry.task).train_defaults, **(entry.variant.train if entry.variant else {})}
