"""The lab: every claim of the notes (CURRICULUM.md, C01-C48) as an experiment that runs,
measures, draws figures and states a verdict computed from its numbers.

    deepnotes lab list
    deepnotes lab run C05 C06 --quick --out lab-out
    deepnotes lab report --out lab-out

An experiment is a function `run(ctx, **params) -> Finding` registered with @experiment. The
default params reproduce the claim's setting; tests pass other params (the opposite evidence,
e.g. C07 with random instead of zero init) and check that the verdict flips. The verdict
always comes from a `judge(numbers)` function, never from hand-written text.

Each run writes OUT/ID/result.json:
    {"id", "title", "korean", "claim", "verdict", "reason", "numbers", "figures", "seconds",
     "quick", "params"}
and the figures (PNG) beside it.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from deepnotes.errors import UserError
from deepnotes.lab.claims import CLAIMS, Claim
from deepnotes.registry import Registry

VERDICTS = ("holds", "does not hold", "holds with a correction")
DEFAULT_OUT = "lab-out"

# One module per claim group; importing them registers their experiments.
EXPERIMENT_MODULES = (
    "deepnotes.lab.cnn",
    "deepnotes.lab.activations",
    "deepnotes.lab.init",
    "deepnotes.lab.normalization",
    "deepnotes.lab.optimization",
    "deepnotes.lab.pca",
    "deepnotes.lab.depth",
    "deepnotes.lab.transfer",
    "deepnotes.lab.explain",
    "deepnotes.lab.attention",
    "deepnotes.lab.dense",
)


@dataclass(frozen=True)
class Finding:
    """What an experiment returns: its measurements, the figure files it wrote, and the verdict."""

    numbers: dict[str, Any]
    figures: list[str]
    verdict: str
    reason: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


@dataclass
class Context:
    """Where and how an experiment runs: output folder, size (quick or full), seed."""

    out_dir: Path
    quick: bool = False
    seed: int = 0
    log: Callable[[str], None] = print
    figures: list[str] = field(default_factory=list)

    def figure_path(self, name: str) -> Path:
        """A path for a PNG figure in the experiment's folder; remembered for result.json."""
        if not name.endswith(".png"):
            name += ".png"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if name not in self.figures:
            self.figures.append(name)
        return self.out_dir / name

    def size(self, quick: Any, full: Any) -> Any:
        """Pick the quick or the full-size value of a setting."""
        return quick if self.quick else full


@dataclass(frozen=True)
class Experiment:
    id: str
    title: str
    korean: str
    claim: str
    run: Callable[..., Finding]


def _populate() -> None:
    for module in EXPERIMENT_MODULES:
        importlib.import_module(module)


EXPERIMENTS: Registry[Experiment] = Registry("experiment", _populate)


def experiment(id: str):
    """Decorator: register `run(ctx, **params) -> Finding` as the experiment for claim `id`
    (its title, Korean term and wording come from deepnotes.lab.claims)."""

    def wrap(fn: Callable[..., Finding]) -> Callable[..., Finding]:
        c = CLAIMS[id]
        EXPERIMENTS.add(id, Experiment(c.id, c.title, c.korean, c.claim, fn))
        return fn

    return wrap


def claim_status() -> list[tuple[Claim, bool]]:
    """Every claim of the notes, and whether an experiment implements it."""
    return [(c, c.id in EXPERIMENTS) for c in CLAIMS.values()]


def get_experiment(id: str) -> Experiment:
    """The experiment for claim `id`; a clear error for unknown or not yet implemented claims."""
    id = id.upper()
    if id in CLAIMS and id not in EXPERIMENTS:
        done = ", ".join(EXPERIMENTS.names())
        raise UserError(f"{id} ({CLAIMS[id].title}) has no experiment yet; implemented: {done}")
    return EXPERIMENTS.get(id)


def list_experiments(pattern: str | None = None) -> list[Experiment]:
    return [EXPERIMENTS.get(name) for name in EXPERIMENTS.names(pattern)]


def run_experiment(
    id: str, out: str | Path = DEFAULT_OUT, *, quick: bool = False, seed: int = 0, log: Callable[[str], None] = print, **params: Any
) -> dict[str, Any]:
    """Run one experiment, write OUT/ID/result.json and its figures, and return the result dict."""
    import torch

    from deepnotes.fileio import write_json

    exp = get_experiment(id)
    ctx = Context(Path(out) / exp.id, quick=quick, seed=seed, log=log)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    start = time.perf_counter()
    finding = exp.run(ctx, **params)
    result = {
        "id": exp.id,
        "title": exp.title,
        "korean": exp.korean,
        "claim": exp.claim,
        "verdict": finding.verdict,
        "reason": finding.reason,
        "numbers": finding.numbers,
        "figures": finding.figures,
        "seconds": round(time.perf_counter() - start, 3),
        "quick": quick,
        "params": {k: v for k, v in params.items()},
    }
    missing = [f for f in finding.figures if not (ctx.out_dir / f).exists()]
    if missing:
        raise RuntimeError(f"{exp.id} lists figures it did not write: {missing}")
    write_json(ctx.out_dir / "result.json", result)
    return result


def load_results(out: str | Path = DEFAULT_OUT) -> list[dict[str, Any]]:
    """All result.json files under OUT, in claim order."""
    out = Path(out)
    if not out.is_dir():
        raise UserError(f"{out} holds no lab results; run `deepnotes lab run ... --out {out}` first")
    results = []
    for path in sorted(out.glob("*/result.json")):
        try:
            results.append(json.loads(path.read_text()))
        except json.JSONDecodeError as e:
            raise UserError(f"{path} is not valid JSON ({e}); rerun that experiment") from None
    if not results:
        raise UserError(f"{out} holds no lab results; run `deepnotes lab run ... --out {out}` first")
    return sorted(results, key=lambda r: int(r["id"][1:]))
