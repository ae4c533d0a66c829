"""C60: contextual (BERT-style) embeddings against static ones (문맥 임베딩).

A masked language model (bert_mini's architecture, deepnotes.models.bert; word tokenizer) is trained
through the language-model task on a corpus, and every occurrence of a few ambiguous words in
hand-written sentences is encoded: the contextual vector of an occurrence is the last layer's
vector at its position (BERT.encode), the sentence read as the training stream has it (EOS before
and after). The static vector is the same model's input embedding row of the word
(embeddings.word): it is what BERT starts from before any context is mixed in, learned in the same
run on the same text with the same vocabulary, so the two differ only in the context (a separately
trained Word2Vec, deepnotes.lab.words.vectors, would also differ in its objective, its training
and its vocabulary).

(1) An identity, checked: the static vector of a word is the same in every sentence (the lookup
    returns bit-identical rows, cosine 1 to float64 rounding).
(2) Finding: per word, two senses (e.g. "bank": money / river; in gettext-en's software messages
    noun / verb uses: "list", "copy", "check", ...), 5 hand-written sentences per sense with words
    of the corpus's vocabulary, the word always second ("the bank of the river ...", "cannot list
    files ..."): every occurrence has the same position, so the learned position embeddings cannot
    tell the senses apart. Per word: the mean cosine of pairs of occurrences of the same sense
    (within) minus the mean cosine of pairs of different senses (cross), and the AUC of within-
    against cross-sense cosines (1/2: the vectors carry no sense); the share of occurrence pairs
    with cosine < 1 (the vectors differ from sentence to sentence); 95% t-intervals over words and,
    with 2+ seeds, over seeds. The same numbers for the untrained encoder of each seed (its
    initialization): mixing in the neighbours' embeddings separates sentences that share words
    before any training; the AUC difference trained - untrained says whether training sharpens it.

Full: the Brown corpus (gettext-en if Brown cannot be found without a download), the 5,000 most
frequent training words (the others <unk>, the tokenizer's UNK: this cuts the cost of the output
layer), 4 layers, d 128, 4 heads, FFN 512, windows of 32, batch 32, 1,500 steps, AdamW lr 1e-3
with a warm-up of a quarter of the run (bert_*'s defaults: weight decay 0.01), 3 seeds; 9 words
(bank, interest, state, light, party, plant, letter, power, fall). Quick: gettext-en, the 2,000
most frequent words, 2 layers, d 64, 2 heads, FFN 256, 200 steps, lr 2e-3, 1 seed; 9 words of
software messages with a noun (or adjective) and a verb use (list, display, change, copy, check,
set, match, open, search).

context: "sentence" (default), "masked" (every other word of the sentence replaced by [MASK]:
the length kept, the words gone: sentences of one length get one vector) or "alone" (each
occurrence encoded by itself, EOS word EOS: no context at all). "alone" is the opposite evidence:
every occurrence gets one vector, the contextual vector is then as static as the input
embedding, within - cross = 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from deepnotes.errors import UserError
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import lab_corpus, new_figure, paired_interval, rounded, save_figure

# word -> ((sense A, sense B), (sentences of A, sentences of B)); the word once per sentence and always the second word,
# so every occurrence has the same position (tests/test_lab_language_contextual.py checks it and the vocabularies)
GETTEXT_SENSES = {
    "list": (("verb", "noun"), (
        ["cannot list files in the directory", "please list the available commands", "to list all tables",
         "can list the keys of the user", "must list all files"],
        ["the list is empty", "invalid list of arguments", "the list of users", "argument list too long", "empty list of files"])),
    "display": (("verb", "noun"), (
        ["cannot display the image", "only display the symbol table", "to display this help", "please display the version number",
         "can display information about the file"],
        ["the display is not available", "invalid display name", "no display found", "the display name is invalid", "current display settings"])),
    "change": (("verb", "noun"), (
        ["cannot change the directory", "to change the definition of a function", "please change the password",
         "can change the current directory", "must change the value"],
        ["state change failed", "the change was not applied", "no change", "this change is not allowed", "the change failed"])),
    "copy": (("verb", "noun"), (
        ["cannot copy the table", "to copy the file", "please copy the data", "can copy files to the directory", "must copy the message"],
        ["the copy failed", "invalid copy file header", "a copy of the file", "branch copy failed", "the copy stream ended"])),
    "check": (("verb", "noun"), (
        ["cannot check the credentials", "please check the file", "to check the key signatures", "must check the specification",
         "can check section addresses"],
        ["the check failed", "internal check failed", "checksum check failed", "size check error", "the check constraint is invalid"])),
    "set": (("verb", "noun"), (
        ["cannot set the value", "to set the width of the page", "please set the maximum size", "can set this to true", "must set the key"],
        ["the set is empty", "character set not supported", "invalid set of options", "a set of files", "the set of keys"])),
    "match": (("verb", "noun"), (
        ["must match the input type", "should match the header", "to match the pattern", "cannot match all names", "can match the regex"],
        ["no match found", "partial match", "the match failed", "a match for the pattern", "pattern match failed"])),
    "open": (("verb", "adjective"), (
        ["cannot open the file", "to open the menu", "please open the file", "can open files with the default application",
         "must open the database"],
        ["already open", "the open database", "no open connections", "all open files", "an open transaction"])),
    "search": (("verb", "noun"), (
        ["cannot search the index", "to search the list", "please search the directory", "can search for text in all pages",
         "must search the directory"],
        ["the search failed", "text search template", "library search path", "no search results", "the search path is invalid"])),
}  # fmt: skip
BROWN_SENSES = {
    "bank": (("money", "river"), (
        ["the bank gave him the money", "the bank raised its interest rates", "his bank account was empty", "a bank loan was approved",
         "the bank paid interest on her savings"],
        ["the bank of the river was high", "the bank was covered with grass", "the bank of the stream was wet",
         "a bank of earth along the water", "the bank went down to the water"])),
    "interest": (("money", "attention"), (
        ["the interest on the loan was high", "the interest rate rose again", "high interest rates hurt business",
         "low interest loans were available", "annual interest on the account was paid"],
        ["his interest in art was deep", "her interest in music grew", "great interest was shown in the new plan",
         "no interest in politics", "the interest of the students in science"])),
    "state": (("government", "condition"), (
        ["the state legislature passed the bill", "the state government raised taxes", "each state has its own laws",
         "that state voted for kennedy", "the state police arrived"],
        ["the state of the economy was poor", "his state of mind was calm", "a state of shock", "nervous state of excitement",
         "her state of health improved"])),
    "light": (("illumination", "weight"), (
        ["the light of the sun was bright", "the light came through the window", "bright light filled the room", "no light came in",
         "a light was burning in the window"],
        ["a light box was easy to carry", "the light load was easy to lift", "very light clothes are best in summer",
         "her light coat was not warm", "a light meal of bread and fruit"])),
    "party": (("politics", "celebration"), (
        ["the party platform was adopted", "the party leaders met in washington", "democratic party leaders met",
         "republican party members voted", "his party won the election"],
        ["the party went on all night", "the party was held at her house", "the party for the children was fun",
         "her party was a great success", "the party guests laughed and sang"])),
    "plant": (("factory", "vegetation"), (
        ["the plant has two thousand workers", "the plant produces steel", "a plant was built in 1950", "steel plant workers went on strike",
         "the plant closed last year"],
        ["the plant needs water and light", "the plant grew green leaves", "this plant grows in the shade", "each plant has its own roots",
         "the plant turned yellow and died"])),
    "letter": (("mail", "alphabet"), (
        ["the letter arrived this morning", "the letter was signed by the president", "a letter from his mother arrived",
         "her letter to him was short", "his letter was never answered"],
        ["the letter a is printed in red", "the letter s was missing from the word", "the letter b comes after a",
         "each letter of the word was written", "the letter e is the most common"])),
    "power": (("electricity", "authority"), (
        ["the power failed during the storm", "the power line was cut", "electric power was cut off", "the power plant supplies the city",
         "more power for the engine"],
        ["the power of the president", "the power of congress to tax", "political power was in the hands of the church",
         "his power over the people grew", "great power brings great responsibility"])),
    "fall": (("autumn", "drop"), (
        ["the fall term begins in september", "last fall we went to paris", "this fall the leaves turned early",
         "next fall we will return", "early fall is a beautiful season"],
        ["the fall from the roof killed him", "the fall of prices was sudden", "prices fall when demand is low",
         "they fall down easily", "to fall from a horse is dangerous"])),
}  # fmt: skip

RECIPE = {  # (quick, full)
    "vocabulary": (2000, 5000),  # most frequent training words kept (the others <unk>)
    "bert": ({"n_layer": 2, "n_head": 2, "d_model": 64, "d_ff": 256, "max_len": 32},
             {"n_layer": 4, "n_head": 4, "d_model": 128, "d_ff": 512, "max_len": 32}),
    "block_size": (32, 32),
    "batch_size": (32, 32),
    "steps": (200, 1500),
    "lr": (2e-3, 1e-3),
    "seeds": (1, 3),
}  # fmt: skip
CONTEXTS = ("sentence", "masked", "alone")
SAME = 1e-9  # cosines within this of 1: the same direction (float64 rounding)
MIN_WORDS = 3
EPOCHS = 4  # epochs of a run: bert_*'s warm-up (1 epoch) is then a quarter of it, the cosine decay the rest
HEAT_WORDS = 4  # words drawn as heat maps


def sense_sets(corpus_name: str) -> dict:
    """The sentences for the corpus: gettext-en's software messages, else general English (Brown's)."""
    return GETTEXT_SENSES if corpus_name.startswith("gettext") else BROWN_SENSES


def check_sentences(sets: dict) -> dict[str, list[int]]:
    """Per word, the sorted positions of the word in its sentences (tokenized as the corpus is); raises
    ValueError if a sentence holds the word other than once, or the two senses' positions differ."""
    from deepnotes.text.tokenize import tokenize

    out = {}
    for word, (senses, groups) in sets.items():
        if len(senses) != 2 or len(groups) != 2:
            raise ValueError(f"{word}: two senses, one list of sentences each")
        positions = []
        for sense, sentences in zip(senses, groups):
            pos = []
            for s in sentences:
                tokens = tokenize(s)
                if tokens.count(word) != 1:
                    raise ValueError(f"{word} ({sense}): {s!r} must hold the word exactly once")
                pos.append(tokens.index(word))
            positions.append(sorted(pos))
        if positions[0] != positions[1]:
            raise ValueError(f"{word}: the positions of the two senses differ ({positions[0]} vs {positions[1]})")
        out[word] = positions[0]
    return out


