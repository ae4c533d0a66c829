"""An n-gram (Markov chain) language model over token ids: counts, smoothed.

The oldest text generator of the notes: the next token depends only on the n - 1 tokens before
it, p(w_t | w_1 .. w_{t-1}) ~ p(w_t | w_{t-n+1} .. w_{t-1}), estimated from the counts c(.) of
the n-grams of a corpus. Two smoothings (Chen & Goodman 1998, "An Empirical Study of Smoothing
Techniques for Language Modeling", TR-10-98), h a history, V the vocabulary size:

    add-k (Lidstone; k = 1 is Laplace)
        p(w | h) = (c(h w) + k) / (c(h) + V k),            c(h) = sum_w c(h w)

    interpolated Kneser-Ney (section 3.5; one discount D_m per order m, not the modified
    KN with three discounts per order)
        p_m(w | h) = max(c_m(h w) - D_m, 0) / c_m(h .)  +  D_m N_m(h .) / c_m(h .) * p_{m-1}(w | h')
        p_0(w)     = 1 / V                                  (so unseen tokens keep p > 0)
    h' = h without its first token; c_m(h .) = sum_w c_m(h w); N_m(h .) = #{w : c_m(h w) > 0};
    c_n = the raw counts at the highest order n, c_m for m < n the continuation counts
    N1+(. h w) = #{v : c(v h w) > 0} (how many distinct tokens precede h w). Where c_m(h .) = 0
    (a history never seen at that order) the term is skipped: p_m = p_{m-1}.
    D_m = n1 / (n1 + 2 n2), n1 and n2 the numbers of m-grams whose c_m is 1 and 2 (Ney, Essen &
    Kneser 1994, as Chen & Goodman estimate it), or 0.5 for an order without singletons (n1 = 0,
    where the formula would give D = 0 and unseen tokens probability 0). `discount` replaces
    them: one float for every order, or one per order (D_1 .. D_n); D_1 = 0 removes the uniform
    floor (nltk's convention, below), so unseen tokens then get probability 0.

Both distributions sum to 1 over the vocabulary for every history (so perplexity means
something). The model is stateless text statistics: an nn.Module with no parameters, whose
counts are buffers (keys{m}: each distinct m-gram as the base-V integer w_1 V^{m-1} + ... + w_m,
sorted; counts{m}: its count), saved like weights; loading resizes them to the checkpoint's.

    model = create_model("ngram3", vocab_size=len(vocab))
    model.fit(train_ids)                          # 1-D ids: counts every order, from scratch
    nll = model.nll(idx, targets)                 # (B, T) -log p(targets | the n - 1 previous tokens)
    logp = model(idx)                             # (B, T, V) log-probabilities, T <= n - 1

Histories. Position t of a row of idx sees idx[:, max(0, t - n + 2) : t + 1]; near the start
of a row the history is shorter than n - 1 and the model of that lower order is used (for
Kneser-Ney with its continuation counts, as nltk.lm does: the distribution the higher orders
interpolate with). fit() counts the ids as one stream without padding or sentence marks; every
token id is a word to it. Departures from nltk.lm (tests/test_ngram.py compares with it): nltk's
Kneser-Ney unigram is the undiscounted continuation distribution with no uniform floor (here:
D_1 = 0 gives it), and at lower orders nltk counts N(h .) from the raw counts rather than the
continuation counts, which differ only for m-grams that occur at the very start of the corpus
(nltk's then sum to more than 1, or divide by zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepnotes.registry import Variant, register_variants

PAPER = "Chen & Goodman 1998, An Empirical Study of Smoothing Techniques for Language Modeling (TR-10-98)"
SMOOTHINGS = ("kneser-ney", "add-k")
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class NGramConfig:
    order: int = 3  # n: the next token given the n - 1 before it
    smoothing: str = "kneser-ney"  # kneser-ney | add-k
    k: float = 1.0  # add-k's pseudo-count (1: Laplace); unused by Kneser-Ney
    discount: float | tuple[float, ...] | None = None  # Kneser-Ney's D_1..D_n; None: n1 / (n1 + 2 n2) per order


def _lookup(keys: torch.Tensor, values: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """values[i] where keys[i] == query (keys sorted), 0 where the query is not a key."""
    if keys.numel() == 0:
        return torch.zeros(query.shape, dtype=values.dtype, device=query.device)
    i = torch.searchsorted(keys, query).clamp_(max=keys.numel() - 1)
    return torch.where(keys[i] == query, values[i], torch.zeros((), dtype=values.dtype, device=query.device))


def _count(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct keys, sorted, and how often each occurs (one sort: torch.unique)."""
    unique, counts = torch.unique(keys, sorted=True, return_counts=True)
    return unique, counts.to(torch.int64)


