"""C39, C40, C58, C59: word vectors (단어 임베딩, FastText 서브워드, 단어 유추, GloVe 동시 발생 행렬).

Every vector here is trained through the word-vectors task (deepnotes.tasks.run_training, the same
path as `deepnotes train word2vec --data brown`): Word2Vec skip-gram and FastText by plain SGD (lr
0.025 falling linearly, batches of 1,024 pairs, gensim's defaults: window 5, 5 noise words, sample
1e-3), GloVe by AdaGrad (lr 0.5, its command-line default, models/glove.py says why; window 10, x_max 100, alpha 0.75). Full: the Brown corpus
(gettext-en if Brown cannot be found without a download), dim 100, min_count 5, 3 seeds; Word2Vec 5
epochs, FastText 3 (it costs ~2.7 times as much per epoch; 3 epochs of it cost more than 5 of
Word2Vec), GloVe 25. Quick: gettext-en (172,845 tokens of software messages), dim 32, min_count
2, 1 seed; Word2Vec 5 epochs, FastText 3, GloVe 10. The runs are cached for the process (keyed by
everything that defines them), so C58 reuses C39's Word2Vec and C40's FastText runs. A corpus the
lab changes (shuffled, words removed) is registered for the run under a scoped name.

C39  (1) an identity, checked: one-hot vectors (deepnotes.text.vectorize.one_hot, ERRATA E27: the
     notes' "one-shot") of distinct words have cosine exactly 0, so their cosine on every
     WordSim-353 pair is 0 and a rank correlation with the human scores is undefined (a constant).
     (2) categories: words of hand-made categories (days, months, numbers, colours, family,
     countries, languages, file formats, units, body parts, animals: those with >= 3 words in the
     vocabulary) and, per word, the AUC of its cosines to words of its own category against words
     of the others (1/2: no structure). Categories differ in frequency (numbers are common,
     languages rare), and frequency alone separates them a little, so the bar is the AUC of the
     frequency similarity -|log count_w - log count_v| on the same words: the claim holds if
     the vectors' AUC exceeds it (95% intervals over words and, with 2+ seeds, over seeds).
     (3) WordSim-353 and SimLex-999 Spearman correlations, judged where at least 200 pairs have
     both words in the vocabulary (Brown: 274 and 997; gettext-en: 41 and 148, reported only), with
     the Fisher interval over pairs (SE sqrt(1.06 / (n - 3)), Fieller, Hartley & Pearson 1957)
     and the t-interval over seeds. Nearest neighbours of chosen words and a 2-D PCA of the word
     groups (days, numbers, family, colours, where present) beside the same recipe on the same
     tokens shuffled across the corpus (context="shuffled": every sentence a random draw of the
     corpus's tokens, so a word's context is random). The shuffled corpus is the opposite
     evidence: the vectors keep each word's frequency and lose what its context said.
C40  FastText (Bojanowski et al. 2017): (1) an identity, checked against ERRATA E43: "playing" cut
     into 3-grams gives <pl, pla, lay, ayi, yin, ing, ng>. (2) Held-out words: a seeded sample
     of words (letters only, >= 6 characters, seen 10-100 times; quick 50, full 200) is deleted
     from the corpus and a second run trains on what is left; the vector each held-out word gets
     there from its n-grams (FastText.oov_vector) is compared with the vector the same word gets
     in the run on the whole corpus: the two runs' spaces are aligned by orthogonal Procrustes
     on the words both know (the held-out words excluded), then per held-out word
     cos(OOV vector, own in-vocabulary vector) - mean cos(OOV vector, the other held-out words'),
     and the rank of its own vector among the whole vocabulary. Word2Vec has a row per vocabulary
     word and nothing else (deepnotes.tasks.word_vectors.vector_of raises). (3) Misspellings
     ("goverment", "beautifull", ...) of vocabulary words: the rank of the intended word among the
     neighbours of the misspelling's n-gram vector (reported, not judged). min_n = max_n = 40 is
     the opposite evidence: no word has an n-gram that long, so FastText keeps only each word's
     own row (it is Word2Vec) and every unseen word gets the zero vector. (buckets=1, every
     n-gram in one shared row, would say the same, but that row takes the summed step of every
     pair of a batch and the training diverges at lr 0.025.)
C58  3CosAdd analogies (Mikolov et al. 2013) on the Google set (questions with all four words in
     the vocabulary), per section and semantic (capitals, currency, city-in-state, family) vs
     syntactic (gram1-9), for Word2Vec (judged) and FastText, against count vectors of the same
     corpus: one-hot (an identity: every candidate scores exactly 0, a tie, so its accuracy is
     chance) and PPMI + SVD (Levy, Goldberg & Dagan 2015: positive PMI of the co-occurrence
     counts in a window of 5, context counts raised to 0.75, truncated SVD, U sqrt(S); ERRATA
     E42: Word2Vec predicts, this counts). Holds if Word2Vec's accuracy is above chance (1/V) by
     its exact binomial interval over questions and its t-interval over seeds, in the semantic
     and in the syntactic questions, and the notes' king - man + woman answers queen; holds with a
     correction if only the overall accuracy is above chance. context="shuffled" (vectors trained
     on the shuffled corpus) is the opposite evidence.
C59  GloVe (Pennington et al. 2014): the fit of w_i . w~_j + b_i + b~_j to log X_ij over the non-zero
     cells of the co-occurrence matrix the run trained on (rebuilt from the run's vocabulary with
     deepnotes.text.cooccurrence), weighted by f(X_ij) = min(1, (X_ij / 100)^0.75): the weighted
     R^2 and correlation at initialization (the model as the engine builds it from the seed), after
     training, and for the best model with biases only (b_i + b~_j, the weighted least-squares
     optimum by alternating means: word frequencies and nothing else). Holds if training raises
     the weighted R^2 and the trained fit beats the biases-only fit (the dot products carry
     structure beyond frequency; 95% intervals over seeds, or over cells with one seed). The
     vectors' WordSim-353 / SimLex-999 correlations are a side number (not judged).
     cells="permuted" trains on X with its values permuted among the non-zero cells (the
     opposite evidence): the model fits what it is given, and its fit to the real log X falls
     below the biases-only fit.

Everything trains on the CPU with one thread (the numbers say so).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deepnotes.data.corpora import Corpus
from deepnotes.errors import DataError, UserError
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import lab_corpus, new_figure, paired_interval, rounded, save_figure
from deepnotes.lab.sequences.recurrent import one_thread

# ============================================================================ shared: corpora, training, statistics

RECIPE = {  # (quick, full)
    "dim": (32, 100),
    "min_count": (2, 5),
    "seeds": (1, 3),
    "epochs": {"word2vec": (5, 5), "fasttext": (3, 3), "glove": (10, 25)},
}
CONTEXTS = ("text", "shuffled")
TOL = 1e-6  # differences smaller than this are float rounding, not an effect
MIN_PAIRS = 200  # a benchmark with fewer pairs in the vocabulary is reported, not judged (Fisher interval wider than +-0.14)

CATEGORIES = {
    "days": "monday tuesday wednesday thursday friday saturday sunday",
    "months": "january february march april may june july august september october november december",
    "numbers": "one two three four five six seven eight nine ten eleven twelve twenty hundred thousand",
    "colours": "red green blue yellow black white brown orange purple pink grey gray",
    "family": "father mother son daughter brother sister husband wife uncle aunt grandfather grandmother",
    "countries": "france germany italy spain china japan russia india england canada mexico brazil greece egypt poland sweden",
    "languages": "french german italian spanish chinese japanese russian english portuguese dutch greek arabic polish swedish korean",
    "file formats": "png jpeg jpg gif pdf svg tiff bmp html xml csv json",
    "units": "bytes kilobytes megabytes gigabytes seconds minutes hours days weeks",
    "body": "head hand hands eye eyes face arm arms leg legs foot feet heart",
    "animals": "dog cat horse cow bird fish sheep pig lion mouse",
}  # fmt: skip
PCA_GROUPS = ("days", "numbers", "family", "colours")  # the figure's groups (others fill in where these are missing)
NEIGHBOUR_WORDS = ("monday", "two", "father", "red", "king", "money", "war", "france", "french", "file", "delete", "png",
                   "error", "user", "bytes", "good", "house", "time")  # fmt: skip
CATEGORY_MIN = 3  # words of a category in the vocabulary for it to count


def shuffled_corpus(corpus: Corpus, seed: int) -> Corpus:
    """The corpus's tokens permuted across the whole corpus and dealt into sentences of the same
    lengths: the same words with the same counts, every context random."""
    tokens = np.array([t for s in corpus.sentences for t in s], dtype=object)
    np.random.default_rng(seed).shuffle(tokens)
    cuts = np.cumsum([len(s) for s in corpus.sentences])[:-1]
    sentences = [list(p) for p in np.split(tokens, cuts)]
    return Corpus(f"{corpus.name} (tokens shuffled, seed {seed})", sentences, corpus.doc_of_sentence, corpus.doc_names,
                  corpus.doc_categories, corpus.source, corpus.tokenizer)  # fmt: skip


def without_words(corpus: Corpus, words: Sequence[str]) -> Corpus:
    """The corpus with every token of `words` deleted (sentences left empty are dropped): the words
    are never seen, their neighbours are."""
    drop = set(words)
    sentences, docs = [], []
    for s, d in zip(corpus.sentences, corpus.doc_of_sentence):
        kept = [t for t in s if t not in drop]
        if kept:
            sentences.append(kept)
            docs.append(d)
    digest = hashlib.sha256(" ".join(sorted(drop)).encode()).hexdigest()[:8]
    return Corpus(f"{corpus.name} (without {len(drop)} words {digest})", sentences, np.asarray(docs, dtype=np.int32),
                  corpus.doc_names, corpus.doc_categories, corpus.source, corpus.tokenizer)  # fmt: skip


@dataclass
class Trained:
    """One trained run: its vocabulary (words by id, word -> id without the specials, counts by id),
    the vectors (V, dim) as the task evaluates them, the per-epoch records, the final metrics, the
    seconds run_training took, and the model (FastText's oov_vector, GloVe's tables)."""

    model_name: str
    corpus: str
    seed: int
    epochs: int
    model_args: dict
    words: list[str]
    index: dict[str, int]
    counts: np.ndarray
    vectors: np.ndarray
    history: list[dict]
    metrics: dict
    seconds: float
    model: Any


_RUNS: dict[tuple, Trained] = {}


def train_vectors(model: str, corpus: Corpus, *, epochs: int, seed: int, model_args: dict, task: type | None = None,
                  log=None) -> Trained:  # fmt: skip
    """Train `model` (word2vec, fasttext, glove) on `corpus` through run_training (task: another
    Task subclass for the engine), one thread, in a temporary run directory; cached per process."""
    from deepnotes.registry import DATASETS, register_dataset
    from deepnotes.tasks import load_run, run_training
    from deepnotes.tasks.word_vectors import run_vectors
    from deepnotes.text.vocab import SPECIALS
    from deepnotes.train import TrainConfig
    from deepnotes.train.engine import run as engine_run

    key = (model, corpus.name, len(corpus.sentences), epochs, seed, tuple(sorted(model_args.items())), getattr(task, "__name__", ""))
    if key in _RUNS:
        return _RUNS[key]
    optimizer = {"optimizer": "adagrad", "lr": 0.5} if model == "glove" else {"optimizer": "sgd", "lr": 0.025}
    name = "lab-words-" + hashlib.sha256(repr(key).encode()).hexdigest()[:12]
    with tempfile.TemporaryDirectory(prefix="deepnotes-lab-") as tmp, DATASETS.scoped(), one_thread():
        register_dataset(name, lambda data_dir=None, download=True: corpus, description=corpus.name, kind="corpus")
        cfg = TrainConfig(model=model, data=name, epochs=epochs, schedule="linear", batch_size=1024, threads=1, seed=seed,
                          out=f"{tmp}/run", progress=False, model_args=dict(model_args), **optimizer)  # fmt: skip
        start = time.perf_counter()
        result = run_training(cfg) if task is None else engine_run(cfg, task)
        seconds = time.perf_counter() - start
        run = load_run(f"{tmp}/run")
        words, index, vectors = run_vectors(run)
        counts = np.array([0] * len(SPECIALS) + list(run.config.input["vocab"]["counts"]), dtype=np.float64)
    out = Trained(model, corpus.name, seed, epochs, dict(model_args), list(words), dict(index), counts,
                  vectors.float().numpy().copy(), list(result.metrics.get("epochs", [])), dict(result.metrics), seconds, run.model)  # fmt: skip
    _RUNS[key] = out
    if log is not None:
        m = result.metrics
        scores = ", ".join(f"{k} {m[k]:.3f}" for k in ("test_wordsim", "test_simlex", "test_analogy") if isinstance(m.get(k), float))
        log(f"{model} on {corpus.name}, seed {seed}, {epochs} epochs: {seconds:.0f} s; {scores}")
    return out


def recipe(ctx: Context, model: str, **extra) -> tuple[int, dict, int]:
    """(epochs, model_args, seeds) of `model` at the context's size."""
    pick = 0 if ctx.quick else 1
    args = {"dim": RECIPE["dim"][pick], "min_count": RECIPE["min_count"][pick], **extra}
    return RECIPE["epochs"][model][pick], args, RECIPE["seeds"][pick]


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def tie_rank(scores: np.ndarray, target: int) -> float:
    """The rank of scores[target] among all scores, highest first (1 = top), ties at their mean rank
    (a score shared by every candidate ranks in the middle, not first)."""
    s = scores[target]
    return float((scores > s).sum()) + (float((scores == s).sum()) + 1.0) / 2.0


