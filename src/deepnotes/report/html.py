"""A self-contained HTML report for a run directory (and helpers other reports reuse).

    write_run_report("runs/lenet5-mnist")    # -> runs/lenet5-mnist/report.html

The page opens offline: inline CSS, no scripts, figures embedded as base64 data URIs.
Every piece of text from the run (names, config values, class names) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any

from deepnotes.errors import UserError
from deepnotes.fileio import write_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1040px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #666; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 9em; background: #fafafa; }
.card .label { color: #666; font-size: 0.85em; }
.card .value { font-size: 1.4em; font-weight: 600; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fbfbfb; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.note, .empty { color: #888; font-style: italic; }
"""


def embed_png(path: str | os.PathLike) -> str:
    """Return the PNG file at `path` as a `data:image/png;base64,...` URI.

    A missing file or one that is not a PNG is a UserError naming it.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read figure {path}: {e.strerror or e}") from None
    if not data.startswith(PNG_SIGNATURE):
        raise UserError(f"{path} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _format_value(v: Any) -> str:
    """Plain-text rendering of a table cell (not yet escaped)."""
    if v is None:
        return "\u2014"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def html_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Render dicts as an HTML table; every header and cell is escaped.

    Columns are `columns` if given, else the union of the rows' keys in first-seen order.
    Missing values show as a dash, floats with 4 significant digits, dicts/lists as JSON;
    strings are shown as they are (pre-format numbers as strings to control their look).
    Numeric cells are right-aligned. No rows gives a short "no rows" paragraph.
    """
    rows = list(rows)
    if not rows:
        return '<p class="empty">no rows</p>'
    if columns is None:
        columns = []
        for r in rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            cls = ' class="num"' if _is_number(v) else ""
            cells.append(f"<td{cls}>{html.escape(_format_value(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def _read_json(path: Path, what: str) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path} not found: the run directory has no {what}") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} should hold a JSON object, found {type(data).__name__}")
    return data


def _pct(v: Any) -> str:
    return f"{100 * float(v):.2f}%" if _is_number(v) else _format_value(v)


def _seconds(v: Any) -> str:
    if not _is_number(v):
        return _format_value(v)
    v = float(v)
    if v < 60:
        return f"{v:.1f} s"
    m, s = divmod(round(v), 60)
    h, m = divmod(m, 60)
    return f"{v:,.0f} s ({h}h {m:02d}m)" if h else f"{v:,.0f} s ({m}m {s:02d}s)"


def _epoch_list(metrics: dict) -> list[dict]:
    for key in ("epochs", "history"):
        v = metrics.get(key)
        if isinstance(v, list):
            return [e for e in v if isinstance(e, dict)]
    return []


def _epoch_rows(epochs: list[dict]) -> list[dict]:
    """Per-epoch rows with readable units; keys other than the standard ones are kept."""
    standard = {
        "epoch": ("epoch", lambda v: v),
        "train_loss": ("train loss", lambda v: f"{v:.4f}" if _is_number(v) else v),
        "train_accuracy": ("train acc", lambda v: _pct(v) if v is not None else None),
        "test_loss": ("test loss", lambda v: f"{v:.4f}" if _is_number(v) else v),
        "test_accuracy": ("test acc", lambda v: _pct(v) if v is not None else None),
        "lr": ("lr", lambda v: f"{v:.3g}" if _is_number(v) else v),
        "seconds": ("time (s)", lambda v: f"{v:.1f}" if _is_number(v) else v),
    }
    if any("test_mean_iou" in x for x in epochs):  # segmentation: accuracies are pixel accuracies
        standard["train_accuracy"] = ("train pixel acc", standard["train_accuracy"][1])
        standard["test_accuracy"] = ("test pixel acc", standard["test_accuracy"][1])
        standard["test_mean_iou"] = ("test mean IoU", lambda v: f"{v:.4f}" if _is_number(v) else v)
        standard["test_mean_dice"] = ("test mean Dice", lambda v: f"{v:.4f}" if _is_number(v) else v)
    rows = []
    for e in epochs:
        row = {}
        for key, (label, fmt) in standard.items():
            if any(key in x for x in epochs):
                row[label] = fmt(e.get(key))
        for key, v in e.items():
            # per-class dicts go to their own table; test_pixel_accuracy repeats test_accuracy
            if key not in standard and not isinstance(v, dict) and key != "test_pixel_accuracy":
                row[key] = v
        rows.append(row)
    return rows


