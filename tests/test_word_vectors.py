"""Word vectors: Word2Vec's written-out SGD steps against autograd, its windows against a loop,
subsampling and evaluation against gensim (a development dependency), the word2vec text format
read by gensim, and the word-vectors task end to end (`deepnotes train word2vec`, `deepnotes
embed ...`) on a small corpus written in the Brown corpus's own format."""

import json

import numpy as np
import pytest
import torch
from clicheck import assert_one_line_error, run_cli
from fakes import HEADER, write_mo

from deepnotes.errors import UserError
from deepnotes.metrics.wordvec import analogy_accuracy, nearest, word_similarity
from deepnotes.models import create_model
from deepnotes.tasks import load_run, run_training
from deepnotes.tasks.word_vectors import WindowBatches, keep_probabilities, read_vectors, windows, write_vectors
from deepnotes.train import TrainConfig
from deepnotes.train.optim import lr_factor

gensim = pytest.importorskip("gensim")
from gensim.models import KeyedVectors, Word2Vec  # noqa: E402
from gensim.test.utils import datapath  # noqa: E402


def _loss(inp, out, centres_h, targets):
    u = out[targets]
    s = torch.einsum("bkd,bd->bk", u, centres_h)
    sign = torch.ones_like(s)
    sign[:, 1:] = -1
    return torch.nn.functional.softplus(-sign * s).sum()


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_written_out_sgd_step_equals_autograd_sgd(mode):
    """One step of sgns_step / cbow_step == old weights - lr * autograd gradient of the summed
    negative-sampling loss (with repeated rows in the batch, where the updates add up); for CBOW
    every context word takes the whole step of the mean (word2vec.c's rule): autograd's gradient
    of the mean times the number of context words."""
    torch.manual_seed(0)
    V, D, B, K, lr = 12, 6, 9, 3, 0.1
    m = create_model("word2vec" if mode == "skipgram" else "cbow", vocab_size=V, num_classes=V, dim=D, negative=K)
    m.output.data.normal_(0, 0.3)  # zeros would hide the input-side gradient
    targets = torch.randint(0, V, (B, 1 + K))
    inp = m.input.detach().clone().requires_grad_(True)
    out = m.output.detach().clone().requires_grad_(True)
    if mode == "skipgram":
        centres = torch.tensor([1, 2, 2, 3, 5, 5, 5, 7, 11])
        h = inp[centres]
        step = lambda: m.sgns_step(centres, targets, lr)  # noqa: E731
    else:
        contexts = torch.randint(0, V, (B, 4))
        contexts[0, 2:] = -1  # shorter windows are padded with -1
        contexts[3, 1:] = -1
        real = (contexts >= 0).float()
        n = real.sum(1, keepdim=True)
        summed = (inp[contexts.clamp_min(0)] * real.unsqueeze(-1)).sum(1)
        h = (summed / n).detach() + summed - summed.detach()  # value: the mean; gradient: 1 for each context row
        step = lambda: m.cbow_step(contexts, targets, lr)  # noqa: E731
    loss = _loss(inp, out, h, targets)
    loss.backward()
    got = step()
    assert float(got) == pytest.approx(float(loss.detach()), rel=1e-6)
    torch.testing.assert_close(m.input.data, inp.detach() - lr * inp.grad, rtol=0, atol=1e-6)
    torch.testing.assert_close(m.output.data, out.detach() - lr * out.grad, rtol=0, atol=1e-6)


def test_windows_are_the_pairs_a_loop_finds():
    """Every (centre, context) at distance <= the centre's window b, inside one sentence."""
    rng = np.random.default_rng(1)
    ids = rng.integers(4, 20, 60)
    sent = np.repeat(np.arange(6), [3, 15, 1, 20, 9, 12])
    window = 4
    kept, c, x = windows(ids, sent, window, np.random.default_rng(7), keep=None)
    b = np.random.default_rng(7).integers(1, window + 1, len(ids))  # the same draw as windows()
    want = {(i, j) for i in range(len(ids)) for j in range(len(ids)) if i != j and abs(i - j) <= b[i] and sent[i] == sent[j]}
    got = list(zip(c.tolist(), x.tolist()))
    assert len(got) == len(set(got)) and set(got) == want and (kept == ids).all()


