"""C62, C63: pre-training then fine-tuning (사전 학습 / 미세 조정) and few-shot prompting (퓨샷 프롬프팅).

Every model here is a small GPT (deepnotes.models.gpt, gpt_nano with a smaller shape) trained at the
character level through the language-model task (lab.language.runs.train_lm: the path of
`deepnotes train gpt_nano --data ...`, one thread, AdamW, runs cached per process).

C62  Pre-training on a large corpus, then fine-tuning on a small task, against training from scratch
     on the small task alone. Full: pre-training on the KJV Bible and the Brown corpus together
     (10.3 M characters, 566 documents; 2 layers, width 96, 4 heads, context 64; 1,500 steps of 32
     windows, lr 2e-3 with cosine decay), the small task is Shakespeare: fine-tuning sets of
     5,000, 20,000 and 80,000 characters. Quick: gettext-en split by catalogue into a "large" part
     (70 catalogues, pre-training: 1 layer, width 64, context 32, 500 steps, lr 1e-2) and a "small"
     one (10 catalogues, the task): fine-tuning sets of 1,000 and 4,000 characters (tiny sets for a
     tiny model: a model this small learns about as much from a few thousand characters as its
     pre-training taught it). The held-out text (full 16,385 characters, quick 8,193) is made of
     pieces of 2,000 characters evenly spaced through the task (split_task), never in a fine-tuning
     set; a fine-tuning set is a slice of the rest at a seeded place (per seed and size).
     Characters: a fine-tuned run keeps its source run's character vocabulary (the characters of
     the whole pre-training corpus), so the task's text is mapped into it: a character the
     pre-training text lacks becomes its other case where that exists (Shakespeare's "X" -> "x":
     the Bible has no capital X, Brown is lower case), else it is dropped (Shakespeare's '"', '@',
     '_'); the numbers count both. Leakage: every line of the pre-training text that also occurs
     in the held-out text is removed from the pre-training text.
     Both arms train on the same fine-tuning text with the same batches, a constant learning rate
     (scratch: quick 2e-3, full 1e-3; fine-tuning the pre-trained model: a smaller step, quick
     3e-4, full 2e-4, as fine-tuning is done), for the same budget (quick 90 steps of 16 windows,
     full 500 of 32), evaluated on the held-out text every 5 (full 25) steps. Each arm is judged at
     its best evaluation: trained to its best held-out loss (early stopping on the held-out text,
     the same optimistic rule for both arms, so that scratch is judged neither over- nor
     under-trained by the budget; where an arm's best is the last evaluation the reason says so).
     The loss at the end of the budget (the same steps) and the pre-trained model's loss before
     fine-tuning are reported. Scratch uses the task's own character vocabulary (a smaller softmax:
     if anything an advantage for scratch). One pre-trained model (seed 0) serves every
     fine-tuning seed: full, 3 seeds, 95% t-intervals of paired differences over the fine-tuning
     seeds (data slice, initialisation of scratch, batches); quick, 1 seed, the interval over the
     held-out windows of that seed's two runs, each re-run to its best evaluation (a constant
     learning rate and batches drawn per epoch from the seed make the prefix run the same run,
     checked). pretrain="shuffled" is the opposite evidence: the same pre-training characters
     permuted across the whole corpus (no words, no lines: only the character frequencies
     survive), same model, same steps. (At a few hundred characters the frequencies alone do help
     a little, which is why the quick sizes start at 1,000.)
C63  Few-shot prompting: k examples in the prompt, no weight update. A character GPT cannot be
     expected to pick up a task it never saw at this size, so the task is in its training mix (as
     the brief allows; ERRATA E07: zero-shot describes the evaluation, not the training): lines
     of examples "word:f(word);" of one mapping f per line, f one of copy ("stone"), upper
     ("STONE") and title ("Stone"), 2-9 examples a line, are inserted between the lines of the
     corpus (after a line, another example line with probability 0.2, geometric; quick 0.4: the
     share of the characters is in the numbers). The words of the example lines are lower-case
     words of 3-5 letters of the corpus seen twice or more; 200 of them are held out and never
     appear in an example line of the training mix: every test query and every in-prompt example
     uses held-out words only (they do occur in the corpus's own text).
     Test: a query word w and a mapping f (balanced), the prompt "\\n" + k examples of f on other
     held-out words + "w:"; the model scores the three answers f'(w) + ";" by their
     log-likelihood (all three have the same length: no length bias) and is right if the correct
     one scores highest; chance 1/3. Zero-shot (k = 0) the prompt does not say which mapping is
     meant: the examples are the only signal. The same queries and examples for every k (paired:
     acc(k) - acc(0) per query). Full: Shakespeare (gettext-en if it cannot be found without a
     download), 2 layers, width 64, context 128, 600 steps of 32 windows, lr 3e-3 cosine, 3 seeds,
     300 queries, plus a side model trained on the text alone (no example lines; 1 seed, not
     judged: does in-context learning of this format appear without it?). Quick: gettext-en,
     1 layer, width 64, context 96, 200 steps of 16, 1 seed, 150 queries. labels="wrong" is the
     opposite evidence: every in-prompt example shows one other mapping (the same wrong one for the
     whole prompt) and the answer is still scored against f: the in-context signal is reversed, and
     accuracy falls with k instead of rising (every run computes both; `labels` picks the judged one).

Everything trains on the CPU with one thread (the numbers say so).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deepnotes.data.corpora import Corpus
from deepnotes.errors import DataError, UserError
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import image_paired_interval, lab_corpus, new_figure, paired_interval, rounded, save_figure
from deepnotes.lab.language.runs import LMRun, train_lm

MODEL = "gpt_nano"  # reshaped by model_args below (the registered shape is nanoGPT's 4 x 128)


# ============================================================================ shared: corpora from texts


def text_corpus(name: str, texts: Sequence[str], source: str = "deepnotes.lab.language.pretrain") -> Corpus:
    """A corpus whose documents are `texts` (a character model reads the texts as they are; the
    sentences, lower-cased whitespace tokens per line, are there for the corpus checks). An empty
    text is a document without sentences."""
    sentences, docs = [], []
    for d, text in enumerate(texts):
        for line in text.split("\n"):
            words = line.lower().split()
            if words:
                sentences.append(words)
                docs.append(d)
    if not sentences:
        raise DataError(f"{name}: the texts hold no words")
    return Corpus(name, sentences, np.asarray(docs, dtype=np.int32), [f"doc{d}" for d in range(len(texts))],
                  ["text"] * len(texts), source, "whitespace", list(texts))  # fmt: skip


def corpus_texts(corpus: Corpus) -> list[str]:
    """The text of every document, as the character tokenizer reads it (deepnotes.text.streams)."""
    from deepnotes.text.streams import doc_texts

    return doc_texts(corpus, range(corpus.num_docs))


def digest(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:10]


def map_chars(text: str, allowed: set[str] | frozenset[str]) -> tuple[str, dict]:
    """`text` written with the characters in `allowed` only: a character outside it becomes its other
    case where that is allowed, else it is dropped. Returns the text and what changed (counts per
    character)."""
    out, mapped, dropped = [], Counter(), Counter()
    for c in text:
        if c in allowed:
            out.append(c)
        elif c.lower() in allowed and len(c.lower()) == 1:
            out.append(c.lower())
            mapped[c] += 1
        elif c.upper() in allowed and len(c.upper()) == 1:
            out.append(c.upper())
            mapped[c] += 1
        else:
            dropped[c] += 1
    return "".join(out), {"mapped": dict(sorted(mapped.items())), "dropped": dict(sorted(dropped.items())),
                          "mapped_count": sum(mapped.values()), "dropped_count": sum(dropped.values())}  # fmt: skip


def without_lines(texts: Sequence[str], lines: set[str]) -> tuple[list[str], int]:
    """The texts with every line whose stripped text is in `lines` removed; and how many were removed."""
    out, removed = [], 0
    for text in texts:
        kept = []
        for line in text.split("\n"):
            if line.strip() and line.strip() in lines:
                removed += 1
            else:
                kept.append(line)
        out.append("\n".join(kept))
    return out, removed


def shuffled_texts(texts: Sequence[str], seed: int) -> list[str]:
    """Every character of `texts` permuted across all of them, dealt back into texts of the same
    lengths: the same characters with the same counts (the same vocabulary), no words, no lines."""
    chars = np.array(list("".join(texts)))
    np.random.default_rng(seed).shuffle(chars)
    cuts = np.cumsum([len(t) for t in texts])[:-1]
    return ["".join(part) for part in np.split(chars, cuts)]


def line_chunks(text: str, parts: int) -> list[str]:
    """`text` cut into `parts` pieces of about equal length, each cut at the line break nearest after
    the equal split point (at the point itself when no line break follows); "".join(pieces) == text."""
    cuts, start = [], 0
    for i in range(1, parts):
        at = max(start, round(i * len(text) / parts))
        nl = text.find("\n", at)
        at = nl + 1 if 0 <= nl < len(text) - 1 else at
        cuts.append(at)
        start = at
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def task_corpus(name: str, train_text: str, test_text: str) -> Corpus:
    """The small task as a corpus the language-model task splits the way we want: documents 0-8 are
    the training text (cut at line breaks), document 9 (i % 10 == 9) is the held-out text."""
    return text_corpus(name, [*line_chunks(train_text, 9), test_text])


def window_losses_of(model: torch.nn.Module, ids: torch.Tensor) -> np.ndarray:
    """The mean NLL (nats per token) of each window the language-model task scores on the stream `ids`
    (its EvalBlocks: the first test tokens in non-overlapping windows of the model's context)."""
    from deepnotes.tasks.language_model import EvalBlocks

    model = model.eval()
    out = []
    with torch.no_grad():
        for x, y in EvalBlocks(ids, model.context).epoch(0):
            logits = model(x).float()
            out.append(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y).double().mean(1))
    return torch.cat(out).numpy()


