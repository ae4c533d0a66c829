"""What several commands share: argument types, the --invert pair, class names, the figure path.

Nothing here imports torch: `deepnotes --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from deepnotes.errors import UserError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a writer whose reader left: not a success
DEFAULT_EPS = "0,1/255,2/255,4/255,8/255,16/255,32/255"
IMAGE_FORMATS = "PNG, JPEG, BMP, GIF, TIFF, WebP"


def add_invert(parser: argparse.ArgumentParser) -> None:
    """--invert / --no-invert: force or forbid inverting gray levels (default: decided per image)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--invert", dest="invert", action="store_true", default=None, help="always invert gray levels")
    group.add_argument("--no-invert", dest="invert", action="store_false", help="never invert gray levels")


def add_figure_out(parser: argparse.ArgumentParser, name: str) -> None:
    """--out PNG: the figure the command writes; by default RUN_DIR/<name> (beside the run it explains)."""
    parser.add_argument("--out", metavar="PNG", help=f"the figure to write (default: RUN_DIR/{name})")


def figure_path(args: argparse.Namespace, name: str) -> Path:
    return Path(args.out) if args.out else Path(args.run_dir) / name


def eps_value(text: str) -> float:
    """'0.1', '8/255' -> a float in [0, 1] (pixel units)."""
    num, sep, den = text.strip().partition("/")
    try:
        value = float(num) / (float(den) if sep else 1.0)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number like 0.1 or 8/255, got {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 1:
        hint = f"; for {num} of 255 write {num}/255" if value > 1 and not sep else ""
        raise argparse.ArgumentTypeError(f"epsilon is in [0, 1] pixel units, got {text!r} = {value:g}{hint}")
    return value


def eps_list(text: str) -> list[float]:
    values = [eps_value(t) for t in text.split(",") if t.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated radii such as 0,2/255,8/255, got {text!r}")
    return values


def attack_methods(text: str) -> list[str]:
    methods = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in ("fgsm", "pgd")]
    if bad or not methods:
        raise argparse.ArgumentTypeError(f"methods are fgsm, pgd or fgsm,pgd; got {text!r}")
    return list(dict.fromkeys(methods))


def model_arg_text(text: str) -> tuple[str, str]:
    """argparse type of --model-arg: KEY=VALUE -> (key, the value's text); model_arg_value reads the value."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. width=0.5, got {text!r}")
    return key, value


def looks_like_json(value: str) -> bool:
    """A number, list, object, quoted string or constant (True, NaN, ... in any case): meant as JSON, not a bare word."""
    v = value.strip()
    return v[:1] in tuple('[{"-+.0123456789') or v.lower() in ("true", "false", "null", "none", "nan", "inf", "infinity")


def model_arg_value(key: str, value: str) -> object:
    """The value of --model-arg KEY=VALUE: JSON (0.5, [16,32], true, "x", {...}), or a bare word
    (relu, max, token) as a string. A value that looks like JSON but does not parse is a UserError
    naming the key and the problem, not a string the model would choke on or misread ("False" is
    a true string)."""
    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not a finite number")

    if not value.strip():
        raise UserError(f"--model-arg {key}= has no value; give one, e.g. {key}=0.5 or {key}=[16,32]")
    try:
        return json.loads(value, parse_constant=refuse_constant)  # NaN, Infinity, -Infinity refused
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        if not looks_like_json(value):
            return value  # a bare word: a plain string
        why = f"{e.msg} at character {e.pos}" if isinstance(e, json.JSONDecodeError) else str(e)
        raise UserError(
            f"--model-arg {key}={value} is not valid JSON ({why}); write numbers as 0.5, lists as [16,32], "
            "booleans as true or false, text as a bare word or in double quotes"
        ) from None


def parse_model_arg(text: str) -> tuple[str, object]:
    """KEY=VALUE -> (key, value) as model_arg_value reads it; an argparse type (an ArgumentTypeError for bad input)."""
    key, value = model_arg_text(text)
    try:
        return key, model_arg_value(key, value)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def class_index(target: str, classes: list[str]) -> int:
    """--class: an index or a class name (case-insensitive)."""
    t = target.strip()
    if t.lstrip("-").isdigit():
        k = int(t)
        if 0 <= k < len(classes):
            return k
        raise UserError(f"--class {k} is outside 0..{len(classes) - 1}; the run's classes: {class_list(classes)}")
    by_name = {c.lower(): i for i, c in enumerate(classes)}
    if t.lower() in by_name:
        return by_name[t.lower()]
    raise UserError(f"--class {t!r} is not one of the run's classes (give an index or a name): {class_list(classes)}")


def class_list(classes: list[str]) -> str:
    return ", ".join(f"{i} {c}" for i, c in enumerate(classes))