def test_cbow_batches_hold_each_centres_context_row():
    ids = np.arange(4, 14)
    sent = np.zeros(10, dtype=np.int64)
    wb = WindowBatches(ids, sent, None, mode="cbow", window=2, batch_size=4, seed=0)
    ctx, centre, _ = wb._examples(1)
    assert ctx.shape == (10, 4) and sorted(centre.tolist()) == list(range(4, 14))
    for row, c in zip(ctx, centre):
        words = row[row >= 0]
        assert len(words) >= 1 and c not in words and all(abs(w - c) <= 2 for w in words)
    assert sum(len(a) for a, _ in wb.epoch(1)) == len(wb) * 4  # every epoch runs the steps of epoch 1


SENTENCES = [s.split() for s in (
    "the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat ate the fish",
    "a dog ate a bone", "the sun is hot", "the moon is cold", "the cat is on the mat",
) * 40]  # fmt: skip


def test_subsampling_probabilities_equal_gensims():
    from collections import Counter

    counts = Counter(t for s in SENTENCES for t in s)
    words = sorted(counts)
    model = Word2Vec(SENTENCES, vector_size=4, min_count=1, sample=1e-2, epochs=1, workers=1, seed=0)
    ours = keep_probabilities(np.array([counts[w] for w in words]), 1e-2)
    theirs = np.array([model.wv.get_vecattr(w, "sample_int") / 2**32 for w in words])
    np.testing.assert_allclose(ours, theirs, atol=1e-8)  # gensim stores round(p * 2^32)
    assert (keep_probabilities(np.array([5, 1]), 0) == 1).all()


@pytest.fixture(scope="module")
def random_vectors():
    """Random vectors for most of the benchmark words (some left out, so OOV counting matters)."""
    words = set()
    for f in ("wordsim353.tsv", "simlex999.txt"):
        for line in open(datapath(f)):
            if not line.startswith("#"):
                words.update(w.lower() for w in line.split("\t")[:2])
    for line in open(datapath("questions-words.txt")):
        if not line.startswith(":"):
            words.update(line.lower().split())
    words = sorted(words)[::-1][: int(len(words) * 0.9)]
    vecs = np.random.default_rng(0).normal(size=(len(words), 16)).astype(np.float32)
    kv = KeyedVectors(16)
    kv.add_vectors(words, vecs)
    return words, {w: i for i, w in enumerate(words)}, vecs, kv


def _pairs(name):
    pairs, scores = [], []
    for line in open(datapath(name)):
        if not line.startswith("#"):
            a, b, s = line.strip().split("\t")[:3]
            pairs.append((a, b))
            scores.append(float(s))
    return pairs, scores


@pytest.mark.parametrize("name", ["wordsim353.tsv", "simlex999.txt"])
def test_word_similarity_equals_gensims_evaluate_word_pairs(random_vectors, name):
    words, index, vecs, kv = random_vectors
    pairs, scores = _pairs(name)
    ours = word_similarity(vecs, index, pairs, scores)
    pearson, spearman, oov = kv.evaluate_word_pairs(datapath(name))
    assert ours["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
    assert ours["pearson"] == pytest.approx(pearson.statistic, abs=1e-6)
    assert 100 * ours["oov_ratio"] == pytest.approx(oov) and ours["oov"] > 0


def test_analogy_accuracy_equals_gensims_evaluate_word_analogies(random_vectors):
    words, index, vecs, kv = random_vectors
    vecs = vecs.copy()
    # random vectors answer almost nothing; make some questions answerable so the count is informative
    questions = [tuple(line.lower().split()) for line in open(datapath("questions-words.txt")) if not line.startswith(":")]
    rng = np.random.default_rng(1)
    for a, b, c, d in questions[::50]:
        if all(w in index for w in (a, b, c, d)):
            u = lambda w: vecs[index[w]] / np.linalg.norm(vecs[index[w]])  # noqa: E731
            vecs[index[d]] = (u(b) - u(a) + u(c)) * 3 + rng.normal(size=16) * 0.01
    kv = KeyedVectors(16)
    kv.add_vectors(words, vecs)
    score, sections = kv.evaluate_word_analogies(datapath("questions-words.txt"))
    ours = analogy_accuracy(vecs, index, questions)
    total = sections[-1]
    assert ours["correct"] == len(total["correct"]) and ours["questions"] == len(total["correct"]) + len(total["incorrect"])
    assert ours["accuracy"] == pytest.approx(score) and ours["correct"] > 10


def test_nearest_equals_gensims_most_similar(random_vectors):
    words, index, vecs, kv = random_vectors
    for w in ("king", "water", "good"):
        if w in index:
            ours = nearest(vecs, index, words, w, k=5)
            theirs = kv.most_similar(w, topn=5)
            assert [n for n, _ in ours] == [n for n, _ in theirs]
            np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)