def window_losses(run: LMRun) -> np.ndarray:
    """window_losses_of the run's final model on its held-out stream: their mean is the run's test loss."""
    return window_losses_of(run.model, run.task.test_ids)


def _iv(d: dict | None, fmt: str = "+.3f") -> str:
    if d is None:
        return "[-]"
    return f"{d['mean']:{fmt}} [{d['low']:{fmt}}, {d['high']:{fmt}}]"


def _over(d: dict) -> str:
    return "over seeds" if d.get("over") == "seeds" else f"over {d.get('over')}, 1 seed"


# ============================================================================ C62

C62_RECIPE = {  # (quick, full)
    "model_args": ({"n_layer": 1, "n_embd": 64, "n_head": 4, "block_size": 32}, {"n_layer": 2, "n_embd": 96, "n_head": 4, "block_size": 64}),
    "pretrain_batch": (32, 32),
    "pretrain_lr": (1e-2, 2e-3),
    "pretrain_steps": (500, 1500),
    "batch_size": (16, 32),
    "lr": (2e-3, 1e-3),  # from scratch
    "finetune_lr": (3e-4, 2e-4),  # the pre-trained model (fine-tuning takes a smaller step than training from scratch)
    "finetune_steps": (90, 500),
    "eval_every": (5, 25),
    "sizes": ((1_000, 4_000), (5_000, 20_000, 80_000)),
    "test_chars": (8_193, 16_385),
    "seeds": (1, 3),
}  # fmt: skip
PRETRAIN_KINDS = ("text", "shuffled")
QUICK_SMALL = (8, 3)  # gettext-en catalogue i is in the small task when i % 8 == 3 (10 of 80), the rest pre-trains
TEST_BLOCK = 2_000  # the held-out text is pieces of this many characters from all over the task (split_task)
RERUN_TOLERANCE = 1e-4  # a prefix run must reproduce the evaluation it stops at (nats)