def top_words(corpus, n: int):
    """The corpus with every word outside the n most frequent of its training documents replaced by
    "<unk>" (the tokenizer's UNK): the word tokenizer's vocabulary becomes those n words."""
    from deepnotes.tasks.language_model import split_documents
    from deepnotes.text.vocab import SPECIALS

    train = np.zeros(max(corpus.num_docs, 1), dtype=bool)
    train[split_documents(corpus.num_docs)[0] or [0]] = True
    counts = Counter(t for s, d in zip(corpus.sentences, corpus.doc_of_sentence) if train[int(d)] for t in s)
    keep = {w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]}
    unk = SPECIALS[3]
    sentences = [[t if t in keep else unk for t in s] for s in corpus.sentences]
    return replace(corpus, name=f"{corpus.name} (top {n} words)", sentences=sentences, texts=None), counts


def occurrences(tok, word: str, sentences: Sequence[str], context: str) -> list[tuple[list[int], int]]:
    """(ids, position of the word) of each sentence as the model reads it: EOS, the sentence, EOS
    ("sentence"); the same with every other word [MASK] ("masked"); EOS word EOS ("alone")."""
    from deepnotes.text.streams import MASK_ID
    from deepnotes.text.vocab import EOS

    wid = tok.table.stoi[word]
    out = []
    for s in sentences:
        ids = tok.encode_text(s)
        p = ids.index(wid)
        if context == "masked":
            ids = [i if k == p else MASK_ID for k, i in enumerate(ids)]
        elif context == "alone":
            ids, p = [wid], 0
        out.append(([EOS, *ids, EOS], p + 1))
    return out