class NGramLM(nn.Module):
    """Counts of every order 1..n and a smoothed p(w | h) from them (see the module docstring)."""

    objective = "causal"
    classifier_modules = ()

    def __init__(self, vocab_size: int, num_classes: int | None = None, cfg: NGramConfig = NGramConfig()):
        super().__init__()
        if num_classes not in (None, vocab_size):
            raise ValueError(f"a language model predicts its own tokens: num_classes must be None or vocab_size ({vocab_size})")
        n = cfg.order
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"order must be an integer >= 1, got {n!r}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if vocab_size**n > _INT64_MAX:  # an n-gram is one int64 key
            raise ValueError(f"vocab_size ** order must fit in int64: {vocab_size} ** {n} does not; lower the order")
        if cfg.smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {', '.join(SMOOTHINGS)}, got {cfg.smoothing!r}")
        if not cfg.k > 0:
            raise ValueError(f"k must be > 0 (k = 0 would give unseen tokens probability 0), got {cfg.k}")
        discount = cfg.discount
        if discount is not None:
            discount = [float(discount)] * n if isinstance(discount, (int, float)) else [float(d) for d in discount]
            if len(discount) != n or not all(0.0 <= d <= 1.0 for d in discount):
                raise ValueError(f"discount must be one number in [0, 1] or {n} of them (D_1..D_n), got {cfg.discount!r}")
        self.cfg, self.vocab_size, self.num_classes, self.order = cfg, vocab_size, vocab_size, n
        self.context = n - 1 if n > 1 else 1  # a unigram model still needs one position to predict at
        self._given_discount = discount
        for m in range(1, n + 1):  # the counts: saved, and resized when a checkpoint is loaded
            self.register_buffer(f"keys{m}", torch.zeros(0, dtype=torch.int64))
            self.register_buffer(f"counts{m}", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("discounts", torch.tensor(discount or [0.5] * n, dtype=torch.float64))
        # derived from the counts (rebuilt by fit and by loading): per order, the counts the estimate
        # uses (continuation counts for Kneser-Ney's lower orders) and, per history, their sum and types
        for m in range(1, n + 1):
            for name in ("table_keys", "table_counts", "hist_keys", "hist_total", "hist_types"):
                self.register_buffer(f"{name}{m}", torch.zeros(0, dtype=torch.int64), persistent=False)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, order={self.order}, smoothing={self.cfg.smoothing!r}"

    # -- counting

    @torch.no_grad()
    def fit(self, ids: torch.Tensor) -> NGramLM:
        """Count every m-gram (m = 1..n) of the 1-D token ids, replacing what was counted before."""
        ids = torch.as_tensor(ids)
        if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(f"fit expects a 1-D tensor of token ids, got {tuple(ids.shape)} {ids.dtype}")
        ids = ids.to(device=self.keys1.device, dtype=torch.int64)
        self._check_ids(ids, "fit's ids")
        N, V = ids.numel(), self.vocab_size
        key = torch.zeros(N + 1, dtype=torch.int64, device=ids.device)
        for m in range(1, self.order + 1):
            key = key[: N - m + 1] * V + ids[m - 1 :] if N >= m else key[:0]  # the m-grams starting at 0..N-m
            keys, counts = _count(key)
            setattr(self, f"keys{m}", keys)
            setattr(self, f"counts{m}", counts)
        self._build_tables(estimate=self._given_discount is None and self.cfg.smoothing == "kneser-ney")
        return self

    def _build_tables(self, estimate: bool) -> None:
        n, V = self.order, self.vocab_size
        kn = self.cfg.smoothing == "kneser-ney"
        estimated = []
        for m in range(1, n + 1):
            keys, counts = getattr(self, f"keys{m}"), getattr(self, f"counts{m}")
            if kn and m < n:  # continuation counts N1+(. g): distinct (m+1)-grams whose last m tokens are g
                keys, counts = _count(getattr(self, f"keys{m + 1}") % V**m)
            hist, where, types = torch.unique_consecutive(keys // V, return_inverse=True, return_counts=True)  # keys sorted
            total = torch.zeros(hist.numel(), dtype=torch.int64, device=keys.device).index_add_(0, where, counts)
            for name, t in zip(("table_keys", "table_counts", "hist_keys", "hist_total", "hist_types"),
                               (keys, counts, hist, total, types.to(torch.int64))):  # fmt: skip
                setattr(self, f"{name}{m}", t)
            n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
            estimated.append(n1 / (n1 + 2 * n2) if n1 > 0 else 0.5)
        if estimate:
            self.discounts = torch.tensor(estimated, dtype=torch.float64, device=self.discounts.device)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        # the counts have the size of the corpus they came from: take the checkpoint's sizes
        for m in range(1, self.order + 1):
            for name in (f"keys{m}", f"counts{m}"):
                t = state_dict.get(prefix + name)
                if isinstance(t, torch.Tensor) and t.dim() == 1:
                    old = self._buffers[name]
                    self._buffers[name] = torch.zeros(t.shape, dtype=old.dtype, device=old.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        self._build_tables(estimate=False)  # the discounts are loaded with the counts

    # -- probabilities

    def _check_ids(self, ids: torch.Tensor, what: str) -> None:
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(f"{what} must be token ids in [0, {self.vocab_size}), got {int(ids.min())}..{int(ids.max())}")

    @torch.no_grad()
    def _prob(self, idx: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """p(words[b, t, j] | the history of position t of idx), float64 (B, T, W)."""
        B, T = idx.shape
        n, V = self.order, self.vocab_size
        pos = torch.arange(T, device=idx.device)
        top = (pos + 2).clamp(max=n)[None, :, None]  # the highest order position t can use: history min(t + 1, n - 1)
        hist = torch.zeros_like(idx)  # the key of the last m - 1 tokens up to t
        p = torch.full(words.shape, 1.0 / V, dtype=torch.float64, device=idx.device)
        for m in range(1, n + 1):
            if m >= 2:  # prepend token t - m + 2 as the most significant digit (0 where the row has none: unused)
                shifted = torch.cat([idx.new_zeros(B, m - 2), idx[:, : max(T - m + 2, 0)]], dim=1)[:, :T]
                hist = hist + shifted * V ** (m - 2)
            total = _lookup(getattr(self, f"hist_keys{m}"), getattr(self, f"hist_total{m}"), hist)[..., None].double()
            c = _lookup(getattr(self, f"table_keys{m}"), getattr(self, f"table_counts{m}"), hist[..., None] * V + words).double()
            if self.cfg.smoothing == "add-k":
                k = self.cfg.k
                p = torch.where(top == m, (c + k) / (total + V * k), p)
                continue
            types = _lookup(getattr(self, f"hist_keys{m}"), getattr(self, f"hist_types{m}"), hist)[..., None].double()
            D, seen = float(self.discounts[m - 1]), total > 0
            safe = total.clamp(min=1)
            alpha = torch.where(seen, (c - D).clamp(min=0) / safe, 0.0)
            gamma = torch.where(seen, D * types / safe, 1.0)  # an unseen history gives all its mass to order m - 1
            p = torch.where(top >= m, alpha + gamma * p, p)
        return p

    def _check(self, idx: torch.Tensor, name: str = "idx") -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype.is_floating_point or idx.dtype == torch.bool:
            raise ValueError(f"{name} must be a (B, T) tensor of token ids, got {getattr(idx, 'shape', type(idx))}")
        self._check_ids(idx, name)
        return idx.to(device=self.keys1.device, dtype=torch.int64)

    def nll(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """-log p(targets[:, t] | idx[:, max(0, t - n + 2) : t + 1]), float64 (B, T); any T (a sliding window)."""
        idx, targets = self._check(idx), self._check(targets, "targets")
        if targets.shape != idx.shape:
            raise ValueError(f"targets must have idx's shape {tuple(idx.shape)}, got {tuple(targets.shape)}")
        return -self._prob(idx, targets[..., None]).squeeze(-1).log()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (B, T, V) of the token after each position (normalized: logsumexp 0),
        in the default float dtype. T <= context (the contract; nll takes any T)."""
        idx = self._check(idx)
        if idx.shape[1] > self.context:
            raise ValueError(f"at most context = {self.context} positions, got {idx.shape[1]} (nll takes any length)")
        words = torch.arange(self.vocab_size, device=idx.device).expand(*idx.shape, -1)
        return self._prob(idx, words).log().to(torch.get_default_dtype())


def _ngram(vocab_size: int = 65, num_classes: int | None = None, **cfg) -> NGramLM:
    if isinstance(cfg.get("discount"), list):  # JSON has no tuples
        cfg["discount"] = tuple(cfg["discount"])
    return NGramLM(vocab_size, num_classes, NGramConfig(**cfg))


# No trainable parameters: the counts are data (buffers), so every variant has num_params = 0.
_VOCAB = 65  # tinyshakespeare's characters; the trainer builds the model for the data's own vocabulary
VARIANTS: dict[str, Variant] = {
    "ngram3": Variant(
        "n-gram language model, order 3 (a token given the 2 before it), interpolated Kneser-Ney",
        num_params=0,
        input_size=(_VOCAB, 2),
        num_classes=_VOCAB,
        config=NGramConfig(order=3),
        task="language-model",
        inputs="tokens",
    ),
    "ngram5": Variant(
        "n-gram language model, order 5 (a token given the 4 before it), interpolated Kneser-Ney",
        num_params=0,
        input_size=(_VOCAB, 4),
        num_classes=_VOCAB,
        config=NGramConfig(order=5),
        task="language-model",
        inputs="tokens",
    ),
}
register_variants(_ngram, VARIANTS, paper=PAPER)
