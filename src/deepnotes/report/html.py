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
from dataclasses import dataclass, field
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


def _metric_text(key: str, v: Any) -> Any:
    """A per-epoch value with readable units: accuracies as %, losses and scores with 4 decimals."""
    if not _is_number(v):
        return v
    if key == "lr":
        return f"{v:.3g}"
    if key == "seconds":
        return f"{v:.1f}"
    if "accuracy" in key:
        return _pct(v)
    if key.startswith(("train_", "test_")):
        return f"{v:.4f}"
    return v


STANDARD_LABELS = {
    "epoch": "epoch", "train_loss": "train loss", "train_accuracy": "train acc", "test_loss": "test loss",
    "test_accuracy": "test acc", "lr": "lr", "seconds": "time (s)",
}  # fmt: skip


def _epoch_rows(epochs: list[dict], labels: dict[str, str | None] | None = None) -> list[dict]:
    """Per-epoch rows with readable units and labels (the task's `labels` first; a label of
    None hides a key); dict values (per-class numbers) go to the task's own tables."""
    labels = {**STANDARD_LABELS, **(labels or {})}
    keys: list[str] = []
    for e in epochs:
        keys += [k for k, v in e.items() if k not in keys and not isinstance(v, dict)]
    keys = [k for k in STANDARD_LABELS if k in keys] + [k for k in keys if k not in STANDARD_LABELS]
    rows = []
    for e in epochs:
        row = {}
        for key in keys:
            label = labels.get(key, key)
            if label is not None:
                row[label] = _metric_text(key, e.get(key))
        rows.append(row)
    return rows


@dataclass
class ReportParts:
    """A task's part of report.html (deepnotes.tasks.base.Task.report): the headline cards
    first, sections after the configuration, and labels for the per-epoch table."""

    cards: list[tuple[str, str]] = field(default_factory=list)  # (label, value)
    headline_keys: set[str] = field(default_factory=set)  # the metrics the cards show (not repeated below)
    sections: list[tuple[str, str]] = field(default_factory=list)  # (title, HTML)
    labels: dict[str, str | None] = field(default_factory=dict)  # history key -> column label (None: hidden)


def _figure_list(metrics: dict, run_dir: Path) -> list[tuple[Path, str]]:
    """(path, caption) for the PNGs metrics["figures"] lists (a list of {"path", "caption"}, a
    {file: caption} dict or file names), in that order; curves.png and confusion.png are shown
    even when not listed."""
    listed = metrics.get("figures") or []
    if isinstance(listed, dict):  # {"file.png": "caption"}
        listed = [{"path": k, "caption": v} for k, v in listed.items()]
    if isinstance(listed, str):
        listed = [listed]
    figs: list[tuple[Path, str]] = []
    seen: set[Path] = set()
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
    defaults = (("curves.png", "Training curves per epoch."), ("confusion.png", "Confusion matrix: rows are the true class, columns the predicted class."))
    for name, caption in defaults:
        p = run_dir / name
        if p.is_file() and p.resolve() not in seen:
            figs.append((p, caption))
    return figs


def default_cards(metrics: dict) -> list[tuple[str, str]]:
    """The headline of a run without a task's report: its target metric (test accuracy if none is named)."""
    key = metrics.get("target_metric") or "test_accuracy"
    v = metrics.get(key)
    if v is None and key == "test_accuracy":
        epochs = _epoch_list(metrics)
        v = epochs[-1].get("test_accuracy") if epochs else None
    if v is None:
        return []
    return [(key.replace("_", " "), _pct(v) if "accuracy" in key else _format_value(v))]


def default_parts(metrics: dict) -> ReportParts:
    key = metrics.get("target_metric") or "test_accuracy"
    return ReportParts(cards=default_cards(metrics), headline_keys={key})