def test_vectors_file_is_read_by_gensim(tmp_path):
    words = ["the", "café", "naïve"]
    vecs = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    path = write_vectors(tmp_path / "vectors.txt", words, vecs)
    kv = KeyedVectors.load_word2vec_format(str(path), binary=False)
    assert list(kv.index_to_key) == words
    np.testing.assert_allclose(kv["café"], vecs[1], rtol=1e-5)
    w2, v2 = read_vectors(path)
    assert w2 == words and np.allclose(v2, vecs, rtol=1e-5)


def test_linear_schedule_is_word2vec_cs():
    cfg = TrainConfig(model="word2vec", epochs=2, schedule="linear", optimizer="sgd")
    assert lr_factor(cfg, 0, 50) == 1.0
    assert lr_factor(cfg, 50, 50) == pytest.approx(0.5)
    assert lr_factor(cfg, 99, 50) == pytest.approx(1e-2) and lr_factor(cfg, 100, 50) == 1e-4  # floored at 1e-4 of lr


def test_fasttext_vectors_and_steps_equal_gensims_rule_and_autograd():
    """A word's vector is the mean of its row and its n-gram rows (gensim's ft_ngram_hashes); one
    skip-gram step gives the output rows autograd's SGD step and each input part (the word's row,
    every n-gram row) the whole step of the mean (fastText's rule, not the mean's gradient); an
    unseen word is the mean of its n-gram rows."""
    from deepnotes.text.subwords import ngram_ids

    torch.manual_seed(0)
    words = ["<pad>", "<sos>", "<eos>", "<unk>", "cat", "cats", "dog", "a"]
    m = create_model("fasttext", vocab_size=len(words), num_classes=len(words), dim=5, buckets=50, negative=2)
    m.set_vocabulary(words)
    m.output.data.normal_(0, 0.3)
    for i, w in enumerate(words[4:], 4):
        rows = ngram_ids(w, 3, 6, 50)
        want = (m.input.data[i] + m.ngrams.data[rows].sum(0)) / (1 + len(rows))
        torch.testing.assert_close(m.vectors()[i], want)
    torch.testing.assert_close(m.oov_vector("catz"), m.ngrams.data[ngram_ids("catz", 3, 6, 50)].mean(0))
    centres, targets = torch.tensor([4, 5, 5, 7]), torch.tensor([[6, 4, 5], [4, 6, 7], [7, 4, 4], [5, 6, 6]])
    inp, ngr = m.input.detach().clone(), m.ngrams.detach().clone()
    out = m.output.detach().clone().requires_grad_(True)
    h = torch.stack([(inp[i] + ngr[ngram_ids(words[i], 3, 6, 50)].sum(0)) / (1 + len(ngram_ids(words[i], 3, 6, 50))) for i in centres.tolist()])
    h.requires_grad_(True)
    _loss(inp, out, h, targets).backward()
    m.sgns_step(centres, targets, 0.5)
    for b, i in enumerate(centres.tolist()):  # each part gets the whole step of the mean, as often as its word occurs
        inp[i] -= 0.5 * h.grad[b]
        for r in ngram_ids(words[i], 3, 6, 50):
            ngr[r] -= 0.5 * h.grad[b]
    torch.testing.assert_close(m.input.data, inp, rtol=0, atol=1e-6)
    torch.testing.assert_close(m.ngrams.data, ngr, rtol=0, atol=1e-6)
    torch.testing.assert_close(m.output.data, out.detach() - 0.5 * out.grad, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- the task, end to end

VERBS = ("open", "close", "save", "delete", "copy", "print")
NOUNS = ("file", "folder", "document", "message", "project")
ADJECTIVES = ("new", "old", "big", "small", "empty")


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """A gettext catalogue (what the gettext-en corpus reads) of templated English messages."""
    root = tmp_path_factory.mktemp("mo")
    messages = {"": HEADER}
    for v in VERBS:
        for n in NOUNS:
            for a in ADJECTIVES:
                messages[f"{v.title()} the {a} {n}"] = f"x {v} {a} {n}"  # the French side is not read
    write_mo(root / "gettext-fr-en" / "ui.mo", messages)
    return root


def _cfg(tmp_path, catalogue, name="run", **kw):
    base = dict(model="word2vec", data="gettext-en", data_dir=str(catalogue), epochs=2, batch_size=64, optimizer="sgd", lr=0.05,
                schedule="linear", seed=0, out=str(tmp_path / name), progress=False, threads=1,
                model_args={"dim": 8, "min_count": 1, "window": 2, "sample": 0.0})  # fmt: skip
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("model", ["word2vec", "cbow", "fasttext"])
def test_training_writes_vectors_that_gensim_reads_and_resumes_bit_for_bit(tmp_path, catalogue, model):
    args = {"dim": 8, "min_count": 1, "window": 2, "sample": 0.0} | ({"buckets": 500} if model == "fasttext" else {})
    full = run_training(_cfg(tmp_path, catalogue, "full", model=model, model_args=args))
    run_dir = tmp_path / "full"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 2 and np.isfinite(metrics["epochs"][-1]["pairs_loss"])
    assert metrics["test_wordsim"] is None  # 2 of its pairs are in a 21-word vocabulary: no correlation to report
    kv = KeyedVectors.load_word2vec_format(str(run_dir / "vectors.txt"), binary=False)
    assert set(kv.index_to_key) == {"the", *VERBS, *NOUNS, *ADJECTIVES}  # the specials are not exported
    run = load_run(run_dir)
    words, index, vectors = __import__("deepnotes.tasks.word_vectors", fromlist=["run_vectors"]).run_vectors(run)
    np.testing.assert_allclose(kv["file"], vectors[index["file"]].numpy(), rtol=1e-5, atol=1e-6)
    # stopped in the middle of epoch 1 (as Ctrl-C does), then --resume: the same vectors as without the stop
    stopped = run_training(_cfg(tmp_path, catalogue, "half", model=model, model_args=args), should_stop=lambda epoch, step: (epoch, step) == (1, 2))
    assert stopped.interrupted
    run_training(_cfg(tmp_path, catalogue, "half", model=model, model_args=args, resume=True))
    resumed = load_run(tmp_path / "half").model.vectors()
    assert torch.equal(resumed, vectors) and full is not None


def test_embed_commands_answer_and_refuse_in_one_line(tmp_path, catalogue, capsys):
    run_training(_cfg(tmp_path, catalogue, epochs=3))
    run_dir = tmp_path / "run"
    code, out, _ = run_cli(capsys, "embed", "neighbors", run_dir, "file", "Open", "-k", "3")
    assert code == 0 and out.startswith("file: ") and len(out.splitlines()) == 2 and out.splitlines()[0].count(",") == 2
    code, out, _ = run_cli(capsys, "embed", "analogy", run_dir, "open", "close", "save")
    assert code == 0 and out.startswith("open : close :: save : ")
    code, out, _ = run_cli(capsys, "embed", "similarity", run_dir, "file", "file")
    assert code == 0 and float(out) == pytest.approx(1.0, abs=1e-5)
    code, out, _ = run_cli(capsys, "embed", "eval", run_dir, "--sections")
    assert code == 0 and "WordSim-353: Spearman" in out and "Google analogies" in out
    assert_one_line_error(*run_cli(capsys, "embed", "neighbors", run_dir, "fille")[::2], "'fille' is not in the run's vocabulary", "file")
    assert_one_line_error(*run_cli(capsys, "embed", "neighbors", run_dir, "file", "-k", "0")[::2], "-k must be >= 1")
    code, _, err = run_cli(capsys, "train", "word2vec", "--data", "gettext-en", "--data-dir", catalogue, "--optimizer", "adam",
                           "--out", tmp_path / "adam", "--quiet")  # fmt: skip
    assert_one_line_error(code, err, "--optimizer adam does not apply", "--optimizer sgd")
    code, _, err = run_cli(capsys, "train", "word2vec", "--data", "digits", "--out", tmp_path / "digits", "--quiet")
    assert_one_line_error(code, err, "corpus")


def test_the_command_line_trains_word_vectors_with_word2vecs_defaults(tmp_path, catalogue, capsys):
    code, _, err = run_cli(capsys, "train", "word2vec", "--data", "gettext-en", "--data-dir", catalogue, "--epochs", "1",
                           "--model-arg", "min_count=1", "--model-arg", "dim=8", "--out", tmp_path / "cli", "--quiet", "--threads", "1")  # fmt: skip
    assert code == 0, err
    train = json.loads((tmp_path / "cli" / "config.json").read_text())["train"]
    assert (train["optimizer"], train["lr"], train["schedule"], train["batch_size"]) == ("sgd", 0.025, "linear", 1024)


def test_a_classifier_option_is_refused_for_word_vectors(tmp_path, catalogue):
    with pytest.raises(UserError, match="--label-smoothing"):
        run_training(_cfg(tmp_path, catalogue, label_smoothing=0.1))


def test_glove_step_is_glove_cs_update_with_the_batch_summed_per_row():
    """glove.c's steps (lr on the word vectors only, gradients clipped at 100, AdaGrad sums from 1),
    written as a loop: each row's steps in the batch summed, then AdaGrad with that sum's square
    included (row 1 is in two cells); the loss is 0.5 f diff^2 before the step."""
    torch.manual_seed(0)
    V, D, lr = 10, 4, 0.05
    m = create_model("glove", vocab_size=V, num_classes=V, dim=D, x_max=10.0)
    for p in m.parameters():
        p.data.normal_(0, 0.5)
    m.g_w.uniform_(1, 3)
    i, j, x = torch.tensor([1, 2, 1]), torch.tensor([4, 5, 6]), torch.tensor([0.5, 8.0, 40.0])
    W, Wc, b, bc = (t.detach().clone().double() for t in (m.w, m.w_context, m.b, m.b_context))
    G, Gc, Gb, Gbc = (t.clone().double() for t in (m.g_w, m.g_context, m.g_b, m.g_b_context))
    steps = {name: {} for name in ("w", "wc", "b", "bc")}
    cost = 0.0
    for l1, l2, val in zip(i.tolist(), j.tolist(), x.tolist()):  # every cell sees the weights before the step
        diff = float(W[l1] @ Wc[l2] + b[l1] + bc[l2]) - np.log(val)
        fdiff = diff if val > 10.0 else (val / 10.0) ** 0.75 * diff
        cost += 0.5 * fdiff * diff
        for name, row, step in (("w", l1, (fdiff * Wc[l2]).clamp(-100, 100) * lr), ("wc", l2, (fdiff * W[l1]).clamp(-100, 100) * lr),
                                ("b", l1, torch.tensor(fdiff, dtype=torch.float64)), ("bc", l2, torch.tensor(fdiff, dtype=torch.float64))):  # fmt: skip
            steps[name][row] = steps[name].get(row, 0) + step
    for name, table, sums in (("w", W, G), ("wc", Wc, Gc), ("b", b, Gb), ("bc", bc, Gbc)):
        for row, g in steps[name].items():
            sums[row] += g * g
            table[row] -= g / sums[row].sqrt()
    loss = m.glove_step(i, j, x, lr)
    assert float(loss) == pytest.approx(cost, rel=1e-5)
    for got, want in ((m.w, W), (m.w_context, Wc), (m.b, b), (m.b_context, bc), (m.g_w, G), (m.g_b, Gb), (m.g_b_context, Gbc)):
        torch.testing.assert_close(got.data.double(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(m.vectors(), m.w.data + m.w_context.data)


def test_glove_trains_through_the_task(tmp_path, catalogue):
    run_training(_cfg(tmp_path, catalogue, model="glove", optimizer="adagrad", model_args={"dim": 8, "min_count": 1, "window": 3}))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    losses = [h["pairs_loss"] for h in metrics["epochs"]]
    assert losses[-1] < losses[0] and (tmp_path / "run" / "vectors.txt").exists()
    with pytest.raises(UserError, match="--optimizer adagrad"):
        run_training(_cfg(tmp_path, catalogue, "sgd", model="glove", optimizer="sgd"))