def _per_class_rows(metrics: dict) -> list[dict]:
    """Segmentation: one row per class with its test IoU, Dice and pixels (from the confusion matrix)."""
    iou, dice = metrics.get("test_iou"), metrics.get("test_dice") or {}
    if not isinstance(iou, dict):
        return []
    cm = metrics.get("confusion")
    totals = [sum(r) for r in cm] if isinstance(cm, list) and len(cm) == len(iou) else None
    rows = []
    for k, (name, v) in enumerate(iou.items()):
        row = {"class": name, "IoU": f"{v:.4f}" if _is_number(v) else "absent", "Dice": dice.get(name)}
        row["Dice"] = f"{row['Dice']:.4f}" if _is_number(row["Dice"]) else "absent"
        if totals is not None:
            row["test pixels"] = totals[k]
        rows.append(row)
    return rows


def _figure_list(metrics: dict, run_dir: Path) -> list[tuple[Path, str]]:
    """(path, caption) for curves.png, confusion.png and whatever metrics["figures"] lists."""
    figs: list[tuple[Path, str]] = []
    segmentation = metrics.get("task") == "segmentation"
    curves, confusion, masks = run_dir / "curves.png", run_dir / "confusion.png", run_dir / "masks.png"
    if curves.is_file():
        what = "Loss and pixel accuracy (train and test) and test mean IoU" if segmentation else "Loss and accuracy (train and test)"
        figs.append((curves, f"{what} per epoch."))
    if segmentation and masks.is_file():  # the predictions themselves, before the confusion matrix
        figs.append((masks, "Test scenes: the image, the ground-truth mask and the predicted mask (fixed class colours)."))
    if confusion.is_file():
        where = "the test pixels" if segmentation else "the test set"
        figs.append((confusion, f"Confusion matrix on {where}: rows are the true class, "
                                "columns the predicted class."))

    listed = metrics.get("figures") or []
    if isinstance(listed, dict):  # {"file.png": "caption"}
        listed = [{"path": k, "caption": v} for k, v in listed.items()]
    if isinstance(listed, str):
        listed = [listed]
    seen = {p.resolve() for p, _ in figs}
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict):
            name = item.get("path") or item.get("file")
            caption = item.get("caption") or item.get("title")
        else:
            name, caption = item, None
        if not name:
            continue
        p = Path(str(name))
        p = p if p.is_absolute() else run_dir / p
        if p.suffix.lower() != ".png" or p.resolve() in seen:
            continue
        seen.add(p.resolve())
        figs.append((p, str(caption) if caption else p.stem.replace("_", " ").replace("-", " ")))
    return figs


