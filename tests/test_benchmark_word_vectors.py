"""benchmarks/word_vectors.py keeps working: its smoke mode trains deepnotes and gensim side by side."""

import json
import math

import pytest
from fakes import load_benchmark

pytest.importorskip("gensim")  # the peer the benchmark compares with (a development dependency)



def test_word_vectors_benchmark_scores_both_systems_and_their_time_ratio(capsys):
    bench = load_benchmark("word_vectors")
    assert bench.main(["--quick", "--json", "--threads", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert result["benchmark"] == "word_vectors" and result["corpus"] == "gettext-en"
    assert (result["epochs"], result["seeds"], result["dim"]) == (1, [0], 16)
    assert [r["model"] for r in result["rows"]][:3] == ["word2vec", "cbow", "fasttext"]  # then glove, once it is registered
    metrics = ("test_wordsim", "test_simlex", "test_analogy")
    for row in result["rows"][:3]:
        assert set(row["systems"]) == {"deepnotes", "gensim"}
        for system in row["systems"].values():
            assert len(system["runs"]) == 1 and system["train_seconds"]["mean"] > 0
            for key in metrics:
                value = system[key]["mean"]
                assert math.isfinite(value) and (-1 <= value <= 1)
            assert system["runs"][0]["vocab"] == row["systems"]["gensim"]["runs"][0]["vocab"]  # the same words, scored alike
        for key in metrics:
            d = row["difference"][key]
            assert d["mean"] == pytest.approx(
                row["systems"]["deepnotes"][key]["mean"] - row["systems"]["gensim"][key]["mean"], abs=1e-3
            )
            assert d["verdict"].startswith("met" if abs(d["mean"]) <= d["margin"] else "not met")
        assert math.isfinite(row["time_ratio"]) and row["time_ratio"] > 0
    for row in result["rows"][3:]:  # GloVe: deepnotes only (gensim has none)
        assert row["model"] == "glove" and set(row["systems"]) == {"deepnotes"} and "time_ratio" not in row
        assert all(math.isfinite(row["systems"]["deepnotes"][key]["mean"]) for key in metrics)
    table = "\n".join(out)
    assert "| Word2Vec skip-gram | deepnotes |" in table and "| Word2Vec CBOW | gensim |" in table
    assert "| FastText skip-gram | deepnotes - gensim |" in table