def fisher_interval(rho: float, n: int) -> dict:
    """95% interval of a Spearman correlation over n pairs: Fisher's z with SE sqrt(1.06 / (n - 3))
    (Fieller, Hartley & Pearson 1957)."""
    if n <= 3 or not np.isfinite(rho):
        return {"low": None, "high": None, "pairs": n}
    z, se = np.arctanh(np.clip(rho, -0.999999, 0.999999)), np.sqrt(1.06 / (n - 3))
    return {"low": rounded(float(np.tanh(z - 1.96 * se))), "high": rounded(float(np.tanh(z + 1.96 * se))), "pairs": n}


def exact_interval(correct: int, n: int) -> dict:
    """Clopper-Pearson 95% interval of a proportion (exact binomial)."""
    from scipy.stats import binomtest

    if n == 0:
        return {"low": None, "high": None, "n": 0}
    ci = binomtest(int(correct), int(n)).proportion_ci(0.95, method="exact")
    return {"low": rounded(float(ci.low)), "high": rounded(float(ci.high)), "n": int(n)}


def above(iv: dict | None, bar: float = 0.0) -> bool:
    """Whether an interval lies above `bar` (None: not measured, counts as not above)."""
    return iv is not None and iv.get("low") is not None and iv["low"] > bar + TOL


def _iv(iv: dict | None, fmt: str = "+.3f") -> str:
    if iv is None or iv.get("low") is None:
        return "[-]"
    return f"[{iv['low']:{fmt}}, {iv['high']:{fmt}}]"


# ============================================================================ C39


def category_words(index: dict[str, int]) -> dict[str, list[str]]:
    """The CATEGORIES words in the vocabulary, for the categories with at least CATEGORY_MIN of them."""
    out = {}
    for name, words in CATEGORIES.items():
        present = [w for w in words.split() if w in index]
        if len(present) >= CATEGORY_MIN:
            out[name] = present
    return out


