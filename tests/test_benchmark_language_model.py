"""benchmarks/language_model.py keeps working: its smoke mode trains nanoGPT's loop and deepnotes's recipes side by side."""

import json
import math

import pytest
from fakes import load_benchmark


@pytest.mark.slow
def test_language_model_benchmark_races_the_peer_and_reports_the_ratio(capsys):
    bench = load_benchmark("language_model")
    assert bench.peer_lr(0) < bench.peer_lr(99) <= bench.PEER["lr"]  # the warm-up climbs
    assert bench.peer_lr(bench.PEER["iters"]) == bench.PEER["min_lr"] == bench.peer_lr(10**6)  # the cosine ends at min_lr
    assert bench.main(["--quick", "--json", "--threads", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert result["benchmark"] == "language_model" and result["corpus"] == "gettext-en" and result["quick"]
    peer, ours = result["peer"], result["deepnotes"]
    assert [c["iter"] for c in peer["curve"]] == [0, 30] and peer["curve"][-1]["test_loss"] < peer["curve"][0]["test_loss"]
    assert [c["step"] for c in ours["curve"]][-1] <= 20 and all(math.isfinite(c["test_loss"]) for c in ours["curve"])
    if ours["reached"] is not None:  # it stops at the peer's loss; the ratio is its seconds over the peer's
        assert ours["reached"]["test_loss"] <= peer["final_loss"]
        assert result["time_ratio"] == round(ours["reached"]["seconds"] / peer["train_seconds"], 4)
    else:
        assert result["time_ratio"] is None
    assert result["long"]["recipe"]["model"] == "gpt_mini" and result["long"]["curve"]
