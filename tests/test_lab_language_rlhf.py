"""Lab experiment C64 (RLHF in miniature): the labeller, the Bradley-Terry reward model, the
log-probabilities and KL of a causal model, REINFORCE and DPO on a tiny GPT, the intervals, and the
judge on hand-made numbers (tests/test_lab.py runs the quick run and its opposite evidence)."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepnotes.data.corpora import Corpus
from deepnotes.errors import UserError
from deepnotes.lab import Context
from deepnotes.lab.language import rlhf as lab
from deepnotes.models import create_model
from deepnotes.text.streams import build_tokenizer

TEXT = "the cat sat on a mat\nan owl ate oats\nzzz qrst\n"


def _tokenizer():
    sentences = [line.split() for line in TEXT.strip().split("\n")]
    corpus = Corpus("tiny", sentences, np.zeros(len(sentences), dtype=np.int32), ["d"], ["c"], "test", "words-1")
    return build_tokenizer("char", corpus, [0])


def _gpt(vocab: int, seed: int = 0):
    torch.manual_seed(seed)
    return create_model("gpt_nano", vocab_size=vocab, num_classes=vocab, n_layer=1, n_head=2, n_embd=16, block_size=16).eval()


# ---------------------------------------------------------------- the labeller


def test_vowel_table_and_share():
    tok = _tokenizer()
    table = lab.vowel_table(tok)
    assert {tok.decode([i]) for i in range(len(tok)) if table[i] == 1} == {"a", "e", "o"}  # the vowels the text has
    ids = torch.tensor([tok.encode_text("aeo "), tok.encode_text("zzzz"), tok.encode_text("cat ")])
    assert lab.vowel_share(ids, table).tolist() == [0.75, 0.0, 0.25]
    share = torch.tensor([0.2, 0.7])
    assert torch.allclose(lab.labeller_score(share, "reversed"), 1 - share) and lab.labeller_score(share, "vowels") is share


def test_label_pairs_follow_the_rule_the_noise_and_the_coin():
    g = torch.Generator().manual_seed(0)
    n = 20_000
    a, b = torch.rand(n, generator=g), torch.rand(n, generator=g)
    clean = lab.label_pairs(a, b, "vowels", 0.0, g)
    assert torch.equal(clean, a > b)
    noisy = lab.label_pairs(a, b, "vowels", 0.2, g)
    assert abs((noisy != (a > b)).float().mean().item() - 0.2) < 0.015
    tied = lab.label_pairs(torch.zeros(n), torch.zeros(n), "vowels", 0.0, g)
    assert abs(tied.float().mean().item() - 0.5) < 0.02  # ties: a coin flip
    coin = lab.label_pairs(a, b, "random", 0.0, g)
    assert abs((coin == (a > b)).float().mean().item() - 0.5) < 0.02  # ignores the scores


# ---------------------------------------------------------------- the model's log-probabilities and KL


def test_token_logprobs_match_the_model_step_by_step():
    tok = _tokenizer()
    model = _gpt(len(tok))
    prompt = tok.encode_text("\n")[0]
    tokens = torch.tensor([tok.encode_text("the cat"), tok.encode_text("an owl ")])
    per_token, full = lab.token_logprobs(model, prompt, tokens)
    assert per_token.shape == tokens.shape and full.shape == (*tokens.shape, len(tok))
    with torch.no_grad():
        for t in range(tokens.shape[1]):
            prefix = torch.cat([torch.full((2, 1), prompt), tokens[:, :t]], 1)
            want = F.log_softmax(model(prefix)[:, -1], -1).gather(1, tokens[:, t : t + 1]).squeeze(1)
            assert torch.allclose(per_token[:, t], want, atol=1e-5)
    assert torch.allclose(full.exp().sum(-1), torch.ones(tokens.shape), atol=1e-5)


def test_exact_kl_is_zero_to_itself_positive_otherwise_and_matches_the_sampled_estimate():
    tok = _tokenizer()
    ref, other = _gpt(len(tok), 0), _gpt(len(tok), 1)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(5.0)  # a model far from ref
    prompt = tok.encode_text("\n")[0]
    g = torch.Generator().manual_seed(0)
    tokens = lab.sample(other, prompt, 4000, 6, g)
    with torch.no_grad():
        lp, full = lab.token_logprobs(other, prompt, tokens)
        lp_ref, full_ref = lab.token_logprobs(ref, prompt, tokens)
    assert lab.exact_kl(full_ref, full_ref).abs().max() == 0  # identity
    kl = lab.exact_kl(full, full_ref)
    assert (kl > 0).all()
    sampled = (lp - lp_ref).sum(1)  # Ziegler et al.'s estimate: the same mean, more spread
    assert abs(sampled.mean().item() - kl.mean().item()) < 0.1 * kl.mean().item()
    assert sampled.std() > kl.std()


def test_sample_is_seeded_and_in_the_vocabulary():
    tok = _tokenizer()
    model = _gpt(len(tok))
    prompt = tok.encode_text("\n")[0]
    x = lab.sample(model, prompt, 5, 10, torch.Generator().manual_seed(3))
    y = lab.sample(model, prompt, 5, 10, torch.Generator().manual_seed(3))
    assert x.shape == (5, 10) and torch.equal(x, y) and 0 <= int(x.min()) and int(x.max()) < len(tok)
    assert not model.training


def test_entropy_per_sample_of_a_uniform_model():
    tok = _tokenizer()
    model = _gpt(len(tok))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # all logits 0: uniform
    tokens = torch.zeros((2, 7), dtype=torch.long)
    assert np.allclose(lab.entropy_per_sample(model, 0, tokens), 7 * math.log(len(tok)), atol=1e-4)


# ---------------------------------------------------------------- the reward model


def test_bradley_terry_loss():
    r_a, r_b = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    prefer_a = torch.tensor([True, False, False])
    want = -(math.log(1 / (1 + math.exp(-2))) + math.log(0.5) + math.log(1 / (1 + math.exp(-2)))) / 3
    assert lab.bradley_terry_loss(r_a, r_b, prefer_a).item() == pytest.approx(want, rel=1e-6)


def _pairs(n: int, vocab: int = 8, length: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randint(0, vocab, (n, length), generator=g), torch.randint(0, vocab, (n, length), generator=g)
    table = (torch.arange(vocab) < 2).float()  # ids 0 and 1 are the "vowels"
    return a, b, table, g


def test_the_reward_model_learns_the_rule_and_not_coin_flips():
    a, b, table, g = _pairs(400)
    sa, sb = lab.vowel_share(a, table), lab.vowel_share(b, table)
    rule = lab.label_pairs(sa, sb, "vowels", 0.0, g)
    rm, losses = lab.fit_reward_model(a[:300], b[:300], rule[:300], 8, seed=0)
    assert losses[-1] < losses[0] - 0.2
    with torch.no_grad():
        right = ((rm(a[300:]) > rm(b[300:])) == rule[300:])[sa[300:] != sb[300:]]
        assert right.float().mean() > 0.9
        assert rm.embed.weight.shape == (8, lab.RM_DIM)
        spread = (rm.raw(a) - rm.raw(b)).abs().mean()
    coin = lab.label_pairs(sa, sb, "random", 0.0, g)
    rm, losses = lab.fit_reward_model(a[:300], b[:300], coin[:300], 8, seed=0)
    with torch.no_grad():
        assert (rm.raw(a) - rm.raw(b)).abs().mean() < 0.02 * spread  # nearly constant: the L2 penalty wins over noise
    assert losses[-1] == pytest.approx(math.log(2), abs=0.01)


# ---------------------------------------------------------------- fine-tuning


def test_loo_baseline():
    r = torch.tensor([1.0, 2.0, 6.0])
    assert torch.allclose(lab.loo_baseline(r), torch.tensor([4.0, 3.5, 1.5]))


class _VowelReward(torch.nn.Module):
    """A reward model that is the rule itself (10 x the vowel share)."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def forward(self, tokens):
        return 10 * lab.vowel_share(tokens, self.table)


