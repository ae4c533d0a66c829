"""The lab framework: discovery, the evidence every experiment declares (its quick run's verdict,
the opposite evidence that flips it), list, run, result.json, the offline HTML report."""

import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from labcheck import NUMBER_CHECKS, check_opposite_flips, check_quick_run, misnamed, undeclared

import deepnotes.lab as lab
from deepnotes.cli import main
from deepnotes.errors import UserError
from deepnotes.lab import claim_status, experiment, list_experiments, run_experiment
from deepnotes.lab.claims import CLAIMS
from deepnotes.lab.report import write_lab_markdown, write_lab_report

REGISTERED = list_experiments()  # discovery: every module of every chapter subpackage of deepnotes.lab


def test_every_claim_of_the_notes_is_listed(capsys):
    assert list(CLAIMS) == [f"C{i:02d}" for i in range(1, 86)]  # C01-C83 of the notes, C84-C85 after their ViT part
    assert all(c.korean and c.title and c.claim for c in CLAIMS.values())
    assert main(["lab", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 85
    c46 = next(line for line in lines if line.startswith("C46"))
    assert "implemented" in c46 and "주성분 분석" in c46


# ---------------------------------------------------------------- every registered experiment


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("lab")


def test_every_experiment_declares_its_evidence_and_follows_the_names():
    chapters = {e.run.__module__.split(".")[2] for e in REGISTERED}
    assert {"cnn", "training", "explain", "attention", "dense"} <= chapters  # discovery found every chapter
    assert not undeclared(REGISTERED), "experiments without quick_verdict= and opposite= in @experiment"
    assert not misnamed(REGISTERED), "experiments not named run_cNN / judge_cNN"


def test_the_checks_catch_an_experiment_without_evidence_or_with_other_names():
    free = next(c.id for c, implemented in claim_status() if not implemented)
    with lab.EXPERIMENTS.scoped():
        experiment(free)(lambda ctx: None)  # no quick_verdict, no opposite, not run_cNN
        assert undeclared(list_experiments()) == [free]
        assert misnamed(list_experiments()) == [free]
    with lab.EXPERIMENTS.scoped():
        experiment(free, quick_verdict="does not hold", opposite={"x": 1})(lambda ctx, x=0: None)  # nothing left to flip
        assert undeclared(list_experiments()) == [free]
    with pytest.raises(ValueError, match="does not take"):
        experiment(free, quick_verdict="holds", opposite={"typo": 1})(lambda ctx, x=0: None)
    assert free not in lab.EXPERIMENTS


@pytest.mark.parametrize("exp", REGISTERED, ids=[e.id for e in REGISTERED])
def test_quick_run_gives_the_declared_verdict(exp, out):
    result = check_quick_run(exp.id, exp.quick_verdict, out)
    if exp.id in NUMBER_CHECKS:
        NUMBER_CHECKS[exp.id](result["numbers"])


@pytest.mark.parametrize("exp", REGISTERED, ids=[e.id for e in REGISTERED])
def test_opposite_evidence_flips_the_verdict(exp, out):
    check_opposite_flips(exp.id, exp.quick_verdict, exp.opposite, out)


def test_a_new_chapter_is_discovered_without_editing_a_list(tmp_path, monkeypatch):
    free = next(c.id for c, implemented in claim_status() if not implemented)
    chapter = tmp_path / "zz_new_chapter"
    chapter.mkdir()
    (chapter / "__init__.py").write_text('"""A chapter the test makes."""\n')
    (chapter / "probe.py").write_text(
        "from deepnotes.lab import experiment\n\n\n"
        f"@experiment({free!r}, quick_verdict='holds', opposite={{'flip': True}})\n"
        f"def run_{free.lower()}(ctx, flip=False):\n    pass\n"
    )
    monkeypatch.setattr(lab, "__path__", [*lab.__path__, str(tmp_path)])
    monkeypatch.setattr(lab, "_discovered", False)
    try:
        with lab.EXPERIMENTS.scoped():
            assert free in [e.id for e in list_experiments()]
            assert lab.get_experiment(free).opposite == {"flip": True}
            assert {e.id for e in REGISTERED} < {e.id for e in list_experiments()}  # the others are still there
    finally:
        for name in [m for m in sys.modules if m.startswith("deepnotes.lab.zz_new_chapter")]:
            del sys.modules[name]
        vars(lab).pop("zz_new_chapter", None)
    assert free not in lab.EXPERIMENTS


def test_importing_the_lab_does_not_import_torch():
    code = "import sys, deepnotes.lab, deepnotes.lab.report; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- errors, report


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
    assert main(["lab", "report", str(lab_out)]) == 0
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
    assert main(["lab", "report", str(tmp_path / "none")]) == 2
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

