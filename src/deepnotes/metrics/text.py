"""BLEU (Papineni et al. 2002), equal to sacreBLEU's defaults: corpus_bleu and sentence_bleu.

The notes' definition (errata E21):

    BLEU = BP * exp(sum_n w_n log p_n),   n = 1..4, w_n = 1/4,
    p_n  = modified n-gram precision: sum over sentences of the clipped counts of the candidate's
           n-grams (each n-gram counted at most as often as it occurs in the reference) divided by
           the sum of the candidate's n-gram counts,
    BP   = min(1, exp(1 - r / c)),  r the reference length, c the candidate length,

computed over the corpus: clipped counts, n-gram totals and lengths are summed over all
sentences first, and BLEU is computed once from the sums; it is not a mean of sentence scores.
Scores are reported on 0..100 (sacreBLEU's scale), precisions in percent as well.

What sacreBLEU adds to that definition, and this module does too (corpus_bleu(h, r).score ==
sacrebleu.corpus_bleu(h, r).score to 1e-6, same arguments, tests/test_bleu.py):

- Tokenization "13a" (mteval-v13a.pl, what WMT uses), applied to hypotheses and references
  alike after removing trailing whitespace: drop `<skipped>`, join `-\\n` line breaks, turn other
  newlines into spaces, unescape &quot; &amp; &lt; &gt;; then put spaces around every ASCII
  punctuation mark except the apostrophe, hyphen, period and comma; split a period or comma
  off unless it sits between digits ("3.5" and "1,000" stay whole); split a hyphen that follows
  a digit; split on whitespace. So "l'homme" and "well-known" are one token each, and
  "Bonjour !" and "Bonjour!" tokenize alike. Text is not lowercased unless lowercase=True.
- Several references per sentence: an n-gram's clip is its largest count in any one of the
  references, and r is the length of the reference closest in length to the hypothesis
  (the shorter one on a tie), summed over the corpus.
- Smoothing "exp" (mteval's, Chen & Cherry 2014 method 3), sacreBLEU's default for the corpus
  score too: an order n with 0 matches gets p_n = 1 / (2^k * total_n), k = 1 for the first such
  order, 2 for the next, ..., instead of 0 (which would make BLEU 0). Without any match at all
  the score is 0. An order with no n-grams at all (every hypothesis shorter than n words) has
  precision 0 and makes the corpus score 0.
- sentence_bleu uses the effective order (sacreBLEU's sentence default): the geometric mean
  runs over the orders 1..m the hypothesis is long enough for (m = min(4, its length)), so a
  2-word hypothesis is scored on unigrams and bigrams instead of getting 0.

Why d2l's bleu(pred_seq, label_seq, k) gives other numbers: it computes
exp(min(0, 1 - len_label / len_pred)) * prod_{n=1..k} p_n^(1/2^n) for one sentence and one
reference: the weights 1/2^n are not 1/4 each (they sum to 1 - 2^-k, and favour long n-grams
less than the geometric mean does), its examples use k = 2, n stops at the prediction's length,
any order without a match makes it 0 (no smoothing), it splits on single spaces (no tokenization:
"va !" and "va!" differ, "chat." is one token), takes one reference (no clipping against the
best of several, no closest reference length), reports 0..1, and a corpus score from it would
be a mean of sentence scores, which is not corpus BLEU.

This module imports no sacreBLEU (it is the tests' oracle): the tokenizer is written here from
mteval-v13a.pl's rules.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

MAX_ORDER = 4

# mteval-v13a: ASCII punctuation other than ' - . , gets spaces around it (the others have rules of their own)
_PUNCT = re.compile("([" + re.escape("".join(c for c in string.punctuation if c not in "'-.,")) + "])")
_PERIOD_COMMA_AFTER_NONDIGIT = re.compile(r"([^0-9])([\.,])")
_PERIOD_COMMA_BEFORE_NONDIGIT = re.compile(r"([\.,])([^0-9])")
_DASH_AFTER_DIGIT = re.compile(r"([0-9])(-)")


def tokenize_13a(line: str) -> list[str]:
    """mteval-v13a's tokenization (sacreBLEU's default "13a"), as tokens. See the module docstring."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = _PUNCT.sub(r" \1 ", f" {line} ")
    line = _PERIOD_COMMA_AFTER_NONDIGIT.sub(r"\1 \2 ", line)
    line = _PERIOD_COMMA_BEFORE_NONDIGIT.sub(r" \1 \2", line)
    line = _DASH_AFTER_DIGIT.sub(r"\1 \2 ", line)
    return line.split()


@dataclass(frozen=True)
class BLEUScore:
    """A BLEU score (0..100) and its parts: precisions p_1..p_4 in percent (as used, i.e. smoothed),
    brevity penalty, hypothesis and (effective) reference lengths in tokens, and the matched
    (clipped) and total n-gram counts per order."""

    score: float
    precisions: tuple[float, ...]
    bp: float
    sys_len: int
    ref_len: int
    counts: tuple[int, ...]
    totals: tuple[int, ...]


def _segment(text: str, lowercase: bool) -> list[str]:
    if not isinstance(text, str):
        raise TypeError(f"BLEU takes strings, got {type(text).__name__}")
    return tokenize_13a((text.lower() if lowercase else text).rstrip())


def _ngrams(tokens: list[str]) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for n in range(1, MAX_ORDER + 1) for i in range(len(tokens) - n + 1))