def test_reinforce_moves_toward_the_reward_and_the_penalty_keeps_it_close(monkeypatch):
    monkeypatch.setattr(lab, "BATCH", 32)
    monkeypatch.setattr(lab, "LENGTH", 8)
    tok = _tokenizer()
    table = lab.vowel_table(tok)
    base = _gpt(len(tok))
    ref = lab._frozen(base)
    prompt = tok.encode_text("\n")[0]
    rm = _VowelReward(table)
    out = {}
    for beta in (0.0, 5.0):
        policy = lab._trainable(base)
        trace = lab.reinforce(policy, ref, rm, prompt=prompt, beta=beta, steps=40, table=table, labeller="vowels", seed=0)
        assert len(trace.kl) == 40 and trace.kl[0] == pytest.approx(0.0, abs=1e-6)  # the first batch: the policy is ref
        out[beta] = lab.evaluate(policy, ref, rm, prompt=prompt, n=400, table=table, labeller="vowels", seed=1)
    before = lab.evaluate(ref, ref, rm, prompt=prompt, n=400, table=table, labeller="vowels", seed=1)
    assert out[0.0]["score"].mean() > before["score"].mean() + 0.05
    assert out[0.0]["kl"].mean() > 3 * out[5.0]["kl"].mean()
    assert all(p.requires_grad is False for p in ref.parameters()) and torch.equal(
        next(ref.parameters()), next(lab._frozen(base).parameters())
    )  # ref untouched


def test_dpo_raises_the_preferred_samples_relative_likelihood():
    tok = _tokenizer()
    table = lab.vowel_table(tok)
    base = _gpt(len(tok))
    ref = lab._frozen(base)
    prompt = tok.encode_text("\n")[0]
    g = torch.Generator().manual_seed(0)
    both = lab.sample(ref, prompt, 256, 8, g)
    a, b = both[:128], both[128:]
    prefer_a = lab.label_pairs(lab.vowel_share(a, table), lab.vowel_share(b, table), "vowels", 0.0, g)
    policy = lab._trainable(base)
    losses = lab.dpo(policy, ref, a, b, prefer_a, prompt=prompt, beta=1.0, steps=30, seed=0)
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5)  # policy = ref: the margin is 0
    assert np.mean(losses[-5:]) < losses[0] - 0.1