@torch.no_grad()
def vectors(model, occ: list[tuple[list[int], int]]) -> tuple[np.ndarray, np.ndarray]:
    """(contextual, static) vectors of the occurrences, float64: the last layer's vector at the
    word's position (BERT.encode) and the input embedding row the lookup gives there."""
    model.eval()
    ctx, static = [], []
    for ids, p in occ:
        x = torch.tensor([ids])
        ctx.append(model.encode(x)[0, p].double().numpy())
        static.append(model.embeddings.word(x)[0, p].double().numpy())
    return np.stack(ctx), np.stack(static)


def cosines(v: np.ndarray) -> np.ndarray:
    u = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
    return u @ u.T


def separation(cos: np.ndarray, labels: Sequence[int]) -> dict:
    """Within-sense and cross-sense mean cosine of distinct occurrences, their difference, the AUC of
    within- against cross-sense cosines (ties 1/2), and how many pairs differ (cosine < 1)."""
    lab = np.asarray(labels)
    off = ~np.eye(len(lab), dtype=bool)
    upper = np.triu(off)
    same = (lab[:, None] == lab[None, :]) & upper
    cross = (lab[:, None] != lab[None, :]) & upper
    w, c = cos[same], cos[cross]
    auc = float((w[:, None] > c[None, :]).mean() + 0.5 * (w[:, None] == c[None, :]).mean())
    pairs = cos[upper]
    return {"within": float(w.mean()), "cross": float(c.mean()), "diff": float(w.mean() - c.mean()), "auc": auc,
            "mean_cosine": float(pairs.mean()), "max_cosine": float(pairs.max()), "min_cosine": float(pairs.min()),
            "pairs_differing": float((pairs < 1 - SAME).mean())}  # fmt: skip