def c62_sources(quick: bool, corpus: str | None = None) -> dict:
    """The pre-training texts and the task's text: full, Bible + Brown -> Shakespeare (gettext-en split
    by catalogue if one of them cannot be found without a download); quick, or corpus="gettext-en",
    gettext-en's catalogues split into a large part and a small one."""
    from deepnotes.data import load_dataset

    if corpus not in (None, "gettext-en", "shakespeare"):
        raise UserError(f"C62 runs on shakespeare (pre-trained on bible-kjv + brown) or gettext-en (split), got {corpus!r}")
    if corpus == "shakespeare" or (not quick and corpus is None):
        try:
            bible = load_dataset("bible-kjv", download=False)
            brown = load_dataset("brown", download=False)
            plays = load_dataset("shakespeare", download=False)
        except DataError:
            pass
        else:
            return {"pretrain_name": "bible-kjv + brown", "pretrain": corpus_texts(bible) + corpus_texts(brown),
                    "task_name": "shakespeare", "task": "\n\n".join(corpus_texts(plays))}  # fmt: skip
    data = lab_corpus("gettext-en", True)
    texts = corpus_texts(data)
    every, which = QUICK_SMALL
    return {"pretrain_name": f"gettext-en, catalogues i % {every} != {which}",
            "pretrain": [t for i, t in enumerate(texts) if i % every != which],
            "task_name": f"gettext-en, catalogues i % {every} == {which}",
            "task": "\n\n".join(t for i, t in enumerate(texts) if i % every == which)}  # fmt: skip


