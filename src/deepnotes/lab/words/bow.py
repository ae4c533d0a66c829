"""C41, C57: counting words (TF-IDF, 단어 가방 (BoW)).

C41  TF-IDF (Spärck Jones 1972, "A statistical interpretation of term specificity"; tf x idf as in
     Salton & Buckley 1988) against raw counts, per document of a real corpus (full: the 500 Brown
     files; quick: the gettext-en catalogues; documents of at least 200 word tokens, a word token
     being one with a letter or digit). Three parts:
     (1) an identity, checked: the notes' worked example with the values of ERRATA E40, in the
         textbook form tf x ln(N/df) and in scikit-learn's (smoothed idf + 1, L2 rows), and
         against scikit-learn's TfidfVectorizer itself;
     (2) rarity: the top-10 words of each document by TF-IDF (the textbook form, the notes') and by
         count: their mean document frequency df/N (paired over documents), the share that are
         rare corpus-wide (df/N <= 10%) and frequent in the document (tf >= 2), and inside each
         document the Spearman correlation of a word's idf with its weight (negative for counts,
         Zipf: the frequent words are the common ones; positive for TF-IDF);
     (3) document-specific: the top-10 words are picked on each document's first half (TF-IDF
         over the first halves) and counted in its second half, against what their rate in the
         other documents' second halves predicts: log2((seen + 1/2) / (expected + 1/2)) per
         document, TF-IDF picks minus count picks with a 95% t-interval over documents. Words
         that characterise a document recur in it (burstiness: Church & Gale 1995, "Poisson
         mixtures"); stop words occur at their usual rate everywhere.
     The opposite evidence deals the same tokens at random into documents of the same lengths
     (documents="shuffled"): no document is about anything and every word frequent in a document
     is frequent everywhere. TF-IDF still ranks rare words first (its formula does that for any
     corpus: at equal tf a lower df always weighs more, so that part cannot reverse), but they
     are chance occurrences that do not recur in the held-out half: part (3) fails.
C57  (1) an identity, checked: the bag of words (counts) of every real sentence of the corpus
     equals that of a random permutation of it, and BoW("dog bites man") == BoW("man bites dog").
     (2) sentences "the <noun> <verb> the <noun>" from the corpus's frequent words (the most
     frequent of a fixed list of common nouns, split into groups A and B by alternating frequency
     rank, and of past-tense transitive verbs); every (A noun, B noun, verb) appears in both
     orders, label = "the agent (the noun before the verb) is from group A". A quarter of the
     (noun, noun, verb) triples, both orders, are held out. Logistic regression on the bag of
     words sees the same bag with both labels: held-out accuracy exactly 1/2. An LSTM
     (deepnotes.layers.recurrent, embedding 16, hidden 32, read-out at the last step) reads the
     order. Quick: 8 + 8 nouns, 8 verbs, 300 steps, 1 seed (intervals over test sentences);
     full: 12 + 12 nouns, 12 verbs, 400 steps, 3 seeds (t-intervals over seeds). The opposite
     evidence (task="content"): the label is the verb's group, whatever the order: the words
     carry it and the bag of words reads it as well as the LSTM.

C57 trains on the CPU with one thread (its numbers say so); C41 only counts (numpy, scipy.sparse).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from deepnotes.errors import DataError, UserError
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import image_paired_interval, lab_corpus, new_figure, paired_interval, rounded, save_figure
from deepnotes.lab.sequences.recurrent import SeqModel, interval, one_thread
from deepnotes.text.vectorize import bag_of_words, document_frequency, idf_weights, tfidf, tfidf_textbook

WORD = re.compile(r"[^\W_]")  # a token with a letter or digit is a word (not ".", "``", "--")

# ============================================================================ C41

E40_DOCS = [["i", "love", "cats", "and", "cats", "are", "great"], ["i", "love", "dogs"]]
E40_VOCAB = ["i", "love", "cats", "and", "are", "great", "dogs"]  # the order of ERRATA E40
E40_TEXTBOOK = [[0, 0, 1.386, 0.693, 0.693, 0.693, 0], [0, 0, 0, 0, 0, 0, 0.693]]
E40_SKLEARN = [[0.251, 0.251, 0.707, 0.353, 0.353, 0.353, 0], [0.502, 0.502, 0, 0, 0, 0, 0.705]]
E40_TOLERANCE = 5e-4  # the errata print 3 decimals
TOP = 10
RARE = 0.1  # "rare corpus-wide": in at most 10% of the documents
MIN_TOKENS = 200  # shorter documents have no halves worth comparing


def worked_example() -> dict:
    """ERRATA E40's worked example computed both ways, against the errata's values and against
    scikit-learn's TfidfVectorizer (the oracle): an identity, checked numerically."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    textbook = tfidf_textbook(E40_DOCS, E40_VOCAB).matrix.toarray()
    ours = tfidf(E40_DOCS, E40_VOCAB).matrix.toarray()
    theirs = TfidfVectorizer(analyzer=lambda d: d, vocabulary=E40_VOCAB).fit_transform(E40_DOCS).toarray()
    return {
        "kind": "identity (a math fact, checked numerically)",
        "documents": [" ".join(d) for d in E40_DOCS],
        "vocabulary": E40_VOCAB,
        "textbook": [[round(float(v), 4) for v in r] for r in textbook],
        "sklearn": [[round(float(v), 4) for v in r] for r in ours],
        "max_abs_diff_to_errata_textbook": rounded(float(np.abs(textbook - np.array(E40_TEXTBOOK)).max()), 3),
        "max_abs_diff_to_errata_sklearn": rounded(float(np.abs(ours - np.array(E40_SKLEARN)).max()), 3),
        "max_abs_diff_to_sklearn_vectorizer": float(np.abs(ours - theirs).max()),
        "weight_of_words_in_every_document": float(np.abs(textbook[:, :2]).max()),  # "i", "love": ln(2/2) = 0
    }


