"""`deepnotes translate RUN_DIR "a sentence"`: a translation run's output, greedy or by beam search."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    tr = sub.add_parser(
        "translate",
        help="translate a sentence with a translation run (e.g. seq2seq_bahdanau trained on gettext-fr-en)",
        description="Tokenize SENTENCE as in training (unknown words become <unk>, which is shown), translate it greedily "
        "or with --beam N, and with --attention PNG draw the attention weights (rows: output tokens, columns: input).",
    )
    tr.add_argument("run_dir", metavar="RUN_DIR", help="a translation run directory written by `deepnotes train`")
    tr.add_argument("sentence", metavar="SENTENCE", help="the sentence to translate (quote it)")
    tr.add_argument("--beam", type=int, default=1, metavar="N", help="beam search with N hypotheses (default: 1, greedy)")
    tr.add_argument("--attention", metavar="PNG", help="also draw the attention weights into PNG")


def run(args: argparse.Namespace) -> int:
    from deepnotes.tasks import load_run
    from deepnotes.tasks.translation import translate

    run = load_run(args.run_dir)
    text, seen, figure = translate(run, args.sentence, beam=args.beam, attention_png=args.attention)
    print(f"input tokens: {' '.join(seen)}")
    print(text)
    if figure is not None:
        print(f"wrote {figure}")
    return 0