def write_run_report(run_dir: str | os.PathLike, parts: ReportParts | None = None) -> Path:
    """Write run_dir/report.html from run_dir/config.json and run_dir/metrics.json.

    The page has the headline numbers (the task's cards, else default_cards; then training
    time, time to target if recorded, epochs, parameter count if config has `num_params`),
    the other scalar metrics, the config, the task's sections, the per-epoch table and the
    figures (those metrics["figures"] lists, embedded). A missing metrics.json is a UserError
    naming it; a missing config.json only leaves the config section empty. Returns the
    report's path.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    metrics = _read_json(run_dir / "metrics.json", "metrics.json (has training finished?)")
    config_path = run_dir / "config.json"
    config = _read_json(config_path, "config.json") if config_path.exists() else {}
    parts = parts or default_parts(metrics)

    epochs = _epoch_list(metrics)
    last = epochs[-1] if epochs else {}
    model, dataset = config.get("model"), config.get("dataset")
    if model and dataset:
        title = f"{model} on {dataset}"
    else:
        title = str(model or dataset or f"run {run_dir.name}")

    cards: list[tuple[str, str]] = list(parts.cards)
    shown = {"epochs", "history", "figures", "task", "target_metric", "train_seconds", "seconds_to_target", "target_accuracy"}
    shown |= parts.headline_keys
    secs = metrics.get("train_seconds", last.get("seconds"))
    if secs is not None:
        cards.append(("training time", _seconds(secs)))
    if "seconds_to_target" in metrics:
        target = metrics.get("target_accuracy", config.get("target_accuracy"))
        key = metrics.get("target_metric") or "test_accuracy"
        if _is_number(target):
            label = f"time to {_pct(target)}" if "accuracy" in key else f"time to {key.removeprefix('test_').replace('_', ' ')} {float(target):.4g}"
        else:
            label = "time to target"
        stt = metrics["seconds_to_target"]
        cards.append((label, _seconds(stt) if stt is not None else "not reached"))
    n_epochs = len(epochs) if epochs else metrics.get("epochs", config.get("epochs"))
    if n_epochs is not None:
        cards.append(("epochs", _format_value(n_epochs)))
    if _is_number(config.get("num_params")):
        cards.append(("parameters", f"{int(config['num_params']):,}"))

    esc = html.escape
    parts_html = [
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
        f'<p class="sub">run: <code>{esc(run_dir.resolve().name)}</code>'
        + (f" &middot; task: {esc(str(metrics['task']))}" if metrics.get("task") else "") + "</p>",
        '<div class="cards">',
    ]
    for label, value in cards:
        parts_html.append(
            f'<div class="card"><div class="label">{esc(label)}</div>'
            f'<div class="value">{esc(value)}</div></div>'
        )
    parts_html.append("</div>")

    other = [{"metric": k, "value": v} for k, v in metrics.items()
             if k not in shown and not isinstance(v, (list, dict))]
    if other:
        parts_html += ["<h2>Other metrics</h2>", html_table(other)]

    parts_html.append("<h2>Configuration</h2>")
    if config:
        parts_html.append(html_table([{"setting": k, "value": v} for k, v in config.items()]))
    else:
        parts_html.append(f'<p class="note">no config.json in {esc(str(run_dir))}</p>')

    for section_title, body in parts.sections:  # the task's HTML, escaped where it was made
        parts_html += [f"<h2>{esc(section_title)}</h2>", body]

    parts_html.append("<h2>Per-epoch results</h2>")
    parts_html.append(html_table(_epoch_rows(epochs, parts.labels)) if epochs
                      else '<p class="note">no per-epoch results recorded</p>')

    figs = _figure_list(metrics, run_dir)
    if figs:
        parts_html.append("<h2>Figures</h2>")
    for path, caption in figs:
        try:
            uri = embed_png(path)
        except UserError as e:
            parts_html.append(f'<p class="note">figure not included: {esc(str(e))}</p>')
            continue
        parts_html.append(
            f'<figure><img src="{uri}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )
    parts_html += ["</body>", "</html>", ""]

    out = run_dir / "report.html"
    return write_text(out, "\n".join(parts_html))
