"""Translation through the task seam: batches of sentence pairs, a seq2seq model trained and
resumed bit for bit, BLEU as the headline, the run translating on its own (`deepnotes
translate`), and the one-line errors. The data: a small GNU gettext catalogue written here
(the real format the gettext-fr-en dataset reads), built from templates so that every word
occurs often enough to enter the vocabulary."""

import json

import pytest
import torch
from clicheck import assert_one_line_error, png_size, run_cli
from fakes import HEADER, write_mo
from safetensors.torch import load_file

from deepnotes.errors import UserError
from deepnotes.tasks import fit, load_run, run_training
from deepnotes.tasks.translation import PairBatches, collate, translate
from deepnotes.text.vocab import EOS, PAD, SOS
from deepnotes.train import TrainConfig

VERBS = {"Open": "Ouvrir", "Close": "Fermer", "Save": "Enregistrer", "Delete": "Supprimer", "Copy": "Copier", "Print": "Imprimer"}
NOUNS = {"file": "fichier", "folder": "dossier", "document": "document", "message": "message", "project": "projet"}
ADJECTIVES = {"": "", "new": "nouveau", "old": "vieux", "big": "grand", "small": "petit"}
TINY = {"embed_dim": 16, "hidden_size": 32, "dropout": 0.0}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    root = tmp_path_factory.mktemp("mo")
    messages = {"": HEADER}
    for v, fv in VERBS.items():
        for n, fn in NOUNS.items():
            for a, fa in ADJECTIVES.items():
                messages[f"{v} the {a + ' ' if a else ''}{n}"] = f"{fv} le {fa + ' ' if fa else ''}{fn}"
    write_mo(root / "gettext-fr-en" / "ui.mo", messages)
    return root


def cfg(tmp_path, catalogue, name="run", **kw):
    base = dict(model="seq2seq_bahdanau", data="gettext-fr-en", data_dir=str(catalogue), epochs=3, batch_size=16, lr=1e-2,
                seed=0, out=str(tmp_path / name), progress=False, model_args=dict(TINY), threads=1)  # fmt: skip
    return TrainConfig(**{**base, **kw})


def weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


def test_collate_pads_and_frames_the_target_by_hand():
    src, lengths, tgt_in, tgt_out = collate([([5, 6, 7], [8]), ([9], [10, 11])])
    assert src.tolist() == [[5, 6, 7], [9, PAD, PAD]] and lengths.tolist() == [3, 1]
    assert tgt_in.tolist() == [[SOS, 8, PAD], [SOS, 10, 11]]
    assert tgt_out.tolist() == [[8, EOS, PAD], [10, 11, EOS]]


def test_pair_batches_are_a_pure_function_of_seed_and_epoch():
    pairs = [([i + 4], [i + 4]) for i in range(50)]
    a, b = PairBatches(pairs, 8, shuffle=True, seed=3, drop_last=True), PairBatches(pairs, 8, shuffle=True, seed=3, drop_last=True)
    first = [x[0].tolist() for x in a.epoch(2)]
    assert first == [x[0].tolist() for x in b.epoch(2)] and len(first) == len(a) == 6
    assert [x[0].tolist() for x in a.epoch(2, start_step=4)] == first[4:]
    assert first != [x[0].tolist() for x in a.epoch(3)]
    ranks = [PairBatches(pairs, 8, shuffle=True, seed=3, rank=r, world_size=2) for r in (0, 1)]
    seen = [v for r in ranks for x in r.epoch(1) for v in x[0].flatten().tolist()]
    assert sorted(seen) == sorted(p[0][0] for p in pairs)  # the ranks share the pairs out, none twice


def test_a_seq2seq_learns_and_the_run_translates_on_its_own(tmp_path, catalogue, capsys):
    m = fit(cfg(tmp_path, catalogue, epochs=6))
    bleu = [e["test_bleu"] for e in m["epochs"]]
    assert m["task"] == "translation" and m["target_metric"] == "test_bleu" and m["test_bleu"] == bleu[-1]
    assert bleu[-1] > 50 and bleu[-1] > bleu[0]  # templated UI strings: learnt within a few epochs
    assert m["epochs"][-1]["test_perplexity"] < m["epochs"][0]["test_perplexity"]
    d = tmp_path / "run"
    config = json.loads((d / "config.json").read_text())
    assert config["input"]["source_vocab"]["tokens"][:1] and config["model_args"]["vocab_size"] > 4
    assert png_size(d / "attention.png") and "Example translations" in (d / "report.html").read_text()
    run = load_run(d)
    text, seen, figure = translate(run, "Save the old folder", beam=3, attention_png=tmp_path / "a.png")
    assert seen == ["save", "the", "old", "folder"] and text.split()[0] == "enregistrer" and png_size(figure)
    code, out, _ = run_cli(capsys, "translate", d, "Open the small project", "--attention", tmp_path / "b.png")
    assert code == 0 and out.splitlines()[0] == "input tokens: open the small project" and "ouvrir" in out
    assert_one_line_error(*run_cli(capsys, "translate", d, "   ")[::2], "no words")
    assert_one_line_error(*run_cli(capsys, "translate", d, "Open it", "--beam", "0")[::2], "--beam must be >= 1")
    assert_one_line_error(*run_cli(capsys, "predict", d, "x.png")[::2], "translation run", "deepnotes translate")


