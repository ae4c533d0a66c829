"""Synthetic sequence tasks for recurrent networks, at controllable lengths and distances.

Every generator takes a seed (its own torch.Generator: the global RNG is never touched) and
returns tensors; the same arguments give the same tensors.

    recall_task(n, distance, vocab)        remember the first token across `distance` distractors
    copy_task(n, symbols, delay, vocab)    copy a string after a blank delay
    adding_problem(n, length)              add the two marked numbers of a long sequence
    lookahead_task(n, length, vocab, k)    label each position with the token k steps away
    markov_sequences(n, length, ...)       token streams of a seeded first-order Markov chain

Papers:
    copy / recall, adding problem  Hochreiter & Schmidhuber 1997, "Long Short-Term Memory",
                                   Neural Computation 9(8) (experiments 4-5: the adding problem
                                   and long minimal time lags)
    adding problem, its baseline   Le, Jaitly & Hinton 2015, "A Simple Way to Initialize
                                   Recurrent Networks of Rectified Linear Units", arXiv:1504.00941
    copy task (blank delay)        Arjovsky, Shah & Bengio 2016, "Unitary Evolution Recurrent
                                   Neural Networks", arXiv:1511.06464

Baselines (what a model that learned nothing about the dependency scores):
    recall / lookahead   accuracy 1 / vocab (the answer is uniform and independent of what the
                         model may use)
    copy                 cross-entropy log(vocab) on the copied positions
    adding problem       predicting the constant 1.0 (the mean of the sum of two U(0, 1)):
                         MSE = Var(u1 + u2) = 2 / 12 = 1/6 = 0.1667 exactly. Le et al. 2015
                         quote 0.1767 for this baseline; the expectation is 0.1667
                         (ADDING_BASELINE_MSE), which is what a large sample measures.
    markov               the chain's entropy rate (markov_entropy_rate), the lowest expected
                         next-token loss of any causal predictor

The data layer imports only torch, numpy and deepnotes.errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "ADDING_BASELINE_MSE",
    "IGNORE",
    "MarkovChain",
    "adding_problem",
    "copy_task",
    "lookahead_task",
    "markov_chain",
    "markov_entropy_rate",
    "markov_sequences",
    "recall_task",
]

ADDING_BASELINE_MSE = 1.0 / 6.0  # E[(u1 + u2 - 1)^2] = Var(u1) + Var(u2) = 1/12 + 1/12
IGNORE = -100  # target of positions without an answer (F.cross_entropy's default ignore_index)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _check(**values: int) -> None:
    for name, v in values.items():
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def recall_task(
    n: int, distance: int, vocab: int = 8, *, distractors: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Remember the first token: x (n, distance + 1) int64, y (n,) int64.

    x[:, 0] is the token to remember, uniform over 0..vocab-1; x[:, 1:] are `distance`
    distractors, uniform over their own tokens vocab..vocab + distractors - 1 (default
    distractors = vocab; distractors=1: one blank token repeated), so the first token is the only
    one that matters; y = x[:, 0]. The input vocabulary has vocab + distractors tokens. Read at
    the last step, the answer lies `distance` steps back: chance accuracy is 1 / vocab.
    """
    distractors = vocab if distractors is None else distractors
    _check(n=n, distance=distance, vocab=vocab, distractors=distractors)
    g = _generator(seed)
    y = torch.randint(0, vocab, (n,), generator=g)
    distractors = torch.randint(vocab, vocab + distractors, (n, distance), generator=g)
    return torch.cat([y[:, None], distractors], 1), y