def static_identity(static: np.ndarray) -> dict:
    cos = cosines(static)
    return {
        "max_abs_difference": float(np.abs(static - static[0]).max()),
        "min_cosine": float(cos.min()),
        "max_cosine": float(cos.max()),
    }


def _iv(iv: dict | None, fmt: str = "+.3f") -> str:
    if iv is None or iv.get("low") is None:
        return "[-]"
    return f"[{iv['low']:{fmt}}, {iv['high']:{fmt}}]"


def _above(iv: dict | None) -> bool:
    return iv is not None and iv.get("low") is not None and iv["low"] > 0


def judge_c60(numbers: dict) -> tuple[str, str]:
    """Holds if (1) the static vectors are bit-identical in every sentence (cosine 1), (2) the
    contextual vectors of every word differ between every two sentences (cosine < 1), (3) they follow
    the sense: mean within-sense minus cross-sense cosine has its 95% intervals (over words; over
    seeds with 2+ seeds) above 0, and (4) training sharpens it: the AUC of within- against
    cross-sense cosines, trained minus untrained encoder, has its interval over words above 0.
    Holds with a correction if (1) and (2) hold but (3) is inconclusive (an interval straddles 0:
    the vectors differ by sentence, and a small BERT trained for minutes does not measurably group
    them by sense), or (3) holds and (4) does not (the untrained encoder, which only mixes in the
    neighbours' embeddings, separates the senses as well). Does not hold if (1) or (2) fails (one
    vector in every context: context="alone", the opposite evidence) or (3) is reversed (within-sense
    pairs less alike than cross-sense ones)."""
    n = numbers
    ident = n["identity"]
    s = n["summary"]
    diff_w, diff_s, auc_gain = s["diff_over_words"], s["diff_over_seeds"], s["auc_trained_minus_init_over_words"]
    identity = ident["max_abs_difference"] == 0.0 and abs(ident["min_cosine"] - 1) <= SAME
    differ = s["pairs_differing"] == 1.0
    intervals = [iv for iv in (diff_w, diff_s) if iv is not None]
    separated = all(_above(iv) for iv in intervals)
    reversed_ = any(iv["high"] < 0 for iv in intervals)
    seeds = len(n["seeds"])
    words = ", ".join(f"{w} {r['trained']['diff_mean']:+.3f}" for w, r in n["words"].items())
    summary = (
        f"{n['data']} ({n['train_tokens']:,} training tokens, vocabulary {n['vocabulary']:,}), BERT {n['recipe']['bert']} trained "
        f"{n['recipe']['steps']} steps (masked-LM test loss {n['mlm']['test_loss_mean']:.3f}, accuracy {n['mlm']['test_accuracy_mean']:.1%}), "
        f"{seeds} seed{'s' if seeds != 1 else ''}; {len(n['words'])} words x {n['sentences_per_sense']} sentences per sense, "
        f"context = {n['context']}. (1) identity: the static vector (BERT's input embedding row) is bit-identical in every sentence "
        f"(largest difference {ident['max_abs_difference']:g}, cosines {ident['min_cosine']:.12f}-{ident['max_cosine']:.12f}). "
        f"(2) the contextual vectors (last layer) differ in {s['pairs_differing']:.0%} of the pairs of occurrences of a word "
        f"(mean cosine {s['mean_cosine']:.3f}, largest {s['max_cosine']:.6f}). (3) within-sense minus cross-sense cosine "
        f"{diff_w['mean']:+.3f} {_iv(diff_w)} over words"
        + (f", {_iv(diff_s)} over seeds" if diff_s else "")
        + f" (per word: {words}); AUC {s['auc_trained']:.3f} (1/2: no sense). (4) the untrained encoder: within - cross "
        f"{s['diff_init']:+.3f}, AUC {s['auc_init']:.3f}; AUC trained - untrained {auc_gain['mean']:+.3f} {_iv(auc_gain)} over words."
    )
    if not identity:
        return "does not hold", f"the static vectors are not one vector per word: {summary}"
    if not differ:
        return "does not hold", (f"the contextual vectors do not differ between sentences (every occurrence gets one vector, as a "
                                 f"static embedding): {summary}")  # fmt: skip
    if reversed_:
        return "does not hold", f"the contextual vectors differ between sentences but against the sense (reversed): {summary}"
    if not separated:
        return "holds with a correction", (f"the contextual vectors differ from sentence to sentence and the static ones do not, but "
                                           f"whether they follow the sense is inconclusive at this size and budget (an interval "
                                           f"straddles 0): {summary}")  # fmt: skip
    if not _above(auc_gain):
        return "holds with a correction", (f"contextual vectors differ by sentence and follow the sense, but the untrained encoder "
                                           f"separates the senses as well (mixing in the neighbours' embeddings does it; training at "
                                           f"this budget does not sharpen it): {summary}")  # fmt: skip
    return "holds", summary


