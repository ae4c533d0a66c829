"""Language-model metrics: perplexity and bits per token / character from a summed negative
log-likelihood, and ROUGE-1, ROUGE-2, ROUGE-L (Lin 2004) equal to the rouge-score package.

Likelihood-based (the model's probabilities of the text it is scored on)
-------------------------------------------------------------------------
For a text of N tokens x_1..x_N and a model giving p(x_t | x_<t), the summed negative
log-likelihood in nats is NLL = -sum_t ln p(x_t | x_<t) (what F.cross_entropy(..., reduction="sum")
returns for next-token logits), and

    perplexity      = exp(NLL / N)                 (the geometric mean of 1 / p(x_t | x_<t));
    bits per token  = NLL / N / ln 2               (= log2 perplexity);
    bits per char   = NLL / C / ln 2,              C the number of characters the N tokens cover.

A model that spreads its probability uniformly over a vocabulary of V tokens has perplexity V
exactly, whatever the text: perplexity is the size of the uniform choice the model is "as unsure
as". Sums are taken over the whole test set first and divided once (a corpus perplexity is not a
mean of per-batch perplexities). Tokens excluded from the loss (padding, an ignore_index) are
excluded from N as well.

Perplexity and bits per token depend on the tokenizer: a model over subwords predicts fewer,
harder tokens than one over characters, and the numbers are not comparable across tokenizers.
Bits per character are: for a character-level model N = C and bits per character = bits per
token; for a subword (or word) model divide the same total NLL by the number of characters of the
text its tokens cover (e.g. len(text) of the decoded test text), not by its number of tokens. Then
it is the code length per character of the same text, whatever the unit the model predicts.
(Perplexity per character, 2 ** bits per character, is comparable in the same way.)

ROUGE (Lin 2004, "ROUGE: A Package for Automatic Evaluation of Summaries")
---------------------------------------------------------------------------
One candidate (system summary, generated text) against one reference, both tokenized as below:

    ROUGE-N  recall    R = sum over reference n-grams g of Count_match(g) / number of reference n-grams,
             precision P = the same matches / number of candidate n-grams,
             Count_match(g) = min(count of g in the candidate, count of g in the reference) (clipped);
    ROUGE-L  R = LCS(X, Y) / m,   P = LCS(X, Y) / n,
             X the reference (m tokens), Y the candidate (n tokens), LCS the length of their longest
             common subsequence (in order, not necessarily contiguous; dynamic programming, O(m n));
    F        = (1 + beta^2) R P / (R + beta^2 P) with beta = 1, i.e. 2 P R / (P + R) (rouge-score's and
               ROUGE-1.5.5's default alpha = 0.5); 0 when P + R = 0.

Lin's ROUGE-N is the recall; P and F are the usual companions. An empty candidate or reference
(no n-grams, no tokens) gives 0 for all three. The corpus score is the mean over pairs of each
per-pair number: mean F, not the F of the mean P and R (rouge-score's BootstrapAggregator reports
the median of bootstrap resampled means as "mid", which is close to but not exactly this mean).

Equal to rouge_score.rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
(tests/test_metrics_language.py), with these choices of rouge-score's:

- Tokenization (its DefaultTokenizer): lowercase (str.lower), replace every run of characters other
  than ASCII a-z and 0-9 by a space, split on whitespace. So punctuation separates words
  ("don't" -> "don", "t"), and letters outside ASCII are dropped ("café" -> "caf").
- No stemming. rouge-score can stem words longer than 3 characters with nltk's Porter stemmer
  (use_stemmer=True, ROUGE-1.5.5's -m); deepnotes does not stem, and offers no such option.
- One reference per candidate (rouge-score's score_multi, the best reference by F, is not here),
  and no ROUGE-Lsum (summary-level LCS over sentences).

Argument order: candidate first, reference second, as in deepnotes' BLEU (sentence_bleu(hypothesis,
references)). rouge-score's RougeScorer.score takes (target, prediction): the other way round.
Swapping them swaps P and R.

This module imports neither torchmetrics nor rouge-score (they are the tests' oracles); torch is
imported only by token_nll / LanguageModelMetrics.update_logits.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

LN2 = math.log(2.0)

# ---------------------------------------------------------------- perplexity, bits per token / character


def _check_nll(nll_sum: float, count: int, what: str) -> tuple[float, int]:
    nll_sum = float(nll_sum)
    if math.isnan(nll_sum) or nll_sum < 0:
        raise ValueError(f"the summed negative log-likelihood must be >= 0 (nats), got {nll_sum}")
    if isinstance(count, bool) or int(count) != count or count <= 0:
        raise ValueError(f"the number of {what} must be a positive integer, got {count!r}")
    return nll_sum, int(count)


def perplexity(nll_sum: float, tokens: int) -> float:
    """exp(nll_sum / tokens): the perplexity of `tokens` tokens whose negative log-likelihoods (in
    nats, natural log) sum to `nll_sum`. math.inf when it overflows (a mean NLL above ~709 nats)
    or when nll_sum is infinite (a token given probability 0). See the module docstring."""
    nll_sum, tokens = _check_nll(nll_sum, tokens, "tokens")
    try:
        return math.exp(nll_sum / tokens)
    except OverflowError:
        return math.inf


def bits_per_token(nll_sum: float, tokens: int) -> float:
    """nll_sum / tokens / ln 2 = log2(perplexity): the mean code length of a token in bits."""
    nll_sum, tokens = _check_nll(nll_sum, tokens, "tokens")
    return nll_sum / tokens / LN2


def bits_per_character(nll_sum: float, characters: int) -> float:
    """nll_sum / characters / ln 2: bits per character of the text. For a character-level model
    characters = tokens; for a subword or word model pass the total NLL of the tokens and the
    number of characters they cover (not the number of tokens): the number comparable across
    tokenizers. See the module docstring."""
    nll_sum, characters = _check_nll(nll_sum, characters, "characters")
    return nll_sum / characters / LN2


def token_nll(logits, targets, ignore_index: int | None = None) -> tuple[float, int]:
    """(summed NLL in nats, number of tokens counted) of next-token `logits` (..., V) for integer
    `targets` (...): -sum log_softmax(logits)[target] over the targets not equal to ignore_index
    (all of them when None), computed in float64."""
    import torch

    logits = torch.as_tensor(logits)
    targets = torch.as_tensor(targets)
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got {logits.dtype}")
    if logits.dim() < 1 or logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits (..., V) and targets (...) must agree in shape, got {tuple(logits.shape)} and {tuple(targets.shape)}")
    flat_logits = logits.detach().reshape(-1, logits.shape[-1]).to(torch.float64)
    flat_targets = targets.detach().reshape(-1).long()
    if ignore_index is not None:
        keep = flat_targets != ignore_index
        flat_logits, flat_targets = flat_logits[keep], flat_targets[keep]
    if flat_targets.numel() and (int(flat_targets.min()) < 0 or int(flat_targets.max()) >= logits.shape[-1]):
        raise ValueError(f"targets must lie in 0..{logits.shape[-1] - 1} (or equal ignore_index)")
    log_probs = torch.log_softmax(flat_logits, dim=-1)
    nll = -log_probs.gather(1, flat_targets[:, None]).sum()
    return float(nll), int(flat_targets.numel())


class LanguageModelMetrics:
    """Perplexity and bits per token / character accumulated over batches: the summed NLL, token
    and character counts are added up, and the metrics computed once from the sums in compute().

        m = LanguageModelMetrics()
        for batch: m.update_logits(logits, targets, ignore_index=PAD)   # or m.update(nll_sum, tokens)
        m.compute()  # {"perplexity", "bits_per_token", "nll_per_token", "tokens", ["bits_per_character", "characters"]}

    Characters are optional; give them for every batch (the characters the batch's counted tokens
    cover) or for none, and compute() reports bits per character when they were given."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.nll_sum = 0.0
        self.tokens = 0
        self.characters: int | None = None
        self._updates = 0

    def update(self, nll_sum: float, tokens: int, characters: int | None = None) -> None:
        nll_sum = float(nll_sum)
        if math.isnan(nll_sum) or nll_sum < 0:
            raise ValueError(f"the summed negative log-likelihood must be >= 0 (nats), got {nll_sum}")
        if isinstance(tokens, bool) or int(tokens) != tokens or tokens < 0:
            raise ValueError(f"tokens must be an integer >= 0, got {tokens!r}")
        if (characters is None) != (self.characters is None) and self._updates:
            raise ValueError("give characters for every batch or for none")
        if characters is not None:
            if isinstance(characters, bool) or int(characters) != characters or characters < 0:
                raise ValueError(f"characters must be an integer >= 0, got {characters!r}")
            self.characters = (self.characters or 0) + int(characters)
        self.nll_sum += nll_sum
        self.tokens += int(tokens)
        self._updates += 1

    def update_logits(self, logits, targets, ignore_index: int | None = None, characters: int | None = None) -> None:
        """Adds token_nll(logits, targets, ignore_index)."""
        self.update(*token_nll(logits, targets, ignore_index), characters=characters)

    def compute(self) -> dict:
        if self.tokens == 0:
            raise ValueError("no tokens counted yet")
        out = {"perplexity": perplexity(self.nll_sum, self.tokens), "bits_per_token": bits_per_token(self.nll_sum, self.tokens),
               "nll_per_token": self.nll_sum / self.tokens, "tokens": self.tokens}  # fmt: skip
        if self.characters is not None:
            out["bits_per_character"] = bits_per_character(self.nll_sum, self.characters)
            out["characters"] = self.characters
        return out


