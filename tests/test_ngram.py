"""The n-gram language model (deepnotes.models.ngram): nltk.lm as the oracle where the conventions
agree, a hand-worked Kneser-Ney example where they do not, normalization, the LM contract, and
the counts as buffers that load at any size."""

import itertools
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from deepnotes.errors import UserError
from deepnotes.models import create_model, get_model_entry
from deepnotes.models.ngram import NGramConfig, NGramLM

nltk_lm = pytest.importorskip("nltk.lm")
from nltk.util import everygrams  # noqa: E402


def build(vocab: int, ids, **cfg) -> NGramLM:
    return NGramLM(vocab, None, NGramConfig(**cfg)).fit(torch.as_tensor(ids))


def prob(model: NGramLM, history, word: int) -> float:
    """p(word | history) as the model gives it at the last position of a row holding the history."""
    h = torch.tensor([list(history)])
    targets = torch.zeros_like(h)
    targets[0, -1] = word
    return float(torch.exp(-model.nll(h, targets)[0, -1]))


def corpus(seed: int, n: int, length: int = 120, symbols: int = 5) -> list[int]:
    """Random ids in which every prefix of length < n also occurs later (see test_matches_nltk_kneser_ney):
    the first n - 1 ids are repeated at the end."""
    ids = torch.randint(0, symbols, (length,), generator=torch.Generator().manual_seed(seed)).tolist()
    ids += ids[: n - 1]
    length = len(ids)
    for k in range(1, n):
        assert any(ids[i : i + k] == ids[:k] for i in range(1, length - k + 1)), k
    return ids


def nltk_fit(model_cls, ids: list[int], n: int, *args, **kwargs):
    """nltk's model over the same stream: all 1..n-grams of one unpadded "sentence"; its vocabulary
    is the seen ids plus <UNK>, which plays our id `symbols` (never seen)."""
    seq = [str(i) for i in ids]
    lm = model_cls(*args, order=n, **kwargs) if args else model_cls(n, **kwargs)
    lm.fit([list(everygrams(seq, max_len=n))], vocabulary_text=seq)
    return lm


def every_history(V: int, n: int):
    for L in range(1, n):
        yield from itertools.product(range(V), repeat=L)


# --------------------------------------------------------------------------- oracles


@pytest.mark.parametrize("n", [2, 3, 4])
def test_matches_nltk_kneser_ney(n):
    """nltk.lm.KneserNeyInterpolated (discount 0.1) on every history of length 1..n-1 and every
    token, to 1e-9. Its conventions, read from nltk/lm/smoothing.py and models.py, and how they are met:
    - a fixed discount 0.1 at every order but none at the unigram, which is the continuation
      distribution N1+(. w) / N1+(. .) with no uniform floor: discount=(0, 0.1, ..., 0.1);
    - no padding: the stream is counted as one unpadded sequence (everygrams up to n);
    - its vocabulary adds <UNK>: our V is the seen symbols + 1, the last id never seen;
    - at lower orders nltk takes N(h .) from the raw counts, we from the continuation counts: they
      differ only for an m-gram that occurs only at the corpus start, so the corpus repeats every
      prefix (corpus() asserts it; the other case is test_kneser_ney_hand_worked_example's)."""
    symbols = 5 if n < 4 else 4  # nltk's scores are slow: 5^4 (history, token) pairs at order 4
    ids = corpus(seed=n, n=n, symbols=symbols)
    V = symbols + 1
    ref = nltk_fit(nltk_lm.KneserNeyInterpolated, ids, n, discount=0.1)
    assert len(ref.vocab) == V
    model = build(V, ids, order=n, discount=(0.0,) + (0.1,) * (n - 1))
    name = lambda i: str(i) if i < V - 1 else "<UNK>"  # noqa: E731
    worst = 0.0
    for h in every_history(V, n):
        for w in range(V):
            expected = ref.score(name(w), tuple(name(i) for i in h))
            worst = max(worst, abs(prob(model, h, w) - expected))
    assert worst < 1e-9


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("k", [1.0, 0.3])
def test_matches_nltk_lidstone(n, k):
    """nltk.lm.Lidstone (Laplace for k = 1) over the same vocabulary (seen ids + <UNK>), every
    history of length 0..n-1 (0 only for n = 1: position 0 of a row always has one token), to 1e-9."""
    ids = corpus(seed=10 + n, n=n)
    V = 6
    ref = nltk_fit(nltk_lm.Laplace, ids, n) if k == 1.0 else nltk_fit(nltk_lm.Lidstone, ids, n, k)
    assert len(ref.vocab) == V and ref.score("0") > 0
    model = build(V, ids, order=n, smoothing="add-k", k=k)
    name = lambda i: str(i) if i < V - 1 else "<UNK>"  # noqa: E731
    histories = [(0,), (3,)] if n == 1 else every_history(V, n)  # order 1: the history is ignored
    worst = 0.0
    for h in histories:
        for w in range(V):
            context = tuple(name(i) for i in h)[-(n - 1) :] if n > 1 else None
            worst = max(worst, abs(prob(model, h, w) - ref.score(name(w), context)))
    assert worst < 1e-9