def _measure(model, tok, sets: dict, context: str) -> tuple[dict, dict, dict]:
    """Per word: the separation of the contextual vectors, the static identity, the cosine matrix and vectors."""
    per_word, ident, raw = {}, [], {}
    for word, (senses, (a, b)) in sets.items():
        ctx_v, static = vectors(model, occurrences(tok, word, [*a, *b], context))
        labels = [0] * len(a) + [1] * len(b)
        cos = cosines(ctx_v)
        per_word[word] = separation(cos, labels)
        ident.append(static_identity(static))
        raw[word] = {"cos": cos, "vectors": ctx_v, "labels": labels, "static_cos": cosines(static)}
    merged = {"max_abs_difference": max(i["max_abs_difference"] for i in ident), "min_cosine": min(i["min_cosine"] for i in ident),
              "max_cosine": max(i["max_cosine"] for i in ident)}  # fmt: skip
    return per_word, merged, raw


@experiment("C60", quick_verdict="holds with a correction", opposite={"context": "alone"})
def run_c60(
    ctx: Context, context: str = "sentence", corpus: str | None = None, seeds: int | None = None, steps: int | None = None
) -> Finding:
    """A small BERT on the corpus (quick: gettext-en, 2 x 64, 200 steps, 1 seed; full: Brown, 4 x 128,
    1,500 steps, 3 seeds); the contextual and static vectors of ambiguous words in hand-written
    sentences of two senses. context="alone" (each occurrence encoded without its sentence) is the
    opposite evidence."""
    from deepnotes.lab.language.runs import train_lm
    from deepnotes.models import create_model

    if context not in CONTEXTS:
        raise UserError(f"context is one of {', '.join(CONTEXTS)}, got {context!r}")
    pick = 0 if ctx.quick else 1
    source = lab_corpus(corpus, ctx.quick)
    data, counts = top_words(source, RECIPE["vocabulary"][pick])
    seeds = seeds or RECIPE["seeds"][pick]
    steps = steps or RECIPE["steps"][pick]
    args, block = dict(RECIPE["bert"][pick]), RECIPE["block_size"][pick]
    lr = RECIPE["lr"][pick]
    all_sets = sense_sets(source.name)
    check_sentences(all_sets)

    runs, trained, init, idents, raws = [], [], [], [], []
    sets = all_sets
    for s in range(seeds):
        run = train_lm("bert_mini", data, steps=steps, seed=ctx.seed + s, batch_size=RECIPE["batch_size"][pick], tokenizer="word",
                       steps_per_epoch=max(1, steps // EPOCHS), block_size=block, model_args=args, lr=lr, log=ctx.log)  # fmt: skip
        tok = run.tokenizer
        if s == 0:
            sets = {w: v for w, v in all_sets.items() if w in tok.table.stoi}
            if len(sets) < MIN_WORDS:
                raise UserError(
                    f"{source.name}: only {len(sets)} of the words {', '.join(all_sets)} are in the vocabulary; C60 needs {MIN_WORDS}"
                )
        per_word, ident, raw = _measure(run.model, tok, sets, context)
        torch.manual_seed(ctx.seed + s)  # the engine's initialization: manual_seed(seed), then create_model
        untrained = create_model("bert_mini", vocab_size=len(tok), num_classes=len(tok), **args)
        per_word_init, ident_init, _ = _measure(untrained, tok, sets, context)
        runs.append(run)
        trained.append(per_word)
        init.append(per_word_init)
        idents += [ident, ident_init]
        raws.append(raw)

    tok = runs[0].tokenizer
    words = list(sets)
    mean_over_seeds = lambda arms, w, k: float(np.mean([a[w][k] for a in arms]))  # noqa: E731
    diff_words = [mean_over_seeds(trained, w, "diff") for w in words]
    auc_trained = [mean_over_seeds(trained, w, "auc") for w in words]
    auc_init = [mean_over_seeds(init, w, "auc") for w in words]
    per_seed_diff = [float(np.mean([t[w]["diff"] for w in words])) for t in trained]
    oov = sorted({t for w in words for group in sets[w][1] for s in group for t in _tokens(s) if t not in tok.table.stoi})
    numbers: dict[str, Any] = {
        "data": data.name,
        "context": context,
        "train_tokens": int(len(runs[0].task.train_ids)),
        "vocabulary": len(tok),
        "recipe": {"model": "bert_mini architecture", "bert": args, "block_size": block, "batch_size": RECIPE["batch_size"][pick],
                   "steps": steps, "lr": lr, "optimizer": "adamw", "weight_decay": 0.01, "warmup_epochs": 1.0, "tokenizer": "word",
                   "kept_words": RECIPE["vocabulary"][pick], "threads": 1},
        "seeds": [ctx.seed + s for s in range(seeds)],
        "static_vector": "BERT's input embedding row of the word (embeddings.word): the same model and run, no context mixed in",
        "sentences_per_sense": len(next(iter(sets.values()))[1][0]),
        "positions": check_sentences(sets),
        "out_of_vocabulary_sentence_words": oov,
        "mlm": {"test_loss": [rounded(float(r.metrics["test_loss"])) for r in runs],
                "test_accuracy": [rounded(float(r.metrics.get("test_accuracy", 0.0))) for r in runs],
                "test_loss_mean": float(np.mean([r.metrics["test_loss"] for r in runs])),
                "test_accuracy_mean": float(np.mean([r.metrics.get("test_accuracy", 0.0) for r in runs])),
                "seconds": [rounded(r.seconds, 3) for r in runs]},
        "identity": {"kind": "identity (a lookup table, checked numerically)",
                     "max_abs_difference": max(i["max_abs_difference"] for i in idents),
                     "min_cosine": min(i["min_cosine"] for i in idents), "max_cosine": max(i["max_cosine"] for i in idents)},
        "words": {w: {"senses": list(sets[w][0]), "training_count": int(counts.get(w, 0)),
                      "trained": {"diff": [rounded(t[w]["diff"]) for t in trained], "diff_mean": rounded(mean_over_seeds(trained, w, "diff")),
                                  "within": rounded(mean_over_seeds(trained, w, "within")), "cross": rounded(mean_over_seeds(trained, w, "cross")),
                                  "auc": rounded(mean_over_seeds(trained, w, "auc")), "mean_cosine": rounded(mean_over_seeds(trained, w, "mean_cosine")),
                                  "max_cosine": float(max(t[w]["max_cosine"] for t in trained))},
                      "init": {"diff_mean": rounded(mean_over_seeds(init, w, "diff")), "auc": rounded(mean_over_seeds(init, w, "auc"))}}
                  for w in words},
        "summary": {
            "diff_over_words": paired_interval(diff_words, [0.0] * len(words)) | {"over": f"{len(words)} words"},
            "diff_over_seeds": (paired_interval(per_seed_diff, [0.0] * seeds) | {"over": f"{seeds} seeds"}) if seeds > 1 else None,
            "auc_trained": rounded(float(np.mean(auc_trained))),
            "auc_init": rounded(float(np.mean(auc_init))),
            "auc_trained_minus_init_over_words": paired_interval(auc_trained, auc_init) | {"over": f"{len(words)} words"},
            "diff_init": rounded(float(np.mean([mean_over_seeds(init, w, "diff") for w in words]))),
            "pairs_differing": float(min(t[w]["pairs_differing"] for t in trained for w in words)),
            "mean_cosine": rounded(float(np.mean([mean_over_seeds(trained, w, "mean_cosine") for w in words]))),
            "max_cosine": float(max(t[w]["max_cosine"] for t in trained for w in words)),
        },
    }  # fmt: skip
    figures = [_heat_figure(ctx, numbers, sets, raws[0]), _separation_figure(ctx, numbers, sets, raws[0])]
    verdict, reason = judge_c60(numbers)
    return Finding(numbers, figures, verdict, reason)


def _tokens(sentence: str) -> list[str]:
    from deepnotes.text.tokenize import tokenize

    return tokenize(sentence)


# ============================================================================ figures


def _heat_figure(ctx: Context, n: dict, sets: dict, raw: dict) -> str:
    shown = list(sets)[:HEAT_WORDS]
    fig, axes = new_figure(len(shown) + 1, 1, size=(3.4, 3.4))
    first = shown[0]
    k = len(sets[first][1][0])
    panels = [(w, raw[w]["cos"], "contextual (last layer)") for w in shown] + [
        (first, raw[first]["static_cos"], "static (input embedding)")
    ]
    lo = min(float(raw[w]["cos"].min()) for w in shown)
    for ax, (w, cos, kind) in zip(axes[0], panels):
        im = ax.imshow(cos, vmin=min(lo, 0.99), vmax=1.0, cmap="viridis")
        ax.axhline(k - 0.5, color="white", lw=1)
        ax.axvline(k - 0.5, color="white", lw=1)
        a, b = sets[w][0]
        ax.set_xticks([(k - 1) / 2, k + (len(cos) - k - 1) / 2], [a, b], fontsize=7)
        ax.set_yticks([(k - 1) / 2, k + (len(cos) - k - 1) / 2], [a, b], fontsize=7, rotation=90, va="center")
        ax.set_title(f'"{w}": {kind}', fontsize=8)
    fig.colorbar(im, ax=axes[0, -1], label="cosine")
    fig.suptitle(
        f"{n['data']}: cosine between occurrences (seed {n['seeds'][0]}, context = {n['context']}; blocks: senses)", fontsize=9
    )
    return save_figure(fig, ctx.figure_path("occurrence_cosines"))


def _separation_figure(ctx: Context, n: dict, sets: dict, raw: dict) -> str:
    from sklearn.decomposition import PCA

    words = list(n["words"])
    shown = words[:2]
    fig, axes = new_figure(1 + len(shown), 1, size=(4.6, 4.0))
    ax = axes[0, 0]
    for i, w in enumerate(words):
        r = n["words"][w]
        ax.scatter(
            [i] * len(r["trained"]["diff"]),
            r["trained"]["diff"],
            color="C0",
            s=12,
            zorder=3,
            label="trained (seeds)" if i == 0 else None,
        )
        ax.scatter(i + 0.2, r["init"]["diff_mean"], color="C7", marker="x", s=18, label="untrained encoder" if i == 0 else None)
    iv = n["summary"]["diff_over_words"]
    ax.axhspan(iv["low"], iv["high"], color="C0", alpha=0.15, label="95% interval over words (trained)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(words)), words, rotation=40, ha="right", fontsize=8)
    ax.set(ylabel="within-sense minus cross-sense cosine", title=f"does the vector follow the sense? (context = {n['context']})")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    for ax, w in zip(axes[0, 1:], shown):
        x, labels = raw[w]["vectors"], np.asarray(raw[w]["labels"])
        xy = np.zeros((len(x), 2)) if np.allclose(x, x[0]) else PCA(n_components=2, random_state=0).fit_transform(x)
        for sense in (0, 1):
            ax.scatter(xy[labels == sense, 0], xy[labels == sense, 1], s=30, color=f"C{sense + 1}", label=sets[w][0][sense])
        ax.set(xlabel="PC 1", ylabel="PC 2", title=f'"{w}": its {len(x)} occurrences, 2-D PCA (seed {n["seeds"][0]})')
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{n['data']}: contextual vectors of ambiguous words", fontsize=10)
    return save_figure(fig, ctx.figure_path("sense_separation"))
