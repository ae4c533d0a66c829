"""Sampling (models/sampling.py): hand-worked top-k and top-p cases, greedy, temperature, the sampled
frequencies against the renormalised distribution (chi-square), seeds, bad arguments, and generate()
with a tiny GPT (context cropping) and a model of unbounded context.

Tolerances: hand-worked probabilities 1e-6 (float32 softmax of log-probabilities); the chi-square
test at the 0.1% level with a fixed seed (deterministic: it passes or fails the same way every run).
"""

import math

import pytest
import torch
from torch import nn

from deepnotes.models.gpt import GPT, GPTConfig
from deepnotes.models.sampling import generate, next_token_probs, sample_next

P4 = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
LOGITS4 = P4.log()  # softmax(LOGITS4) = P4


def close(a, b):
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype).reshape(a.shape), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- the distribution, by hand


def test_top_p_keeps_the_smallest_set_reaching_p():
    """[0.5, 0.3, 0.15, 0.05]: 0.5 + 0.3 = 0.8 reaches 0.8 (two kept); 0.81 needs the third."""
    close(next_token_probs(LOGITS4, top_p=0.8), [0.5 / 0.8, 0.3 / 0.8, 0, 0])
    close(next_token_probs(LOGITS4, top_p=0.81), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0])
    close(next_token_probs(LOGITS4, top_p=0.5), [1, 0, 0, 0])  # 0.5 alone reaches 0.5
    close(next_token_probs(LOGITS4, top_p=0.51), [0.5 / 0.8, 0.3 / 0.8, 0, 0])
    close(next_token_probs(LOGITS4, top_p=1e-9), [1, 0, 0, 0])  # at least the most likely token
    close(next_token_probs(LOGITS4, top_p=1.0), P4)
    close(next_token_probs(LOGITS4, top_p=0.96), P4)  # 0.95 < 0.96: all four
    # 0.65 + 0.2 comes out as 0.84999999527 from float32 logits: within the 1e-6 tolerance, it reaches 0.85
    close(next_token_probs(torch.tensor([[0.65, 0.2, 0.15]]).log(), top_p=0.85), [0.65 / 0.85, 0.2 / 0.85, 0])


def test_top_p_order_does_not_matter():
    perm = torch.tensor([2, 0, 3, 1])
    close(next_token_probs(LOGITS4[:, perm], top_p=0.8), torch.tensor([0.5 / 0.8, 0.3 / 0.8, 0, 0])[perm])


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    e3, e2 = math.exp(3), math.exp(2)
    close(next_token_probs(logits, top_k=2), [0, e3 / (e3 + e2), e2 / (e3 + e2), 0])
    close(next_token_probs(logits, top_k=1), [0, 1, 0, 0])
    close(next_token_probs(logits, top_k=4), torch.softmax(logits, 1))
    close(next_token_probs(logits, top_k=100), torch.softmax(logits, 1))  # k > V: everything


def test_top_k_keeps_exactly_k_among_ties_as_torch_topk():
    logits = torch.tensor([[1.0, 1.0, 1.0, 0.0, 1.0]])
    probs = next_token_probs(logits, top_k=2)
    kept = set(torch.topk(logits, 2).indices[0].tolist())
    assert set(probs[0].nonzero()[:, 0].tolist()) == kept and len(kept) == 2
    close(probs[0, sorted(kept)], [0.5, 0.5])


def test_top_p_applies_to_the_top_k_renormalised():
    """top_k 3 leaves [0.5, 0.3, 0.15] / 0.95 = [0.526, 0.316, 0.158]; then top_p 0.8 keeps two
    (0.526 < 0.8 <= 0.842), where without top-k 0.81 keeps three."""
    close(next_token_probs(LOGITS4, top_k=3, top_p=0.8), [0.5 / 0.8, 0.3 / 0.8, 0, 0])
    close(next_token_probs(LOGITS4, top_k=3, top_p=0.81), [0.5 / 0.8, 0.3 / 0.8, 0, 0])


def test_temperature_divides_the_logits():
    logits = torch.tensor([[1.0, 2.0, 4.0]])
    close(next_token_probs(logits, temperature=2.0), torch.softmax(logits / 2, 1))
    close(next_token_probs(logits, temperature=0.5), torch.softmax(logits * 2, 1))


def test_greedy_is_argmax_and_low_temperature_approaches_it():
    torch.manual_seed(0)
    logits = torch.randn(64, 50)
    logits[torch.arange(64), logits.argmax(1)] += 0.1  # a gap of >= 0.1 above the runner-up
    assert torch.equal(sample_next(logits, temperature=0), logits.argmax(1))
    close(next_token_probs(logits, temperature=0), nn.functional.one_hot(logits.argmax(1), 50).float())
    ties = torch.tensor([[0.0, 2.0, 2.0]])
    assert sample_next(ties, temperature=0).item() == 1  # the first of equal maxima
    best = logits.argmax(1)
    # the argmax's probability rises to 1 as the temperature falls (gap / temperature >= 100 at 0.001)
    p = [next_token_probs(logits, temperature=t).gather(1, best[:, None]).min().item() for t in (1.0, 0.1, 0.01, 0.001)]
    assert p == sorted(p) and p[0] < 0.5 and p[-1] > 0.999
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        assert torch.equal(sample_next(logits, temperature=1e-4, generator=g), best)


# --------------------------------------------------------------------------- sampling