def c41_documents(corpus: str | None, quick: bool) -> tuple[list[list[str]], list[str], list[str], str]:
    """The word tokens of each document (sentences in order) with at least MIN_TOKENS of them, the
    documents' names and categories, and the corpus name. Quick: gettext-en; full: Brown when it can
    be found without downloading, else gettext-en (the numbers say which)."""
    data = lab_corpus(corpus, quick)
    docs: list[list[str]] = [[] for _ in data.doc_names]
    for sentence, d in zip(data.sentences, data.doc_of_sentence):
        docs[int(d)].extend(t for t in sentence if WORD.search(t))
    keep = [i for i, d in enumerate(docs) if len(d) >= MIN_TOKENS]
    if len(keep) < 10:
        raise DataError(f"{data.name} has {len(keep)} documents of >= {MIN_TOKENS} word tokens; C41 needs at least 10")
    return [docs[i] for i in keep], [data.doc_names[i] for i in keep], [data.doc_categories[i] for i in keep], data.name


def shuffled_documents(docs: Sequence[Sequence[str]], seed: int) -> list[list[str]]:
    """The same tokens dealt at random into documents of the same lengths (the opposite evidence)."""
    tokens = np.array([t for d in docs for t in d], dtype=object)
    np.random.default_rng(seed).shuffle(tokens)
    cuts = np.cumsum([len(d) for d in docs])[:-1]
    return [list(part) for part in np.split(tokens, cuts)]


def _top(row: sp.csr_matrix, k: int) -> np.ndarray:
    """Column indices of the row's k largest entries (ties: lower column first), zeros excluded."""
    keep = row.data > 0
    data, idx = row.data[keep], row.indices[keep]
    return idx[np.lexsort((idx, -data))[:k]]


def rarity(docs: Sequence[Sequence[str]], top: int = TOP) -> dict:
    """Per document: the top words by count, by textbook TF-IDF and by scikit-learn's TF-IDF;
    their mean df/N, the share rare (df/N <= RARE) and frequent in the document (tf >= 2), and the
    within-document Spearman correlation of idf with count and with TF-IDF weight."""
    from scipy.stats import spearmanr

    counts, vocab = bag_of_words(docs)
    n = counts.shape[0]
    df = document_frequency(counts)
    idf = idf_weights(df, n, form="textbook")
    sk = tfidf(docs, vocab).matrix
    share = df / n
    per: dict[str, list[float]] = {k: [] for k in ("df_count", "df_tfidf", "df_sklearn", "spec_count", "spec_tfidf", "all_sklearn",
                                                   "rho_count", "rho_tfidf")}  # fmt: skip
    picks: list[dict[str, list[str]]] = []
    for i in range(n):
        row = counts.getrow(i)
        tf = dict(zip(row.indices, row.data))
        weight = sp.csr_matrix((row.data * idf[row.indices], row.indices, row.indptr), shape=row.shape)
        chosen = {"count": _top(row, top), "tfidf": _top(weight, top), "sklearn": _top(sk.getrow(i), top)}
        for arm in ("count", "tfidf"):
            w = chosen[arm]
            per[f"df_{arm}"].append(float(share[w].mean()))
            per[f"spec_{arm}"].append(float(np.mean([share[j] <= RARE and tf[j] >= 2 for j in w])))
        per["df_sklearn"].append(float(share[chosen["sklearn"]].mean()))
        per["all_sklearn"].append(float(np.mean(df[chosen["sklearn"]] == n)))
        if np.ptp(idf[row.indices]) > 0:  # a correlation needs idf to vary (not every word in every document)
            for arm, values in (("count", row.data), ("tfidf", weight.data)):
                if np.ptp(values) > 0:
                    per[f"rho_{arm}"].append(float(spearmanr(idf[row.indices], values).statistic))
        picks.append({arm: [vocab[j] for j in w] for arm, w in chosen.items()}
                     | {"tf": {vocab[j]: int(tf[j]) for w in chosen.values() for j in w},
                        "df_share": {vocab[j]: round(float(share[j]), 3) for w in chosen.values() for j in w}})  # fmt: skip
    per = {k: [v for v in vals if np.isfinite(v)] for k, vals in per.items()}
    return {"per_document": per, "picks": picks, "vocabulary": len(vocab), "every_document": int((df == n).sum())}