def test_kneser_ney_hand_worked_example():
    """Order 3, D = 0.5 at every order, corpus "c a b a b" (ids 2 0 1 0 1), V = 4 (d = 3 unseen).

    Trigrams (raw): cab 1, aba 1, bab 1. Bigram continuation counts (distinct left neighbours):
    ab 2 (c_, b_), ba 1; "ca" has none (only at the start). Unigram continuation counts: a 2,
    b 1, c 0, d 0; N1+(. .) = 3 bigram types; 2 unigram types.
      p1(a) = (2 - .5)/3 + .5 * 2/3 * 1/4 = 7/12,  p1(b) = .5/3 + 1/12 = 3/12,  p1(c) = p1(d) = 1/12
      p2(.|a): total 2, 1 type: p2(b|a) = 1.5/2 + .5 * 1/2 * 3/12 = 13/16,  p2(a|a) = 1/4 * 7/12 = 7/48
      p2(.|b): total 1, 1 type: p2(a|b) = .5/1 + .5 * 7/12 = 19/24,  p2(b|b) = .5 * 3/12 = 1/8
      p2(.|c): no continuation counts (c is only ever the first token): p1, skipped
      p3(b|c a) = .5/1 + .5 * 13/16 = 29/32,  p3(a|a b) = .5 + .5 * 19/24 = 43/48,  p3(d|a b) = .5 * .5 * 1/12 = 1/48
    nltk here: its N(h .) for h = c comes from the raw counts (c a), its continuation total is 0,
    and KneserNeyInterpolated divides by it."""
    model = build(4, [2, 0, 1, 0, 1], order=3, discount=0.5)
    a, b, c, d = 0, 1, 2, 3
    F_ = Fraction
    expected = {
        ((c,), a): F_(7, 12), ((c,), d): F_(1, 12),  # the row's first position: the order-2 model; for c, p1
        ((a,), b): F_(13, 16), ((a,), a): F_(7, 48), ((a,), d): F_(1, 48),
        ((b,), a): F_(19, 24), ((b,), b): F_(1, 8), ((b,), c): F_(1, 24),
        ((c, a), b): F_(29, 32), ((b, a), b): F_(29, 32), ((a, b), a): F_(43, 48), ((a, b), d): F_(1, 48),
        ((a, a), b): F_(13, 16), ((d, d), a): F_(7, 12),  # unseen histories: the lower order
    }  # fmt: skip
    for (h, w), p in expected.items():
        assert prob(model, h, w) == pytest.approx(float(p), abs=1e-12), (h, w)
    seq = [str(i) for i in [2, 0, 1, 0, 1]]
    ref = nltk_lm.KneserNeyInterpolated(3, discount=0.5)
    ref.fit([list(everygrams(seq, max_len=3))], vocabulary_text=seq)
    with pytest.raises(ZeroDivisionError):
        ref.score("0", ("2",))