def test_sampled_frequencies_follow_the_renormalised_distribution():
    """60,000 draws with top_k 5 and top_p 0.9 from 6 tokens: top-k removes the last; of the other five
    (probabilities .437, .265, .161, .072, .065) the first four hold .935 >= 0.9, so top-p removes the
    fifth. Removed tokens never appear, and the counts fit the four renormalised probabilities
    (chi-square, 3 degrees of freedom, 0.1% level: 16.27)."""
    logits = torch.tensor([[2.0, 1.5, 1.0, 0.2, 0.1, -1.0]]).expand(60_000, 6)
    probs = next_token_probs(logits[:1], top_k=5, top_p=0.9)[0]
    assert (probs[4:] == 0).all() and (probs[:4] > 0).all()
    close(probs[:4], torch.softmax(logits[0, :4], 0))
    g = torch.Generator().manual_seed(1234)
    tokens = sample_next(logits, top_k=5, top_p=0.9, generator=g)
    counts = torch.bincount(tokens, minlength=6).double()
    assert counts[4:].sum() == 0
    expected = probs[:4].double() * len(tokens)
    chi2 = ((counts[:4] - expected) ** 2 / expected).sum().item()
    assert chi2 < 16.27, chi2
    # the test has the power to see a small error: the same four tokens at temperature 1.1 fail it
    warmer = torch.softmax(logits[0, :4].double() / 1.1, 0) * len(tokens)
    assert ((counts[:4] - warmer) ** 2 / warmer).sum().item() > 16.27


def test_same_seed_same_tokens():
    torch.manual_seed(0)
    logits = torch.randn(8, 30)

    def draw(seed):
        return sample_next(logits, temperature=1.3, top_p=0.95, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))
    out = sample_next(logits)
    assert out.shape == (8,) and out.dtype == torch.long


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": -0.1}, "temperature"), ({"temperature": float("nan")}, "temperature"),
    ({"temperature": float("inf")}, "temperature"), ({"top_k": 0}, "top_k"), ({"top_k": 2.5}, "top_k"),
    ({"top_p": 0.0}, "top_p"), ({"top_p": 1.5}, "top_p"), ({"top_p": -0.2}, "top_p"),
])  # fmt: skip
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_next(LOGITS4, **kwargs)
    with pytest.raises(ValueError, match=match):  # at the call, not at the first token
        generate(_Counter(), torch.zeros(1, 1, dtype=torch.long), 3, **kwargs)


def test_bad_logits_and_prompts_are_refused():
    with pytest.raises(ValueError, match=r"\(B, V\)"):
        sample_next(torch.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        sample_next(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="T >= 1"):
        generate(_Counter(), torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="long"):
        generate(_Counter(), torch.zeros(1, 2), 3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(_Counter(), torch.zeros(1, 2, dtype=torch.long), -1)


# --------------------------------------------------------------------------- generate


class _Counter(nn.Module):
    """A causal 'model' of unbounded context that predicts (number of tokens it was given) mod 7,
    and records the lengths it was called with."""

    objective, context = "causal", None

    def __init__(self):
        super().__init__()
        self.lengths, self.modes = [], []

    def forward(self, idx):
        self.lengths.append(idx.shape[1])
        self.modes.append((self.training, torch.is_grad_enabled()))
        logits = torch.full((*idx.shape, 7), -10.0)
        logits[:, -1, idx.shape[1] % 7] = 10.0
        return logits


def test_generate_with_unbounded_context_feeds_everything():
    model = _Counter().train()
    out = list(generate(model, torch.zeros(2, 3, dtype=torch.long), 5, temperature=0))
    assert model.lengths == [3, 4, 5, 6, 7]
    assert [t.tolist() for t in out] == [[3, 3], [4, 4], [5, 5], [6, 6], [0, 0]]
    assert model.modes == [(False, False)] * 5  # eval mode, no gradients, inside each step
    assert model.training and torch.is_grad_enabled()  # and the caller's modes outside


def test_generate_streams_one_token_at_a_time():
    model = _Counter()
    it = generate(model, torch.zeros(1, 1, dtype=torch.long), 3, temperature=0)
    assert model.lengths == []  # nothing computed before the first token is asked for
    next(it)
    assert model.lengths == [1] and torch.is_grad_enabled()  # between tokens, grad mode is the caller's
    assert len(list(it)) == 2


def test_generate_crops_to_the_gpt_context():
    """A prompt longer than block_size works; each step reads only the last block_size tokens, so
    greedy generate equals a loop that crops by hand."""
    torch.manual_seed(0)
    model = GPT(13, None, GPTConfig(block_size=8, n_layer=2, n_head=2, n_embd=16)).train()
    prompt = torch.randint(0, 13, (2, 20))
    seen = []
    hook = model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    out = torch.stack(list(generate(model, prompt, 6, temperature=0)), dim=1)
    hook.remove()
    assert out.shape == (2, 6) and out.dtype == torch.long and seen == [8] * 6
    assert model.training  # restored
    seq = prompt
    model.eval()
    with torch.no_grad():
        for _ in range(6):
            seq = torch.cat([seq, model(seq[:, -8:])[:, -1].argmax(1, keepdim=True)], dim=1)
    assert torch.equal(out, seq[:, 20:])


def test_generate_same_seed_same_text():
    torch.manual_seed(0)
    model = GPT(13, None, GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=16))
    prompt = torch.randint(0, 13, (3, 4))

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return torch.stack(list(generate(model, prompt, 10, temperature=1.0, top_k=5, top_p=0.9, generator=g)), 1)

    a = run(3)
    assert torch.equal(a, run(3)) and a.shape == (3, 10) and ((0 <= a) & (a < 13)).all()
    assert list(generate(model, prompt, 0)) == []