# ---------------------------------------------------------------- ROUGE

_NON_ALPHANUM = re.compile(r"[^a-z0-9]+")


def tokenize_rouge(text: str) -> list[str]:
    """rouge-score's default tokenization without stemming: lowercase, every run of characters other
    than a-z 0-9 to one space, split. "Don't panic!" -> ["don", "t", "panic"]."""
    if not isinstance(text, str):
        raise TypeError(f"ROUGE takes strings, got {type(text).__name__}")
    return _NON_ALPHANUM.sub(" ", text.lower()).split()


@dataclass(frozen=True)
class RougeScore:
    """Precision, recall and F-measure (beta = 1), each in 0..1."""

    precision: float
    recall: float
    fmeasure: float


def _f(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _rouge_n_tokens(candidate: Sequence[str], reference: Sequence[str], n: int) -> RougeScore:
    cand, ref = _ngrams(candidate, n), _ngrams(reference, n)
    matches = sum(min(count, cand[g]) for g, count in ref.items())
    p = matches / max(sum(cand.values()), 1)
    r = matches / max(sum(ref.values()), 1)
    return RougeScore(p, r, _f(p, r))


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence of a and b (dynamic programming, one row at a time)."""
    if len(b) > len(a):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        diag = 0  # row[j - 1] of the previous row
        for j, y in enumerate(b, 1):
            above = row[j]
            row[j] = diag + 1 if x == y else max(above, row[j - 1])
            diag = above
    return row[-1]


def _rouge_l_tokens(candidate: Sequence[str], reference: Sequence[str]) -> RougeScore:
    if not candidate or not reference:
        return RougeScore(0.0, 0.0, 0.0)
    lcs = lcs_length(reference, candidate)
    p, r = lcs / len(candidate), lcs / len(reference)
    return RougeScore(p, r, _f(p, r))


def rouge_n(candidate: str, reference: str, n: int) -> RougeScore:
    """ROUGE-N of one candidate against one reference (n >= 1). See the module docstring."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"ROUGE-N needs an integer n >= 1, got {n!r}")
    return _rouge_n_tokens(tokenize_rouge(candidate), tokenize_rouge(reference), n)


def rouge_l(candidate: str, reference: str) -> RougeScore:
    """ROUGE-L (longest common subsequence) of one candidate against one reference."""
    return _rouge_l_tokens(tokenize_rouge(candidate), tokenize_rouge(reference))


def rouge(candidate: str, reference: str) -> dict[str, RougeScore]:
    """{"rouge1", "rouge2", "rougeL"} of one candidate against one reference, equal to rouge-score's
    RougeScorer(["rouge1", "rouge2", "rougeL"]).score(reference, candidate) (note its order)."""
    cand, ref = tokenize_rouge(candidate), tokenize_rouge(reference)
    return {"rouge1": _rouge_n_tokens(cand, ref, 1), "rouge2": _rouge_n_tokens(cand, ref, 2), "rougeL": _rouge_l_tokens(cand, ref)}


def corpus_rouge(candidates: Sequence[str], references: Sequence[str]) -> dict[str, RougeScore]:
    """The mean over pairs of rouge(candidate, reference)'s precision, recall and F, for each of
    rouge1, rouge2, rougeL (one reference per candidate)."""
    if isinstance(candidates, str) or isinstance(references, str):
        raise TypeError("corpus_rouge takes lists of candidates and references, not single strings")
    if len(candidates) != len(references):
        raise ValueError(f"corpus_rouge needs one reference per candidate, got {len(candidates)} candidates and {len(references)} references")
    if len(candidates) == 0:
        raise ValueError("corpus_rouge needs at least one candidate")
    scores = [rouge(c, r) for c, r in zip(candidates, references)]
    k = len(scores)
    return {name: RougeScore(sum(s[name].precision for s in scores) / k, sum(s[name].recall for s in scores) / k,
                             sum(s[name].fmeasure for s in scores) / k) for name in ("rouge1", "rouge2", "rougeL")}  # fmt: skip