def held_out_lift(docs: Sequence[Sequence[str]], top: int = TOP) -> dict[str, np.ndarray]:
    """Per document: pick the top words of its first half (by count; by textbook TF-IDF over the
    collection of first halves), then count them in its second half against the count their rate
    in the other documents' second halves predicts: log2((seen + 1/2) / (expected + 1/2))."""
    firsts = [d[: len(d) // 2] for d in docs]
    seconds = [d[len(d) // 2 :] for d in docs]
    counts, vocab = bag_of_words(firsts)
    weights = tfidf_textbook(firsts, vocab).matrix
    later = bag_of_words(seconds, vocab).matrix
    column_total = np.asarray(later.sum(0)).ravel()
    lengths = np.array([len(s) for s in seconds], dtype=float)
    total = lengths.sum()
    out: dict[str, list[float]] = {"count": [], "tfidf": []}
    for i in range(len(docs)):
        row = later.getrow(i)
        own = dict(zip(row.indices, row.data))
        for arm, m in (("count", counts), ("tfidf", weights)):
            w = _top(m.getrow(i), top)
            seen = float(sum(own.get(j, 0.0) for j in w))
            rate_elsewhere = (float(column_total[w].sum()) - seen) / (total - lengths[i])
            out[arm].append(float(np.log2((seen + 0.5) / (rate_elsewhere * lengths[i] + 0.5))))
    return {k: np.asarray(v) for k, v in out.items()}


def judge_c41(numbers: dict) -> tuple[str, str]:
    """Holds if (1) the worked example reproduces ERRATA E40's values (both forms, within 5e-4) and
    scikit-learn's vectorizer (1e-12), (2) TF-IDF's top words are rarer than count's (the 95%
    t-interval over documents of the paired difference in mean df/N lies below 0) and (3) they are
    document-specific: in the document's held-out half they recur above what their rate elsewhere
    predicts, more than count's top words (the interval of the paired difference in log2 lift lies
    above 0). Does not hold otherwise (e.g. in shuffled documents: TF-IDF still ranks rare words
    first, but they do not recur: (3) fails)."""
    n = numbers
    ex, r, h = n["identity"], n["rarity"], n["held_out"]
    identity = (ex["max_abs_diff_to_errata_textbook"] <= E40_TOLERANCE and ex["max_abs_diff_to_errata_sklearn"] <= E40_TOLERANCE
                and ex["max_abs_diff_to_sklearn_vectorizer"] <= 1e-12)  # fmt: skip
    d_df, d_lift = r["tfidf_minus_count_df_share"], h["tfidf_minus_count"]
    rarer = d_df["high"] < 0
    specific = d_lift["low"] > 0
    summary = (
        f"{n['data']} ({n['documents']} documents{' with their tokens shuffled across documents' if n['which'] == 'shuffled' else ''}, "
        f"{n['tokens']:,} word tokens, vocabulary {n['vocabulary']:,}). (1) identity: the notes' worked example (ERRATA E40) gives "
        f"doc1 = {ex['textbook'][0]}, doc2 = {ex['textbook'][1]} with tf x ln(N/df) and doc1 = {ex['sklearn'][0]}, doc2 = "
        f"{ex['sklearn'][1]} with scikit-learn's smoothed idf and L2 rows ({'equal to' if identity else 'NOT equal to'} the errata's "
        f"values and scikit-learn's TfidfVectorizer; the notes' own numbers were wrong); \"i\" and \"love\", in both documents, weigh 0. "
        f"(2) top-{n['top']} words per document: by count their mean df/N is {r['count']['mean_df_share']:.2f}, by TF-IDF "
        f"{r['tfidf']['mean_df_share']:.3f} (difference {d_df['mean']:+.3f} [{d_df['low']:+.3f}, {d_df['high']:+.3f}], 95% t-interval "
        f"over documents); rare (df/N <= {RARE:g}) and frequent in the document (tf >= 2): {r['count']['rare_and_frequent_share']:.0%} "
        f"of count's top words, {r['tfidf']['rare_and_frequent_share']:.0%} of TF-IDF's; Spearman correlation of idf with the weight "
        f"inside documents {r['spearman_idf_count']:+.2f} for counts, {r['spearman_idf_tfidf']:+.2f} for TF-IDF; scikit-learn's form "
        f"(idf + 1) keeps stop words: {r['sklearn']['in_every_document_share']:.0%} of its top words are in every document "
        f"(textbook: weight 0). (3) top words of the first half, counted in the held-out second half: log2 (seen / expected from "
        f"their rate elsewhere) {h['count']:+.2f} for count's picks, {h['tfidf']:+.2f} for TF-IDF's, difference {d_lift['mean']:+.2f} "
        f"[{d_lift['low']:+.2f}, {d_lift['high']:+.2f}]"
    )
    if identity and rarer and specific:
        return "holds", summary
    what = []
    if not identity:
        what.append("the worked example does not reproduce ERRATA E40")
    if not rarer:
        what.append("TF-IDF's top words are not rarer than count's")
    if not specific:
        what.append(
            "TF-IDF's top words are rare but not document-specific: they do not recur in the document's held-out half more than "
            "count's top words" + (" (they recur less)" if d_lift["high"] < 0 else "")
        )
    return "does not hold", "; ".join(what) + ": " + summary


@experiment("C41", quick_verdict="holds", opposite={"documents": "shuffled"})
def run_c41(ctx: Context, corpus: str | None = None, documents: str = "texts", top: int = TOP) -> Finding:
    """TF-IDF against counts per document. Quick: gettext-en's catalogues; full: Brown's 500 files
    (gettext-en if Brown cannot be found without a download). corpus names another (brown,
    gettext-en, shakespeare, bible-kjv); documents="shuffled" deals the tokens at random into
    documents of the same lengths (the opposite evidence)."""
    if documents not in ("texts", "shuffled"):
        raise UserError(f"documents is 'texts' or 'shuffled', got {documents!r}")
    docs, names, categories, name = c41_documents(corpus, ctx.quick)
    if documents == "shuffled":
        docs = shuffled_documents(docs, ctx.seed)
    identity = worked_example()
    r = rarity(docs, top)
    per = r["per_document"]
    lift = held_out_lift(docs, top)
    mean = lambda v: rounded(float(np.mean(v)), 4)  # noqa: E731
    numbers = {
        "data": name,
        "which": documents,
        "documents": len(docs),
        "tokens": int(sum(map(len, docs))),
        "vocabulary": r["vocabulary"],
        "min_tokens": MIN_TOKENS,
        "top": top,
        "rare_df_share": RARE,
        "seed": ctx.seed,
        "identity": identity,
        "rarity": {
            "count": {"mean_df_share": mean(per["df_count"]), "rare_and_frequent_share": mean(per["spec_count"])},
            "tfidf": {"mean_df_share": mean(per["df_tfidf"]), "rare_and_frequent_share": mean(per["spec_tfidf"])},
            "sklearn": {"mean_df_share": mean(per["df_sklearn"]), "in_every_document_share": mean(per["all_sklearn"])},
            "tfidf_minus_count_df_share": paired_interval(per["df_tfidf"], per["df_count"]) | {"over": "documents"},
            "spearman_idf_count": mean(per["rho_count"]),
            "spearman_idf_tfidf": mean(per["rho_tfidf"]),
            "words_in_every_document": r["every_document"],
        },
        "held_out": {
            "how": "top words of each document's first half, counted in its second half; log2((seen + 1/2) / (expected + 1/2)), "
            "expected from their rate in the other documents' second halves",
            "count": mean(lift["count"]),
            "tfidf": mean(lift["tfidf"]),
            "tfidf_minus_count": paired_interval(lift["tfidf"], lift["count"]) | {"over": "documents"},
        },
        "tfidf_form": "textbook tf x ln(N/df), raw counts (the notes' form); 'sklearn' rows: scikit-learn's TfidfVectorizer defaults",
    }
    # three documents to show: the first of the first, middle and last category (else the three largest)
    kinds = list(dict.fromkeys(categories))
    shown = [categories.index(kinds[j]) for j in (0, len(kinds) // 2, len(kinds) - 1)]
    if len(kinds) < 3:
        shown = list(np.argsort([-len(d) for d in docs])[:3])
    shown = [int(i) for i in shown]
    numbers["examples"] = {
        (f"{names[i]} ({categories[i]})" if documents == "texts" else f"shuffled document {i}"): {
            "count": r["picks"][i]["count"], "tfidf": r["picks"][i]["tfidf"]}
        for i in shown
    }  # fmt: skip

    fig, axes = new_figure(3, 1, size=(3.4, 2.5))
    for ax, i in zip(axes[0], shown):
        p = r["picks"][i]
        ax.axis("off")
        title = f"{names[i]} ({categories[i]})" if documents == "texts" else f"shuffled document {i}"
        head = f"{'word':<10}{'tf':>4} {'df/N':>4}"
        lines = [f"{'by count':<22}{'by TF-IDF':<22}", f"{head:<22}{head:<22}"]
        for a, b in zip(p["count"], p["tfidf"]):
            left = f"{a[:10]:<10}{p['tf'][a]:>4} {p['df_share'][a]:.2f}"
            right = f"{b[:10]:<10}{p['tf'][b]:>4} {p['df_share'][b]:.2f}"
            lines.append(f"{left:<22}{right:<22}")
        ax.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=8, va="top", transform=ax.transAxes)
        ax.set_title(title[:40], fontsize=9)
    fig.suptitle(f"{name}: top {top} words of a document by count and by TF-IDF (tf x ln(N/df), N = {len(docs)})", fontsize=10)
    top_words = save_figure(fig, ctx.figure_path("top_words"))

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    ax = axes[0, 0]
    bins = np.linspace(0, 1, 21)
    ax.hist(per["df_count"], bins, alpha=0.6, color="C7", label="top words by count")
    ax.hist(per["df_tfidf"], bins, alpha=0.6, color="C0", label="top words by TF-IDF")
    ax.set(xlabel=f"mean df/N of a document's top {top} words", ylabel="documents", title="(2) how common the top words are")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[0, 1]
    for k, (arm, colour) in enumerate((("count", "C7"), ("tfidf", "C0"))):
        v = lift[arm]
        ax.scatter(k + np.random.default_rng(0).uniform(-0.15, 0.15, len(v)), v, s=6, color=colour, alpha=0.4)
        ax.errorbar(k, float(np.mean(v)), yerr=1.96 * float(np.std(v, ddof=1)) / np.sqrt(len(v)), fmt="o", color="black", capsize=4)
    ax.axhline(0, ls=":", color="grey")
    ax.set_xticks([0, 1], ["top by count", "top by TF-IDF"])
    ax.set(ylabel="log2 (seen / expected) in the held-out half", title="(3) do the first half's top words recur?")
    ax.grid(alpha=0.3, axis="y")
    d = numbers["held_out"]["tfidf_minus_count"]
    fig.suptitle(f"{name}{' (shuffled)' if documents == 'shuffled' else ''}, {len(docs)} documents: TF-IDF - count "
                 f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] (log2, 95% t-interval over documents)", fontsize=10)  # fmt: skip
    rarity_figure = save_figure(fig, ctx.figure_path("rarity_and_recurrence"))
    verdict, reason = judge_c41(numbers)
    return Finding(numbers, [top_words, rarity_figure], verdict, reason)


# ============================================================================ C57

# candidates, most frequent first in the corpus decides which are used (real words, real counts)
NOUNS = ("man", "woman", "child", "boy", "girl", "king", "father", "mother", "friend", "doctor", "teacher", "student",
         "president", "officer", "soldier", "captain", "judge", "driver", "farmer", "dog", "horse", "cat", "bird", "user",
         "server", "client", "program", "file", "window", "system", "device", "process", "group", "team", "company", "city",
         "house", "car", "ship", "book", "letter", "door", "table", "key", "account", "network", "printer", "computer",
         "message", "folder", "image", "package", "module", "service", "manager", "owner", "author", "editor", "reader",
         "writer", "player", "worker", "member", "leader", "army", "police", "government")  # fmt: skip
VERBS = ("saw", "found", "told", "called", "took", "made", "gave", "knew", "met", "helped", "followed", "killed", "loved",
         "watched", "asked", "heard", "opened", "saved", "deleted", "removed", "created", "selected", "copied", "moved",
         "loaded", "sent", "read", "changed", "started", "stopped", "checked", "replaced", "updated", "installed")  # fmt: skip
TASKS = ("order", "content")
CHANCE_MARGIN = 0.05  # "at chance": the interval of accuracy - 1/2 reaches 0, or the mean is within 5 points of 1/2


def pick_words(counts: Counter, nouns: int, verbs: int) -> tuple[list[str], list[str], list[str]]:
    """The 2 x `nouns` most frequent candidate nouns (group A: ranks 1, 3, 5, ...; B: 2, 4, 6, ...: the
    groups' frequencies match) and the `verbs` most frequent candidate verbs found in the corpus."""
    ranked_n = sorted((w for w in NOUNS if counts[w] > 0), key=lambda w: (-counts[w], w))
    ranked_v = sorted((w for w in VERBS if counts[w] > 0), key=lambda w: (-counts[w], w))
    if len(ranked_n) < 2 * nouns or len(ranked_v) < verbs:
        raise DataError(f"the corpus has {len(ranked_n)} of the candidate nouns and {len(ranked_v)} of the verbs; "
                        f"C57 needs {2 * nouns} and {verbs}: use fewer (nouns=, verbs=) or a larger corpus")  # fmt: skip
    chosen = ranked_n[: 2 * nouns]
    return chosen[0::2], chosen[1::2], ranked_v[:verbs]


def order_task(group_a: Sequence[str], group_b: Sequence[str], verbs: Sequence[str], task: str, seed: int, test_share: float = 0.25):
    """Sentences "the X v the Y" for every (A noun, B noun, verb) in both orders; labels: task "order":
    1 if the agent (the noun before the verb) is from group A; task "content": 1 if the verb is in
    the first half of `verbs` (order irrelevant). A seeded `test_share` of the triples, both orders,
    is held out. Returns (train sentences, train labels, test sentences, test labels)."""
    if task not in TASKS:
        raise UserError(f"task is 'order' (the label is in the word order) or 'content' (in which words occur), got {task!r}")
    triples = [(a, b, v) for a in group_a for b in group_b for v in verbs]
    order = np.random.default_rng(seed).permutation(len(triples))
    n_test = max(1, round(test_share * len(triples)))
    split = {"test": [triples[i] for i in order[:n_test]], "train": [triples[i] for i in order[n_test:]]}
    content = set(verbs[: len(verbs) // 2])
    out = []
    for part in ("train", "test"):
        xs, ys = [], []
        for a, b, v in split[part]:
            for first, second in ((a, b), (b, a)):
                xs.append(["the", first, v, "the", second])
                ys.append(int(first == a) if task == "order" else int(v in content))
        out += [xs, np.array(ys)]
    return tuple(out)


def permutation_identity(sentences: Sequence[Sequence[str]], seed: int) -> dict:
    """BoW of every sentence against BoW of a random permutation of it: how many equal, and how many
    permutations changed the sequence at all (a sentence of one repeated word cannot change)."""
    rng = np.random.default_rng(seed)
    permuted = [list(rng.permutation(np.array(s, dtype=object))) for s in sentences]
    a, vocab = bag_of_words(sentences)
    b = bag_of_words(permuted, vocab).matrix
    changed = sum(list(p) != list(s) for p, s in zip(permuted, sentences))
    equal = int((abs(a - b).sum(1) == 0).sum())
    example = bag_of_words([["dog", "bites", "man"], ["man", "bites", "dog"]]).matrix.toarray()
    return {"kind": "identity (a math fact, checked numerically)", "sentences": len(sentences), "order_changed": int(changed),
            "bow_equal": equal, "dog_bites_man_equal": bool((example[0] == example[1]).all())}  # fmt: skip


def judge_c57(numbers: dict) -> tuple[str, str]:
    """Holds if (1) every sentence's bag of words equals its permutation's (an identity) and (2) on the
    held-out sentences the bag-of-words classifier is at chance (the 95% interval of accuracy - 1/2
    reaches 0, or its mean is within 5 points of 1/2) while the LSTM beats it (the interval of
    LSTM - BoW lies above 0). Holds with a correction if the bag of words is at chance but this LSTM
    did not beat it either (the identity stands, the separation was not shown). Does not hold if the
    identity fails or the bag of words is above chance (the label is readable from which words
    occur: order is not what it misses; e.g. task="content")."""
    n = numbers
    ident, b, m = n["identity"], n["bow"], n["lstm"]
    identity = ident["bow_equal"] == ident["sentences"] and ident["dog_bites_man_equal"]
    vs_chance, gap = n["bow_minus_chance"], n["lstm_minus_bow"]
    at_chance = vs_chance["low"] <= 0 <= vs_chance["high"] or abs(vs_chance["mean"]) <= CHANCE_MARGIN
    separates = gap["low"] > 0
    seeds = len(n["seeds"])
    over = "over seeds" if gap["over"] == "seeds" else f"over {gap['over']}, 1 seed"
    summary = (
        f"(1) identity: {ident['bow_equal']:,} of {ident['sentences']:,} real {n['data']} sentences have the same bag of words as a "
        f"random permutation ({ident['order_changed']:,} permutations changed the order); BoW(\"dog bites man\") "
        f"{'==' if ident['dog_bites_man_equal'] else '!='} BoW(\"man bites dog\"). (2) task \"{n['task']}\" ({n['task_rule']}): "
        f"\"the <noun> <verb> the <noun>\" with nouns A = {', '.join(n['group_a'])}, B = {', '.join(n['group_b'])} and verbs "
        f"{', '.join(n['verbs'])} (the corpus's most frequent of the candidates), {n['train_sentences']} training and "
        f"{n['test_sentences']} held-out sentences, {seeds} seed{'s' if seeds != 1 else ''}: held-out accuracy bag of words + "
        f"logistic regression {b['mean']:.1%}, LSTM {m['mean']:.1%} (chance 50%); BoW - 1/2 {vs_chance['mean']:+.1%} "
        f"[{vs_chance['low']:+.1%}, {vs_chance['high']:+.1%}], LSTM - BoW {gap['mean']:+.1%} [{gap['low']:+.1%}, {gap['high']:+.1%}] "
        f"(95% intervals {over})"
    )
    if identity and at_chance and separates:
        return "holds", summary
    if identity and at_chance:
        return "holds with a correction", f"the bag of words cannot separate the orders, but this LSTM did not either at this budget: {summary}"
    if not identity:
        return "does not hold", f"some permuted sentence has another bag of words: {summary}"
    return "does not hold", (f"the bag of words is above chance: the label is in which words occur, not in their order, so order is "
                             f"not what it misses here{' (the LSTM is no better)' if gap['low'] <= 0 else ''}: {summary}")  # fmt: skip


def _bow_classifier(train_x, train_y, test_x, vocab: list[str], seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, random_state=seed)
    clf.fit(bag_of_words(train_x, vocab).matrix, train_y)
    return clf.predict(bag_of_words(test_x, vocab).matrix)


def _train_lstm(train_x: torch.Tensor, train_y: torch.Tensor, vocab: int, hidden: int, steps: int, batch: int, lr: float,
                seed: int) -> tuple[torch.nn.Module, list[float]]:  # fmt: skip
    torch.manual_seed(seed)
    model = SeqModel("lstm", vocab, hidden, 2)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(steps):
        i = torch.randint(0, len(train_x), (batch,), generator=g)
        loss = F.cross_entropy(model(train_x[i]), train_y[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve.append(loss.item())
    return model.eval(), curve


@experiment("C57", quick_verdict="holds", opposite={"task": "content"})
def run_c57(ctx: Context, task: str = "order", corpus: str | None = None, nouns: int | None = None, verbs: int | None = None,
            seeds: int | None = None, steps: int | None = None, hidden: int = 32, batch: int = 64, lr: float = 1e-2) -> Finding:  # fmt: skip
    """(1) BoW of the corpus's sentences (quick: 2,000, full: all) against their permutations; (2) the
    order task from the corpus's words, BoW + logistic regression against an LSTM. Quick: gettext-en,
    8 + 8 nouns, 8 verbs, 300 steps, 1 seed; full: Brown (gettext-en if it cannot be found without a
    download), 12 + 12 nouns, 12 verbs, 400 steps, 3 seeds. task="content" (the label is the verb's
    group) is the opposite evidence."""
    if task not in TASKS:
        raise UserError(f"task is 'order' (the label is in the word order) or 'content' (in which words occur), got {task!r}")
    nouns = nouns or ctx.size(8, 12)
    verbs = verbs or ctx.size(8, 12)
    seeds = seeds or ctx.size(1, 3)
    steps = steps or ctx.size(300, 400)
    data = lab_corpus(corpus, ctx.quick)
    sentences = data.sentences if not ctx.quick else data.sentences[:2000]
    identity = permutation_identity(sentences, ctx.seed)
    group_a, group_b, verb_list = pick_words(Counter(t for s in data.sentences for t in s), nouns, verbs)

    bow_acc, lstm_acc, items_bow, items_lstm, curves = [], [], None, None, []
    with one_thread():
        for s in range(seeds):
            seed = ctx.seed + s
            train_x, train_y, test_x, test_y = order_task(group_a, group_b, verb_list, task, seed)
            vocab = sorted({w for x in train_x + test_x for w in x})
            right_bow = _bow_classifier(train_x, train_y, test_x, vocab, seed) == test_y
            index = {w: i for i, w in enumerate(vocab)}
            enc = lambda xs: torch.tensor([[index[w] for w in x] for x in xs])  # noqa: E731
            model, curve = _train_lstm(enc(train_x), torch.tensor(train_y), len(vocab), hidden, steps, batch, lr, seed)
            with torch.no_grad():
                right_lstm = (model(enc(test_x)).argmax(1) == torch.tensor(test_y)).numpy()
            bow_acc.append(float(right_bow.mean()))
            lstm_acc.append(float(right_lstm.mean()))
            curves.append(curve)
            if items_bow is None:
                items_bow, items_lstm = torch.tensor(right_bow), torch.tensor(right_lstm)
            ctx.log(f"C57 {task} seed {seed}: BoW {bow_acc[-1]:.1%}, LSTM {lstm_acc[-1]:.1%}")
    half = [0.5] * seeds
    numbers = {
        "data": data.name,
        "task": task,
        "task_rule": "label 1 if the agent (the noun before the verb) is from group A" if task == "order"
        else f"label 1 if the verb is one of {', '.join(verb_list[: len(verb_list) // 2])}, the nouns in either order",
        "identity": identity,
        "group_a": group_a,
        "group_b": group_b,
        "verbs": verb_list,
        "train_sentences": len(train_x),
        "test_sentences": len(test_x),
        "seeds": [ctx.seed + s for s in range(seeds)],
        "bow": {"runs": [rounded(a, 4) for a in bow_acc], "mean": rounded(float(np.mean(bow_acc)), 4),
                "model": "counts bag of words (deepnotes.text.vectorize) + scikit-learn LogisticRegression (L2, C = 1)"},
        "lstm": {"runs": [rounded(a, 4) for a in lstm_acc], "mean": rounded(float(np.mean(lstm_acc)), 4),
                 "model": f"embedding 16 -> deepnotes LSTM hidden {hidden} -> linear at the last step; Adam lr {lr:g}, {steps} steps of {batch}"},
        "bow_minus_chance": (paired_interval(bow_acc, half) | {"over": "seeds"}) if seeds > 1
        else image_paired_interval(items_bow, torch.full((len(items_bow),), 0.5)) | {"over": f"{len(items_bow)} test sentences"},
        "lstm_minus_bow": interval(lstm_acc, bow_acc, items_lstm, items_bow),
        "steps": steps,
        "threads": 1,
    }  # fmt: skip

    fig, axes = new_figure(3, 1, size=(4.6, 3.8))
    ax = axes[0, 0]
    a, b, v = group_a[0], group_b[0], verb_list[0]
    pair = [["the", a, v, "the", b], ["the", b, v, "the", a]]
    m, words = bag_of_words(pair)
    x = np.arange(len(words))
    ax.bar(x - 0.2, m.toarray()[0], 0.4, color="C0", label=" ".join(pair[0]))
    ax.bar(x + 0.2, m.toarray()[1], 0.4, color="C1", label=" ".join(pair[1]))
    ax.set_xticks(x, words, fontsize=8)
    ax.set(ylabel="count", title="two orders, one bag of words")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for k, (label, runs, colour) in enumerate((("bag of words\n+ logistic regression", bow_acc, "C7"), ("LSTM", lstm_acc, "C0"))):
        ax.bar(k, float(np.mean(runs)), color=colour, alpha=0.8)
        ax.scatter([k] * len(runs), runs, color="black", s=12, zorder=3)
    ax.axhline(0.5, ls=":", color="grey", label="chance 1/2")
    ax.set_xticks([0, 1], ["bag of words\n+ logistic regression", "LSTM"], fontsize=8)
    ax.set(ylim=(0, 1.02), ylabel="held-out accuracy", title=f"task \"{task}\" (dots: seeds)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax = axes[0, 2]
    c = np.mean(curves, 0)
    ax.plot(np.arange(1, len(c) + 1), c, color="C0")
    ax.axhline(np.log(2), ls=":", color="grey", label="ln 2 (chance)")
    ax.set(xlabel="step", ylabel="training cross-entropy", title="LSTM training (mean over seeds)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{data.name}: bag of words vs LSTM when {'only the order' if task == 'order' else 'which words occur'} carries the label",
                 fontsize=10)  # fmt: skip
    figure = save_figure(fig, ctx.figure_path("order"))
    verdict, reason = judge_c57(numbers)
    return Finding(numbers, [figure], verdict, reason)
