"""`deepnotes embed neighbors|analogy|similarity|eval RUN_DIR ...`: use the vectors of a word-vectors run."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    e = sub.add_parser(
        "embed",
        help="query the vectors of a word-vectors run (word2vec, cbow, fasttext, glove): neighbours, analogies, scores",
        description="Nearest neighbours by cosine similarity, analogies by 3CosAdd (a : b :: c : ?), the similarity of two "
        "words, and the scores on WordSim-353, SimLex-999 and the Google analogies (computed as gensim does). Words "
        "are lowercased; a FastText run also answers for words it never saw (from their character n-grams).",
    )
    es = e.add_subparsers(dest="embed_command", metavar="EMBED_COMMAND", required=True)
    n = es.add_parser("neighbors", help="the words nearest to WORD")
    n.add_argument("run_dir", metavar="RUN_DIR")
    n.add_argument("words", metavar="WORD", nargs="+")
    n.add_argument("-k", type=int, default=10, help="how many (default: 10)")
    a = es.add_parser("analogy", help="A is to B as C is to ? (e.g. man king woman -> queen)")
    a.add_argument("run_dir", metavar="RUN_DIR")
    a.add_argument("a", metavar="A")
    a.add_argument("b", metavar="B")
    a.add_argument("c", metavar="C")
    a.add_argument("-k", type=int, default=5, help="how many answers (default: 5)")
    s = es.add_parser("similarity", help="the cosine similarity of two words")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("first", metavar="WORD1")
    s.add_argument("second", metavar="WORD2")
    v = es.add_parser("eval", help="WordSim-353 and SimLex-999 Spearman, Google analogy accuracy (per section with --sections)")
    v.add_argument("run_dir", metavar="RUN_DIR")
    v.add_argument("--sections", action="store_true", help="also the accuracy of every analogy section")


def run(args: argparse.Namespace) -> int:
    import torch

    from deepnotes.errors import UserError
    from deepnotes.metrics.wordvec import nearest
    from deepnotes.tasks import load_run
    from deepnotes.tasks.word_vectors import load_benchmarks, run_vectors, score_vectors, vector_of

    run = load_run(args.run_dir)
    words, index, vectors = run_vectors(run)
    if getattr(args, "k", 1) < 1:
        raise UserError(f"-k must be >= 1, got {args.k}")
    cmd = args.embed_command
    if cmd == "neighbors":
        for w in args.words:
            q = vector_of(run.model, index, w)
            print(f"{w.lower()}: " + ", ".join(f"{n} {s:.3f}" for n, s in nearest(vectors, index, words, q, k=args.k, exclude=[w.lower()])))
    elif cmd == "analogy":
        va, vb, vc = (torch.nn.functional.normalize(vector_of(run.model, index, w), dim=0) for w in (args.a, args.b, args.c))
        answers = nearest(vectors, index, words, vb - va + vc, k=args.k, exclude=[args.a.lower(), args.b.lower(), args.c.lower()])
        print(f"{args.a} : {args.b} :: {args.c} : " + ", ".join(f"{n} {s:.3f}" for n, s in answers))
    elif cmd == "similarity":
        x, y = (vector_of(run.model, index, w) for w in (args.first, args.second))
        print(f"{float(torch.nn.functional.cosine_similarity(x, y, dim=0)):.4f}")
    else:
        benchmarks, notes = load_benchmarks()
        for note in notes:
            print(note)
        scores = score_vectors(vectors, index, benchmarks)
        for key, label in (("wordsim", "WordSim-353"), ("simlex", "SimLex-999")):
            if key in scores:
                r = scores[key]
                print(f"{label}: Spearman {r['spearman']:.4f} (Pearson {r['pearson']:.4f}) on {r['pairs']} pairs; "
                      f"{r['oov']} pairs with a word outside the vocabulary left out")  # fmt: skip
        if "analogy" in scores:
            r = scores["analogy"]
            print(f"Google analogies: {r['accuracy']:.2%} ({r['correct']} of {r['questions']} questions; "
                  f"{r['skipped']} skipped: a word outside the vocabulary)")  # fmt: skip
            if args.sections:
                for name, sec in r["sections"].items():
                    print(f"  {name:<30} {sec['correct'] / max(1, sec['questions']):7.2%}  ({sec['correct']}/{sec['questions']})")
    return 0
