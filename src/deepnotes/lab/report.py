"""One offline HTML page for all lab results: each claim with its Korean term, its verdict,
the reason computed from the numbers, the numbers themselves and the figures (embedded)."""

from __future__ import annotations

import os
from html import escape as esc
from pathlib import Path
from typing import Any

from deepnotes.fileio import write_text
from deepnotes.lab import DEFAULT_OUT, claim_status, load_results
from deepnotes.report.html import CSS, embed_png, html_table

LAB_CSS = CSS + """
.verdict { display: inline-block; padding: 0.1em 0.6em; border-radius: 4px; font-weight: 600; }
.v-holds { background: #e3f4e3; color: #1b5e20; }
.v-does-not-hold { background: #fde2e1; color: #b71c1c; }
.v-holds-with-a-correction { background: #fff3cd; color: #7a5a00; }
.claim { border-top: 2px solid #eee; margin-top: 2em; }
.ko { color: #555; }
"""


def _numbers_rows(numbers: dict[str, Any]) -> list[dict]:
    return [{"number": k, "value": v} for k, v in numbers.items()]


def write_lab_report(out: str | Path = DEFAULT_OUT) -> Path:
    """Write OUT/report.html from OUT/*/result.json and return its path."""
    out = Path(out)
    results = load_results(out)
    done = {r["id"] for r in results}
    counts = {v: sum(r["verdict"] == v for r in results) for v in ("holds", "holds with a correction", "does not hold")}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>deepnotes lab</title>",
        f"<style>{LAB_CSS}</style></head><body>",
        "<h1>deepnotes lab: the claims of the notes, measured</h1>",
        f'<p class="sub">{len(results)} experiments: '
        + ", ".join(f"{n} {esc(v)}" for v, n in counts.items())
        + (". Quick (reduced-size) runs are marked." if any(r.get("quick") for r in results) else ".")
        + "</p>",
        html_table(
            [
                {"id": r["id"], "claim": f"{r['title']} ({r['korean']})", "verdict": r["verdict"],
                 "size": "quick" if r.get("quick") else "full", "seconds": r["seconds"]}
                for r in results
            ]
        ),
    ]  # fmt: skip
    for r in results:
        slug = r["verdict"].replace(" ", "-")
        parts += [
            f'<section class="claim" id="{esc(r["id"])}">',
            f'<h2>{esc(r["id"])} {esc(r["title"])} <span class="ko">{esc(r["korean"])}</span></h2>',
            f'<p><em>Claim:</em> {esc(r["claim"])}</p>',
            f'<p><span class="verdict v-{esc(slug)}">{esc(r["verdict"])}</span> {esc(r["reason"])}</p>',
            html_table(_numbers_rows(r["numbers"])),
        ]
        for name in r["figures"]:
            parts.append(f'<figure><img src="{embed_png(out / r["id"] / name)}" alt="{esc(name)}"><figcaption>{esc(name)}</figcaption></figure>')
        parts.append("</section>")
    not_run = [(c, implemented) for c, implemented in claim_status() if c.id not in done]
    if not_run:
        parts.append("<h2>Not in this report</h2>")
        rows = [
            {"id": c.id, "claim": f"{c.title} ({c.korean})", "status": "implemented, not run" if implemented else "not implemented yet"}
            for c, implemented in not_run
        ]
        parts.append(html_table(rows))
    parts += ["</body></html>", ""]
    return write_text(out / "report.html", "\n".join(parts))


LAB_DOCS_COMMAND = "deepnotes lab run all --out docs/lab && deepnotes lab report docs/lab --markdown docs/lab.md"


def _md_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_md_value(x) for x in v)
    return str(v).replace("|", "\\|")


def write_lab_markdown(out: str | Path, md_path: str | Path) -> Path:
    """Write a Markdown page of all results in OUT (figures linked relative to the page)."""
    out, md_path = Path(out), Path(md_path)
    results = load_results(out)
    rel = Path(os.path.relpath(out, md_path.parent))
    lines = [
        "# The lab: the claims of the notes, measured",
        "",
        f"Produced by `{LAB_DOCS_COMMAND}` (full sizes, seed 0; `make lab` runs the same).",
        "Every verdict is computed from the numbers by the experiment's `judge_cNN` function.",
        "",
        "| id | claim | Korean term | verdict | seconds |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| [{r['id']}](#{r['id'].lower()}) | {r['title']} | {r['korean']} | {r['verdict']} | {r['seconds']:.1f} |" for r in results]
    for r in results:
        lines += ["", f"## {r['id']}", "", f"**{r['title']}** ({r['korean']}). *Claim:* {r['claim']}", ""]
        lines += [f"**Verdict: {r['verdict']}.** {r['reason']}", "", "| number | value |", "|---|---|"]
        lines += [f"| {k} | {_md_value(v)} |" for k, v in r["numbers"].items()]
        lines += [""] + [f"![{r['id']} {name}]({(rel / r['id'] / name).as_posix()})" for name in r["figures"]]
        if r.get("quick"):
            lines += ["", "*(quick run: reduced sizes)*"]
    return write_text(md_path, "\n".join(lines) + "\n")

