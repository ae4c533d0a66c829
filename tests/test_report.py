"""Plots (confusion matrix, curves) and the self-contained HTML run report."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from deepnotes.errors import UserError
from deepnotes.metrics import confusion_matrix
from deepnotes.report import (
    embed_png,
    html_table,
    plot_confusion,
    plot_curves,
    write_run_report,
)


def _epochs(n: int) -> list[dict]:
    return [
        {
            "epoch": i + 1,
            "train_loss": 1.0 / (i + 1),
            "train_accuracy": 0.80 + 0.01 * i,
            "test_loss": 1.1 / (i + 1),
            "test_accuracy": 0.78 + 0.01 * i,
            "lr": 0.1 * 0.5**i,
            "seconds": 2.0 * (i + 1),
        }
        for i in range(n)
    ]


def _check_png(path) -> tuple[int, int]:
    assert path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        return im.size


# --------------------------------------------------------------------------- confusion matrix


def test_confusion_matrix_matches_sklearn():
    from sklearn.metrics import confusion_matrix as sk_cm

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, size=500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 7, size=500))
    cm = confusion_matrix(y_true, y_pred, 7)
    assert cm.dtype == np.int64 and cm.shape == (7, 7)
    np.testing.assert_array_equal(cm, sk_cm(y_true, y_pred, labels=list(range(7))))
    assert cm.sum() == 500


def test_confusion_matrix_absent_classes_and_lists():
    from sklearn.metrics import confusion_matrix as sk_cm

    y_true, y_pred = [0, 0, 2, 2], [0, 2, 2, 2]  # class 1 and 3 never appear
    cm = confusion_matrix(y_true, y_pred, 4)
    np.testing.assert_array_equal(cm, sk_cm(y_true, y_pred, labels=[0, 1, 2, 3]))
    assert confusion_matrix([], [], 3).shape == (3, 3)


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError):
        confusion_matrix([0, 5], [0, 1], 3)
    with pytest.raises(ValueError):
        confusion_matrix([0, -1], [0, 1], 3)


# --------------------------------------------------------------------------- plots


def test_plot_curves_writes_png(tmp_path):
    out = plot_curves(_epochs(5), tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    w, h = _check_png(out)
    assert w > h > 100
    assert not [p for p in tmp_path.iterdir() if p.name != "curves.png"]  # no temp files left


def test_plot_curves_single_epoch_and_missing_test(tmp_path):
    one = _epochs(1)
    _check_png(plot_curves(one, tmp_path / "one.png"))
    no_test = [dict(e, test_loss=None, test_accuracy=None) for e in _epochs(3)]
    _check_png(plot_curves(no_test, tmp_path / "notest.png"))
    _check_png(plot_curves([], tmp_path / "empty.png"))


def test_plot_confusion_writes_png(tmp_path):
    cm = np.array([[5, 1, 0], [0, 3, 2], [0, 0, 0]])  # an empty row must not divide by zero
    _check_png(plot_confusion(cm, ["a", "b", "c"], tmp_path / "norm.png"))
    _check_png(plot_confusion(cm, None, tmp_path / "counts.png", normalize=False))
    big = np.diag(np.arange(1, 31))
    _check_png(plot_confusion(big, [f"class {i}" for i in range(30)], tmp_path / "big.png"))
    with pytest.raises(ValueError):
        plot_confusion(cm, ["a", "b"], tmp_path / "bad.png")


def test_importing_report_is_light():
    code = (
        "import sys, deepnotes.report; "
        "print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- html


def test_html_table_escapes_and_formats():
    t = html_table([{"a": 1, "b": "<b>x</b>"}, {"a": 0.123456, "c": None}])
    assert "<b>x</b>" not in t and "&lt;b&gt;x&lt;/b&gt;" in t
    assert "<th>a</th><th>b</th><th>c</th>" in t
    assert "0.1235" in t
    assert "empty" in html_table([])


def test_embed_png(tmp_path):
    p = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(p)
    assert embed_png(p).startswith("data:image/png;base64,iVBOR")
    (tmp_path / "fake.png").write_text("not a png")
    with pytest.raises(UserError, match="fake.png"):
        embed_png(tmp_path / "fake.png")


def _make_run(run_dir, classes=("T-shirt", "<script>alert(1)</script>", "Bag")):
    run_dir.mkdir()
    config = {
        "model": "lenet5",
        "dataset": "fashion-mnist",
        "epochs": 3,
        "lr": 0.1,
        "num_params": 61706,
        "classes": list(classes),
    }
    metrics = {
        "test_accuracy": 0.9123,
        "train_seconds": 12.5,
        "seconds_to_target": 8.5,
        "epochs": _epochs(3),
        "figures": ["extra_plot.png", "missing.png"],
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    plot_curves(metrics["epochs"], run_dir / "curves.png")
    plot_confusion(np.eye(3, dtype=int) * 4, list(classes), run_dir / "confusion.png")
    Image.new("RGB", (8, 8), "red").save(run_dir / "extra_plot.png")
    return run_dir


def test_run_report_contents(tmp_path):
    run = _make_run(tmp_path / "run")
    out = write_run_report(run)
    assert out == run / "report.html"
    page = out.read_text(encoding="utf-8")
    assert "lenet5 on fashion-mnist" in page
    assert "91.23%" in page
    assert "12.5 s" in page and "8.5 s" in page
    assert "61,706" in page
    assert page.count("<tr>") >= 3 + 6  # per-epoch rows + config rows
    # The malicious class name is escaped, never live markup.
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    # Self-contained: every src/href is a data: URI, nothing fetched from the network.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page)
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "missing.png" in page  # listed but absent: mentioned, not fatal


def test_run_report_minimal_metrics(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"epochs": _epochs(1)}))
    page = write_run_report(run).read_text()
    assert "78.00%" in page  # falls back to the last epoch's test accuracy
    assert "<img" not in page


def test_run_report_missing_metrics(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with pytest.raises(UserError, match="metrics.json"):
        write_run_report(run)
    (run / "metrics.json").write_text("{broken")
    with pytest.raises(UserError, match="not valid JSON"):
        write_run_report(run)
    with pytest.raises(UserError, match="does not exist"):
        write_run_report(tmp_path / "nope")
