"""deepnotes's word vectors beside gensim's (the peer, optimized C): same corpus, same settings, one table.

    python benchmarks/word_vectors.py                          # brown; word2vec, cbow, fasttext; 5 epochs, 3 seeds, 2 threads
    python benchmarks/word_vectors.py --threads 2 --json       # ... and one JSON line, printed last
    python benchmarks/word_vectors.py --models word2vec --seeds 5 --out runs/wv-bench   # keep the deepnotes runs
    python benchmarks/word_vectors.py --profile                # ... then where one skip-gram step spends its time
    python benchmarks/word_vectors.py --quick                  # gettext-en, 1 epoch, 1 seed, dim 16: seconds (the test's smoke run)

Each row trains on the sentences of deepnotes.data.load_dataset(--corpus) (lowercased token
lists), once per seed, with the settings of SETTINGS (word2vec.c's and gensim's defaults: dim 100,
window 5, 5 noise words, sample 1e-3, min_count 5, lr 0.025 falling linearly to 1e-4 of it;
FastText adds 3-6-grams hashed into FastTextConfig's 200,000 buckets):
- deepnotes: deepnotes.tasks.run_training (`deepnotes train MODEL --data CORPUS`, the task's
  defaults: plain SGD, batches of 1024 examples updated at once), scores read from the run's
  metrics.json; its time is metrics.json's train_seconds: the training loop of every epoch,
  drawing each epoch's subsampling and windows included, the evaluation after each epoch, the
  checkpoints and building the vocabulary left out;
- gensim: Word2Vec / FastText(sg=1 or 0, cbow_mean=1, negative=5, hs=0, workers=--threads,
  alpha=0.025, min_alpha=0.0001), then build_vocab(sentences) and train(sentences); its time is
  the train() call alone (build_vocab, the counterpart of the vocabulary deepnotes builds before
  its clock starts, is timed on its own and in the JSON); its vectors (wv.vectors, the
  word + n-gram means for FastText) are scored by deepnotes.tasks.word_vectors.score_vectors, the
  very functions a deepnotes run uses, so the only difference is the training.
The systems alternate per seed (deepnotes first on even seeds, gensim first on odd ones) so that a
change of load on the machine falls on both.

Scores: Spearman correlation on WordSim-353 and SimLex-999, 3CosAdd accuracy on the Google
analogies (deepnotes.metrics.wordvec, computed as gensim's KeyedVectors does). Each cell is the
mean over the seeds with its 95% Student-t interval (deepnotes.lab.common.paired_interval); the
"deepnotes - gensim" row is the mean difference over same-seed pairs (independent runs: the pairing
only groups them) with its interval. The issue's goal for skip-gram (and the same margins shown for
the other rows): |mean difference| <= 0.02 Spearman and <= 2 points of analogy accuracy is "met";
the interval says how sure that is with this many seeds. The time ratio is deepnotes's mean
train seconds over gensim's. GloVe gets a deepnotes-only row when `deepnotes.models.list_models()`
has "glove" (gensim has no GloVe to compare with), trained as `deepnotes train glove` trains it
(its own defaults: AdaGrad, lr 0.5, window 10, 25 epochs (--own-epochs); only --dim is passed; counting the co-occurrences
happens before the clock starts, as building the vocabulary does).

The 1-minute load average is printed before the start and after every run (it includes this
benchmark's own --threads threads): a load above --threads means other work shared the cores.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import busy_warning, load_average, use_threads  # benchmarks/machine.py (the scripts run from this folder)

SETTINGS = {"window": 5, "negative": 5, "sample": 1e-3, "min_count": 5}  # word2vec.c's and gensim's defaults
TRAIN = {"optimizer": "sgd", "lr": 0.025, "schedule": "linear"}  # the word-vectors task's defaults (gensim's alpha)
MIN_ALPHA_FRACTION = 1e-4  # deepnotes's linear schedule ends at 1e-4 of the lr: gensim's min_alpha 0.0001 at alpha 0.025
METRICS = {  # key in metrics.json -> (column, margin of the goal, shown in percent)
    "test_wordsim": ("WordSim-353", 0.02, False),
    "test_simlex": ("SimLex-999", 0.02, False),
    "test_analogy": ("analogies", 0.02, True),
}
LABELS = {"word2vec": "Word2Vec skip-gram", "cbow": "Word2Vec CBOW", "fasttext": "FastText skip-gram", "glove": "GloVe"}
PEERS = ("word2vec", "cbow", "fasttext")  # the models gensim trains too


def default_models() -> list[str]:
    from deepnotes.models import list_models

    return ["word2vec", "cbow", "fasttext"] + (["glove"] if "glove" in list_models() else [])


def model_settings(model: str, dim: int) -> dict:
    """The settings both systems train `model` with (deepnotes's model_args)."""
    out = {"dim": dim, **SETTINGS}
    if model == "fasttext":
        from deepnotes.models.fasttext import FastTextConfig

        c = FastTextConfig()
        out |= {"min_n": c.min_n, "max_n": c.max_n, "buckets": c.buckets}
    if model == "glove":  # its own model settings (no gensim peer): only the size is shared
        out = {"dim": dim}
    return out


def epochs_of(model: str, default: int) -> int:
    """The epochs `deepnotes train MODEL` trains for when --epochs is not given (GloVe's recipe), else `default`."""
    from deepnotes.models import get_model_entry

    entry = get_model_entry(model)
    return int((entry.variant.train if entry.variant else {}).get("epochs", default))


# --------------------------------------------------------------------------- one run of each system


def run_deepnotes(
    model: str, corpus: str, settings: dict, *, epochs: int, seed: int, threads: int, batch_size: int, out: Path
) -> dict:
    from deepnotes.models import get_model_entry
    from deepnotes.tasks import get_task, run_training
    from deepnotes.text.vocab import SPECIALS
    from deepnotes.train import TrainConfig

    entry = get_model_entry(model)
    train = {**get_task(entry.task).train_defaults, **(entry.variant.train if entry.variant else {})}  # `deepnotes train MODEL`'s
    train.pop("epochs", None)  # given by the caller (a deepnotes-only model's own: epochs_of)
    if model in PEERS:
        train |= {**TRAIN, "batch_size": batch_size}
    cfg = TrainConfig(model=model, data=corpus, epochs=epochs, threads=threads, seed=seed, out=str(out), progress=False,
                      model_args=dict(settings), **train)  # fmt: skip
    start = time.perf_counter()
    run_training(cfg)
    wall = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    row = {key: _number(metrics.get(key)) for key in METRICS}
    row |= {
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": round(wall, 2),  # run_training as a whole: data, vocabulary, evaluations, files
        "vocab": config["model_args"]["vocab_size"] - len(SPECIALS),
        "counted": _counted(metrics.get("benchmarks", {})),
    }
    return row


def run_gensim(model: str, sentences, settings: dict, benchmarks: dict, *, epochs: int, seed: int, threads: int) -> dict:
    from gensim.models import FastText, Word2Vec

    from deepnotes.tasks.word_vectors import score_vectors

    common = {
        "vector_size": settings["dim"], "window": settings["window"], "min_count": settings["min_count"],
        "negative": settings["negative"], "hs": 0, "ns_exponent": 0.75, "sample": settings["sample"], "epochs": epochs,
        "workers": threads, "seed": seed, "alpha": TRAIN["lr"], "min_alpha": TRAIN["lr"] * MIN_ALPHA_FRACTION,
    }  # fmt: skip
    if model == "fasttext":
        peer = FastText(sg=1, bucket=settings["buckets"], min_n=settings["min_n"], max_n=settings["max_n"], **common)
    else:
        peer = Word2Vec(sg=1 if model == "word2vec" else 0, cbow_mean=1, **common)
    start = time.perf_counter()
    peer.build_vocab(sentences)
    vocab_seconds = time.perf_counter() - start
    start = time.perf_counter()
    peer.train(sentences, total_examples=peer.corpus_count, epochs=peer.epochs)
    train_seconds = time.perf_counter() - start
    scores = score_vectors(peer.wv.vectors, peer.wv.key_to_index, benchmarks)
    row = {
        "test_wordsim": _number(scores.get("wordsim", {}).get("spearman")),
        "test_simlex": _number(scores.get("simlex", {}).get("spearman")),
        "test_analogy": _number(scores.get("analogy", {}).get("accuracy")),
    }
    return row | {"train_seconds": round(train_seconds, 3), "build_vocab_seconds": round(vocab_seconds, 3),
                  "vocab": len(peer.wv.key_to_index), "counted": _counted(scores)}  # fmt: skip


def _number(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _counted(scores: dict) -> dict:
    """How many pairs / questions each score is over (the rest had a word outside the vocabulary)."""
    out = {k: scores[k]["pairs"] for k in ("wordsim", "simlex") if k in scores}
    if "analogy" in scores:
        out["analogy"] = scores["analogy"]["questions"]
    return out


# --------------------------------------------------------------------------- summaries


def interval(values: list) -> dict | None:
    """Mean and 95% t interval of one system's values over seeds (None if any is missing)."""
    from deepnotes.lab.common import paired_interval

    if not values or any(v is None for v in values):
        return None
    return paired_interval(values, [0.0] * len(values))


def difference(ours: list, theirs: list, margin: float) -> dict | None:
    from deepnotes.lab.common import paired_interval

    if not ours or any(v is None for v in ours + theirs):
        return None
    d = paired_interval(ours, theirs)
    met = abs(d["mean"]) <= margin
    verdict = "met" if met else ("not met (deepnotes lower)" if d["mean"] < 0 else "not met (deepnotes higher)")
    return d | {"margin": margin, "verdict": verdict, "interval_within_margin": -margin <= d["low"] and d["high"] <= margin}


def _cell(iv: dict | None, percent: bool, digits: int = 3) -> str:
    if iv is None:
        return "n/a"
    f = (lambda x: f"{100 * x:.1f}") if percent else (lambda x: f"{x:.{digits}f}")
    text = f(iv["mean"]) + ("%" if percent else "")
    return text if iv["runs"] < 2 else f"{text} [{f(iv['low'])}, {f(iv['high'])}]"


def _diff_cell(d: dict | None, percent: bool) -> str:
    if d is None:
        return "n/a"
    f = (lambda x: f"{100 * x:+.1f}") if percent else (lambda x: f"{x:+.3f}")
    text = f(d["mean"]) + (" pt" if percent else "")
    if d["runs"] >= 2:
        text += f" [{f(d['low'])}, {f(d['high'])}]"
    return f"{text} {'met' if d['verdict'] == 'met' else 'not met'}"


def summarize(model: str, runs: dict[str, list[dict]]) -> dict:
    out = {"model": model, "systems": {}}
    for system, rows in runs.items():
        out["systems"][system] = {
            **{key: interval([r[key] for r in rows]) for key in METRICS},
            "train_seconds": interval([r["train_seconds"] for r in rows]),
            "runs": rows,
        }
    if "gensim" in runs:
        ours, theirs = runs["deepnotes"], runs["gensim"]
        out["difference"] = {
            key: difference([r[key] for r in ours], [r[key] for r in theirs], margin) for key, (_, margin, _) in METRICS.items()
        }
        t_ours = float(np.mean([r["train_seconds"] for r in ours]))
        t_theirs = float(np.mean([r["train_seconds"] for r in theirs]))
        out["time_ratio"] = round(t_ours / t_theirs, 3) if t_theirs > 0 else None
        out["time_ratios_per_seed"] = [
            round(a["train_seconds"] / b["train_seconds"], 3) for a, b in zip(ours, theirs) if b["train_seconds"] > 0
        ]
    return out


def table(summaries: list[dict]) -> str:
    head = ["model", "system", *(c for c, _, _ in METRICS.values()), "train seconds", "time deepnotes/gensim"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for s in summaries:
        label = LABELS.get(s["model"], s["model"])
        for system, row in s["systems"].items():
            ratio = ""
            if "time_ratio" in s:
                ratio = (
                    f"{s['time_ratio']:.2f}"
                    if system == "deepnotes" and s["time_ratio"] is not None
                    else "1"
                    if system == "gensim"
                    else ""
                )
            cells = [label, system, *(_cell(row[key], pct) for key, (_, _, pct) in METRICS.items()),
                     _cell(row["train_seconds"], False, digits=1), ratio]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        if "difference" in s:
            cells = [
                label,
                "deepnotes - gensim",
                *(_diff_cell(s["difference"][key], pct) for key, (_, _, pct) in METRICS.items()),
                "",
                "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- where a skip-gram step spends its time


def profile_step(corpus, dim: int, batch_size: int, steps: int = 200) -> dict:
    """torch.profiler over `steps` skip-gram steps on the corpus's real batches (the noise draw and
    sgns_step, as the task's training_step runs them): the time of each top-level op of a step
    (inclusive: an einsum's bmm and permutes count in the einsum), numbered in the order a step
    calls it, and its share of the step; what is left ("between ops") is Python and dispatch.
    In sgns_step's order: index_select #1 gathers the centres' input rows, #2 the (1 + K) output
    rows of each; einsum #1 the scores u . h, #2 the step for h (g @ u), #3 the outer product
    g x h for the output rows; index_add_ #1 adds it to the output rows, #2 the step to the input
    rows; rand/searchsorted draw the noise words. Also: the seconds to draw one epoch's windows
    (numpy, once per epoch) and the steps of an epoch."""
    from torch.profiler import ProfilerActivity, profile, record_function

    from deepnotes.models import create_model
    from deepnotes.tasks.word_vectors import WindowBatches, corpus_ids, keep_probabilities, noise_cdf
    from deepnotes.text.vocab import SPECIALS, Vocabulary

    vocab = Vocabulary.build(corpus.sentences, min_count=SETTINGS["min_count"])
    counts = np.array([0] * len(SPECIALS) + vocab.counts, dtype=np.float64)
    ids, sent = corpus_ids(corpus.sentences, vocab)
    start = time.perf_counter()
    batches = WindowBatches(ids, sent, keep_probabilities(counts, SETTINGS["sample"]), mode="skipgram", window=SETTINGS["window"],
                            batch_size=batch_size, seed=0)  # fmt: skip
    windows_seconds = time.perf_counter() - start  # epoch 1's windows, drawn to count the steps
    cdf = noise_cdf(counts)
    torch.manual_seed(0)
    model = create_model("word2vec", vocab_size=len(vocab), num_classes=len(vocab), dim=dim)
    data = []
    for a, b in batches.epoch(1):
        data.append((a, b))
        if len(data) == steps + 10:
            break

    def step(a, b):
        noise = torch.searchsorted(cdf, torch.rand(len(b), SETTINGS["negative"], dtype=torch.float64))
        model.sgns_step(a, torch.cat([b.unsqueeze(1), noise], 1), TRAIN["lr"])

    for a, b in data[:10]:  # warm-up
        step(a, b)
    timed = data[10:]
    start = time.perf_counter()
    for a, b in timed:
        step(a, b)
    plain = (time.perf_counter() - start) / len(timed)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for a, b in timed:
            with record_function("sgns step"):
                step(a, b)
    per_op: dict[str, float] = {}
    step_total = 0.0
    for e in prof.events():
        if e.name != "sgns step":
            continue
        step_total += e.cpu_time_total
        seen: dict[str, int] = {}
        for child in e.cpu_children:
            seen[child.name] = seen.get(child.name, 0) + 1
            label = f"{child.name.removeprefix('aten::')} #{seen[child.name]}"
            per_op[label] = per_op.get(label, 0.0) + child.cpu_time_total
    per_op["between ops"] = step_total - sum(per_op.values())
    n = len(timed)
    ops = sorted(({"op": k.removesuffix(" #1") if f"{k.removesuffix(' #1')} #2" not in per_op else k, "ms_per_step": v / 1e3 / n,
                   "share": v / step_total} for k, v in per_op.items()), key=lambda r: -r["share"])  # fmt: skip
    return {"steps_per_epoch": len(batches), "examples_per_epoch": batches.examples, "batch_size": batch_size,
            "ms_per_step": round(1e3 * plain, 3), "ms_per_step_profiled": round(step_total / 1e3 / n, 3),
            "windows_seconds_per_epoch": round(windows_seconds, 3), "ops": [{k: rounded(v) for k, v in r.items()} for r in ops]}  # fmt: skip


def rounded(x):
    return float(f"{x:.4g}") if isinstance(x, float) else x


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON line of results, last")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for deepnotes, workers for gensim (default 2)")
    parser.add_argument("--quick", action="store_true", help="gettext-en, 1 epoch, 1 seed, dim 16: a smoke run of seconds")
    parser.add_argument(
        "--models", nargs="+", default=None, help="registry names (default: word2vec cbow fasttext, and glove if registered)"
    )
    parser.add_argument("--seeds", type=int, default=3, help="runs per system and model, seeds 0..N-1 (default 3)")
    parser.add_argument("--epochs", type=int, default=5, help="of the models with a gensim peer (default 5)")
    parser.add_argument(
        "--own-epochs", type=int, default=None, help="of the deepnotes-only models (GloVe; default: each model's own, 25 for GloVe)"
    )
    parser.add_argument("--corpus", default="brown", help="a dataset of kind corpus (default brown)")
    parser.add_argument("--dim", type=int, default=100, help="vector size (default 100)")
    parser.add_argument("--batch-size", type=int, default=1024, help="deepnotes's examples per step (default 1024, the task's)")
    parser.add_argument(
        "--out", default=None, help="folder for the deepnotes runs, kept (default: a temporary folder, deleted after)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="after the table, profile 200 skip-gram steps of deepnotes on the corpus"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.corpus, args.epochs, args.own_epochs, args.seeds, args.dim = "gettext-en", 1, 1, 1, 16
    if min(args.seeds, args.epochs, args.own_epochs or 1, args.dim, args.batch_size, args.threads) < 1:
        parser.error("need --seeds, --epochs, --dim, --batch-size and --threads >= 1")
    models = args.models or default_models()
    from deepnotes.models import list_models

    unknown = [m for m in models if m not in list_models()]
    if unknown:
        parser.error(
            f"unknown model {', '.join(unknown)}: choose among word2vec, cbow, fasttext"
            + (", glove" if "glove" in list_models() else "")
        )
    if any(m in PEERS for m in models):
        try:
            import gensim
            from gensim.models.word2vec import FAST_VERSION
        except ImportError:
            parser.error("gensim is not installed (pip install gensim): it is the peer this benchmark compares with")
    seeds = list(range(args.seeds))
    if args.out is not None:
        taken = [
            str(Path(args.out) / f"{m}-seed{s}") for m in models for s in seeds if (Path(args.out) / f"{m}-seed{s}").exists()
        ]
        if taken:
            parser.error(
                f"--out {args.out} already holds {', '.join(taken[:3])}{' ...' if len(taken) > 3 else ''}: runs are never overwritten; give a new folder"
            )

    began = time.perf_counter()
    threads = use_threads(args.threads)
    from deepnotes.data import load_dataset
    from deepnotes.tasks.word_vectors import load_benchmarks

    corpus = load_dataset(args.corpus)
    benchmarks, notes = load_benchmarks()
    for note in notes:
        print(f"note: {note}")
    print(f"word vectors, deepnotes vs gensim {gensim.__version__ if any(m in PEERS for m in models) else '-'}: {args.corpus} "
          f"({sum(map(len, corpus.sentences)):,} tokens in {len(corpus.sentences):,} sentences), {args.epochs} epoch{'s' if args.epochs != 1 else ''}"
          f"{''.join(f' ({m}: {args.own_epochs or epochs_of(m, args.epochs)})' for m in models if m not in PEERS)}, "
          f"dim {args.dim}, seeds {seeds}, {threads} thread{'s' if threads != 1 else ''}, torch {torch.__version__}", flush=True)  # fmt: skip
    load_start = busy_warning()
    loads = []
    tmp = None
    root = Path(args.out) if args.out is not None else Path(tmp := tempfile.mkdtemp(prefix="wv-bench-"))
    summaries = []
    try:
        for model in models:
            settings = model_settings(model, args.dim)
            systems = ["deepnotes", "gensim"] if model in PEERS else ["deepnotes"]
            runs: dict[str, list[dict]] = {s: [] for s in systems}
            epochs = args.epochs if model in PEERS else args.own_epochs or epochs_of(model, args.epochs)
            for seed in seeds:
                for system in systems if seed % 2 == 0 else systems[::-1]:
                    if system == "deepnotes":
                        row = run_deepnotes(model, args.corpus, settings, epochs=epochs, seed=seed, threads=threads,
                                            batch_size=args.batch_size, out=root / f"{model}-seed{seed}")  # fmt: skip
                    else:
                        row = run_gensim(
                            model, corpus.sentences, settings, benchmarks, epochs=args.epochs, seed=seed, threads=threads
                        )
                    row["seed"], row["load_after"] = seed, load_average()
                    loads.append(row["load_after"])
                    runs[system].append(row)
                    scores = "  ".join(f"{METRICS[k][0]} " + ("n/a" if row[k] is None else f"{100 * row[k]:.2f}%" if METRICS[k][2] else f"{row[k]:.3f}")
                                       for k in METRICS)  # fmt: skip
                    print(f"{model:<9} seed {seed} {system:<9} {scores}  train {row['train_seconds']:.1f}s  vocab {row['vocab']:,}  "
                          f"load {row['load_after']}", flush=True)  # fmt: skip
            if len({r["vocab"] for rs in runs.values() for r in rs}) > 1:
                sizes = ", ".join(f"{s} {rs[0]['vocab']:,}" for s, rs in runs.items())
                print(f"note: {model}: the vocabularies differ in size ({sizes})")
            summaries.append({**summarize(model, runs), "epochs": epochs})
    finally:
        if tmp is not None:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    load_end = load_average()
    seconds = time.perf_counter() - began

    print()
    print(table(summaries))
    print()
    print(
        "Cells: mean over the seeds [95% t interval]; analogies in percent; train seconds: deepnotes's training loop "
        "(evaluation left out), gensim's train() call (build_vocab left out)."
    )
    for s in summaries:
        if "difference" not in s:
            continue
        goals = "; ".join(
            f"{METRICS[k][0]} {d['verdict']} (|{d['mean']:+.4f}| vs {d['margin']:g})"
            for k, d in s["difference"].items()
            if d is not None
        )
        print(
            f"{LABELS.get(s['model'], s['model'])}: {goals}; time ratio {s['time_ratio']}"
            + ("  <- the issue's goal" if s["model"] == "word2vec" else "")
        )
    busy = [x for x in [load_start, *loads] if x is not None]
    print(f"load average: {load_start} at the start, {min(busy) if busy else '-'}..{max(busy) if busy else '-'} after the runs, "
          f"{load_end} at the end ({threads} of them this benchmark's); {seconds / 60:.1f} min in all", flush=True)  # fmt: skip

    profile = None
    if args.profile:
        profile = profile_step(corpus, args.dim, args.batch_size, steps=20 if args.quick else 200)
        print(f"\nskip-gram step, batch {profile['batch_size']}: {profile['ms_per_step']} ms ({profile['steps_per_epoch']:,} steps per epoch, "
              f"{profile['examples_per_epoch']:,} examples); one epoch's windows {profile['windows_seconds_per_epoch']} s")  # fmt: skip
        print(
            f"{'op (in the order of the step)':<30} {'ms/step':>8} {'share':>7}   (profiled: {profile['ms_per_step_profiled']} ms/step)"
        )
        for r in profile["ops"]:
            if r["share"] >= 0.005:
                print(f"{r['op']:<30} {r['ms_per_step']:>8.3f} {r['share']:>7.1%}")

    if args.json:
        print(json.dumps({
            "benchmark": "word_vectors",
            "corpus": args.corpus,
            "models": models,
            "epochs": args.epochs,
            "seeds": seeds,
            "dim": args.dim,
            "settings": SETTINGS,
            "train": {**TRAIN, "min_alpha": TRAIN["lr"] * MIN_ALPHA_FRACTION, "deepnotes_batch_size": args.batch_size},
            "rows": summaries,
            "notes": notes,
            "threads": threads,
            "torch": torch.__version__,
            "gensim": gensim.__version__ if any(m in PEERS for m in models) else None,
            "gensim_fast_version": FAST_VERSION if any(m in PEERS for m in models) else None,
            "load_average": {"start": load_start, "after_each_run": loads, "end": load_end},
            "seconds": round(seconds, 1),
            "profile": profile,
        }), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