def test_translation_resumes_bit_for_bit(tmp_path, catalogue):
    fit(cfg(tmp_path, catalogue, "straight", model_args={**TINY, "teacher_forcing": 0.7}))
    r = run_training(cfg(tmp_path, catalogue, "split", model_args={**TINY, "teacher_forcing": 0.7}),
                     should_stop=lambda epoch, step: (epoch, step) == (2, 3))  # fmt: skip
    assert r.interrupted
    fit(cfg(tmp_path, catalogue, "split", resume=True, model_args={**TINY, "teacher_forcing": 0.7}))
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_image_options_and_image_data_are_refused(tmp_path, catalogue):
    with pytest.raises(UserError, match="--augment crop is not an option of translation runs"):
        fit(cfg(tmp_path, catalogue, augment="crop"))
    with pytest.raises(UserError, match="seq2seq_bahdanau is a translation model .* but digits holds images"):
        fit(cfg(tmp_path, catalogue, data="digits"))
    with pytest.raises(UserError, match="mlp is a classification model .* but gettext-fr-en holds pairs"):
        fit(cfg(tmp_path, catalogue, model="mlp", model_args={}))
    with pytest.raises(UserError, match="--target-accuracy 150 is beyond the test BLEU's range"):
        fit(cfg(tmp_path, catalogue, target_accuracy=150))
    assert not (tmp_path / "run").exists()


def test_shuffled_batches_hold_sentences_of_about_one_length():
    """Bucketing: in a pool of batches sorted by length, a batch's lengths span little; without
    it a random batch of 16 out of lengths 1..20 would span most of the range."""
    g = torch.Generator().manual_seed(0)
    pairs = [([4] * int(n), [5]) for n in torch.randint(1, 21, (800,), generator=g)]
    batches = PairBatches(pairs, 16, shuffle=True, seed=0, drop_last=True)
    spans = [int(lengths.max() - lengths.min()) for _, lengths, _, _ in batches.epoch(1)]
    assert len(spans) == 50 and max(spans) <= 2
    assert sorted(i for src, lengths, _, _ in batches.epoch(1) for i in lengths.tolist()) == sorted(len(s) for s, _ in pairs)


def test_transformer_decoding_step_by_step_equals_one_teacher_forced_pass():
    """The causal mask: the logits step() gives for a prefix are forward()'s at that position,
    and changing a later target token leaves every earlier position's logits as they were."""
    from deepnotes.models import create_model

    torch.manual_seed(0)
    model = create_model("seq2seq_transformer", vocab_size=30, num_classes=40, d_model=32, num_heads=4,
                         encoder_layers=2, decoder_layers=2, dim_feedforward=64).eval()  # fmt: skip
    src = torch.randint(4, 30, (3, 6))
    lengths = torch.tensor([6, 4, 1])
    src[1, 4:], src[2, 1:] = PAD, PAD
    tgt = torch.randint(4, 40, (3, 5))
    tgt[:, 0] = SOS
    with torch.no_grad():
        full = model(src, lengths, tgt)
        memory, state, feed = model.start(src, lengths)
        for t in range(tgt.shape[1]):
            logits, state, feed, w = model.step(tgt[:, t], state, memory, feed)
            torch.testing.assert_close(logits, full[:, t], rtol=1e-5, atol=1e-5)
            assert torch.allclose(w.sum(-1), torch.ones(3)) and not w[1, 4:].any() and not w[2, 1:].any()
        changed = tgt.clone()
        changed[:, 3] = 5
        torch.testing.assert_close(model(src, lengths, changed)[:, :3], full[:, :3], rtol=0, atol=0)
        assert not torch.allclose(model(src, lengths, changed)[:, 3], full[:, 3])
        padded = torch.cat([src, torch.full((3, 2), PAD)], dim=1)  # more padding: the same result
        torch.testing.assert_close(model(padded, lengths, tgt), full, rtol=1e-5, atol=1e-5)


def test_a_transformer_learns_and_its_tied_weights_survive_the_run_directory(tmp_path, catalogue):
    small = {"d_model": 32, "num_heads": 4, "encoder_layers": 1, "decoder_layers": 1, "dim_feedforward": 64, "dropout": 0.0}
    m = fit(cfg(tmp_path, catalogue, model="seq2seq_transformer", model_args=small, epochs=8, batch_size=8))
    bleu = [e["test_bleu"] for e in m["epochs"]]
    assert bleu[-1] > 50 and bleu[-1] > bleu[0], bleu
    run = load_run(tmp_path / "run")
    assert run.model.head.weight is run.model.tgt_embed.weight  # still one parameter after loading
    text, _, figure = translate(run, "Close the new file", beam=2, attention_png=tmp_path / "a.png")
    assert text.split()[0] == "fermer" and png_size(figure)
