"""`deepnotes generate RUN_DIR --prompt "ROMEO:"`: text from a language-model run, printed as it comes."""

from __future__ import annotations

import argparse
import sys


def _top_p(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--top-p is a probability in (0, 1], e.g. 0.9, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"--top-p is a probability in (0, 1], e.g. 0.9, got {text}")
    return value


def add_parser(sub) -> None:
    g = sub.add_parser(
        "generate",
        help="generate text with a language-model run (gpt_nano, lstm_lm, ngram3, ... trained on a corpus)",
        description="Encode --prompt with the run's tokenizer, then sample one token at a time from the model, "
        "printing each as it comes: --temperature 0 is greedy (the most likely token every time); --top-k keeps the "
        "K most likely tokens, --top-p the smallest set whose probability reaches P (nucleus sampling, Holtzman et "
        "al. 2020). The same --seed gives the same text.",
    )
    g.add_argument("run_dir", metavar="RUN_DIR", help="a language-model run directory written by `deepnotes train`")
    g.add_argument("--prompt", default="", help="the text to continue [a line break: the start of a line]")
    g.add_argument("--max-new-tokens", type=int, default=300, metavar="N", help="tokens to generate [300]")
    g.add_argument("--temperature", type=float, default=0.8, metavar="T", help="divides the logits; 0 = greedy [0.8]")
    g.add_argument("--top-k", type=int, metavar="K", help="sample among the K most likely tokens [all]")
    g.add_argument("--top-p", type=_top_p, metavar="P", help="sample among the most likely tokens whose probability reaches P [1]")
    g.add_argument("--seed", type=int, default=0, help="random seed of the sampling [0]")


def run(args: argparse.Namespace) -> int:
    from deepnotes.errors import UserError
    from deepnotes.tasks import load_run
    from deepnotes.tasks.language_model import generate_text

    if args.temperature < 0:
        raise UserError(f"--temperature must be >= 0 (0 = greedy), got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {args.top_k}")
    if not 0 <= args.seed < 2**63:
        raise UserError(f"--seed must be an integer in 0..2**63 - 1, got {args.seed}")
    run = load_run(args.run_dir)
    _, pieces = generate_text(run, args.prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p, seed=args.seed)  # fmt: skip
    sys.stdout.write(args.prompt)
    for text in pieces:
        sys.stdout.write(text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