def category_auc(similarity: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Per word: the AUC (Mann-Whitney, ties 1/2) of its similarities to the other words of its own
    category against its similarities to the words of the other categories."""
    labels = np.asarray(labels)
    n = len(labels)
    out = np.zeros(n)
    for i in range(n):
        same = similarity[i][(labels == labels[i]) & (np.arange(n) != i)]
        other = similarity[i][labels != labels[i]]
        out[i] = (same[:, None] > other[None, :]).mean() + 0.5 * (same[:, None] == other[None, :]).mean()
    return out


def one_hot_identity(words: Sequence[str], vocabulary: Sequence[str], pairs: Sequence[tuple[str, str]],
                     scores: Sequence[float] = ()) -> dict:  # fmt: skip
    """One-hot vectors over `vocabulary` of `words` (the vocabulary words of the WordSim-353 pairs):
    their cosine matrix and the cosines of the pairs. Pairs of two distinct words all get 0, so their
    rank correlation with the human scores is undefined (None); WordSim-353 also holds a word paired
    with itself ("tiger", "tiger": 10), cosine 1, so over all pairs the correlation exists and is
    whatever that one pair gives it (spearman_all)."""
    from scipy.stats import spearmanr

    from deepnotes.text.vectorize import cosine_similarity, one_hot

    scores = [float(s) for s in scores]
    vocab = sorted(set(words))
    m = one_hot(vocab, list(vocabulary))
    cos = cosine_similarity(m)
    off = cos[~np.eye(len(vocab), dtype=bool)]
    index = {w: i for i, w in enumerate(vocab)}
    kept = [(a, b, s) for (a, b), s in zip(pairs, scores or [0.0] * len(pairs)) if a in index and b in index]
    distinct = [float(cos[index[a], index[b]]) for a, b, _ in kept if a != b]
    same = [(a, float(cos[index[a], index[b]])) for a, b, _ in kept if a == b]
    every = [float(cos[index[a], index[b]]) for a, b, _ in kept]
    rho = None
    if scores and len(set(every)) > 1:
        rho = rounded(float(spearmanr(every, [s for _, _, s in kept]).statistic))
    return {
        "kind": "identity (a math fact, checked numerically)",
        "words": len(vocab),
        "dimensions": int(m.shape[1]),
        "max_abs_off_diagonal_cosine": float(np.abs(off).max()) if len(off) else 0.0,
        "diagonal": float(np.diag(cos).min()),
        "wordsim_pairs": len(kept),
        "distinct_word_pairs": len(distinct),
        "distinct_pair_cosines": sorted({round(c, 12) for c in distinct}),
        "spearman": None,  # over the pairs of distinct words: undefined, a constant has no ranks
        "same_word_pairs": [[w, c] for w, c in same],
        "spearman_all": rho,  # over every pair, the same-word ones included: defined by those alone
    }


def benchmark_scores(t: Trained, benchmarks: dict) -> dict:
    from deepnotes.metrics.wordvec import word_similarity

    out = {}
    for key, name in (("wordsim", "wordsim353"), ("simlex", "simlex999")):
        if name in benchmarks:
            p = benchmarks[name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = word_similarity(t.vectors, t.index, p.pairs, p.scores)
            out[key] = {"spearman": float(r["spearman"]) if np.isfinite(r["spearman"]) else None, "pairs": r["pairs"]}
    return out


def summarize_benchmarks(runs: list[dict]) -> dict:
    """Per benchmark: the seeds' Spearman correlations, their mean, the Fisher interval over pairs
    around the mean and the t-interval over seeds; judged if >= MIN_PAIRS pairs."""
    out = {}
    for key in ("wordsim", "simlex"):
        vals = [r[key]["spearman"] for r in runs if key in r and r[key]["spearman"] is not None]
        if not vals:
            continue
        pairs = runs[0][key]["pairs"]
        mean = float(np.mean(vals))
        out[key] = {"runs": [rounded(v) for v in vals], "mean": rounded(mean), "pairs": pairs,
                    "over_pairs": fisher_interval(mean, pairs),
                    "over_seeds": paired_interval(vals, [0.0] * len(vals)) if len(vals) > 1 else None,
                    "judged": pairs >= MIN_PAIRS}  # fmt: skip
    return out


def c39_arm(runs: list[Trained], benchmarks: dict) -> dict:
    """The category AUCs (per seed and per word), the frequency AUC, the benchmarks of some runs of one recipe."""
    t0 = runs[0]
    cats = category_words(t0.index)
    words = [w for ws in cats.values() for w in ws]
    labels = [c for c, ws in cats.items() for _ in ws]
    ids = [t0.index[w] for w in words]
    logc = np.log(t0.counts[ids])
    freq = category_auc(-np.abs(logc[:, None] - logc[None, :]), labels)
    per_seed = []
    for t in runs:
        u = unit(t.vectors[[t.index[w] for w in words]])
        per_seed.append(category_auc(u @ u.T, labels))
    per_word = np.mean(per_seed, 0)
    seeds_auc = [float(a.mean()) for a in per_seed]
    scores = [benchmark_scores(t, benchmarks) for t in runs]
    return {
        "categories": cats,
        "auc": {"runs": [rounded(a) for a in seeds_auc], "mean": rounded(float(per_word.mean()))},
        "frequency_auc": rounded(float(freq.mean())),
        "auc_minus_frequency": {
            "over_words": paired_interval(per_word, freq) | {"over": f"{len(words)} words"},
            "over_seeds": (paired_interval(seeds_auc, [float(freq.mean())] * len(runs)) | {"over": "seeds"}) if len(runs) > 1 else None,
        },
        "per_word": {w: [rounded(float(a), 3), rounded(float(f), 3)] for w, a, f in zip(words, per_word, freq)},
        "benchmarks": summarize_benchmarks(scores),
        "seconds": [rounded(t.seconds, 3) for t in runs],
    }


def judge_c39(numbers: dict) -> tuple[str, str]:
    """Holds if (1) the one-hot identity checks (distinct words at cosine exactly 0, every WordSim pair
    at 0, so no rank correlation), (2) the trained vectors' category AUC exceeds the frequency AUC
    (every 95% interval of the difference, over words and over seeds, above 0) and (3) every
    benchmark with >= 200 pairs in the vocabulary has a Spearman correlation above 0 (the Fisher
    interval over pairs and the t-interval over seeds). Holds with a correction if (1) and (2) hold
    and some judged benchmark is not above 0 (e.g. SimLex-999, which scores similarity proper, not
    relatedness). Does not hold if (1) or (2) fails (e.g. vectors from a corpus whose contexts are
    shuffled: they know each word's frequency and nothing else)."""
    n = numbers
    ident, arm = n["identity"], n["vectors"]
    identity = ident["max_abs_off_diagonal_cosine"] == 0 and ident["diagonal"] == 1 and ident["distinct_pair_cosines"] in ([], [0.0])
    d = arm["auc_minus_frequency"]
    categories = all(above(iv) for iv in (d["over_words"], d["over_seeds"]) if iv is not None)
    bench = arm["benchmarks"]
    judged = {k: b for k, b in bench.items() if b["judged"]}
    failed = [k for k, b in judged.items() if not (above(b["over_pairs"]) and (b["over_seeds"] is None or above(b["over_seeds"])))]
    names = {"wordsim": "WordSim-353", "simlex": "SimLex-999"}
    seeds = len(n["seeds"])
    parts = [f"{names[k]} {b['mean']:+.3f} {_iv(b['over_pairs'])} over {b['pairs']} pairs"
             + (f", {_iv(b['over_seeds'])} over seeds" if b["over_seeds"] else "") + ("" if b["judged"] else " (too few pairs: not judged)")
             for k, b in bench.items()]  # fmt: skip
    control = ""
    if n.get("control"):
        c = n["control"]
        cb = "; ".join(f"{names[k]} {b['mean']:+.3f}" for k, b in c["benchmarks"].items())
        control = (f" The same recipe on the same tokens shuffled across the corpus (context random, 1 seed): category AUC "
                   f"{c['auc']['mean']:.3f}{'; ' + cb if cb else ''}.")  # fmt: skip
    summary = (
        f"{n['data']}{' with its tokens shuffled across the corpus' if n['context'] == 'shuffled' else ''} ({n['tokens']:,} tokens, "
        f"vocabulary {n['vocabulary']:,}), Word2Vec skip-gram (the centre word predicts its context words, E41) dim "
        f"{n['recipe']['dim']}, {n['recipe']['epochs']} epochs, {seeds} "
        f"seed{'s' if seeds != 1 else ''}. (1) identity: one-hot vectors (E27: one-hot, not \"one-shot\") in {ident['dimensions']:,} "
        f"dimensions (one per vocabulary word), checked on the {ident['words']} words of the WordSim-353 pairs: largest cosine between "
        f"distinct words {ident['max_abs_off_diagonal_cosine']:g}; all {ident['distinct_word_pairs']} WordSim-353 pairs of two "
        f"distinct words at cosine 0, so their rank correlation with the human scores does not exist"
        + (f" (with the {len(ident['same_word_pairs'])} pair(s) of a word with itself, "
           f"{', '.join(w + '-' + w for w, _ in ident['same_word_pairs'])}, at cosine 1, Spearman over all "
           f"{ident['wordsim_pairs']} pairs is {ident['spearman_all']:+.3f}: that pair's doing)" if ident["same_word_pairs"]
           and ident["spearman_all"] is not None else "")
        + f"; the trained vectors are dense and {n['recipe']['dim']}-dimensional (E37). (2) words of {len(arm['categories'])} categories "
        f"({', '.join(f'{c} {len(w)}' for c, w in arm['categories'].items())}): AUC of own-category against other-category cosines "
        f"{arm['auc']['mean']:.3f} (1/2: no structure), frequency alone {arm['frequency_auc']:.3f}; difference "
        f"{d['over_words']['mean']:+.3f} {_iv(d['over_words'])} over words"
        + (f", {_iv(d['over_seeds'])} over seeds" if d["over_seeds"] else "")
        + f". (3) {'; '.join(parts) if parts else 'no benchmark found'}.{control}"
    )
    if not identity:
        return "does not hold", f"the one-hot identity fails: {summary}"
    if not categories:
        return "does not hold", (f"the vectors do not put a category's words closer than frequency alone does (the claim's mechanism, "
                                 f"context, is missing or too weak): {summary}")  # fmt: skip
    if failed:
        return "holds with a correction", (f"similar words get similar vectors by the categories, but {' and '.join(names[k] for k in failed)} "
                                           f"is not above 0 (SimLex-999 scores similarity proper; co-occurrence vectors reflect relatedness "
                                           f"first): {summary}")  # fmt: skip
    return "holds", summary


def _pca_panel(ax, t: Trained, groups: dict[str, list[str]], title: str) -> None:
    from sklearn.decomposition import PCA

    words = [w for ws in groups.values() for w in ws]
    if len(words) < 3:
        ax.text(0.5, 0.5, "too few group words in the vocabulary", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    xy = PCA(n_components=2, random_state=0).fit_transform(unit(t.vectors[[t.index[w] for w in words]]))
    k = 0
    for j, (g, ws) in enumerate(groups.items()):
        pts = xy[k : k + len(ws)]
        ax.scatter(pts[:, 0], pts[:, 1], s=16, color=f"C{j}", label=g)
        for (px, py), w in zip(pts, ws):
            ax.annotate(w, (px, py), fontsize=7, xytext=(2, 2), textcoords="offset points", color=f"C{j}")
        k += len(ws)
    ax.set(xlabel="PC 1", ylabel="PC 2", title=title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _neighbour_table(ax, tables: list[tuple[str, dict[str, list]]]) -> None:
    ax.axis("off")
    lines = []
    for title, table in tables:
        lines.append(title)
        for w, ns in table.items():
            lines.append(f"  {w:<9} " + ", ".join(f"{n} {s:.3f}" for n, s in ns[:6]))
        lines.append("")
    ax.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=7, va="top", transform=ax.transAxes)


def neighbours(t: Trained, words: Sequence[str], k: int = 8) -> dict[str, list]:
    from deepnotes.metrics.wordvec import nearest

    return {w: [[n, rounded(s, 3)] for n, s in nearest(t.vectors, t.index, t.words, w, k=k)] for w in words if w in t.index}


@experiment("C39", quick_verdict="holds", opposite={"context": "shuffled"})
def run_c39(ctx: Context, context: str = "text", corpus: str | None = None, seeds: int | None = None, epochs: int | None = None) -> Finding:
    """One-hot identity; Word2Vec skip-gram on the corpus (quick: gettext-en, dim 32, 5 epochs, 1 seed;
    full: Brown, dim 100, 5 epochs, 3 seeds) and, as a control, on its tokens shuffled across the
    corpus (1 seed). context="shuffled" trains the judged vectors on the shuffled corpus (the
    opposite evidence)."""
    from deepnotes.tasks.word_vectors import load_benchmarks

    if context not in CONTEXTS:
        raise UserError(f"context is 'text' (the corpus as written) or 'shuffled' (its tokens shuffled across the corpus), got {context!r}")
    data = lab_corpus(corpus, ctx.quick)
    default_epochs, args, default_seeds = recipe(ctx, "word2vec")
    epochs, seeds = epochs or default_epochs, seeds or default_seeds
    benchmarks, notes = load_benchmarks()
    shuffled = shuffled_corpus(data, ctx.seed)
    judged = shuffled if context == "shuffled" else data
    runs = [train_vectors("word2vec", judged, epochs=epochs, seed=ctx.seed + s, model_args=args, log=ctx.log) for s in range(seeds)]
    control = None
    if context == "text":
        control = train_vectors("word2vec", shuffled, epochs=epochs, seed=ctx.seed, model_args=args, log=ctx.log)
    arm = c39_arm(runs, benchmarks)
    pairs = benchmarks["wordsim353"].pairs if "wordsim353" in benchmarks else []
    scores = benchmarks["wordsim353"].scores if "wordsim353" in benchmarks else []
    ident = one_hot_identity([w for p in pairs for w in p if w in runs[0].index], list(runs[0].index), pairs, scores)
    chosen = [w for w in NEIGHBOUR_WORDS if w in runs[0].index][:8]
    numbers = {
        "data": data.name,
        "context": context,
        "tokens": int(sum(map(len, data.sentences))),
        "vocabulary": len(runs[0].index),
        "recipe": {"model": "word2vec (skip-gram, negative sampling)", "epochs": epochs, **args, "window": 5, "negative": 5,
                   "sample": 1e-3, "optimizer": "sgd", "lr": 0.025, "schedule": "linear", "batch_size": 1024, "threads": 1},
        "seeds": [ctx.seed + s for s in range(seeds)],
        "identity": ident,
        "vectors": arm,
        "control": c39_arm([control], benchmarks) if control is not None else None,
        "neighbours": neighbours(runs[0], chosen),
        "control_neighbours": neighbours(control, chosen) if control is not None else None,
        "notes": notes,
    }  # fmt: skip

    groups = {g: arm["categories"][g] for g in PCA_GROUPS if g in arm["categories"]}
    for g, ws in arm["categories"].items():  # fill up to four groups from the others
        if len(groups) >= 4:
            break
        groups.setdefault(g, ws)
    panels = [(runs[0], f"{'shuffled context' if context == 'shuffled' else 'the corpus'} (seed {ctx.seed})")]
    if control is not None:
        panels.append((control, f"tokens shuffled across the corpus (seed {ctx.seed})"))
    fig, axes = new_figure(len(panels), 1, size=(5.4, 4.6))
    for ax, (t, title) in zip(axes[0], panels):
        _pca_panel(ax, t, groups, title)
    fig.suptitle(f"{data.name}: Word2Vec vectors of word groups, first two principal components", fontsize=10)
    pca = save_figure(fig, ctx.figure_path("word_groups_pca"))

    fig, axes = new_figure(3, 1, size=(4.6, 3.8))
    ax = axes[0, 0]
    arms = [("frequency\nalone", None, "C7"), ("Word2Vec", arm, "C0")] + ([("shuffled\ncontext", numbers["control"], "C3")] if control else [])
    for k, (label, a, colour) in enumerate(arms):
        if a is None:
            vals = [v[1] for v in arm["per_word"].values()]
        else:
            vals = [v[0] for v in a["per_word"].values()]
        ax.scatter(k + np.random.default_rng(k).uniform(-0.15, 0.15, len(vals)), vals, s=6, color=colour, alpha=0.5)
        ax.errorbar(k, float(np.mean(vals)), yerr=1.96 * float(np.std(vals, ddof=1)) / np.sqrt(len(vals)), fmt="o", color="black", capsize=4)
    ax.axhline(0.5, ls=":", color="grey", label="1/2: no structure")
    ax.set_xticks(range(len(arms)), [a[0] for a in arms], fontsize=8)
    ax.set(ylabel="AUC: own category vs others", title="category words (dots: words)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    ax = axes[0, 1]
    if "wordsim353" in benchmarks:
        p = benchmarks["wordsim353"]
        for t, label, colour in [(runs[0], "Word2Vec", "C0")] + ([(control, "shuffled context", "C3")] if control else []):
            keep = [(t.index[a], t.index[b], s) for (a, b), s in zip(p.pairs, p.scores) if a in t.index and b in t.index]
            if keep:
                i, j, s = map(np.array, zip(*keep))
                u = unit(t.vectors)
                ax.scatter(s, (u[i] * u[j]).sum(1), s=8, alpha=0.6, color=colour, label=label)
        ax.set(xlabel="human score (WordSim-353)", ylabel="cosine", title="WordSim-353 pairs in the vocabulary")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    ax = axes[0, 2]
    names = {"wordsim": "WordSim-353", "simlex": "SimLex-999"}
    x = 0
    ticks = []
    for key in ("wordsim", "simlex"):
        for label, a, colour in [("Word2Vec", arm, "C0")] + ([("shuffled", numbers["control"], "C3")] if control else []):
            b = a["benchmarks"].get(key)
            if b is None:
                continue
            lo, hi = b["over_pairs"]["low"], b["over_pairs"]["high"]
            ax.bar(x, b["mean"], color=colour, alpha=0.8)
            if lo is not None:
                ax.errorbar(x, b["mean"], yerr=[[b["mean"] - lo], [hi - b["mean"]]], color="black", capsize=3)
            ax.scatter([x] * len(b["runs"]), b["runs"], color="black", s=8, zorder=3)
            ticks.append((x, f"{names[key]}\n{label}\n{b['pairs']} pairs"))
            x += 1
        x += 0.5
    ax.text(0.98, 0.98, "one-hot: undefined\n(distinct words: cosine 0)", fontsize=7, va="top", ha="right", transform=ax.transAxes)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks], fontsize=6)
    ax.set(ylabel="Spearman (95% Fisher interval over pairs)", title="human similarity benchmarks")
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{data.name}: do similar words get similar vectors?", fontsize=10)
    similarity = save_figure(fig, ctx.figure_path("similarity"))

    fig, axes = new_figure(1, 1, size=(11.0, 0.14 * (len(chosen) + 2) * (2 if control else 1) + 0.4))
    tables = [(f"nearest neighbours (cosine), Word2Vec on {judged.name}, seed {ctx.seed}", numbers["neighbours"])]
    if control is not None:
        tables.append((f"the same recipe on {shuffled.name}", numbers["control_neighbours"]))
    _neighbour_table(axes[0, 0], tables)
    table = save_figure(fig, ctx.figure_path("neighbours"))
    verdict, reason = judge_c39(numbers)
    return Finding(numbers, [pca, similarity, table], verdict, reason)


# ============================================================================ C40

E43_PLAYING = ["<pl", "pla", "lay", "ayi", "yin", "ing", "ng>"]  # ERRATA E43's 3-grams of "playing"
MISSPELLINGS = (("goverment", "government"), ("beautifull", "beautiful"), ("recieve", "receive"), ("seperate", "separate"),
                ("definately", "definitely"), ("occured", "occurred"), ("untill", "until"), ("wich", "which"),
                ("becuase", "because"), ("begining", "beginning"), ("beleive", "believe"), ("existance", "existence"),
                ("neccessary", "necessary"), ("writting", "writing"), ("arguement", "argument"), ("sucess", "success"),
                ("freind", "friend"), ("buisness", "business"), ("adress", "address"), ("pasword", "password"),
                ("directroy", "directory"), ("mesage", "message"), ("defualt", "default"), ("comand", "command"),
                ("folowing", "following"), ("unkown", "unknown"), ("availble", "available"), ("libary", "library"))  # fmt: skip
HELD_OUT = (50, 200)  # held-out words (quick, full)
HELD_OUT_COUNTS = (10, 100)  # how often a held-out word occurs in the corpus
HELD_OUT_MIN_LENGTH = 6
SHOWN = 10  # held-out words shown with their neighbours


def e43_identity() -> dict:
    """FastText's n-grams of "playing" (deepnotes.text.subwords, gensim's) against ERRATA E43."""
    from deepnotes.text.subwords import char_ngrams, hashed_ngrams

    three = char_ngrams("playing", 3, 3)
    return {
        "kind": "identity (a definition, checked against ERRATA E43)",
        "playing_3grams": three,
        "errata_3grams": E43_PLAYING,
        "equal": three == E43_PLAYING,
        "playing_3_to_6grams": len(hashed_ngrams("playing", 3, 6)),
        "cat_3_to_6grams": hashed_ngrams("cat", 3, 6),  # a short word: "<cat>" itself is one of its n-grams
        "whole_word": "an in-vocabulary word also has a row of its own (fastText's word id); an unseen word has only its n-grams",
    }


def held_out_words(corpus: Corpus, n: int, seed: int) -> list[str]:
    """A seeded sample of n words of letters only, >= HELD_OUT_MIN_LENGTH characters, seen
    HELD_OUT_COUNTS times in the corpus (fewer if fewer qualify)."""
    from collections import Counter

    counts = Counter(t for s in corpus.sentences for t in s)
    lo, hi = HELD_OUT_COUNTS
    pool = sorted(w for w, c in counts.items() if lo <= c <= hi and w.isalpha() and len(w) >= HELD_OUT_MIN_LENGTH)
    if len(pool) < 10:
        raise DataError(f"{corpus.name} has {len(pool)} words of >= {HELD_OUT_MIN_LENGTH} letters seen {lo}-{hi} times; C40 needs 10")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(pool, min(n, len(pool)), replace=False).tolist())


def has_relative(word: str, vocabulary) -> bool:
    """Whether another vocabulary word starts with the word's first max(5, len - 3) letters (an
    inflection or derivation: configured -> configure, addresses -> address)."""
    stem = word[: max(5, len(word) - 3)]
    return any(v != word and v.startswith(stem) for v in vocabulary)


def oov_against_in_vocabulary(out: Trained, kept: Trained, words: Sequence[str]) -> dict:
    """Align the held-out run's space onto the whole-corpus run's (orthogonal Procrustes on the unit
    vectors of the words both know, `words` excluded); per held-out word: the cosine of its mapped
    OOV vector with its own in-vocabulary vector, the mean cosine with the other held-out words',
    and the rank of its own vector among the whole vocabulary (1 = nearest)."""
    from scipy.linalg import orthogonal_procrustes

    skip = set(words)
    shared = [w for w in out.index if w in kept.index and w not in skip]
    a = unit(out.vectors[[out.index[w] for w in shared]])
    b = unit(kept.vectors[[kept.index[w] for w in shared]])
    rot, _ = orthogonal_procrustes(a, b)
    raw = np.stack([out.model.oov_vector(w).numpy() for w in words])
    oov = unit(raw) @ rot
    own = unit(kept.vectors[[kept.index[w] for w in words]])
    s = oov @ own.T
    true = np.diag(s).copy()
    other = (s.sum(1) - true) / (len(words) - 1)
    everything = oov @ unit(kept.vectors).T
    rank = np.array([tie_rank(everything[k], kept.index[w]) for k, w in enumerate(words)])
    return {"true": true, "other": other, "rank": rank, "aligned_in_vocabulary": float(((a @ rot) * b).sum(1).mean()),
            "shared_words": len(shared), "zero_vectors": int((np.abs(raw).sum(1) == 0).sum())}  # fmt: skip


def misspelling_ranks(kept: Trained) -> list[dict]:
    """For each misspelling outside the vocabulary whose intended word is in it: the intended word's
    rank among the neighbours of the misspelling's n-gram vector, and the 5 nearest words."""
    from deepnotes.metrics.wordvec import nearest

    u = unit(kept.vectors)
    out = []
    for bad, good in MISSPELLINGS:
        if good not in kept.index or bad in kept.index:
            continue
        q = kept.model.oov_vector(bad).numpy()
        s = u @ unit(q)
        rank = tie_rank(s, kept.index[good])
        out.append({"word": bad, "intended": good, "rank": rank,
                    "nearest": [[n, rounded(v, 3)] for n, v in nearest(kept.vectors, kept.index, kept.words, q, k=5)]})  # fmt: skip
    return out


def judge_c40(numbers: dict) -> tuple[str, str]:
    """Holds if (1) the n-grams of "playing" are ERRATA E43's and (2) the vectors FastText builds for
    held-out words from their n-grams point to those words: cos(OOV vector, own in-vocabulary
    vector) - mean cos(OOV vector, other held-out words' vectors), after aligning the two runs'
    spaces, has every 95% interval (over words; over seeds with 2+ seeds) above 0. Does not hold
    otherwise (e.g. with min_n = max_n = 40 no word has n-grams, every unseen word gets the zero
    vector and the difference is 0). Misspellings are reported, not judged."""
    n = numbers
    ident, o, w2v = n["identity"], n["oov"], n["word2vec"]
    d = o["true_minus_other"]
    identity = ident["equal"] and w2v["no_vector"] == w2v["asked"]
    works = all(above(iv) for iv in (d["over_words"], d["over_seeds"]) if iv is not None)
    miss = n["misspellings"]
    top = sum(m["rank"] <= 10 for m in miss)
    rel = o["by_relative"]
    summary = (
        f"{n['data']}, FastText dim {n['recipe']['dim']}, n-grams {n['recipe']['min_n']}-{n['recipe']['max_n']} in "
        f"{n['recipe']['buckets']:,} buckets, {n['recipe']['epochs']} epochs, {len(n['seeds'])} seed{'s' if len(n['seeds']) != 1 else ''}. (1) E43: \"playing\" gives "
        f"{', '.join(ident['playing_3grams'])} ({'as' if identity else 'NOT as'} the errata say; {ident['playing_3_to_6grams']} n-grams "
        f"of 3-6 characters). (2) {len(n['held_out']['words'])} words held out ({n['held_out']['tokens_removed']:,} tokens deleted, "
        f"seen {n['held_out']['count_band'][0]}-{n['held_out']['count_band'][1]} times each): a Word2Vec table of the same vocabulary "
        f"has no vector for {w2v['no_vector']} of the {w2v['asked']} held-out words and misspellings (\"{w2v['error'][:50]}...\"); FastText's n-gram vector, mapped onto the whole-corpus run (aligned in-vocabulary vectors "
        f"agree at cosine {o['aligned_in_vocabulary']:.3f}), has cosine {o['true_cosine']:.3f} with the word's own vector against "
        f"{o['other_cosine']:.3f} with the other held-out words': difference {d['over_words']['mean']:+.3f} {_iv(d['over_words'])} "
        f"over words" + (f", {_iv(d['over_seeds'])} over seeds" if d["over_seeds"] else "")
        + f"; the word's own vector ranks {o['rank']['median']:g} (median) of {o['rank']['vocabulary']:,}, in the top 10 for "
        f"{o['rank']['top10_share']:.0%} ({rel['with']['words']} words with a relative in the vocabulary, e.g. an inflection: "
        f"difference {rel['with']['mean']:+.3f}; {rel['without']['words']} without: {rel['without']['mean']:+.3f}). "
        + (f"{o['zero_vectors']} of the held-out words have no n-gram at all and get the zero vector. " if o["zero_vectors"] else "")
        + f"(3) misspellings: the intended word is in the top 10 for {top} of {len(miss)}"
        + (" (" + ", ".join(f"{m['word']} -> {m['intended']} #{m['rank']:g}" for m in miss[:6]) + ")" if miss else "")
    )
    if identity and works:
        return "holds", summary
    what = []
    if not identity:
        what.append("the n-grams of \"playing\" are not E43's")
    if not works:
        what.append("the vectors built for unseen words do not point to them (no better than another held-out word's)")
    return "does not hold", "; ".join(what) + ": " + summary


@experiment("C40", quick_verdict="holds", opposite={"min_n": 40, "max_n": 40})
def run_c40(ctx: Context, buckets: int = 200_000, min_n: int = 3, max_n: int = 6, corpus: str | None = None,
            held_out: int | None = None, seeds: int | None = None, epochs: int | None = None) -> Finding:  # fmt: skip
    """FastText on the corpus and on the corpus without the held-out words (quick: gettext-en, dim 32,
    3 epochs, 50 words, 1 seed; full: Brown, dim 100, 3 epochs, 200 words, 3 seeds). min_n = max_n =
    40 (n-grams longer than any word: none; FastText is then Word2Vec, and an unseen word gets the
    zero vector) is the opposite evidence."""
    from deepnotes.models import create_model
    from deepnotes.tasks.word_vectors import vector_of

    data = lab_corpus(corpus, ctx.quick)
    default_epochs, args, default_seeds = recipe(ctx, "fasttext", buckets=buckets, min_n=min_n, max_n=max_n)
    epochs, seeds = epochs or default_epochs, seeds or default_seeds
    words = held_out_words(data, held_out or HELD_OUT[0 if ctx.quick else 1], ctx.seed)  # seen >= 10 times: in the vocabulary
    reduced = without_words(data, words)
    kept_runs, out_runs, per_seed = [], [], []
    for s in range(seeds):
        kept = train_vectors("fasttext", data, epochs=epochs, seed=ctx.seed + s, model_args=args, log=ctx.log)
        out = train_vectors("fasttext", reduced, epochs=epochs, seed=ctx.seed + s, model_args=args, log=ctx.log)
        unseen = [w for w in words if w in out.index]
        if unseen:
            raise RuntimeError(f"held-out words in the held-out run's vocabulary: {unseen[:5]}")
        kept_runs.append(kept)
        out_runs.append(out)
        per_seed.append(oov_against_in_vocabulary(out, kept, words))
    true = np.mean([p["true"] for p in per_seed], 0)
    other = np.mean([p["other"] for p in per_seed], 0)
    rank = np.median([p["rank"] for p in per_seed], 0)
    relative = np.array([has_relative(w, out_runs[0].index) for w in words])
    # Word2Vec's table has one row per vocabulary word: ask it for the held-out words and the misspellings
    w2v = create_model("word2vec", vocab_size=len(out_runs[0].words), num_classes=len(out_runs[0].words), dim=args["dim"])
    asked = words + [m for m, _ in MISSPELLINGS if m not in out_runs[0].index]
    errors = []
    for w in asked:
        try:
            vector_of(w2v, out_runs[0].index, w)
        except UserError as e:
            errors.append(str(e))
    d = true - other
    seeds_d = [float((p["true"] - p["other"]).mean()) for p in per_seed]
    numbers = {
        "data": data.name,
        "tokens": int(sum(map(len, data.sentences))),
        "recipe": {"model": "fasttext (skip-gram, negative sampling)", "epochs": epochs, **args, "window": 5, "negative": 5, "sample": 1e-3,
                   "optimizer": "sgd", "lr": 0.025, "schedule": "linear", "batch_size": 1024, "threads": 1},
        "seeds": [ctx.seed + s for s in range(seeds)],
        "identity": e43_identity(),
        "held_out": {"words": words, "count_band": list(HELD_OUT_COUNTS), "min_length": HELD_OUT_MIN_LENGTH,
                     "tokens_removed": int(sum(map(len, data.sentences)) - sum(map(len, reduced.sentences))),
                     "with_relative": int(relative.sum())},
        "word2vec": {"kind": "identity (one row per vocabulary word)", "asked": len(asked), "no_vector": len(errors),
                     "error": errors[0] if errors else ""},
        "oov": {
            "true_cosine": rounded(float(true.mean())),
            "other_cosine": rounded(float(other.mean())),
            "aligned_in_vocabulary": rounded(float(np.mean([p["aligned_in_vocabulary"] for p in per_seed]))),
            "zero_vectors": max(p["zero_vectors"] for p in per_seed),
            "true_minus_other": {"over_words": paired_interval(true, other) | {"over": f"{len(words)} words"},
                                 "over_seeds": (paired_interval(seeds_d, [0.0] * seeds) | {"over": "seeds"}) if seeds > 1 else None},
            "rank": {"median": float(np.median(rank)), "top10_share": rounded(float((rank <= 10).mean())), "vocabulary": len(kept_runs[0].index)},
            "by_relative": {k: {"words": int(m.sum()), "mean": rounded(float(d[m].mean())) if m.any() else None}
                            for k, m in (("with", relative), ("without", ~relative))},
            "per_word": {w: [rounded(float(a), 3), rounded(float(b), 3), float(r)] for w, a, b, r in zip(words, true, other, rank)},
        },
        "misspellings": misspelling_ranks(kept_runs[0]),
        "seconds": {"whole_corpus": [rounded(t.seconds, 3) for t in kept_runs], "held_out": [rounded(t.seconds, 3) for t in out_runs]},
    }  # fmt: skip
    shown = [w for w in words if has_relative(w, out_runs[0].index)][: SHOWN // 2]
    shown += [w for w in words if w not in shown][: SHOWN - len(shown)]
    from deepnotes.metrics.wordvec import nearest

    numbers["examples"] = {w: [[n, rounded(s, 3)] for n, s in nearest(out_runs[0].vectors, out_runs[0].index, out_runs[0].words,
                                                                         out_runs[0].model.oov_vector(w), k=6)] for w in shown}  # fmt: skip

    fig, axes = new_figure(3, 1, size=(4.6, 3.8))
    ax = axes[0, 0]
    ax.hist(d, bins=30, color="C0", alpha=0.8)
    ax.axvline(0, color="grey", ls=":")
    ax.set(xlabel="cos(OOV, own) - mean cos(OOV, other held-out)", ylabel="held-out words", title="does the n-gram vector point to the word?")
    ax.grid(alpha=0.3)
    ax = axes[0, 1]
    v = len(kept_runs[0].index)
    r = np.sort(rank)
    ax.plot(r, np.arange(1, len(r) + 1) / len(r), color="C0", label="FastText OOV vector")
    grid = np.logspace(0, np.log10(v), 50)
    ax.plot(grid, grid / v, color="grey", ls=":", label="no information (uniform rank)")
    ax.set(xscale="log", xlabel="rank of the word's own vector among the vocabulary", ylabel="share of held-out words",
           title="rank of the true word (1 = nearest)")  # fmt: skip
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[0, 2]
    o = numbers["oov"]
    bars = [("aligned\nin-vocabulary\n(ceiling)", o["aligned_in_vocabulary"], "C2"), ("OOV vs\nown word", o["true_cosine"], "C0"),
            ("OOV vs other\nheld-out words", o["other_cosine"], "C7")]  # fmt: skip
    for k, (label, value, colour) in enumerate(bars):
        ax.bar(k, value, color=colour, alpha=0.8)
        ax.text(k, value, f"{value:.3f}", ha="center", va="bottom", fontsize=8)
    lo = min(b[1] for b in bars)
    ax.set_ylim(max(-1.0, lo - 0.1 * (1.0 - lo) - 0.05), 1.0)
    ax.set_xticks(range(3), [b[0] for b in bars], fontsize=7)
    ax.set(ylabel="mean cosine (aligned spaces)", title="OOV vectors against in-vocabulary vectors")
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{data.name}: FastText vectors for {len(words)} words never seen in training (n-grams {min_n}-{max_n}, "
                 f"{buckets:,} buckets)", fontsize=10)  # fmt: skip
    oov_fig = save_figure(fig, ctx.figure_path("oov_vs_in_vocabulary"))

    fig, axes = new_figure(1, 1, size=(11.0, 0.14 * (len(shown) + len(numbers["misspellings"]) + 4) + 0.4))
    ax = axes[0, 0]
    ax.axis("off")
    lines = [f"held-out words: nearest words to the n-gram vector (run without them, seed {ctx.seed})"]
    for w, ns in numbers["examples"].items():
        lines.append(f"  {w:<14}{'(relative in vocabulary) ' if has_relative(w, out_runs[0].index) else '':<25}"
                     + ", ".join(f"{n} {s:.3f}" for n, s in ns))  # fmt: skip
    lines += ["", f"misspellings: nearest words to the n-gram vector (whole-corpus run, seed {ctx.seed}); # = rank of the intended word"]
    for m in numbers["misspellings"]:
        lines.append(f"  {m['word']:<12} -> {m['intended']:<12} {'#' + format(m['rank'], 'g'):<8}"
                     + ", ".join(f"{n} {s:.3f}" for n, s in m["nearest"]))  # fmt: skip
    ax.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=7, va="top", transform=ax.transAxes)
    table = save_figure(fig, ctx.figure_path("neighbours"))
    verdict, reason = judge_c40(numbers)
    return Finding(numbers, [oov_fig, table], verdict, reason)


# ============================================================================ C58

PPMI_WINDOW = 5  # Word2Vec's window
PPMI_SMOOTHING = 0.75  # context counts raised to 0.75 (Levy, Goldberg & Dagan 2015), as Word2Vec's noise distribution
KING = ("man", "king", "woman", "queen")  # the notes' example, as a : b :: c : d
SHORT = {"capital-common-countries": "capital (common)", "capital-world": "capital (world)", "city-in-state": "city in state",
         "gram1-adjective-to-adverb": "adjective > adverb", "gram2-opposite": "opposite", "gram3-comparative": "comparative",
         "gram4-superlative": "superlative", "gram5-present-participle": "present participle",
         "gram6-nationality-adjective": "nationality", "gram7-past-tense": "past tense", "gram8-plural": "plural",
         "gram9-plural-verbs": "plural verbs", "semantic": "SEMANTIC", "syntactic": "SYNTACTIC", "all": "ALL"}  # fmt: skip


def ppmi_svd(corpus: Corpus, index: dict[str, int], size: int, dim: int, window: int = PPMI_WINDOW) -> np.ndarray:
    """Count vectors of the vocabulary `index` (rows `size`): the symmetric co-occurrence counts in
    `window` (1/d weights, deepnotes.text.cooccurrence), positive PMI with context counts raised to
    0.75, truncated SVD to `dim`, rows U sqrt(S)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import svds

    from deepnotes.text.cooccurrence import cooccurrence

    ids, starts = [], []
    for s in corpus.sentences:
        row = [index[t] for t in s if t in index]
        if row:
            starts.append(len(ids))
            ids += row
    x = cooccurrence((np.asarray(ids, dtype=np.int64), np.asarray(starts, dtype=np.int64)), size, window=window).tocsr()
    total = x.sum()
    rows = np.asarray(x.sum(1)).ravel()
    context = np.asarray(x.sum(0)).ravel() ** PPMI_SMOOTHING
    context /= context.sum()
    c = x.tocoo()
    pmi = np.log(c.data / total) - np.log(rows[c.row] / total) - np.log(context[c.col])
    keep = pmi > 0
    m = sp.csr_matrix((pmi[keep], (c.row[keep], c.col[keep])), shape=(size, size))
    u, sv, _ = svds(m, k=dim, random_state=0)
    return u * np.sqrt(sv)


def analogy_ranks(vectors: np.ndarray, index: dict[str, int], questions: Sequence[tuple[str, str, str, str]],
                  batch: int = 512) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """3CosAdd as deepnotes.metrics.wordvec.analogy_accuracy (the answer nearest to b - a + c, unit
    vectors, the three question words excluded): for the questions with all four words in the
    vocabulary, their positions in `questions` and the rank of the right answer (1 = correct)."""
    u = torch.from_numpy(unit(vectors)).float()
    where = [k for k, q in enumerate(questions) if all(w in index for w in q)]
    ranks = []
    for s in range(0, len(where), batch):
        ids = torch.tensor([[index[w] for w in questions[k]] for k in where[s : s + batch]])
        sims = (u[ids[:, 1]] - u[ids[:, 0]] + u[ids[:, 2]]) @ u.T
        sims.scatter_(1, ids[:, :3], float("-inf"))
        target = sims.gather(1, ids[:, 3:4])
        ranks.append(((sims > target).sum(1).double() + ((sims == target).sum(1).double() + 1.0) / 2.0).numpy())
    return np.asarray(where, dtype=np.int64), (np.concatenate(ranks) if ranks else np.zeros(0))


def semantic(section: str) -> bool:
    return not section.startswith("gram")


def analogy_arm(runs: list[np.ndarray], index: dict[str, int], analogies, chance: float) -> dict:
    """Accuracy (overall, semantic, syntactic, per section) of vector sets (one per seed), with the
    exact binomial interval over questions (the seeds' mean count) and the t-interval over seeds of
    accuracy - chance; the median rank of the right answer and the share in the top 10."""
    sections = [analogies.sections[i] for i in analogies.section_of]
    per_seed = [analogy_ranks(v, index, analogies.questions) for v in runs]
    where = per_seed[0][0]
    names = np.array([sections[k] for k in where])
    sem = np.array([semantic(s) for s in names], dtype=bool)
    hits = np.array([r == 1.0 for _, r in per_seed])  # (seeds, questions); a tie is never a hit

    def part(mask: np.ndarray) -> dict:
        n = int(mask.sum())
        accs = [float(h[mask].mean()) if n else 0.0 for h in hits]
        return {"runs": [rounded(a) for a in accs], "mean": rounded(float(np.mean(accs))), "questions": n,
                "over_questions": exact_interval(round(float(np.mean([h[mask].sum() for h in hits]))), n),
                "over_seeds": (paired_interval(accs, [chance] * len(accs)) | {"over": "seeds", "of": "accuracy - chance"})
                if len(accs) > 1 else None}  # fmt: skip

    ranks = np.median([r for _, r in per_seed], 0)
    return {
        "all": part(np.ones(len(where), dtype=bool)),
        "semantic": part(sem),
        "syntactic": part(~sem),
        "sections": {s: rounded(float(hits[:, names == s].mean())) for s in dict.fromkeys(names)},
        "median_rank": float(np.median(ranks)) if len(ranks) else None,
        "top10_share": rounded(float((ranks <= 10).mean())) if len(ranks) else None,
        "ranks": ranks,
    }


def king_example(vectors: np.ndarray, index: dict[str, int], words: Sequence[str], k: int = 5) -> dict:
    """king - man + woman as `deepnotes embed analogy RUN man king woman` computes it: the k nearest
    words (cosine, the three excluded) and the rank of queen."""
    from deepnotes.metrics.wordvec import nearest

    missing = [w for w in KING if w not in index]
    if missing:
        return {"answers": [], "queen_rank": None, "missing": missing}
    a, b, c, d = (unit(vectors[index[w]]) for w in KING)
    q = b - a + c
    answers = nearest(vectors, index, words, q, k=k, exclude=list(KING[:3]))
    s = unit(vectors) @ unit(q)
    for w in KING[:3]:
        s[index[w]] = -np.inf
    return {"answers": [[n, rounded(v, 3)] for n, v in answers], "queen_rank": tie_rank(s, index["queen"]), "missing": []}


def one_hot_analogies(index: dict[str, int], analogies) -> dict:
    """One-hot vectors of the words of the scored questions: b - a + c has cosine exactly 0 with every
    candidate (a tie), checked on every question."""
    from deepnotes.text.vectorize import one_hot

    qs = [q for q in analogies.questions if all(w in index for w in q)]
    vocab = sorted({w for q in qs for w in q})
    if not qs:
        return {"kind": "identity (a math fact, checked numerically)", "questions": 0, "max_abs_candidate_score": 0.0}
    m = one_hot(vocab, vocab)
    at = {w: i for i, w in enumerate(vocab)}
    worst = 0.0
    for s in range(0, len(qs), 512):
        ids = np.array([[at[w] for w in q] for q in qs[s : s + 512]])
        scores = (m[ids[:, 1]] - m[ids[:, 0]] + m[ids[:, 2]]) @ m.T / np.sqrt(3.0)
        np.put_along_axis(scores, ids[:, :3], 0.0, axis=1)
        worst = max(worst, float(np.abs(scores).max()))
    return {"kind": "identity (a math fact, checked numerically)", "questions": len(qs), "words": len(vocab),
            "max_abs_candidate_score": worst}  # fmt: skip


def judge_c58(numbers: dict) -> tuple[str, str]:
    """On Word2Vec's analogy accuracy. Does not hold if it is not above chance (1/V: the exact
    binomial interval over questions and, with 2+ seeds, the t-interval over seeds of accuracy -
    chance must lie above 0; e.g. vectors from a corpus with its context shuffled). Holds if it is,
    in the semantic and in the syntactic questions separately (their exact intervals above chance),
    and king - man + woman answers queen. Holds with a correction otherwise (analogies above chance,
    but not of both kinds, or not the notes' example)."""
    n = numbers
    m = n["models"]
    w, chance = m["word2vec"], n["chance"]

    def beats(p: dict) -> bool:
        return above(p["over_questions"], chance) and (p["over_seeds"] is None or above(p["over_seeds"]))

    def acc(p: dict) -> str:
        return f"{p['mean']:.1%} {_iv(p['over_questions'], '.1%')} of {p['questions']:,}"

    overall, sem, syn = beats(w["all"]), beats(w["semantic"]), beats(w["syntactic"])
    king = n["king"]["word2vec"]
    queen = bool(king["answers"]) and king["answers"][0][0] == "queen"
    others = "; ".join(f"{label} {m[k]['all']['mean']:.1%} (semantic {m[k]['semantic']['mean']:.1%}, syntactic "
                       f"{m[k]['syntactic']['mean']:.1%})" for k, label in (("fasttext", "FastText"), ("ppmi_svd", "PPMI + SVD count vectors"))
                       if k in m)  # fmt: skip
    kings = "; ".join(f"{label}: " + ", ".join(a[0] for a in n["king"][k]["answers"][:3]) + f" (queen #{n['king'][k]['queen_rank']:g})"
                      for k, label in (("word2vec", "Word2Vec"), ("fasttext", "FastText"), ("ppmi_svd", "PPMI + SVD"))
                      if k in n["king"] and n["king"][k]["answers"])  # fmt: skip
    if not king["answers"]:
        kings = f"{', '.join(king['missing'])} not in the vocabulary"
    control = ""
    if n.get("control"):
        c = n["control"]
        control = " Controls on the corpus with its tokens shuffled (context random, 1 seed): " + "; ".join(
            f"{label} {c[k]['all']['mean']:.1%} (semantic {c[k]['semantic']['mean']:.1%}, syntactic {c[k]['syntactic']['mean']:.1%})"
            for k, label in (("word2vec", "Word2Vec"), ("fasttext", "FastText")) if k in c) + "."  # fmt: skip
        if "fasttext" in c and "fasttext" in m and c["fasttext"]["syntactic"]["mean"] >= 0.5 * m["fasttext"]["syntactic"]["mean"] > 0:
            control += (" FastText keeps most of its syntactic analogies without any context: they come from shared spellings "
                        "(-ing, -er, -s n-grams), not from the distributional signal.")  # fmt: skip
    seeds = len(n["seeds"])
    summary = (
        f"{n['data']}{' with its tokens shuffled across the corpus' if n['context'] == 'shuffled' else ''}, {n['scored']:,} of the "
        f"{n['questions']:,} Google questions have all four words in the vocabulary of {n['vocabulary']:,} (chance {chance:.3%}); "
        f"{seeds} seed{'s' if seeds != 1 else ''}. Word2Vec skip-gram: {acc(w['all'])} (semantic {acc(w['semantic'])}, syntactic "
        f"{acc(w['syntactic'])}; exact 95% intervals over questions)"
        + (f", accuracy - chance {_iv(w['all']['over_seeds'], '+.1%')} over seeds" if w["all"]["over_seeds"] else "")
        + f"; the right answer's median rank {w['median_rank']:g}. {others} (E42: Word2Vec predicts contexts, these count them); one-hot vectors: every candidate scores exactly "
        f"{n['one_hot']['max_abs_candidate_score']:g} on all {n['one_hot']['questions']:,} questions, a tie: chance. "
        f"king - man + woman: {kings}.{control}"
    )
    if not overall:
        return "does not hold", f"Word2Vec's analogy accuracy is not above chance: {summary}"
    if sem and syn and queen:
        return "holds", summary
    what = []
    if not sem:
        what.append("the semantic questions (capitals, currencies, family) are not above chance")
    if not syn:
        what.append("the syntactic questions are not above chance")
    if not queen:
        what.append("the notes' king - man + woman does not answer queen on this corpus"
                    if king["answers"] else f"the notes' example cannot be asked ({', '.join(king['missing'])} not in the vocabulary)")
    return "holds with a correction", f"analogies work above chance, but {'; '.join(what)}: {summary}"


@experiment("C58", quick_verdict="holds with a correction", opposite={"context": "shuffled"})
def run_c58(ctx: Context, context: str = "text", corpus: str | None = None, seeds: int | None = None) -> Finding:
    """Word2Vec (C39's runs) and FastText (C40's whole-corpus runs) against PPMI + SVD and one-hot
    count vectors on the Google analogies, and both on the corpus with its tokens shuffled (1 seed,
    a control). context="shuffled" trains the judged vectors on the shuffled corpus (the opposite
    evidence)."""
    from deepnotes.tasks.word_vectors import load_benchmarks

    if context not in CONTEXTS:
        raise UserError(f"context is 'text' (the corpus as written) or 'shuffled' (its tokens shuffled across the corpus), got {context!r}")
    benchmarks, notes = load_benchmarks()
    if "analogies" not in benchmarks:
        raise DataError("; ".join(notes) or "the Google analogy questions cannot be found")
    analogies = benchmarks["analogies"]
    data = lab_corpus(corpus, ctx.quick)
    shuffled = shuffled_corpus(data, ctx.seed)
    judged = shuffled if context == "shuffled" else data
    w_epochs, w_args, default_seeds = recipe(ctx, "word2vec")
    f_epochs, f_args, _ = recipe(ctx, "fasttext", buckets=200_000, min_n=3, max_n=6)
    seeds = seeds or default_seeds
    w2v = [train_vectors("word2vec", judged, epochs=w_epochs, seed=ctx.seed + s, model_args=w_args, log=ctx.log) for s in range(seeds)]
    ft = [train_vectors("fasttext", judged, epochs=f_epochs, seed=ctx.seed + s, model_args=f_args, log=ctx.log) for s in range(seeds)]
    index, words = w2v[0].index, w2v[0].words
    if any(t.index != index for t in w2v + ft):
        raise RuntimeError("the runs' vocabularies differ (they are built from the same corpus and min_count)")
    start = time.perf_counter()
    counts = ppmi_svd(judged, index, len(words), w_args["dim"])
    ppmi_seconds = time.perf_counter() - start
    chance = 1.0 / (len(index) - 3)
    arms = {"word2vec": analogy_arm([t.vectors for t in w2v], index, analogies, chance),
            "fasttext": analogy_arm([t.vectors for t in ft], index, analogies, chance),
            "ppmi_svd": analogy_arm([counts], index, analogies, chance)}  # fmt: skip
    control, control_ranks = None, {}
    if context == "text":
        cw = train_vectors("word2vec", shuffled, epochs=w_epochs, seed=ctx.seed, model_args=w_args, log=ctx.log)
        cf = train_vectors("fasttext", shuffled, epochs=f_epochs, seed=ctx.seed, model_args=f_args, log=ctx.log)
        control = {k: analogy_arm([t.vectors], t.index, analogies, 1.0 / (len(t.index) - 3)) for k, t in (("word2vec", cw), ("fasttext", cf))}
    from deepnotes.metrics.wordvec import analogy_accuracy

    library = analogy_accuracy(w2v[0].vectors, index, analogies.questions)
    ranks = {k: a.pop("ranks") for k, a in arms.items()}
    if control is not None:
        control_ranks = {f"control_{k}": a.pop("ranks") for k, a in control.items()}
    numbers = {
        "data": data.name,
        "context": context,
        "questions": len(analogies.questions),
        "scored": arms["word2vec"]["all"]["questions"],
        "vocabulary": len(index),
        "chance": rounded(chance),
        "seeds": [ctx.seed + s for s in range(seeds)],
        "recipes": {"word2vec": {"epochs": w_epochs, **w_args}, "fasttext": {"epochs": f_epochs, **f_args},
                    "ppmi_svd": {"window": PPMI_WINDOW, "weights": "1/d", "context_smoothing": PPMI_SMOOTHING, "dim": w_args["dim"],
                                 "rows": "U sqrt(S)", "seconds": rounded(ppmi_seconds, 3)}},
        "models": arms,
        "one_hot": one_hot_analogies(index, analogies),
        "control": control,
        "king": {"word2vec": king_example(w2v[0].vectors, index, words), "fasttext": king_example(ft[0].vectors, index, words),
                 "ppmi_svd": king_example(counts, index, words)},
        "library_check": {"accuracy_here": arms["word2vec"]["all"]["runs"][0], "analogy_accuracy": rounded(library["accuracy"])
                          if library["questions"] else None, "oracle": "deepnotes.metrics.wordvec.analogy_accuracy (= gensim's)"},
        "notes": notes,
    }  # fmt: skip

    fig, axes = new_figure(2, 1, size=(6.2, 4.2))
    ax = axes[0, 0]
    shown = [("ppmi_svd", "PPMI + SVD (counts)", "C7"), ("word2vec", "Word2Vec", "C0"), ("fasttext", "FastText", "C2")]
    if control is not None:
        shown += [("control_word2vec", "Word2Vec, shuffled context", "C3"), ("control_fasttext", "FastText, shuffled context", "C1")]
    table = dict(arms, **{f"control_{k}": a for k, a in (control or {}).items()})
    sections = list(arms["word2vec"]["sections"]) + ["semantic", "syntactic", "all"]
    width = 0.8 / len(shown)
    for j, (key, label, colour) in enumerate(shown):
        a = table[key]
        vals = [a["sections"].get(s, 0.0) for s in sections[:-3]] + [a[p]["mean"] for p in ("semantic", "syntactic", "all")]
        ax.bar(np.arange(len(sections)) + (j - (len(shown) - 1) / 2) * width, vals, width, color=colour, label=label, alpha=0.85)
    ax.axhline(chance, color="black", ls=":", lw=0.8, label=f"chance {chance:.3%}")
    ax.set_xticks(range(len(sections)), [SHORT.get(s, s) for s in sections], fontsize=7, rotation=60, ha="right")
    ax.set(ylabel="3CosAdd accuracy (mean over seeds)", title="Google analogy questions by section")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    ax = axes[0, 1]
    v = len(index)
    curves = dict(ranks, **control_ranks)
    for key, label, colour in shown:
        r = np.sort(curves[key])
        if len(r):
            ax.plot(r, np.arange(1, len(r) + 1) / len(r), color=colour, label=label)
    grid = np.logspace(0, np.log10(v), 50)
    ax.plot(grid, grid / v, color="grey", ls=":", label="no information (uniform)")
    ax.set(xscale="log", xlabel="rank of the right answer (1 = correct)", ylabel="share of questions", title="how near the right answer is")
    lines = []
    for key, label, _ in shown[:3]:
        k = numbers["king"][key]
        lines.append(f"{label}: " + (", ".join(a[0] for a in k["answers"][:3]) + f"  (queen #{k['queen_rank']:g})" if k["answers"]
                                     else "not in the vocabulary: " + ", ".join(k["missing"])))  # fmt: skip
    ax.text(0.02, 0.98, "king - man + woman:\n" + "\n".join(lines), transform=ax.transAxes, fontsize=7, va="top", family="monospace")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.suptitle(f"{judged.name}: analogies by 3CosAdd, {numbers['scored']:,} questions", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("analogies"))
    verdict, reason = judge_c58(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C59

CELLS = ("real", "permuted")
ALS_ITERATIONS = 50  # alternating weighted means for the biases-only fit (converged: the last step is reported)
SCATTER_CELLS = 4000


def permutation(n: int, seed: int) -> np.ndarray:
    """The permutation of the non-zero cells' values that cells="permuted" applies (seeded)."""
    return np.random.default_rng([seed, 59]).permutation(n)


def _permuted_cells_task():
    """The word-vectors task with X's values permuted among its non-zero cells before training."""
    from deepnotes.tasks.word_vectors import CellBatches, WordVectors

    class PermutedCells(WordVectors):
        def setup(self, data, source) -> None:
            super().setup(data, source)
            if not isinstance(self.batches, CellBatches):
                raise UserError("cells='permuted' applies to GloVe (trained on co-occurrence cells)")
            self.batches.values = self.batches.values[torch.from_numpy(permutation(self.batches.examples, self.cfg.seed))]
            self.input_note += "; the values permuted among the cells (C59's opposite evidence)"

    return PermutedCells


def glove_cells(corpus: Corpus, t: Trained) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zero cells (i, j, X_ij) of the co-occurrence matrix the run trained on: rebuilt from the
    run's vocabulary as the word-vectors task builds it (same ids, window, 1/d weights)."""
    from deepnotes.tasks.word_vectors import corpus_ids
    from deepnotes.text.cooccurrence import cooccurrence
    from deepnotes.text.vocab import Vocabulary

    vocab = Vocabulary.build(corpus.sentences, min_count=int(t.model_args["min_count"]))
    if vocab.itos != t.words:
        raise RuntimeError("the rebuilt vocabulary differs from the run's")
    ids, sent = corpus_ids(corpus.sentences, vocab)
    starts = np.flatnonzero(np.r_[True, sent[1:] != sent[:-1]]) if len(sent) else np.zeros(0, np.int64)
    x = cooccurrence((ids, starts), len(vocab), window=int(t.model.window))
    return x.row.astype(np.int64), x.col.astype(np.int64), x.data


@torch.no_grad()
def glove_predictions(model, i: np.ndarray, j: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """w_i . w~_j + b_i + b~_j for the cells (i, j)."""
    out = []
    for s in range(0, len(i), chunk):
        a, b = torch.from_numpy(i[s : s + chunk]), torch.from_numpy(j[s : s + chunk])
        out.append(((model.w[a] * model.w_context[b]).sum(1) + model.b[a] + model.b_context[b]).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def biases_only(i: np.ndarray, j: np.ndarray, y: np.ndarray, f: np.ndarray, size: int, iterations: int = ALS_ITERATIONS):
    """The weighted least-squares fit of y ~ b_i + c_j (word and context biases, nothing else) by
    alternating weighted means; returns the fitted values and the largest change of the last sweep."""
    b, c = np.zeros(size), np.zeros(size)
    weight_i, weight_j = np.maximum(np.bincount(i, f, size), 1e-300), np.maximum(np.bincount(j, f, size), 1e-300)
    change = np.inf
    for _ in range(iterations):
        nb = np.bincount(i, f * (y - c[j]), size) / weight_i
        nc = np.bincount(j, f * (y - nb[i]), size) / weight_j
        change = float(max(np.abs(nb - b).max(), np.abs(nc - c).max()))
        b, c = nb, nc
    return b[i] + c[j], change


def weighted_fit(pred: np.ndarray, y: np.ndarray, f: np.ndarray) -> dict:
    """Weighted R^2 (1 - sum f (pred - y)^2 / sum f (y - mean_f y)^2), weighted Pearson r, weighted MSE."""
    w = f / f.sum()
    my, mp = float(w @ y), float(w @ pred)
    var_y, var_p = float(w @ (y - my) ** 2), float(w @ (pred - mp) ** 2)
    mse = float(w @ (pred - y) ** 2)
    r = float(w @ ((pred - mp) * (y - my))) / np.sqrt(var_y * var_p) if var_p > 0 else 0.0
    return {"r2": 1.0 - mse / var_y, "r": r, "mse": mse}


def r2_gain_over_cells(pred_a: np.ndarray, pred_b: np.ndarray, y: np.ndarray, f: np.ndarray) -> dict:
    """R^2(a) - R^2(b) as a mean over cells of f (e_b^2 - e_a^2) N / sum f (y - mean)^2, with its 95%
    t-interval over cells (one run: the uncertainty of the cells, not of training)."""
    w = f / f.sum()
    var_y = float(w @ (y - w @ y) ** 2)
    contrib = w * ((pred_b - y) ** 2 - (pred_a - y) ** 2) * len(y) / var_y
    return paired_interval(contrib, np.zeros_like(contrib)) | {"over": f"{len(y):,} cells"}


def judge_c59(numbers: dict) -> tuple[str, str]:
    """Holds if training raises the weighted R^2 of w_i . w~_j + b_i + b~_j against log X_ij (the
    real counts) above the initialization's and above the best biases-only fit b_i + c_j (95%
    intervals over seeds, or over cells with one seed, above 0): GloVe fits the global statistics,
    and its vectors carry more than word frequencies. Does not hold otherwise (e.g. trained on X
    with its values permuted among the cells: it fits those, not the real log X)."""
    n = numbers
    fit = n["fit"]
    up, beyond = n["trained_minus_init_r2"], n["trained_minus_biases_r2"]
    holds = above(up) and above(beyond)
    side = n["similarity"]
    seeds = len(n["seeds"])
    permuted = ""
    if n["cells_values"] == "permuted":
        own = n["fit_to_training_targets"]
        permuted = (f" Trained on X with its values permuted among the cells: against those, its own targets, its weighted R^2 is "
                    f"{own['r2']:.3f} (permuted counts are noise to a low-rank model).")  # fmt: skip
    summary = (
        f"{n['data']}: {n['cells']:,} non-zero cells of X (window {n['window']}, 1/d weights) over a vocabulary of {n['vocabulary']:,}; "
        f"GloVe dim {n['recipe']['dim']}, {n['recipe']['epochs']} epochs of AdaGrad, {seeds} seed{'s' if seeds != 1 else ''}"
        f"{', trained on the PERMUTED values' if n['cells_values'] == 'permuted' else ''}. Against the real log X_ij, weighted by "
        f"f(X_ij): R^2 {fit['init']['r2']['mean']:+.3f} at initialization, {fit['trained']['r2']['mean']:+.3f} after training "
        f"(weighted correlation {fit['trained']['r']['mean']:.3f}, weighted mean squared error {fit['init']['mse']['mean']:.3f} -> "
        f"{fit['trained']['mse']['mean']:.3f}); the best biases-only fit b_i + c_j (frequencies alone): R^2 {fit['biases_only']['r2']:+.3f}. "
        f"Trained - init {up['mean']:+.3f} {_iv(up)}, trained - biases only {beyond['mean']:+.3f} {_iv(beyond)} (95% intervals over "
        f"{up['over']}). Training loss per epoch {n['loss_curve'][0]:.4f} -> {n['loss_curve'][-1]:.4f}. E42: Word2Vec predicts "
        f"contexts, it does not count; GloVe fits the global counts (what is measured here) with dot products of word and context "
        f"vectors, the form of Word2Vec's local-context model. Side number, not judged: the "
        f"vectors w + w~ score WordSim-353 {side['w_plus_context']['wordsim']}, SimLex-999 {side['w_plus_context']['simlex']} "
        f"(w alone {side['w']['wordsim']} / {side['w']['simlex']}; w~ alone {side['context']['wordsim']} / {side['context']['simlex']})"
        + (f"; the vectors use few directions: the first principal component holds {sp['top1_variance_share']:.0%} of their variance, "
           f"the first two {sp['top2_variance_share']:.0%} (participation ratio {sp['participation_ratio']:.1f} of {n['recipe']['dim']} "
           f"dimensions; mean cosine of random pairs {sp['mean_cosine_random_pairs']:+.2f})" if (sp := n.get("spread")) else "")
        + "." + permuted
    )
    if holds:
        return "holds", summary
    what = []
    if not above(up):
        what.append("training does not raise the fit to log X")
    if not above(beyond):
        what.append("the trained model fits the real log X no better than word frequencies (biases) alone")
    return "does not hold", "; ".join(what) + ": " + summary


def spread(vectors: np.ndarray, seed: int = 0) -> dict:
    """How many directions vectors use: the share of their (centred) variance on the first 1 and 2
    principal components, the participation ratio (sum l)^2 / sum l^2 of the variances l (the
    dimension count if all were equal, 1 if one dominates), and the mean cosine of random pairs."""
    x = np.asarray(vectors, dtype=np.float64)
    lam = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
    u = unit(x)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(x), 5000), rng.integers(0, len(x), 5000)
    return {"top1_variance_share": rounded(float(lam[0] / lam.sum()), 3), "top2_variance_share": rounded(float(lam[:2].sum() / lam.sum()), 3),
            "participation_ratio": rounded(float(lam.sum() ** 2 / (lam**2).sum()), 3),
            "mean_cosine_random_pairs": rounded(float((u[a] * u[b]).sum(1).mean()), 3)}  # fmt: skip


def _side_similarity(t: Trained, benchmarks: dict) -> dict:
    out = {}
    for key, vectors in (("w_plus_context", t.vectors), ("w", t.model.w.detach().numpy()), ("context", t.model.w_context.detach().numpy())):
        s = benchmark_scores(Trained(**{**t.__dict__, "vectors": vectors}), benchmarks)
        out[key] = {k: (rounded(v["spearman"], 3) if v["spearman"] is not None else None) for k, v in s.items()}
        out[key].update({k: None for k in ("wordsim", "simlex") if k not in out[key]})
    return out


@experiment("C59", quick_verdict="holds", opposite={"cells": "permuted"})
def run_c59(ctx: Context, cells: str = "real", corpus: str | None = None, seeds: int | None = None, epochs: int | None = None) -> Finding:
    """GloVe on the corpus (quick: gettext-en, dim 32, 10 epochs, 1 seed; full: Brown, dim 100, 15 epochs,
    3 seeds); the fit to log X before and after training and of biases alone. cells="permuted" trains
    on X with its values permuted among the non-zero cells (the opposite evidence)."""
    from deepnotes.models import create_model
    from deepnotes.tasks.word_vectors import load_benchmarks

    if cells not in CELLS:
        raise UserError(f"cells is 'real' (X as counted) or 'permuted' (its values permuted among the non-zero cells), got {cells!r}")
    data = lab_corpus(corpus, ctx.quick)
    default_epochs, args, default_seeds = recipe(ctx, "glove")
    epochs, seeds = epochs or default_epochs, seeds or default_seeds
    task = _permuted_cells_task() if cells == "permuted" else None
    benchmarks, notes = load_benchmarks()
    runs = [train_vectors("glove", data, epochs=epochs, seed=ctx.seed + s, model_args=args, task=task, log=ctx.log) for s in range(seeds)]
    i, j, x = glove_cells(data, runs[0])
    m0 = runs[0].model
    y = np.log(x)
    f = np.minimum(1.0, (x / m0.x_max) ** m0.alpha)
    size = len(runs[0].words)
    bias_pred, change = biases_only(i, j, y, f, size)
    bias_fit = weighted_fit(bias_pred, y, f)
    fits: dict[str, list[dict]] = {"init": [], "trained": []}
    preds = {}
    for s, t in enumerate(runs):
        if t.index != runs[0].index:
            raise RuntimeError("the seeds' vocabularies differ")
        torch.manual_seed(t.seed)  # the engine's initialization: manual_seed(seed), then create_model
        init = create_model("glove", vocab_size=size, num_classes=size, **args)
        p_init, p_trained = glove_predictions(init, i, j), glove_predictions(t.model, i, j)
        fits["init"].append(weighted_fit(p_init, y, f))
        fits["trained"].append(weighted_fit(p_trained, y, f))
        if s == 0:
            preds = {"init": p_init, "trained": p_trained}
    agg = lambda rows, k: {"runs": [rounded(r[k]) for r in rows], "mean": rounded(float(np.mean([r[k] for r in rows])))}  # noqa: E731
    if seeds > 1:
        up = paired_interval([r["r2"] for r in fits["trained"]], [r["r2"] for r in fits["init"]]) | {"over": "seeds"}
        beyond = paired_interval([r["r2"] for r in fits["trained"]], [bias_fit["r2"]] * seeds) | {"over": "seeds"}
    else:
        up = r2_gain_over_cells(preds["trained"], preds["init"], y, f)
        beyond = r2_gain_over_cells(preds["trained"], bias_pred, y, f)
    loss = np.mean([[h["train_loss"] for h in t.history] for t in runs], 0)
    numbers = {
        "data": data.name,
        "cells_values": cells,
        "cells": int(len(x)),
        "vocabulary": len(runs[0].index),
        "window": int(m0.window),
        "x_max": float(m0.x_max),
        "alpha": float(m0.alpha),
        "recipe": {"model": "glove", "epochs": epochs, **args, "optimizer": "adagrad", "lr": 0.5, "schedule": "linear", "batch_size": 1024,
                   "threads": 1},
        "seeds": [ctx.seed + s for s in range(seeds)],
        "fit": {"init": {k: agg(fits["init"], k) for k in ("r2", "r", "mse")},
                "trained": {k: agg(fits["trained"], k) for k in ("r2", "r", "mse")},
                "biases_only": {k: rounded(v) for k, v in bias_fit.items()} | {"last_sweep_change": rounded(change)},
                "against": "the real log X_ij, weights f(X_ij) = min(1, (X_ij / x_max)^alpha)"},
        "trained_minus_init_r2": up,
        "trained_minus_biases_r2": beyond,
        "loss_curve": [rounded(float(v)) for v in loss],
        "similarity": _side_similarity(runs[0], benchmarks),
        "spread": spread(runs[0].vectors[sorted(runs[0].index.values())], ctx.seed),
        "seconds": [rounded(t.seconds, 3) for t in runs],
        "notes": notes,
    }  # fmt: skip
    if cells == "permuted":
        order = permutation(len(x), runs[0].seed)
        xp = x[order]
        numbers["fit_to_training_targets"] = {k: rounded(v) for k, v in weighted_fit(preds["trained"], np.log(xp),
                                                                                      np.minimum(1.0, (xp / m0.x_max) ** m0.alpha)).items()}  # fmt: skip

    pick = np.random.default_rng(ctx.seed).choice(len(x), min(SCATTER_CELLS, len(x)), replace=False)
    pick = pick[np.argsort(f[pick], kind="stable")]  # the heavy cells drawn last, on top
    fig, axes = new_figure(3, 1, size=(4.4, 4.0))
    lo, hi = float(y[pick].min()), float(y[pick].max())
    for ax, (label, p, fitted) in zip(axes[0], (("initialization", preds["init"], fits["init"][0]),
                                                ("biases only b_i + c_j", bias_pred, bias_fit),
                                                (f"GloVe, {epochs} epochs" + (" (on permuted X)" if cells == "permuted" else ""),
                                                 preds["trained"], fits["trained"][0]))):  # fmt: skip
        sc = ax.scatter(y[pick], p[pick], c=f[pick], s=5, cmap="viridis", vmin=0, vmax=1, alpha=0.7)
        ax.plot([lo, hi], [lo, hi], color="grey", ls=":", lw=1)
        ax.set(xlabel="log X_ij (real)", ylabel="fitted value", title=f"{label}\nweighted R^2 {fitted['r2']:+.3f}")
        ax.grid(alpha=0.3)
    fig.colorbar(sc, ax=axes[0, 2], label="weight f(X_ij)")
    fig.suptitle(f"{data.name}: w_i . w~_j + b_i + b~_j against log X_ij, {len(pick):,} random non-zero cells (seed {ctx.seed})", fontsize=10)
    scatter = save_figure(fig, ctx.figure_path("fit_scatter"))

    fig, axes = new_figure(2, 1, size=(5.0, 3.6))
    ax = axes[0, 0]
    for t in runs:
        ax.plot(range(1, len(t.history) + 1), [h["train_loss"] for h in t.history], color="C0", alpha=0.5)
    ax.set(xlabel="epoch", ylabel="weighted loss per cell (0.5 f (pred - log X)^2)", title="training loss (lines: seeds)")
    ax.grid(alpha=0.3)
    ax = axes[0, 1]
    bars = [("init", fits["init"], "C7"), ("biases only", None, "C1"), ("GloVe", fits["trained"], "C0")]
    for k, (label, rows, colour) in enumerate(bars):
        vals = [bias_fit["r2"]] if rows is None else [r["r2"] for r in rows]
        ax.bar(k, float(np.mean(vals)), color=colour, alpha=0.8)
        ax.scatter([k] * len(vals), vals, color="black", s=10, zorder=3)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(3), [b[0] for b in bars])
    ax.set(ylabel="weighted R^2 against the real log X", title="fit to the co-occurrence statistics")
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{data.name}: GloVe{' trained on permuted X' if cells == 'permuted' else ''}", fontsize=10)
    summary = save_figure(fig, ctx.figure_path("fit_summary"))
    verdict, reason = judge_c59(numbers)
    return Finding(numbers, [scatter, summary], verdict, reason)