def write_run_report(run_dir: str | os.PathLike) -> Path:
    """Write run_dir/report.html from run_dir/config.json and run_dir/metrics.json.

    The page has the headline numbers (test accuracy, training time, time to target if
    recorded, epochs, parameter count if config has `num_params`), the config, the
    per-epoch table and the figures (curves.png, confusion.png and any PNG listed under
    metrics["figures"], embedded). A segmentation run (metrics with `test_mean_iou`) shows
    mean IoU, mean Dice and pixel accuracy as its headline and a per-class IoU / Dice table;
    its masks.png (test scenes: image, ground truth, prediction) comes through
    metrics["figures"]. A missing metrics.json is a UserError naming it; a
    missing config.json only leaves the config section empty. Returns the report's path.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    metrics = _read_json(run_dir / "metrics.json", "metrics.json (has training finished?)")
    config_path = run_dir / "config.json"
    config = _read_json(config_path, "config.json") if config_path.exists() else {}

    epochs = _epoch_list(metrics)
    last = epochs[-1] if epochs else {}
    model, dataset = config.get("model"), config.get("dataset")
    if model and dataset:
        title = f"{model} on {dataset}"
    else:
        title = str(model or dataset or f"run {run_dir.name}")

    cards: list[tuple[str, str]] = []
    shown = {"epochs", "history", "figures"}
    segmentation = metrics.get("task") == "segmentation" or "test_mean_iou" in metrics
    if segmentation:  # mean IoU is the headline; accuracy is per pixel
        shown |= {"task", "target_metric", "test_mean_iou", "test_mean_dice", "test_pixel_accuracy"}
        for key, label in (("test_mean_iou", "test mean IoU"), ("test_mean_dice", "test mean Dice")):
            if _is_number(metrics.get(key)):
                cards.append((label, f"{float(metrics[key]):.4f}"))
    acc = metrics.get("test_accuracy", last.get("test_accuracy"))
    shown.add("test_accuracy")
    if acc is not None:
        cards.append(("test pixel accuracy" if segmentation else "test accuracy", _pct(acc)))
    secs = metrics.get("train_seconds", last.get("seconds"))
    shown.add("train_seconds")
    if secs is not None:
        cards.append(("training time", _seconds(secs)))
    if "seconds_to_target" in metrics:
        shown.add("seconds_to_target")
        target = metrics.get("target_accuracy", config.get("target_accuracy"))
        shown.add("target_accuracy")
        if segmentation:
            label = f"time to mean IoU {float(target):.4g}" if _is_number(target) else "time to target"
        else:
            label = f"time to {_pct(target)}" if _is_number(target) else "time to target"
        stt = metrics["seconds_to_target"]
        cards.append((label, _seconds(stt) if stt is not None else "not reached"))
    n_epochs = len(epochs) if epochs else metrics.get("epochs", config.get("epochs"))
    if n_epochs is not None:
        cards.append(("epochs", _format_value(n_epochs)))
    if _is_number(config.get("num_params")):
        cards.append(("parameters", f"{int(config['num_params']):,}"))

    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">run: <code>{esc(run_dir.resolve().name)}</code></p>',
        '<div class="cards">',
    ]
    for label, value in cards:
        parts.append(
            f'<div class="card"><div class="label">{esc(label)}</div>'
            f'<div class="value">{esc(value)}</div></div>'
        )
    parts.append("</div>")

    other = [{"metric": k, "value": v} for k, v in metrics.items()
             if k not in shown and not isinstance(v, (list, dict))]
    if other:
        parts += ["<h2>Other metrics</h2>", html_table(other)]

    parts.append("<h2>Configuration</h2>")
    if config:
        parts.append(html_table([{"setting": k, "value": v} for k, v in config.items()]))
    else:
        parts.append(f'<p class="note">no config.json in {esc(str(run_dir))}</p>')

    per_class = _per_class_rows(metrics)
    if per_class:
        parts += ["<h2>Per-class results on the test scenes</h2>", html_table(per_class),
                  '<p class="note">IoU = TP / (TP + FP + FN), Dice = 2 TP / (2 TP + FP + FN), over all test pixels; '
                  "absent: the class is in neither the targets nor the predictions (left out of the means).</p>"]  # fmt: skip

    parts.append("<h2>Per-epoch results</h2>")
    parts.append(html_table(_epoch_rows(epochs)) if epochs
                 else '<p class="note">no per-epoch results recorded</p>')

    figs = _figure_list(metrics, run_dir)
    if figs:
        parts.append("<h2>Figures</h2>")
    for path, caption in figs:
        try:
            uri = embed_png(path)
        except UserError as e:
            parts.append(f'<p class="note">figure not included: {esc(str(e))}</p>')
            continue
        parts.append(
            f'<figure><img src="{uri}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )
    parts += ["</body>", "</html>", ""]

    out = run_dir / "report.html"
    return write_text(out, "\n".join(parts))