def test_sums_to_one_where_nltk_does_not():
    """Corpus "a c b a b", order 3, D = 0.5: the bigram "a c" occurs only at the start, so nltk's
    N(a .) = 2 (raw: c, b) against one continuation type (b): its p(. | a) sums to 1.5; ours to 1."""
    seq = list("acbab")
    ref = nltk_lm.KneserNeyInterpolated(3, discount=0.5)
    ref.fit([list(everygrams(seq, max_len=3))], vocabulary_text=seq)
    assert sum(ref.score(w, ("a",)) for w in ref.vocab) == pytest.approx(1.5)
    model = build(4, [0, 2, 1, 0, 1], order=3, discount=(0.0, 0.5, 0.5))  # a 0, b 1, c 2; 3 = <UNK>
    assert sum(prob(model, (0,), w) for w in range(4)) == pytest.approx(1.0, abs=1e-12)


def test_estimated_discounts():
    """D_m = n1 / (n1 + 2 n2) of the counts each order uses: for "c a b a b", order 3 raw (1, 1, 1):
    n1 = 3, n2 = 0, D = 1; order 2 continuation (ab 2, ba 1) and order 1 (a 2, b 1): 1/3.
    An order with no singletons falls back to 0.5; add-k uses none."""
    model = build(4, [2, 0, 1, 0, 1], order=3)
    torch.testing.assert_close(model.discounts, torch.tensor([1 / 3, 1 / 3, 1.0], dtype=torch.float64))
    model = build(2, [0, 1] * 10, order=2)  # bigrams 01 x10, 10 x9; unigram continuations 1 each -> n1 = 2, n2 = 0
    torch.testing.assert_close(model.discounts, torch.tensor([1.0, 0.5], dtype=torch.float64))


# --------------------------------------------------------------------------- distributions


@pytest.mark.parametrize("smoothing", ["kneser-ney", "add-k"])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_every_history_sums_to_one_and_unseen_tokens_keep_mass(smoothing, n):
    """Random histories (seen, unseen, with tokens never counted) of every length: the V probabilities
    sum to 1 and are all > 0, with the discounts estimated from the counts."""
    V = 12
    g = torch.Generator().manual_seed(n)
    model = build(V, torch.randint(0, V - 3, (400,), generator=g), order=n, smoothing=smoothing, k=0.5)  # ids 9..11 unseen
    idx = torch.randint(0, V, (64, model.context), generator=g)
    idx[:32, -min(2, model.context) :] = torch.randint(0, V - 3, (32, min(2, model.context)), generator=g)  # histories seen
    probs = torch.stack([model._prob(idx, torch.full((*idx.shape, 1), w)).squeeze(-1) for w in range(V)], -1)
    torch.testing.assert_close(probs.sum(-1), torch.ones(idx.shape, dtype=torch.float64), rtol=0, atol=1e-12)
    assert (probs > 0).all()


def test_forward_is_normalized_and_equals_nll_through_cross_entropy():
    V, n = 10, 5
    g = torch.Generator().manual_seed(0)
    model = build(V, torch.randint(0, V, (2000,), generator=g), order=n)
    idx = torch.randint(0, V, (6, n - 1), generator=g)
    targets = torch.randint(0, V, (6, n - 1), generator=g)
    logp = model(idx)
    assert logp.shape == (6, n - 1, V) and logp.dtype == torch.get_default_dtype()
    torch.testing.assert_close(logp.logsumexp(-1), torch.zeros(6, n - 1), rtol=0, atol=1e-5)
    ce = F.cross_entropy(logp.flatten(0, 1), targets.flatten(), reduction="none").view(6, n - 1)
    torch.testing.assert_close(ce, model.nll(idx, targets).float(), rtol=1e-5, atol=1e-5)


def test_a_long_row_is_a_sliding_window_and_the_model_is_causal():
    """nll over a row of any length: position t is the last position of the window idx[t-n+2 : t+1]
    (the row's start: a shorter window); forward's position t does not change with idx[:, t+1:]."""
    V, n = 7, 4
    g = torch.Generator().manual_seed(1)
    model = build(V, torch.randint(0, V, (500,), generator=g), order=n)
    row = torch.randint(0, V, (1, 30), generator=g)
    targets = torch.randint(0, V, (1, 30), generator=g)
    nll = model.nll(row, targets)
    for t in range(30):
        window = row[:, max(0, t - n + 2) : t + 1]
        assert float(model.nll(window, targets[:, t : t + 1].expand_as(window))[0, -1]) == pytest.approx(
            float(nll[0, t]), abs=1e-12
        )
    idx = torch.randint(0, V, (3, n - 1), generator=g)
    out = model(idx)
    for t in range(n - 1):
        changed = idx.clone()
        changed[:, t + 1 :] = (changed[:, t + 1 :] + 1) % V
        torch.testing.assert_close(model(changed)[:, : t + 1], out[:, : t + 1], rtol=0, atol=0)
        if t + 1 < n - 1:
            assert not torch.equal(model(changed)[:, t + 1 :], out[:, t + 1 :])