def _statistics(hypothesis: str, references: Sequence[str], lowercase: bool) -> tuple[int, int, list[int], list[int]]:
    """(hypothesis length, closest reference length, matched n-grams per order, total n-grams per order)."""
    if isinstance(references, str):
        references = [references]
    if len(references) == 0:
        raise ValueError("every hypothesis needs at least one reference")
    ref_max: Counter = Counter()
    ref_lens = []
    for ref in references:
        tokens = _segment(ref, lowercase)
        ref_lens.append(len(tokens))
        ref_max |= _ngrams(tokens)  # | keeps the larger count: clipping against the best reference
    hyp = _segment(hypothesis, lowercase)
    ref_len = min(ref_lens, key=lambda r: (abs(len(hyp) - r), r))  # closest; the shorter on a tie
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    for gram, count in _ngrams(hyp).items():
        total[len(gram) - 1] += count
        correct[len(gram) - 1] += min(count, ref_max[gram])
    return len(hyp), ref_len, correct, total


def _score(sys_len: int, ref_len: int, correct: list[int], total: list[int], effective_order: bool) -> BLEUScore:
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    else:
        bp = 1.0
    precisions = [0.0] * MAX_ORDER
    parts = dict(bp=bp, sys_len=sys_len, ref_len=ref_len, counts=tuple(correct), totals=tuple(total))
    if not any(correct):
        return BLEUScore(0.0, tuple(precisions), **parts)
    smooth, order = 1.0, MAX_ORDER
    for n in range(1, MAX_ORDER + 1):
        if total[n - 1] == 0:
            break
        if effective_order:
            order = n
        if correct[n - 1] == 0:  # "exp" smoothing: 1/2, 1/4, ... of one n-gram
            smooth *= 2
            precisions[n - 1] = 100.0 / (smooth * total[n - 1])
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    used = precisions[:order]
    score = 0.0 if min(used) == 0.0 else bp * math.exp(sum(math.log(p) for p in used) / order)
    return BLEUScore(score, tuple(precisions), **parts)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str | None]], *, lowercase: bool = False) -> BLEUScore:
    """Corpus BLEU of `hypotheses` (one string per sentence) against `references` laid out as in
    sacreBLEU: a list of reference streams, references[j][i] the j-th reference of sentence i
    (None where sentence i has fewer references). One reference per sentence: [refs]. Equal to
    sacrebleu.corpus_bleu(hypotheses, references) with its defaults (13a, exp smoothing, no
    effective order). See the module docstring for the definition."""
    if isinstance(hypotheses, str):
        raise TypeError("corpus_bleu takes a list of hypotheses, not one string")
    if isinstance(references, str) or any(isinstance(stream, str) for stream in references):
        raise TypeError("corpus_bleu's references are a list of reference streams, one string per hypothesis in each: "
                        "[refs] for one reference per sentence")  # fmt: skip
    if len(hypotheses) == 0:
        raise ValueError("corpus_bleu needs at least one hypothesis")
    if len(references) == 0:
        raise ValueError("corpus_bleu needs at least one reference stream ([refs] for one reference per sentence)")
    for j, stream in enumerate(references):
        if len(stream) != len(hypotheses):
            raise ValueError(f"reference stream {j} has {len(stream)} sentences for {len(hypotheses)} hypotheses")
    sys_len = ref_len = 0
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    for i, hyp in enumerate(hypotheses):
        h, r, c, t = _statistics(hyp, [stream[i] for stream in references if stream[i] is not None], lowercase)
        sys_len, ref_len = sys_len + h, ref_len + r
        correct = [a + b for a, b in zip(correct, c)]
        total = [a + b for a, b in zip(total, t)]
    return _score(sys_len, ref_len, correct, total, effective_order=False)


def sentence_bleu(hypothesis: str, references: str | Sequence[str], *, lowercase: bool = False) -> BLEUScore:
    """BLEU of one sentence against one reference (a string) or several (a list of strings), equal
    to sacrebleu.sentence_bleu(hypothesis, references) with its defaults: 13a, exp smoothing and the
    effective order. BLEU is meant for corpora; use this to look at single sentences."""
    return _score(*_statistics(hypothesis, references, lowercase), effective_order=True)


def paired_bootstrap(hyps_a: Sequence[str], hyps_b: Sequence[str], refs: Sequence[str], *, samples: int = 1000,
                     seed: int = 0, lowercase: bool = False) -> dict:  # fmt: skip
    """Koehn's paired bootstrap resampling (EMNLP 2004, "Statistical Significance Tests for Machine
    Translation Evaluation"): draw the test sentences with replacement `samples` times, score both
    systems' corpus BLEU on each draw (one reference per sentence), and return the difference
    a - b on the whole set with the 2.5 and 97.5 percentiles of the resampled differences
    (a 95% interval; it reflects the test sample, not training runs). Per-sentence statistics are
    computed once, so a draw costs sums, not re-tokenizing."""
    import numpy as np

    if not (len(hyps_a) == len(hyps_b) == len(refs)) or not refs:
        raise ValueError(f"need as many hypotheses of each system as references (>= 1), got {len(hyps_a)}, {len(hyps_b)}, {len(refs)}")

    def stats(hyps):  # (n, 2 + 2 * MAX_ORDER): hyp len, ref len, correct per order, total per order
        return np.asarray([[h, r, *c, *t] for h, r, c, t in (_statistics(x, [y], lowercase) for x, y in zip(hyps, refs))], dtype=np.int64)

    def score(s):
        return _score(int(s[0]), int(s[1]), [int(v) for v in s[2 : 2 + MAX_ORDER]], [int(v) for v in s[2 + MAX_ORDER :]], False).score

    a, b = stats(hyps_a), stats(hyps_b)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(samples):
        pick = rng.integers(0, len(refs), len(refs))
        diffs.append(score(a[pick].sum(0)) - score(b[pick].sum(0)))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"a": score(a.sum(0)), "b": score(b.sum(0)), "difference": score(a.sum(0)) - score(b.sum(0)),
            "low": float(low), "high": float(high), "samples": samples, "sentences": len(refs)}  # fmt: skip
