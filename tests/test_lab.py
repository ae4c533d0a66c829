"""The lab framework: list, run, result.json, verdicts from numbers, the offline HTML report."""

import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from deepnotes.cli import main
from deepnotes.errors import UserError
from deepnotes.lab import claim_status, run_experiment
from deepnotes.lab.claims import CLAIMS
from deepnotes.lab.report import write_lab_markdown, write_lab_report


def test_every_claim_of_the_curriculum_is_listed(capsys):
    assert list(CLAIMS) == [f"C{i:02d}" for i in range(1, 49)]
    assert all(c.korean and c.title and c.claim for c in CLAIMS.values())
    assert main(["lab", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 48
    c46 = next(line for line in lines if line.startswith("C46"))
    assert "implemented" in c46 and "주성분 분석" in c46


def test_c46_holds_and_flips_with_random_directions(tmp_path):
    r = run_experiment("C46", tmp_path, quick=True)
    assert r["verdict"] == "holds"
    saved = json.loads((tmp_path / "C46" / "result.json").read_text())
    assert {"id", "claim", "verdict", "numbers", "figures", "seconds"} <= saved.keys()
    assert saved["numbers"]["sklearn_relative_error"] < 1e-8  # oracle: scikit-learn's PCA
    assert all((tmp_path / "C46" / f).stat().st_size > 0 for f in saved["figures"])
    flipped = run_experiment("C46", tmp_path / "flip", quick=True, directions="random")
    assert flipped["verdict"] == "does not hold"


def test_unimplemented_and_unknown_claims_are_clear_errors(capsys):
    assert main(["lab", "run", "C99"]) == 2
    assert "unknown experiment 'C99'" in capsys.readouterr().err
    missing = next(c.id for c, implemented in claim_status() if not implemented)
    with pytest.raises(UserError, match="has no experiment yet"):
        run_experiment(missing)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        for key in ("href", "src"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.links.append(a[key])

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def lab_out(tmp_path):
    assert main(["lab", "run", "C46", "--quick", "--out", str(tmp_path)]) == 0
    return tmp_path


def test_report_is_offline_and_shows_claim_figures_verdict(lab_out, capsys):
    assert main(["lab", "report", "--out", str(lab_out)]) == 0
    html = (lab_out / "report.html").read_text()
    p = _Collect()
    p.feed(html)
    text = " ".join(p.text)
    assert not p.links  # nothing fetched from the network: opens offline
    assert p.imgs and all(src.startswith("data:image/png;base64,") for src in p.imgs)
    assert "C46" in text and "주성분 분석" in text and "holds" in text
    assert "not implemented yet" in text  # the claims still to come are listed


def test_markdown_links_every_figure(lab_out, tmp_path):
    import re

    md = write_lab_markdown(lab_out, tmp_path / "docs" / "lab.md")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md.read_text())
    assert links and all((md.parent / link).exists() for link in links)


def test_report_without_results_is_a_clear_error(tmp_path, capsys):
    assert main(["lab", "report", "--out", str(tmp_path / "none")]) == 2
    assert "holds no lab results" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(lab_out, tmp_path):
    write_lab_report(lab_out)
    shot = tmp_path / "shot.png"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400",
    ]  # fmt: skip
    dom = subprocess.run(
        ["chromium", *flags, "--dump-dom", (lab_out / "report.html").as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    assert "C46" in dom and "data:image/png;base64," in dom
    subprocess.run(["chromium", *flags, f"--screenshot={shot}", (lab_out / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000