def test_unfitted_model_is_uniform():
    model = NGramLM(9, None, NGramConfig(order=3))
    torch.testing.assert_close(model(torch.tensor([[1, 2]])).exp(), torch.full((1, 2, 9), 1 / 9))


# --------------------------------------------------------------------------- counts as buffers


def test_fit_resets_and_is_idempotent():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randint(0, 8, (300,), generator=g), torch.randint(0, 8, (50,), generator=g)
    model = build(8, a, order=3)
    first = {k: v.clone() for k, v in model.state_dict().items()}
    model.fit(a)
    for k, v in model.state_dict().items():
        assert torch.equal(v, first[k]), k
    model.fit(b).fit(a)  # nothing of b is left
    for k, v in model.state_dict().items():
        assert torch.equal(v, first[k]), k
    assert int(model.counts1.sum()) == 300 and int(model.counts3.sum()) == 298
    # keys are the base-V numbers of the n-grams, sorted
    assert torch.equal(model.keys2, torch.unique(a[:-1] * 8 + a[1:]))


def test_counts_are_buffers_saved_with_safetensors_and_loaded_at_any_size(tmp_path):
    from safetensors.torch import load_file, save_file

    g = torch.Generator().manual_seed(3)
    model = build(11, torch.randint(0, 11, (700,), generator=g), order=4)
    assert list(model.parameters()) == [] and sum(p.numel() for p in model.parameters()) == 0
    state = model.state_dict()
    assert set(state) == {f"{k}{m}" for k in ("keys", "counts") for m in range(1, 5)} | {"discounts"}
    save_file(state, str(tmp_path / "model.safetensors"))
    idx, targets = torch.randint(0, 11, (4, 9), generator=g), torch.randint(0, 11, (4, 9), generator=g)
    for fresh in (NGramLM(11, None, NGramConfig(order=4)), build(11, torch.randint(0, 11, (50,), generator=g), order=4)):
        fresh.load_state_dict(load_file(str(tmp_path / "model.safetensors")))  # strict: every key, resized
        torch.testing.assert_close(fresh.nll(idx, targets), model.nll(idx, targets), rtol=0, atol=0)
        torch.testing.assert_close(fresh.discounts, model.discounts)


# --------------------------------------------------------------------------- contract and registration


def test_contract_attributes_and_variants():
    for name, order in (("ngram3", 3), ("ngram5", 5)):
        entry = get_model_entry(name)
        assert (entry.task, entry.inputs, entry.num_params) == ("language-model", "tokens", 0)
        assert entry.input_size == (entry.num_classes, order - 1)
        model = create_model(name)
        assert (model.objective, model.context, model.classifier_modules, model.order) == ("causal", order - 1, (), order)
        assert model.cfg.smoothing == "kneser-ney"
    assert NGramLM(5, None, NGramConfig(order=1)).context == 1  # a unigram model still takes one position


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="num_classes"):
        NGramLM(10, 11)
    with pytest.raises(UserError, match="num_classes"):
        create_model("ngram3", vocab_size=10, num_classes=11)
    for cfg in (dict(order=0), dict(smoothing="witten-bell"), dict(smoothing="add-k", k=0.0), dict(discount=1.5),
                dict(order=3, discount=(0.5, 0.5))):  # fmt: skip
        with pytest.raises(ValueError):
            NGramLM(10, None, NGramConfig(**cfg))
    with pytest.raises(ValueError, match="int64"):
        NGramLM(50_000, None, NGramConfig(order=5))
    model = build(10, torch.arange(10), order=3)
    with pytest.raises(ValueError, match="context"):
        model(torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        model(torch.tensor([[3, 10]]))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        model.fit(torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="shape"):
        model.nll(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))