# ---------------------------------------------------------------- intervals


def test_welch_interval_matches_scipy():
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 50), rng.normal(0.0, 3.0, 80)
    ci = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    iv = lab.welch_interval(a, b)
    assert iv["low"] == pytest.approx(ci.low, rel=1e-3) and iv["high"] == pytest.approx(ci.high, rel=1e-3)
    assert lab.welch_interval([1.0, 1.0], [0.0, 0.0])["low"] == 1.0  # no spread: the point


def test_exact_interval():
    iv = lab.exact_interval(48, 60)
    assert iv["mean"] == 0.8 and 0.67 < iv["low"] < 0.8 < iv["high"] < 0.9


# ---------------------------------------------------------------- the judge


def _iv(mean, low, high, over="samples"):
    return {"mean": mean, "low": low, "high": high, "over": over}


def _arm(beta, score, gain, kl, versus=None):
    out = {"beta": beta, "score_after": score, "reward_after": 1.5, "score_gain": gain, "kl": kl}
    if versus is not None:
        out["kl_minus_unpenalised"] = versus
    return out


def _c64(*, acc=_iv(0.3, 0.18, 0.39, "60 held-out pairs"), gain=_iv(0.1, 0.08, 0.11), kl=_iv(0.8, 0.79, 0.82),
         versus=_iv(-33.0, -33.2, -32.8), labeller="vowels", dpo=True):  # fmt: skip
    n = {
        "data": "gettext-en", "labeller": labeller, "noise": 0.1, "length": 24,
        "model": {"n_layer": 2, "n_embd": 48}, "pretrain": {"steps": 200, "test_loss": 2.9},
        "pairs": {"train": 240, "held_out": 60}, "seeds": [0],
        "reward_model": {"held_out_accuracy": {"mean": 0.5 + acc["mean"]}, "accuracy_minus_chance": acc, "noiseless_accuracy": 0.96,
                         "correlation_with_score": 0.93},
        "before": {"score": 0.278, "share": 0.278, "kl_identity_max_abs": 0.0},
        "steps": 30, "batch": 64, "entropy_per_sample": 80.7, "kl_max": 8.07, "judged_beta": 1.0,
        "arms": {"0.0": _arm(0.0, 0.88, _iv(0.6, 0.59, 0.62), _iv(33.8, 33.7, 34.0)), "1.0": _arm(1.0, 0.375, gain, kl, versus)},
    }  # fmt: skip
    if dpo:
        n["dpo"] = {"beta": 1.0, "steps": 30, "score_after": 0.357, "score_gain": _iv(0.08, 0.06, 0.09), "kl": _iv(1.6, 1.5, 1.7)}
    return n


def test_judge_c64():
    verdict, reason = lab.judge_c64(_c64())
    assert verdict == "holds" and "judged at beta 1" in reason and "DPO" in reason and "by identity" in reason
    verdict, _ = lab.judge_c64(_c64(dpo=False, versus=None))  # no unpenalised run: the bound alone
    assert verdict == "holds"
    # the coin-flip labeller: reward model at chance, no rise (the opposite evidence)
    verdict, reason = lab.judge_c64(_c64(acc=_iv(0.0, -0.13, 0.13), gain=_iv(-0.004, -0.018, 0.01), labeller="random"))
    assert verdict == "does not hold" and "not above chance" in reason and "does not rise" in reason and "coin" in reason
    # the reward model learns, the policy does not move
    verdict, reason = lab.judge_c64(_c64(gain=_iv(0.01, -0.01, 0.03)))
    assert verdict == "does not hold" and "does not rise" in reason and "chance" not in reason.split(":")[0]
    # the score rises but the policy runs far: over the bound, or no closer than without the penalty
    verdict, reason = lab.judge_c64(_c64(kl=_iv(9.0, 7.5, 10.5)))
    assert verdict == "holds with a correction" and "10.50 >= 8.07" in reason
    verdict, reason = lab.judge_c64(_c64(versus=_iv(-1.0, -3.0, 0.5)))
    assert verdict == "holds with a correction" and "unpenalised" in reason


def test_the_judge_does_not_change_its_numbers():
    n = _c64()
    before = copy.deepcopy(n)
    lab.judge_c64(n)
    assert n == before


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(("option", "value", "match"), [("labeller", "sideways", "labeller is"), ("noise", 0.7, "noise is"),
                                                        ("betas", (-1.0,), "betas are")])  # fmt: skip
def test_bad_options_are_one_clear_error(tmp_path, option, value, match):
    with pytest.raises(UserError, match=match):
        lab.run_c64(Context(tmp_path, quick=True), **{option: value})