def split_task(text: str, test_chars: int, block: int = TEST_BLOCK) -> tuple[str, str]:
    """(pool, held-out text): the text is cut into pieces of about `block` characters at line breaks;
    ceil(test_chars / block) of them, evenly spaced through the text, are the held-out text (cut to
    `test_chars`), the others joined are the pool the fine-tuning sets are drawn from. The held-out
    text comes from the whole task, not from its end alone."""
    if len(text) < 4 * test_chars:
        raise DataError(f"the task text has {len(text):,} characters, too few to hold out {test_chars:,}")
    pieces = line_chunks(text, max(2, len(text) // block))
    n = -(-test_chars // block) + 1
    held = set(np.linspace(0, len(pieces) - 1, n + 2)[1:-1].round().astype(int).tolist())
    test = "".join(pieces[i] for i in sorted(held))[:test_chars]
    pool = "".join(p for i, p in enumerate(pieces) if i not in held)
    return pool, test


def finetune_slice(pool: str, size: int, seed: int) -> str:
    """`size` characters of the pool from a seeded place (moved to the next line start)."""
    if size >= len(pool):
        raise DataError(f"a fine-tuning set of {size:,} characters needs a pool of more; the task's has {len(pool):,}")
    start = int(np.random.default_rng([seed, size]).integers(0, len(pool) - size))
    nl = pool.find("\n", start, start + 200)
    start = nl + 1 if nl >= 0 and nl + 1 + size <= len(pool) else start
    return pool[start : start + size]


def best_evaluation(run: LMRun) -> tuple[int, float]:
    """(1-based index, held-out loss) of the run's best evaluation."""
    losses = [float(e["test_loss"]) for e in run.history]
    i = int(np.argmin(losses))
    return i + 1, losses[i]


def at_best(run: LMRun, rerun: Callable[[int], LMRun], eval_every: int) -> tuple[LMRun, bool]:
    """The run stopped at its best evaluation: the run itself if that is its last, else a new run of
    the same recipe for best x eval_every steps (constant learning rate, batches drawn per epoch from
    the seed: the same steps, so the same weights); and whether it reproduced the evaluation's loss."""
    best, loss = best_evaluation(run)
    if best == len(run.history):
        return run, True
    again = rerun(best * eval_every)
    return again, abs(float(again.metrics["test_loss"]) - loss) <= RERUN_TOLERANCE


def _arm(runs: list[LMRun], eval_every: int) -> dict:
    """Per seed: the held-out loss at its best evaluation and the step it came at, and at the end."""
    best = [best_evaluation(r) for r in runs]
    final = [float(r.metrics["test_loss"]) for r in runs]
    return {"best": [rounded(b[1]) for b in best], "best_mean": rounded(float(np.mean([b[1] for b in best]))),
            "best_step": [b[0] * eval_every for b in best],
            "final": [rounded(v) for v in final], "final_mean": rounded(float(np.mean(final))),
            "seconds": [rounded(r.seconds, 3) for r in runs]}  # fmt: skip


def _difference(a: list[float], b: list[float], items_a: np.ndarray | None, items_b: np.ndarray | None) -> dict:
    """a - b: t-interval over seeds with 2+ seeds, else the interval over the held-out windows."""
    if len(a) > 1 or items_a is None:
        return paired_interval(a, b) | {"over": "seeds"}
    return image_paired_interval(torch.from_numpy(items_a), torch.from_numpy(items_b)) | {
        "over": f"{len(items_a)} held-out windows"
    }


def judge_c62(numbers: dict) -> tuple[str, str]:
    """Each arm is judged at its best held-out evaluation (trained to its best held-out loss). The
    small sizes are every fine-tuning size but the largest (the only one if there is one). Holds if
    at every small size the pre-trained-then-fine-tuned model's held-out loss is below the from-
    scratch model's: the 95% interval of pre-trained - scratch entirely below 0 (over seeds with 2+
    seeds, else over the held-out windows of the one seed). Holds with a correction if that is so at
    the smallest size only. Does not hold otherwise (e.g. pre-training on shuffled characters:
    nothing but character frequencies to transfer); "inconclusive" in the reason when every mean
    difference is below 0 but an interval reaches 0. The reason says how the gap changes with the
    size (shrinks: smaller at the largest size than at the smallest) and the difference at the end
    of the budget (the same steps for both arms)."""
    n = numbers
    sizes = n["sizes"]
    small = sizes[:-1] or sizes
    rows = {s: n["by_size"][str(s)] for s in sizes}

    def wins(s: int) -> bool:
        return rows[s]["difference"]["high"] < 0

    gaps = [rows[s]["difference"]["mean"] for s in sizes]
    shrink = "shrinks" if abs(gaps[-1]) < abs(gaps[0]) else "does not shrink"
    per_size = "; ".join(
        f"{s:,} characters: pre-trained {rows[s]['pretrained']['best_mean']:.3f}, scratch {rows[s]['scratch']['best_mean']:.3f}, "
        f"difference {_iv(rows[s]['difference'])} ({_over(rows[s]['difference'])}; after all {n['finetune_steps']} steps "
        f"{rows[s]['final_difference']['mean']:+.3f})"
        for s in sizes
    )
    still = [f"{arm} at {s:,}" for s in sizes for arm in ("pretrained", "scratch")
             if n["finetune_steps"] in rows[s][arm].get("best_step", [])]  # fmt: skip
    still_text = f"; best at the last evaluation (may still improve with more steps): {', '.join(still)}" if still else ""
    pre = n["pretraining"]
    summary = (f"pre-trained on {pre['data']} ({'characters shuffled: no words, no lines' if n['pretrain'] == 'shuffled' else 'as written'}; "
               f"its own held-out loss {pre['test_loss']:.3f} nats/char after {pre['steps']} steps), fine-tuned on {n['task']}; "
               f"held-out loss (nats per character) of each arm at its best evaluation within {n['finetune_steps']} steps, "
               f"{len(n['seeds'])} seed(s): {per_size}; the gap from {sizes[0]:,} to {sizes[-1]:,} characters {shrink} "
               f"({gaps[0]:+.3f} -> {gaps[-1]:+.3f}){still_text}")  # fmt: skip
    if all(wins(s) for s in small):
        return "holds", summary
    if wins(sizes[0]):
        return "holds with a correction", f"pre-training helps at the smallest size only: {summary}"
    inconclusive = all(rows[s]["difference"]["mean"] < 0 for s in small)
    why = ("inconclusive: every mean difference at the small sizes is below 0 but an interval reaches 0 (the rule: every "
           "interval below 0)" if inconclusive else "pre-training gives no benefit at the small sizes")  # fmt: skip
    return "does not hold", f"{why}: {summary}"


@experiment("C62", quick_verdict="holds", opposite={"pretrain": "shuffled"})
def run_c62(ctx: Context, pretrain: str = "text", corpus: str | None = None, seeds: int | None = None,
            sizes: Sequence[int] | None = None, finetune_steps: int | None = None, pretrain_steps: int | None = None) -> Finding:  # fmt: skip
    """Pre-train a character GPT, fine-tune it on small sets of the task, against training from scratch
    on the same sets (the module docstring has the recipe). pretrain="shuffled" pre-trains on the same
    characters permuted (the opposite evidence)."""
    if pretrain not in PRETRAIN_KINDS:
        raise UserError(f"pretrain is 'text' (the corpus as written) or 'shuffled' (its characters permuted), got {pretrain!r}")
    pick = 0 if ctx.quick else 1
    r = {k: v[pick] for k, v in C62_RECIPE.items()}
    sizes = sorted(int(s) for s in (sizes or r["sizes"]))
    seeds = seeds or r["seeds"]
    ft_steps, pt_steps, every = finetune_steps or r["finetune_steps"], pretrain_steps or r["pretrain_steps"], r["eval_every"]

    src = c62_sources(ctx.quick, corpus)
    pool, test_text = split_task(src["task"], r["test_chars"])
    pre_texts, removed = without_lines(src["pretrain"], {line.strip() for line in test_text.split("\n") if line.strip()})
    if pretrain == "shuffled":
        pre_texts = shuffled_texts(pre_texts, ctx.seed)
    pre_corpus = text_corpus(f"{src['pretrain_name']} ({pretrain}, {digest(pre_texts)})", pre_texts)
    allowed = set("".join(pre_texts))
    pool, pool_changes = map_chars(pool, allowed)
    test_text, test_changes = map_chars(test_text, allowed)

    source = train_lm(MODEL, pre_corpus, steps=pt_steps, steps_per_epoch=max(1, pt_steps // 4), seed=ctx.seed,
                      batch_size=r["pretrain_batch"], tokenizer="char", lr=r["pretrain_lr"], model_args=r["model_args"],
                      log=ctx.log)  # fmt: skip
    train = {"batch_size": r["batch_size"], "tokenizer": "char", "schedule": "none", "steps_per_epoch": every, "log": ctx.log}
    by_size: dict[str, dict] = {}
    before = None  # the pre-trained model's held-out loss, before any fine-tuning
    for size in sizes:
        tuned, scratch, items, reproduced = [], [], None, []
        for s in range(seeds):
            seed = ctx.seed + s
            text = finetune_slice(pool, size, seed)
            task = task_corpus(f"{src['task_name']} {size} chars seed {seed} ({digest(text, test_text)})", text, test_text)
            arms = {
                "pretrained": lambda steps, task=task, seed=seed: train_lm(MODEL, task, steps=steps, seed=seed, from_run=source.run_dir,
                                                                               lr=r["finetune_lr"], **train),
                "scratch": lambda steps, task=task, seed=seed: train_lm(MODEL, task, steps=steps, seed=seed, model_args=r["model_args"],
                                                                            lr=r["lr"], **train),
            }  # fmt: skip
            a, b = arms["pretrained"](ft_steps), arms["scratch"](ft_steps)
            if (
                a.tokenizer.decode(a.task.test_ids.tolist()) != test_text
                or b.tokenizer.decode(b.task.test_ids.tolist()) != test_text
            ):
                raise RuntimeError("an arm's held-out stream is not the held-out text")
            tuned.append(a)
            scratch.append(b)
            if s == 0:
                if before is None:
                    before = rounded(float(window_losses_of(source.model, a.task.test_ids).mean()))
                if seeds == 1:  # the interval over the held-out windows, of each arm stopped at its best evaluation
                    (a_best, ok_a), (b_best, ok_b) = at_best(a, arms["pretrained"], every), at_best(b, arms["scratch"], every)
                    items = (window_losses(a_best), window_losses(b_best))
                    reproduced += [ok_a, ok_b]
        A, B = _arm(tuned, every), _arm(scratch, every)
        by_size[str(size)] = {
            "pretrained": A, "scratch": B,
            "difference": _difference([float(v) for v in A["best"]], [float(v) for v in B["best"]], *(items or (None, None))),
            "final_difference": paired_interval(A["final"], B["final"]) | {"over": "seeds"},
            "best_run_reproduced": all(reproduced) if reproduced else None,
            "curves": {"pretrained": [[rounded(float(e["test_loss"])) for e in run.history] for run in tuned],
                       "scratch": [[rounded(float(e["test_loss"])) for e in run.history] for run in scratch]},
        }  # fmt: skip
        ctx.log(f"C62 {size:,} chars: best held-out loss pre-trained {A['best_mean']:.3f}, scratch {B['best_mean']:.3f}")

    numbers = {
        "pretrain": pretrain,
        "task": f"{src['task_name']} ({len(pool):,} characters to draw fine-tuning sets from)",
        "held_out_characters": len(test_text),
        "pretraining": {"data": src["pretrain_name"], "characters": sum(map(len, pre_texts)), "documents": len(pre_texts),
                        "lines_removed_as_in_held_out_text": removed, "vocabulary": len(source.tokenizer),
                        "steps": pt_steps, "batch_size": r["pretrain_batch"], "lr": r["pretrain_lr"], "schedule": "cosine",
                        "test_loss": rounded(float(source.metrics["test_loss"])),
                        "held_out_loss_before_fine_tuning": before,
                        "seconds": rounded(source.seconds, 3), "seed": ctx.seed},
        "characters_outside_the_vocabulary": {"pool": pool_changes, "held_out": test_changes,
                                              "rule": "mapped to the other case where the vocabulary has it, else dropped"},
        "sizes": sizes,
        "seeds": [ctx.seed + s for s in range(seeds)],
        "finetune_steps": ft_steps,
        "judged": "each arm at its best held-out evaluation (early stopping on the held-out text, the same rule for both arms)",
        "recipe": {"model": f"{MODEL} reshaped", **r["model_args"], "batch_size": r["batch_size"], "lr_scratch": r["lr"],
                   "lr_fine_tuning": r["finetune_lr"], "schedule": "none (constant)", "optimizer": "adamw (betas 0.9, 0.99), weight decay 0.1 on matrices",
                   "clip_grad_norm": 1.0, "tokenizer": "char", "evaluate_every": every, "threads": 1,
                   "scratch_vocabulary": "the task's own characters"},
        "by_size": by_size,
    }  # fmt: skip

    fig, axes = new_figure(3, 1, size=(4.8, 3.8))
    arms = (("pretrained", f"pre-trained ({pretrain}) + fine-tuned", "C0"), ("scratch", "from scratch", "C3"))
    ax = axes[0, 0]
    for key, label, colour in arms:
        best = np.array([by_size[str(s)][key]["best"] for s in sizes], dtype=float)
        ax.plot(sizes, best.mean(1), "o-", color=colour, label=f"{label}: best evaluation")
        for j in range(best.shape[1]):
            ax.scatter(sizes, best[:, j], color=colour, s=10, alpha=0.5)
        final = np.array([by_size[str(s)][key]["final"] for s in sizes], dtype=float).mean(1)
        ax.plot(sizes, final, ":", color=colour, alpha=0.8, label=f"{label}: after {ft_steps} steps")
    ax.axhline(before, ls="--", color="grey", lw=1, label="pre-trained, before fine-tuning")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{s:,}" for s in sizes], minor=False)
    ax.minorticks_off()
    ax.set(xlabel="fine-tuning set (characters)", ylabel="held-out loss (nats / char)", title="held-out loss (dots: seeds)")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    ax = axes[0, 1]
    d = [by_size[str(s)]["difference"] for s in sizes]
    ax.errorbar(sizes, [x["mean"] for x in d], yerr=[[x["mean"] - x["low"] for x in d], [x["high"] - x["mean"] for x in d]],
                fmt="o-", color="C0", capsize=4)  # fmt: skip
    ax.axhline(0, ls=":", color="grey")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{s:,}" for s in sizes], minor=False)
    ax.minorticks_off()
    ax.set(xlabel="fine-tuning set (characters)", ylabel="pre-trained - scratch (nats / char)",
           title=f"difference at the best evaluations\n95% interval {_over(d[0])}")  # fmt: skip
    ax.grid(alpha=0.3)
    ax = axes[0, 2]
    for k, size in enumerate(sizes):
        for key, _, colour in arms:
            curve = np.mean(by_size[str(size)]["curves"][key], 0)
            ax.plot(np.arange(1, len(curve) + 1) * every, curve, color=colour, alpha=0.35 + 0.65 * (k + 1) / len(sizes),
                    label=f"{key}, {size:,}")  # fmt: skip
    ax.set(xlabel="fine-tuning step", ylabel="held-out loss (nats / char)", title="during fine-tuning (mean over seeds)")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{src['pretrain_name']} -> {src['task_name']}: pre-training then fine-tuning vs from scratch", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("finetune_sizes"))
    verdict, reason = judge_c62(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C63

MAPPINGS: dict[str, Callable[[str], str]] = {"copy": lambda w: w, "upper": str.upper, "title": str.capitalize}
LABEL_KINDS = ("right", "wrong")
KS = (0, 1, 2, 4, 8)
C63_RECIPE = {  # (quick, full)
    "model_args": ({"n_layer": 1, "n_embd": 64, "n_head": 4, "block_size": 96}, {"n_layer": 2, "n_embd": 64, "n_head": 4, "block_size": 128}),
    "batch_size": (16, 32),
    "lr": (3e-3, 3e-3),
    "steps": (200, 600),
    "seeds": (1, 3),
    "queries": (150, 300),
    "example_rate": (0.4, 0.2),  # quick: a larger share of example lines, so that 200 steps see enough of them
}  # fmt: skip
HELD_OUT_WORDS = 200  # words never in an example line of the training mix; every test query and in-prompt example uses them
EXAMPLE_RATE = 0.4  # the default: after each line of the corpus, another example line with this probability (geometric)
SEP = ":"  # word:IMAGE; (a character of every corpus here, so that a model of the text alone can read the prompts too)
FORMAT_CHARS = SEP + "; \n"
EXAMPLES_PER_LINE = (2, 9)


def task_words(texts: Sequence[str], seed: int, held_out: int = HELD_OUT_WORDS) -> tuple[list[str], list[str]]:
    """(training words, held-out words): the distinct lower-case words of 3-5 ASCII letters of the
    texts, seen at least twice, split at random (seeded); `held_out` of them are held out."""
    import re

    counts = Counter(w for t in texts for w in re.findall(r"(?<![A-Za-z])[a-z]{3,5}(?![A-Za-z])", t))
    words = sorted(w for w, c in counts.items() if c >= 2)
    if len(words) < 3 * held_out:
        raise DataError(f"the corpus has {len(words)} words of 3-5 letters, too few for {held_out} held-out ones")
    order = np.random.default_rng(seed).permutation(len(words))
    return sorted(words[i] for i in order[held_out:]), sorted(words[i] for i in order[:held_out])


def example_line(words: Sequence[str], mapping: str) -> str:
    """'stone:STONE; river:RIVER;': each word and its image under the mapping."""
    f = MAPPINGS[mapping]
    return " ".join(f"{w}{SEP}{f(w)};" for w in words)


def icl_mix(texts: Sequence[str], words: Sequence[str], seed: int, rate: float = EXAMPLE_RATE) -> tuple[list[str], dict]:
    """The texts with example lines inserted after their lines: after each line, with probability
    `rate` an example line (and again, geometric), of one mapping (uniform) on 2-9 distinct words of
    `words` (uniform). Returns the texts and what was inserted."""
    rng = np.random.default_rng(seed)
    names = list(MAPPINGS)
    out, lines, chars = [], Counter(), 0
    for text in texts:
        kept = []
        for line in text.split("\n"):
            kept.append(line)
            while rng.random() < rate:
                name = names[int(rng.integers(len(names)))]
                k = int(rng.integers(EXAMPLES_PER_LINE[0], EXAMPLES_PER_LINE[1] + 1))
                ex = example_line([words[i] for i in rng.choice(len(words), k, replace=False)], name)
                kept.append(ex)
                lines[name] += 1
                chars += len(ex) + 1
        out.append("\n".join(kept))
    total = sum(map(len, out))
    return out, {"lines": dict(lines), "characters": chars, "share_of_characters": rounded(chars / max(1, total))}


def make_queries(words: Sequence[str], n: int, seed: int, kmax: int = max(KS)) -> list[dict]:
    """n test queries on `words`: a query word, its mapping (balanced over the mappings, in turn),
    kmax other words for the in-prompt examples, and a wrong mapping (for labels="wrong": one of the
    other two, alternating)."""
    rng = np.random.default_rng(seed)
    names = list(MAPPINGS)
    out = []
    for i in range(n):
        pick = [words[j] for j in rng.choice(len(words), kmax + 1, replace=False)]
        right = names[i % len(names)]
        others = [m for m in names if m != right]
        out.append({"word": pick[0], "examples": pick[1:], "mapping": right, "wrong": others[(i // len(names)) % len(others)]})
    return out


def prompt_of(query: dict, k: int, labels: str) -> str:
    """A line start, k examples (of the query's mapping, or labels="wrong": of its wrong one), the query word and SEP."""
    shown = query["mapping"] if labels == "right" else query["wrong"]
    examples = example_line(query["examples"][:k], shown) + " " if k else ""
    return f"\n{examples}{query['word']}{SEP}"


def unreadable(tok, queries: list[dict]) -> str:
    """The characters the prompts and answers of `queries` need that the tokenizer lacks ("" if none)."""
    need = {c for q in queries for w in [q["word"], *q["examples"]] for m in MAPPINGS.values() for c in m(w)} | set(FORMAT_CHARS)
    return "".join(sorted(c for c in need if c not in tok.table))


def candidate_logprobs(model: torch.nn.Module, tok, prompts: Sequence[str], candidates: Sequence[Sequence[str]],
                       batch: int = 256) -> np.ndarray:  # fmt: skip
    """log p(candidate | prompt) under the model, summed over the candidate's tokens: (len(prompts),
    number of candidates). Each sequence keeps its last context + 1 tokens (the model's window);
    sequences are right-padded (a causal model's earlier positions do not see the padding)."""
    rows = []  # (ids, number of candidate tokens)
    for prompt, cands in zip(prompts, candidates):
        for c in cands:
            ids, n = tok.encode_text(prompt + c), len(tok.encode_text(c))
            rows.append((ids[-(model.context + 1) :] if model.context else ids, n))
    out = np.zeros(len(rows))
    model = model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            width = max(len(ids) for ids, _ in part) - 1
            x = torch.zeros((len(part), width), dtype=torch.long)
            y = torch.zeros((len(part), width), dtype=torch.long)
            for i, (ids, _) in enumerate(part):
                x[i, : len(ids) - 1] = torch.tensor(ids[:-1])
                y[i, : len(ids) - 1] = torch.tensor(ids[1:])
            logp = torch.log_softmax(model(x).float(), -1).gather(-1, y.unsqueeze(-1)).squeeze(-1).double()
            for i, (ids, n) in enumerate(part):
                out[start + i] = float(logp[i, len(ids) - 1 - n : len(ids) - 1].sum())
    return out.reshape(len(prompts), -1)


def evaluate_prompts(model: torch.nn.Module, tok, queries: list[dict], labels: str, ks: Sequence[int] = KS) -> dict:
    """Per k: whether each query's right answer scores highest among the mappings' answers (bool per
    query), and the probability the candidates' softmax gives it."""
    names = list(MAPPINGS)
    cands = [[MAPPINGS[m](q["word"]) + ";" for m in names] for q in queries]
    target = np.array([names.index(q["mapping"]) for q in queries])
    out = {}
    for k in ks:
        scores = candidate_logprobs(model, tok, [prompt_of(q, k, labels) for q in queries], cands)
        p = np.exp(scores - scores.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        out[k] = {"right": scores.argmax(1) == target, "p_correct": p[np.arange(len(queries)), target]}
    return out


def _acc_interval(right: np.ndarray) -> dict:
    return image_paired_interval(torch.from_numpy(right.astype(float)), torch.zeros(len(right), dtype=torch.float64))


def c63_arm(evals: list[dict], ks: Sequence[int]) -> dict:
    """Per k: the accuracy of each seed and their mean (with the 95% interval over the queries of the
    first seed), the mean probability of the right answer, and the gain acc(k) - acc(0) with its 95%
    interval (a t-interval over seeds with 2+ seeds, else over the queries, paired)."""
    out: dict[str, Any] = {"accuracy": {}, "p_correct": {}, "gain": {}}
    for k in ks:
        accs = [float(e[k]["right"].mean()) for e in evals]
        out["accuracy"][str(k)] = {"runs": [rounded(a) for a in accs], "mean": rounded(float(np.mean(accs))),
                                   "over_queries": _acc_interval(evals[0][k]["right"])}  # fmt: skip
        out["p_correct"][str(k)] = rounded(float(np.mean([e[k]["p_correct"].mean() for e in evals])))
        if k == ks[0]:
            continue
        base = [float(e[ks[0]]["right"].mean()) for e in evals]
        if len(evals) > 1:
            out["gain"][str(k)] = paired_interval(accs, base) | {"over": "seeds"}
        else:
            right_k, right_0 = (torch.from_numpy(evals[0][j]["right"].astype(float)) for j in (k, ks[0]))
            out["gain"][str(k)] = image_paired_interval(right_k, right_0) | {"over": f"{len(right_k)} queries"}
    return out


def judge_c63(numbers: dict) -> tuple[str, str]:
    """Holds if the accuracy with the most in-prompt examples (k = 8) is above the zero-shot accuracy
    (k = 0): the 95% interval of acc(8) - acc(0) entirely above 0 (over seeds with 2+ seeds, else
    over the queries, paired). Does not hold otherwise ("inconclusive" in the reason when the mean
    gain is positive but the interval reaches 0; e.g. labels="wrong": the examples show another
    mapping and accuracy falls with k). The side model trained on the text alone, when there is one,
    is reported in the reason and not judged."""
    n = numbers
    ks = [int(k) for k in n["ks"]]
    arm = n["judged"]
    gain = arm["gain"][str(ks[-1])]
    accs = ", ".join(f"k={k}: {arm['accuracy'][str(k)]['mean']:.1%}" for k in ks)
    side = n.get("text_only")
    side_text = ""
    if side is not None and "skipped" in side:
        side_text = f"; the side model trained on the text alone was not scored: {side['skipped']}"
    elif side is not None:
        side_accs = ", ".join(f"k={k}: {side['accuracy'][str(k)]['mean']:.1%}" for k in ks)
        side_text = (f"; the side model trained on the text alone (no example lines, 1 seed, not judged): {side_accs}, "
                     f"gain {_iv(side['gain'][str(ks[-1])], '+.1%')}")  # fmt: skip
    summary = (f"{n['data']} with example lines of {', '.join(MAPPINGS)} in the training mix "
               f"({n['mix']['share_of_characters']:.0%} of the characters); {n['queries']} queries on {n['held_out_words']} held-out "
               f"words, answers scored by log-likelihood among the {len(MAPPINGS)} mappings' (chance {1 / len(MAPPINGS):.1%}); "
               f"in-prompt examples with {n['labels']} labels; accuracy {accs}; acc({ks[-1]}) - acc(0) {_iv(gain, '+.1%')} "
               f"({_over(gain)}){side_text}")  # fmt: skip
    if gain["low"] > 0:
        return "holds", summary
    if gain["mean"] > 0:
        return (
            "does not hold",
            f"inconclusive: the mean gain is above 0 but its interval reaches 0 (the rule: above 0): {summary}",
        )
    return "does not hold", f"accuracy does not rise with the number of in-prompt examples: {summary}"


@experiment("C63", quick_verdict="holds", opposite={"labels": "wrong"})
def run_c63(ctx: Context, labels: str = "right", corpus: str | None = None, seeds: int | None = None, steps: int | None = None,
            queries: int | None = None) -> Finding:  # fmt: skip
    """Train a character GPT on the corpus with example lines mixed in, then prompt it with k = 0, 1, 2,
    4, 8 examples of a mapping on held-out words (the module docstring has the recipe). labels="wrong"
    (the examples show another mapping) is the opposite evidence."""
    if labels not in LABEL_KINDS:
        raise UserError(f"labels is 'right' (the examples show the query's mapping) or 'wrong' (another one), got {labels!r}")
    pick = 0 if ctx.quick else 1
    r = {k: v[pick] for k, v in C63_RECIPE.items()}
    seeds, steps, n_queries = seeds or r["seeds"], steps or r["steps"], queries or r["queries"]
    if corpus is not None or ctx.quick:
        data = lab_corpus(corpus, ctx.quick)  # quick: gettext-en
    else:
        try:
            data = lab_corpus("shakespeare", False)
        except DataError:
            data = lab_corpus(None, True)
    texts = corpus_texts(data)
    train_words, test_words = task_words(texts, ctx.seed)
    mixed, mix = icl_mix(texts, train_words, ctx.seed, r["example_rate"])
    mix_corpus = text_corpus(f"{data.name} + example lines ({digest(mixed)})", mixed)
    qs = make_queries(test_words, n_queries, ctx.seed + 1)
    common = {"steps": steps, "batch_size": r["batch_size"], "tokenizer": "char", "lr": r["lr"], "model_args": r["model_args"],
              "steps_per_epoch": steps, "log": ctx.log}  # fmt: skip
    runs = [train_lm(MODEL, mix_corpus, seed=ctx.seed + s, **common) for s in range(seeds)]
    tok = runs[0].tokenizer
    missing = unreadable(tok, qs)
    if missing:
        raise DataError(f"the training mix lacks characters the queries need: {missing!r}")
    evals = {kind: [evaluate_prompts(run.model, tok, qs, kind) for run in runs] for kind in LABEL_KINDS}
    side = None
    if not ctx.quick:  # the same recipe on the text alone: does the format's in-context learning appear without it?
        plain = train_lm(MODEL, text_corpus(f"{data.name} as written ({digest(texts)})", texts), seed=ctx.seed, **common)
        missing = unreadable(plain.tokenizer, qs)
        if missing:
            side = {"skipped": f"the text alone lacks characters the prompts need: {missing!r}"}
        else:
            side = c63_arm([evaluate_prompts(plain.model, plain.tokenizer, qs, "right")], KS) | {
                "test_loss": rounded(float(plain.metrics["test_loss"]))
            }
    lengths = [len(prompt_of(q, max(KS), "right")) for q in qs]
    numbers = {
        "data": data.name,
        "labels": labels,
        "ks": list(KS),
        "mappings": {name: f("stone") for name, f in MAPPINGS.items()},
        "mix": mix | {"example_rate": r["example_rate"], "examples_per_line": list(EXAMPLES_PER_LINE), "training_words": len(train_words)},
        "held_out_words": len(test_words),
        "queries": n_queries,
        "example_prompt": {"k=2 right": prompt_of(qs[0], 2, "right"), "k=2 wrong": prompt_of(qs[0], 2, "wrong"),
                           "candidates": [MAPPINGS[m](qs[0]["word"]) + ";" for m in MAPPINGS], "answer": MAPPINGS[qs[0]["mapping"]](qs[0]["word"])},
        "prompt_characters_at_k_max": {"mean": rounded(float(np.mean(lengths))), "max": int(max(lengths)),
                                       "context": int(r["model_args"]["block_size"])},
        "seeds": [ctx.seed + s for s in range(seeds)],
        "recipe": {"model": f"{MODEL} reshaped", **r["model_args"], "steps": steps, "batch_size": r["batch_size"], "lr": r["lr"],
                   "schedule": "cosine", "optimizer": "adamw (betas 0.9, 0.99), weight decay 0.1 on matrices", "tokenizer": "char", "threads": 1},
        "test_loss": [rounded(float(run.metrics["test_loss"])) for run in runs],
        "judged": c63_arm(evals[labels], KS),
        "other_labels": {"labels": [k for k in LABEL_KINDS if k != labels][0],
                         **c63_arm(evals[[k for k in LABEL_KINDS if k != labels][0]], KS)},
        "text_only": side,
        "chance": rounded(1 / len(MAPPINGS)),
    }  # fmt: skip

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    ax = axes[0, 0]
    curves = [
        (labels, numbers["judged"], "C0" if labels == "right" else "C3"),
        (numbers["other_labels"]["labels"], numbers["other_labels"], "C3" if labels == "right" else "C0"),
    ]
    if side is not None and "accuracy" in side:
        curves.append(("right (text-only model)", side, "C7"))
    for name, arm, colour in curves:
        means = [arm["accuracy"][str(k)]["mean"] for k in KS]
        iv = [arm["accuracy"][str(k)]["over_queries"] for k in KS]
        ax.errorbar(
            KS,
            means,
            yerr=[[max(0.0, m - v["low"]) for m, v in zip(means, iv)], [max(0.0, v["high"] - m) for m, v in zip(means, iv)]],
            fmt="o-",
            color=colour,
            capsize=3,
            label=f"{name} labels" if "text-only" not in name else name,
        )
        for j, _ in enumerate(arm["accuracy"][str(KS[0])]["runs"]):
            ax.scatter(KS, [arm["accuracy"][str(k)]["runs"][j] for k in KS], color=colour, s=8, alpha=0.5)
    ax.axhline(1 / len(MAPPINGS), ls=":", color="grey", label="chance 1/3")
    ax.set(xlabel="in-prompt examples k", ylabel="accuracy (held-out words)", ylim=(0, 1.02),
           title="accuracy vs k (bars: seed 0 over queries; dots: seeds)")  # fmt: skip
    ax.set_xticks(list(KS))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[0, 1]
    for name, arm, colour in curves:
        ax.plot(
            KS,
            [arm["p_correct"][str(k)] for k in KS],
            "o-",
            color=colour,
            label=f"{name} labels" if "text-only" not in name else name,
        )
    ax.axhline(1 / len(MAPPINGS), ls=":", color="grey")
    ax.set(xlabel="in-prompt examples k", ylabel="probability of the right answer\n(softmax over the 3 answers)", ylim=(0, 1.02),
           title="mean probability of the right answer")  # fmt: skip
    ax.set_xticks(list(KS))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{data.name}: few-shot prompting of a character GPT (copy / upper / title on held-out words)", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("accuracy_vs_k"))
    verdict, reason = judge_c63(numbers)
    return Finding(numbers, [figure], verdict, reason)