def copy_task(n: int, symbols: int, delay: int, vocab: int = 8, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy a string after a delay (Arjovsky et al. 2016's form): x, y (n, symbols + delay + symbols + 1) int64.

    Tokens: 0..vocab-1 the symbols, vocab the blank, vocab + 1 the "go" marker (vocab + 2 input
    tokens). x = `symbols` random symbols, `delay` blanks, the marker, then `symbols` blanks; y is
    IGNORE everywhere except the last `symbols` positions, which hold the symbols in order. The
    first symbol is delay + symbols + 1 steps before its answer. Chance: cross-entropy log(vocab)
    and accuracy 1 / vocab on the answered positions.
    """
    _check(n=n, symbols=symbols, delay=delay, vocab=vocab)
    g = _generator(seed)
    s = torch.randint(0, vocab, (n, symbols), generator=g)
    blank, go = vocab, vocab + 1
    x = torch.full((n, 2 * symbols + delay + 1), blank, dtype=torch.long)
    x[:, :symbols] = s
    x[:, symbols + delay] = go
    y = torch.full_like(x, IGNORE)
    y[:, -symbols:] = s
    return x, y


def adding_problem(n: int, length: int, *, distance: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem: x (n, length, 2) float32, y (n,) float32.

    Channel 0 holds numbers uniform in [0, 1]; channel 1 is 0 except two 1s that mark two
    positions; y is the sum of the two marked numbers, read at the last step. Le et al. 2015's
    form: the first mark uniform in the first half (positions 0..length//2 - 1), the second in
    the second half. distance=d instead puts the first mark exactly d steps before the last step
    (position length - 1 - d) and the second mark uniform among the positions after it, so the
    first number must be kept for d steps. Predicting 1.0 gives MSE 1/6 (ADDING_BASELINE_MSE).
    """
    _check(n=n, length=length)
    if length < 2:
        raise ValueError(f"the adding problem needs length >= 2, got {length}")
    g = _generator(seed)
    values = torch.rand(n, length, generator=g)
    rows = torch.arange(n)
    if distance is None:
        half = length // 2
        first = torch.randint(0, half, (n,), generator=g)
        second = torch.randint(half, length, (n,), generator=g)
    else:
        _check(distance=distance)
        if distance > length - 1:
            raise ValueError(f"distance must be <= length - 1 = {length - 1}, got {distance}")
        first = torch.full((n,), length - 1 - distance, dtype=torch.long)
        second = first + 1 + torch.randint(0, distance, (n,), generator=g)
    marks = torch.zeros(n, length)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return torch.stack([values, marks], -1), y


def lookahead_task(n: int, length: int, vocab: int = 8, offset: int = 3, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Label every position with the token `offset` steps away: x, y (n, length) int64.

    x is uniform over 0..vocab-1; y[:, t] = x[:, t + offset], IGNORE where t + offset falls
    outside the sequence. offset > 0: the answer is a later token (a model that reads only the
    past can do no better than chance, 1 / vocab: the future is independent of it); offset < 0:
    an earlier token (a causal model can learn it); offset = 0: the token itself.
    """
    _check(n=n, length=length, vocab=vocab)
    if abs(offset) >= length:
        raise ValueError(f"|offset| must be < length = {length}, got {offset}")
    x = torch.randint(0, vocab, (n, length), generator=_generator(seed))
    y = torch.full_like(x, IGNORE)
    if offset >= 0:
        y[:, : length - offset] = x[:, offset:]
    else:
        y[:, -offset:] = x[:, :offset]
    return x, y


@dataclass(frozen=True)
class MarkovChain:
    """A first-order Markov chain over `vocab` tokens: start (vocab,) and transition (vocab, vocab) probabilities."""

    start: torch.Tensor
    transition: torch.Tensor

    @property
    def vocab(self) -> int:
        return self.transition.shape[0]


def markov_chain(vocab: int = 8, successors: int = 2, *, seed: int = 0) -> MarkovChain:
    """A seeded chain in which each token has `successors` possible next tokens (distinct, chosen
    at random) with random Dirichlet(1) probabilities; the start distribution is the stationary
    one (the chain is then stationary from the first token)."""
    _check(vocab=vocab, successors=successors)
    if successors > vocab:
        raise ValueError(f"successors must be <= vocab = {vocab}, got {successors}")
    g = _generator(seed)
    transition = torch.zeros(vocab, vocab, dtype=torch.float64)
    for i in range(vocab):
        nxt = torch.randperm(vocab, generator=g)[:successors]
        p = -torch.log(torch.rand(successors, generator=g, dtype=torch.float64))  # Exp(1) draws -> Dirichlet(1)
        transition[i, nxt] = p / p.sum()
    return MarkovChain(_stationary(transition), transition)


def _stationary(transition: torch.Tensor) -> torch.Tensor:
    """The stationary distribution (the left eigenvector for eigenvalue 1), by power iteration on a
    lazy chain (0.5 I + 0.5 P has the same stationary distribution and no periodicity)."""
    p = torch.full((transition.shape[0],), 1.0 / transition.shape[0], dtype=torch.float64)
    lazy = 0.5 * torch.eye(transition.shape[0], dtype=torch.float64) + 0.5 * transition
    for _ in range(10_000):
        q = p @ lazy
        if torch.allclose(q, p, atol=1e-15, rtol=0):
            break
        p = q
    return q / q.sum()


def markov_entropy_rate(chain: MarkovChain) -> float:
    """H = sum_i pi_i H(P_i) in nats: the expected next-token loss of the best causal predictor of
    a stationary chain (the true transition probabilities)."""
    P = chain.transition
    logs = torch.where(P > 0, torch.log(P.clamp_min(1e-300)), torch.zeros_like(P))
    return float(-(chain.start * (P * logs).sum(1)).sum())


def markov_sequences(n: int, length: int, chain: MarkovChain, *, seed: int = 0) -> torch.Tensor:
    """(n, length) int64 token streams drawn from `chain`: the first token from chain.start, each next
    one from the previous one's row of chain.transition. For next-token prediction, the input is
    x[:, :-1] and the target x[:, 1:]; the best causal loss is markov_entropy_rate(chain)."""
    _check(n=n, length=length)
    g = _generator(seed)
    x = torch.empty(n, length, dtype=torch.long)
    x[:, 0] = torch.multinomial(chain.start.expand(n, -1), 1, generator=g)[:, 0]
    for t in range(1, length):
        x[:, t] = torch.multinomial(chain.transition[x[:, t - 1]], 1, generator=g)[:, 0]
    return x

