"""The `deepnotes` command: one module per command, each thin (it parses, calls the library,
prints). Every module has add_parser(subparsers) and run(args) -> exit code.

Heavy modules (torch, matplotlib, scikit-learn) are imported inside run(), so
`deepnotes --help` answers without importing torch or numpy.

A new command is a new module here, listed in COMMANDS.
"""

from __future__ import annotations

import argparse
import errno
import sys

from deepnotes import __version__
from deepnotes.cli import attack, attention, cam, embed, generate, inspect, lab, predict, segment, templates, train, translate
from deepnotes.cli import list as list_command
from deepnotes.cli.common import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE
from deepnotes.errors import UserError

COMMANDS = {
    "train": train, "predict": predict, "segment": segment, "attention": attention, "inspect": inspect, "cam": cam,
    "templates": templates, "attack": attack, "translate": translate, "embed": embed, "generate": generate, "lab": lab,
    "list": list_command,
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deepnotes",
        description="A deep-learning-for-computer-vision curriculum that runs: models, training, inspection, experiments.",
        epilog="examples:\n"
        "  deepnotes list\n"
        "  deepnotes train lenet5 --data digits --epochs 30\n"
        "  deepnotes train lenet5 --data fashion-mnist --epochs 10 --out runs/lenet\n"
        "  deepnotes predict runs/lenet shoe.png\n"
        "  deepnotes train unet_small --data fashion-scenes --epochs 10 --out runs/unet\n"
        "  deepnotes segment runs/unet scene.png            # writes runs/unet/segment.png\n"
        "  deepnotes attention runs/vit shoe.png\n"
        "  deepnotes inspect vgg16 --input 3x224x224\n"
        "  deepnotes cam runs/vgg shoe.png --method gradcam\n"
        "  deepnotes attack runs/vgg --method fgsm,pgd --eps 0,0.05,0.1\n"
        "  deepnotes train seq2seq_bahdanau --data gettext-fr-en --epochs 20 --out runs/fr\n"
        "  deepnotes translate runs/fr \"Save the file\" --beam 5\n"
        "  deepnotes train word2vec --data brown --epochs 5 --out runs/w2v\n"
        "  deepnotes embed neighbors runs/w2v king\n"
        "  deepnotes train gpt_nano --data shakespeare --out runs/gpt\n"
        "  deepnotes generate runs/gpt --prompt \"ROMEO:\" --max-new-tokens 300\n"
        "  deepnotes lab run C05 --quick\n"
        "--out is always what a command writes: the run directory (train), the figure (cam, segment,\n"
        "attention, templates: by default inside RUN_DIR), the folder (attack, lab run).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"deepnotes {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(sub)
    return p


ADVICE = {
    errno.ENOSPC: "free some space, then run the same command with --resume (the last checkpoint is intact)",
    errno.EDQUOT: "free some space, then run the same command with --resume (the last checkpoint is intact)",
    errno.EROFS: "the file system is read-only: choose a folder you can write, e.g. --out runs/NAME",
    errno.EACCES: "you may not write there: choose a folder you can write, e.g. --out runs/NAME",
    errno.EPERM: "you may not write there: choose a folder you can write, e.g. --out runs/NAME",
    errno.ENAMETOOLONG: "use a shorter name",
    errno.EISDIR: "that is a folder: give a file name, e.g. --out picture.png",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EEXIST: "a file is in the way: choose another path",
}


def os_error_text(e: OSError) -> str:
    """'No space left on device: runs/x/model.safetensors; free some space, then ...'"""
    name = getattr(e, "filename2", None) or e.filename  # os.replace(tmp, target): the target is what the user named
    where = f": {name}" if name else ""
    advice = ADVICE.get(e.errno)
    return f"{e.strerror or e}{where}" + (f"; {advice}" if advice else "")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command].run(args)
    except UserError as e:
        print(f"deepnotes: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # the file system said no: one line naming the file and what to do
        if isinstance(e, BrokenPipeError):  # `deepnotes list | head`: the reader left before the end
            sys.stderr.close()
            return EXIT_BROKEN_PIPE
        print(f"deepnotes: error: {os_error_text(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("deepnotes: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
