"""Lab experiment C61 (perplexity; the n-gram / RNN / transformer ladder): the scoring on the task's
windows against direct computations, the identities on hand-made models, and the judge on hand-made
numbers (tests/test_lab.py runs the quick run and its opposite evidence)."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepnotes.errors import UserError
from deepnotes.lab import Context
from deepnotes.lab.language import perplexity as lab
from deepnotes.models import create_model


def _ids(n=700, vocab=9, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, vocab, n)).long()


# ---------------------------------------------------------------- scoring on the task's windows


def test_token_nlls_are_the_task_windows_scored_per_token():
    torch.manual_seed(0)
    gpt = create_model("gpt_nano", vocab_size=9, num_classes=9, n_layer=1, n_head=2, n_embd=16, block_size=8)
    ids = _ids()
    targets, nll = lab.token_nlls(gpt, ids, 8)
    n = (len(ids) - 1) // 8 * 8
    assert np.array_equal(targets, ids[1 : n + 1].numpy()) and len(nll) == n
    x, y = ids[:n].view(-1, 8), ids[1 : n + 1].view(-1, 8)
    with torch.no_grad():
        direct = F.cross_entropy(gpt(x).flatten(0, 1), y.flatten(), reduction="none")
    assert np.allclose(nll, direct.double().numpy(), atol=1e-6)
    # an n-gram table: its own nll, counted on other text
    ngram = create_model("ngram5", vocab_size=9, num_classes=9, order=2).fit(_ids(seed=1))
    _, nll2 = lab.token_nlls(ngram, ids, 8)
    assert np.allclose(nll2, ngram.nll(x, y).reshape(-1).numpy())


def test_window_interval_pairs_the_same_tokens():
    rng = np.random.default_rng(0)
    a = rng.normal(2.0, 0.3, 640)
    iv = lab.window_interval(a + 0.5, a, 32)
    assert iv["mean"] == pytest.approx(0.5) and iv["low"] == pytest.approx(0.5) and iv["runs"] == 20
    iv = lab.window_interval(a + rng.normal(0, 0.5, 640), a, 32)  # no difference: the interval holds 0
    assert iv["low"] < 0 < iv["high"] and "20 test windows of 32" in iv["over"]
    assert np.allclose(lab.window_means(np.arange(10.0), 4), [1.5, 5.5])  # the partial last window is dropped


# ---------------------------------------------------------------- identities


def test_uniform_model_perplexity_is_the_vocabulary_size():
    u = lab.uniform_identity(_ids(vocab=13), 13, 16)
    assert u["kind"].startswith("identity")
    assert u["relative_error"] < 1e-12 and u["torchmetrics_relative_error"] < 1e-6
    assert u["perplexity"] == pytest.approx(13) and u["tokens"] == 699 // 16 * 16


def _metrics(loss, tokens=1000):
    return {"test_loss": loss, "test_perplexity": math.exp(loss), "test_bpc": loss / math.log(2)}


def test_exp_identity_and_what_breaks_it():
    nll = np.random.default_rng(0).uniform(0.5, 3.0, 1000)
    good = lab.exp_identity("m", _metrics(float(nll.mean())), nll, tm=math.exp(nll.mean()))
    assert (
        max(good["exp_relative_error"], good["metrics_relative_error"], good["bpc_relative_error"], good["loss_relative_error"])
        < 1e-12
    )
    ident = {"uniform": lab.uniform_identity(_ids(), 9, 8), "exp_mean_nll": [good]}
    assert lab.identities_hold(ident)
    # a perplexity that is not exp(loss) (e.g. a mean of per-batch perplexities), or bpc in nats
    bad = lab.exp_identity("m", _metrics(float(nll.mean())) | {"test_perplexity": float(np.exp(nll).mean())}, nll)
    assert not lab.identities_hold(ident | {"exp_mean_nll": [bad]})
    bad = lab.exp_identity("m", _metrics(float(nll.mean())) | {"test_bpc": float(nll.mean())}, nll)
    assert not lab.identities_hold(ident | {"exp_mean_nll": [bad]})
    # the task's loss not reproduced on the same windows
    bad = lab.exp_identity("m", _metrics(float(nll.mean()) + 0.01), nll)
    assert not lab.identities_hold(ident | {"exp_mean_nll": [bad]})


def test_torchmetrics_agrees_with_the_recomputed_nll():
    torch.manual_seed(0)
    gpt = create_model("gpt_nano", vocab_size=9, num_classes=9, n_layer=1, n_head=2, n_embd=16, block_size=8)
    _, nll = lab.token_nlls(gpt, _ids(), 8)
    assert lab.torchmetrics_perplexity(gpt, _ids(), 8) == pytest.approx(math.exp(nll.mean()), rel=1e-6)


# ---------------------------------------------------------------- the judge


def _iv(mean, low, high):
    return {"mean": mean, "low": low, "high": high, "runs": 3}


def _numbers(ngram_rnn, rnn_tr, ngram_tr, context=64, identity_ok=True, seeds=3):
    nll = np.full(100, 1.5)
    exp = lab.exp_identity("m", _metrics(1.5), nll)
    if not identity_ok:
        exp = lab.exp_identity("m", _metrics(1.5) | {"test_perplexity": 5.0}, nll)
    d = {}
    for key, iv in (("ngram-rnn", ngram_rnn), ("rnn-transformer", rnn_tr), ("ngram-transformer", ngram_tr)):
        d[key] = {"mean": iv["mean"], "over_seeds": iv if seeds > 1 else None, "over_windows": iv, "over_windows_per_seed": [iv],
                  "perplexity_ratio": math.exp(iv["mean"])}  # fmt: skip
    return {
        "data": "shakespeare", "vocabulary": 84, "train_tokens": 4_600_000, "eval_tokens": 32_768, "block_size": 64, "context": context,
        "order": 5, "seeds": list(range(seeds)), "neural_batch_size": 12,
        "budget": {"tokens_per_model": 1_536_000, "steps": 2000},
        "identities": {"uniform": {"perplexity": 84.0, "relative_error": 0.0, "torchmetrics": 84.0, "torchmetrics_relative_error": 0.0},
                       "exp_mean_nll": [exp]},
        "perplexity": {"ngram": {"mean": 4.6}, "rnn": {"mean": 4.2}, "transformer": {"mean": 3.9}},
        "reference_perplexity": {"uniform (V)": 84.0, "bigram": 12.4, "5-gram": 4.6},
        "differences": d,
    }  # fmt: skip


def test_judge_c61():
    up, down, tie = _iv(0.1, 0.05, 0.15), _iv(-0.1, -0.15, -0.05), _iv(0.01, -0.02, 0.04)
    verdict, reason = lab.judge_c61(_numbers(up, up, up))
    assert verdict == "holds" and "identities" in reason and "84" in reason
    verdict, reason = lab.judge_c61(_numbers(down, up, up))  # a well-smoothed n-gram beats a small RNN
    assert verdict == "holds with a correction" and "beats or ties the RNN" in reason
    verdict, reason = lab.judge_c61(_numbers(up, down, tie))  # the RNN beats the transformer, which ties the n-gram
    assert (
        verdict == "holds with a correction"
        and "the RNN beats or ties the transformer" in reason
        and "ties the transformer" in reason
    )
    verdict, reason = lab.judge_c61(_numbers(tie, up, tie, context=2))  # starved of context: neither beats the n-gram
    assert verdict == "does not hold" and "neither neural model" in reason and "no more context" in reason
    verdict, reason = lab.judge_c61(_numbers(up, up, up, identity_ok=False))
    assert verdict == "does not hold" and "identity fails" in reason
    verdict, reason = lab.judge_c61(_numbers(up, up, up, seeds=1))  # one seed: judged over windows
    assert verdict == "holds" and "test windows (one seed)" in reason


def test_a_judge_does_not_change_its_numbers():
    n = _numbers(_iv(0.1, 0.05, 0.15), _iv(0.1, 0.05, 0.15), _iv(0.2, 0.1, 0.3))
    before = copy.deepcopy(n)
    lab.judge_c61(n)
    assert n == before


@pytest.mark.parametrize("params", [{"context": 3, "block_size": 32}, {"order": 9}, {"context": 64, "block_size": 32}])
def test_bad_options_are_one_clear_error(tmp_path, params):
    with pytest.raises(UserError):
        lab.run_c61(Context(tmp_path, quick=True), **params)
