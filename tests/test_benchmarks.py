"""The benchmark scripts keep working: their smoke modes run end to end on tiny data."""

import json

import pytest
from fakes import load_benchmark


def test_zoo_quick_writes_a_table_and_keeps_rows_across_invocations(tmp_path, capsys):
    zoo = load_benchmark("zoo")
    assert zoo.main(["--quick", "--models", "mlp", "--out", str(tmp_path), "--threads", "1"]) == 0
    assert zoo.main(["--quick", "--models", "lenet5_relu", "--out", str(tmp_path), "--threads", "1"]) == 0
    rows = json.loads((tmp_path / "zoo.json").read_text())["rows"]
    assert set(rows) == {"mlp", "lenet5_relu"}
    assert rows["mlp"]["params"] == 8 * 8 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10  # digits are 8x8
    assert 0.0 <= rows["mlp"]["test_accuracy"] <= 1.0 and rows["mlp"]["images_per_second"] > 0
    table = (tmp_path / "zoo.md").read_text()
    assert "python benchmarks/zoo.py --quick" in table and "| MLP (baseline) | `mlp` |" in table
    assert "deepnotes train lenet5_relu --data digits --epochs 1" in table
    # re-measuring throughput keeps the trained rows as they were
    before = json.loads((tmp_path / "zoo.json").read_text())["rows"]
    assert zoo.main(["--quick", "--models", "mlp", "--out", str(tmp_path), "--threads", "1", "--throughput-only"]) == 0
    after = json.loads((tmp_path / "zoo.json").read_text())["rows"]
    assert after["lenet5_relu"] == before["lenet5_relu"] and after["mlp"]["test_accuracy"] == before["mlp"]["test_accuracy"]
    assert after["mlp"]["images_per_second"] > 0


def test_zoo_rejects_an_unknown_model(tmp_path):
    from deepnotes.errors import UserError

    with pytest.raises(UserError, match="vgg_small"):
        load_benchmark("zoo").main(["--quick", "--models", "vgg_smal", "--out", str(tmp_path)])


def test_precision_benchmark_prints_both_speeds_and_their_ratio(capsys):
    precision = load_benchmark("precision")
    args = ["--models", "resnet20", "unet_small", "--batch-size", "2", "--steps", "1", "--rounds", "1", "--threads", "1", "--json"]
    assert precision.main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["model"] for r in result["rows"]] == ["resnet20", "unet_small"]
    for r in result["rows"]:
        assert r["fp32_images_per_second"] > 0 and r["bf16_images_per_second"] > 0
        assert r["speedup"] == pytest.approx(r["bf16_images_per_second"] / r["fp32_images_per_second"], rel=1e-2)


def test_precision_benchmark_passes_model_options(capsys, monkeypatch):
    precision = load_benchmark("precision")
    built = []
    real = precision.compare
    monkeypatch.setattr(precision, "compare", lambda name, *a: built.append(a[-1]) or real(name, *a))
    args = ["--models", "vit_tiny_28", "--model-arg", "fused_attention=true", "--batch-size", "2", "--steps", "1", "--rounds", "1",
            "--threads", "1", "--json"]  # fmt: skip
    assert precision.main(args) == 0
    assert built == [{"fused_attention": True}]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model_args"] == {"fused_attention": True}


def test_precision_benchmark_rejects_an_unknown_model():
    from deepnotes.errors import UserError

    with pytest.raises(UserError, match="vit_tiny_28"):
        load_benchmark("precision").main(["--models", "vit_tiny28"])


def test_recurrent_benchmark_prints_both_paths_and_their_ratio(capsys):
    recurrent = load_benchmark("recurrent")
    assert recurrent.main(["--quick", "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["benchmark"] == "recurrent" and (result["hidden_size"], result["steps"], result["batch"]) == (16, 8, 4)
    assert [r["pass"] for r in result["rows"]] == ["forward + backward", "forward (no grad)"]
    for r in result["rows"]:
        assert r["scratch_ms"] > 0 and r["fused_ms"] > 0
        assert r["ratio"] == pytest.approx(r["scratch_ms"] / r["fused_ms"], rel=1e-2)
