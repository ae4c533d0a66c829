"""Sampling text from a causal language model, one token at a time.

    for token in generate(model, prompt, 200, temperature=0.8, top_k=40, generator=g):
        print(vocab.decode(token.tolist()), end="", flush=True)     # token: (B,) ids, as they come

Works for every causal model of the language-model contract (objective "causal": forward(idx (B, T))
-> logits (B, T, V), `context` the most tokens it looks at, None for unbounded). At each step the
model reads the last `context` tokens (all of them when context is None), and the next token is
drawn from its last position's distribution, reshaped by (in this order, as Hugging Face's and
nanoGPT's samplers):

- temperature tau: logits / tau, the softmax as a Boltzmann distribution at temperature tau; tau < 1
  sharpens, tau > 1 flattens; tau = 0 means greedy decoding (argmax, the first of equal maxima);
- top-k (Fan, Lewis & Dauphin 2018): only the k largest logits stay (exactly k, ties broken as
  torch.topk breaks them);
- top-p, nucleus sampling (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration"):
  only the smallest set of most probable tokens whose probabilities sum to >= p stays (at least the
  most probable one). The probabilities are those after temperature and top-k, renormalised.
  A sum within 1e-6 of p counts as reaching it, so that a set adding up to p exactly in real
  numbers is not widened by float rounding (0.5 + 0.3 = 0.8 may come out as 0.79999995).

then the kept probabilities are renormalised and torch.multinomial draws with `generator` (same
seed, same tokens). No key/value cache: each step recomputes the model over the whole window
(simple, and the same code as forward(); an O(T) cache would be the speed-up for long samples).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["generate", "next_token_probs", "sample_next"]

NUCLEUS_TOLERANCE = 1e-6


def _check(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not (math.isfinite(temperature) and temperature >= 0)
    ):
        raise ValueError(f"temperature must be a finite number >= 0 (0: greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 (or None: no top-k), got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] (or None: no nucleus), got {top_p!r}")


def _check_logits(logits: torch.Tensor) -> None:
    if logits.dim() != 2 or logits.shape[1] == 0:
        raise ValueError(f"expected logits (B, V) with V >= 1, got shape {tuple(logits.shape)}")
    if torch.isnan(logits).any():
        raise ValueError("the logits contain NaN")


def _filtered_logits(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Temperature, then top-k, then top-p: removed tokens get -inf. temperature > 0."""
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[1]:
        values, indices = torch.topk(logits, top_k, dim=1)
        logits = torch.full_like(logits, -math.inf).scatter(1, indices, values)  # exactly k, even among ties
    if top_p is not None and top_p < 1:
        probs = torch.softmax(logits.double(), dim=1)  # float64: the running sums are compared with p
        sorted_probs, order = torch.sort(probs, dim=1, descending=True, stable=True)
        before = sorted_probs.cumsum(dim=1) - sorted_probs  # what the more probable tokens already hold
        keep_sorted = before < top_p - NUCLEUS_TOLERANCE
        keep_sorted[:, 0] = True  # the most probable token always stays
        keep = torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)
        logits = logits.masked_fill(~keep, -math.inf)
    return logits


def next_token_probs(
    logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """The distribution sample_next draws from: (B, V) float probabilities, each row summing to 1
    (temperature 0: one-hot at the argmax)."""
    _check(temperature, top_k, top_p)
    _check_logits(logits)
    if temperature == 0:
        return torch.zeros(logits.shape, device=logits.device).scatter(1, logits.argmax(dim=1, keepdim=True), 1.0)
    return torch.softmax(_filtered_logits(logits, temperature, top_k, top_p), dim=1)


def sample_next(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row of logits (B, V): (B,) long ids. Temperature 0 is greedy (the generator unused)."""
    _check(temperature, top_k, top_p)
    _check_logits(logits)
    if temperature == 0:
        return logits.argmax(dim=1)
    probs = torch.softmax(_filtered_logits(logits, temperature, top_k, top_p), dim=1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def generate(
    model: nn.Module,
    prompt: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:
    """Yield max_new_tokens new tokens, each (B,) long, as they are drawn, continuing prompt (B, T >= 1).

    The model reads the last model.context tokens of prompt + what was drawn so far (all of them
    when context is None), in eval mode and without gradients; between steps its train/eval mode is
    what the caller left (and grad mode is the caller's: torch.no_grad decorates the generator).
    The arguments are checked here, before the first token is asked for.
    """
    _check(temperature, top_k, top_p)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if prompt.dim() != 2 or prompt.shape[1] == 0 or prompt.dtype != torch.long:
        raise ValueError(
            f"expected a prompt of token ids (B, T >= 1), dtype long, got shape {tuple(prompt.shape)}, {prompt.dtype}"
        )
    if getattr(model, "objective", "causal") != "causal":
        raise ValueError(f"generate needs a causal language model; this one's objective is {model.objective!r}")
    context = model.context
    return _tokens(model, prompt, max_new_tokens, context, temperature, top_k, top_p, generator)


@torch.no_grad()
def _tokens(model, prompt, max_new_tokens, context, temperature, top_k, top_p, generator) -> Iterator[torch.Tensor]:
    seq = prompt if context is None else prompt[:, -context:]
    for _ in range(max_new_tokens):
        was_training = model.training
        model.eval()
        try:
            logits = model(seq)[:, -1]
        finally:
            model.train(was_training)
        token = sample_next(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        seq = torch.cat([seq, token[:, None]], dim=1)
        if context is not None:
            seq = seq[:, -context:]  # only the window is ever read again
        yield token
