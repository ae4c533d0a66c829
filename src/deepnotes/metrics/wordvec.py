"""How good word vectors are: word similarity (Spearman against human scores), analogies (3CosAdd),
nearest neighbours, computed the way gensim's KeyedVectors does so the numbers compare with it.

    word_similarity(vectors, index, pairs, scores)    # {"spearman", "pearson", "pairs", "oov", "oov_ratio"}
    analogy_accuracy(vectors, index, questions)       # {"accuracy", "correct", "questions", "skipped", "sections"}
    nearest(vectors, index, words, "king", k=10)      # [("queen", 0.71), ...]

`vectors` is (V, D) (rows need not be normalized), `index` maps a word to its row. Words are
looked up lowercased (gensim's case_insensitive=True, and every deepnotes corpus is lowercased).

Similarity (gensim's evaluate_word_pairs with dummy4unknown=False): a pair with a word outside the
vocabulary is left out and counted in "oov"; the Spearman rank correlation (scipy.stats.spearmanr)
of the cosine similarities with the human scores over the pairs that remain.

Analogies (gensim's evaluate_word_analogies, Mikolov et al. 2013 "3CosAdd"): for a : b :: c : d,
the answer is the word whose unit vector is nearest (cosine) to unit(b) - unit(a) + unit(c), the
three question words excluded; a question with any of its four words outside the vocabulary is
skipped (counted, not scored). Accuracy = correct / questions scored. tests/test_word_vectors.py
checks all three against gensim on the same vectors.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch


def unit_rows(vectors) -> torch.Tensor:
    v = torch.as_tensor(np.asarray(vectors) if not isinstance(vectors, torch.Tensor) else vectors).float()
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


def word_similarity(vectors, index: Mapping[str, int], pairs: Sequence[tuple[str, str]], scores) -> dict:
    from scipy.stats import pearsonr, spearmanr

    unit = unit_rows(vectors)
    sims, human = [], []
    for (a, b), s in zip(pairs, scores):
        i, j = index.get(a.lower()), index.get(b.lower())
        if i is None or j is None:
            continue
        sims.append(float(unit[i] @ unit[j]))
        human.append(float(s))
    n, oov = len(sims), len(pairs) - len(sims)
    if n < 3:
        return {"spearman": float("nan"), "pearson": float("nan"), "pairs": n, "oov": oov, "oov_ratio": oov / max(1, len(pairs))}
    return {
        "spearman": float(spearmanr(sims, human).statistic), "pearson": float(pearsonr(sims, human).statistic),
        "pairs": n, "oov": oov, "oov_ratio": oov / max(1, len(pairs)),
    }  # fmt: skip


def analogy_accuracy(vectors, index: Mapping[str, int], questions: Sequence[tuple[str, str, str, str]],
                     sections: Sequence[str] | None = None, batch: int = 512) -> dict:  # fmt: skip
    """3CosAdd accuracy; with `sections` (one name per question) also per section."""
    unit = unit_rows(vectors)
    kept, where = [], []
    for q_i, q in enumerate(questions):
        ids = [index.get(w.lower()) for w in q]
        if None not in ids:
            kept.append(ids)
            where.append(q_i)
    hits = np.zeros(len(kept), dtype=bool)
    for s in range(0, len(kept), batch):
        ids = torch.tensor(kept[s : s + batch])
        query = unit[ids[:, 1]] - unit[ids[:, 0]] + unit[ids[:, 2]]
        sims = query @ unit.T
        sims.scatter_(1, ids[:, :3], float("-inf"))  # the question words are never the answer
        hits[s : s + len(ids)] = (sims.argmax(1) == ids[:, 3]).numpy()
    out = {"accuracy": float(hits.mean()) if len(hits) else float("nan"), "correct": int(hits.sum()),
           "questions": len(kept), "skipped": len(questions) - len(kept)}  # fmt: skip
    if sections is not None:
        per: dict[str, list[int]] = {}
        for h, q_i in zip(hits, where):
            per.setdefault(sections[q_i], [0, 0])
            per[sections[q_i]][0] += int(h)
            per[sections[q_i]][1] += 1
        out["sections"] = {name: {"correct": c, "questions": n} for name, (c, n) in per.items()}
    return out


def nearest(vectors, index: Mapping[str, int], words: Sequence[str], query, k: int = 10,
            exclude: Sequence[str] = ()) -> list[tuple[str, float]]:  # fmt: skip
    """The k words nearest (cosine) to `query` (a word of the vocabulary, or a vector), without
    the query word itself and the `exclude` words."""
    unit = unit_rows(vectors)
    if isinstance(query, str):
        drop = [query, *exclude]
        q = unit[index[query]]
    else:
        drop = list(exclude)
        q = torch.as_tensor(np.asarray(query)).float()
        q = q / q.norm().clamp_min(1e-12)
    sims = unit @ q
    for w in drop:
        if w in index:
            sims[index[w]] = float("-inf")
    top = torch.topk(sims, min(k, int(torch.isfinite(sims).sum())))
    return [(words[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]
