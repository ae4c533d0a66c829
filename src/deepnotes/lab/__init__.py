"""The lab: every claim of the notes (the ids C01-C85 of deepnotes.lab.claims) as an experiment
that runs, measures, draws figures and states a verdict computed from its numbers.

    deepnotes lab list
    deepnotes lab run C05 C06 --quick             # -> runs/lab/C05/, runs/lab/C06/
    deepnotes lab report runs/lab

The experiments live in chapter subpackages (lab/cnn/, lab/training/, lab/attention/, ...); every
module of every chapter is imported on first use of the registry (a new chapter is a new
subpackage, listed nowhere). An experiment is a function `run_cNN(ctx, **params) -> Finding`
registered with

    @experiment("C05", quick_verdict="holds", opposite={"activation": "relu"})

The default params reproduce the claim's setting; quick_verdict is the verdict of the quick run
with them, and `opposite` the params that give the opposite evidence (the verdict must flip to
"does not hold"); one parametrized test runs both for every registered experiment. The verdict
always comes from a `judge_cNN(numbers)` function, never from hand-written text.

Each run writes OUT/ID/result.json:
    {"id", "title", "korean", "claim", "verdict", "reason", "numbers", "figures", "seconds",
     "quick", "params"}
and the figures (PNG) beside it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from deepnotes.errors import UserError
from deepnotes.lab.claims import CLAIMS, Claim
from deepnotes.registry import Registry

VERDICTS = ("holds", "does not hold", "holds with a correction")
# what every result.json holds (run_experiment writes them; the lab report reads them)
RESULT_KEYS = frozenset({"id", "title", "korean", "claim", "verdict", "reason", "numbers", "figures", "seconds"})
DEFAULT_OUT = "runs/lab"  # under runs/, which git ignores


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
    """A registered experiment: the claim's wording, the run function, and the evidence the tests
    check: the verdict of the quick default run, and the params that flip it to "does not hold"."""

    id: str
    title: str
    korean: str
    claim: str
    run: Callable[..., Finding]
    quick_verdict: str | None = None
    opposite: dict[str, Any] | None = None


EXPERIMENTS: Registry[Experiment] = Registry("experiment")
_discovered = False


def _discover() -> None:
    """Import every module of every chapter subpackage of deepnotes.lab once (their @experiment
    decorators fill EXPERIMENTS). Lazy, so that `import deepnotes.lab` does not import torch."""
    global _discovered
    if _discovered:
        return
    for chapter in pkgutil.iter_modules(__path__, f"{__name__}."):
        if chapter.ispkg:
            package = importlib.import_module(chapter.name)
            for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
                importlib.import_module(module.name)
    _discovered = True  # set last: a module that fails to import fails every look-up, not only the first


def experiment(id: str, *, quick_verdict: str | None = None, opposite: dict[str, Any] | None = None):
    """Decorator: register `run_cNN(ctx, **params) -> Finding` as the experiment for claim `id`
    (its title, Korean term and wording come from deepnotes.lab.claims). quick_verdict: the verdict
    of the quick run with the default params; opposite: params that give the opposite evidence
    (the verdict becomes "does not hold"). tests/test_lab.py fails for an experiment without them."""
    if quick_verdict is not None and quick_verdict not in VERDICTS:
        raise ValueError(f"{id}: quick_verdict must be one of {VERDICTS}, got {quick_verdict!r}")

    def wrap(fn: Callable[..., Finding]) -> Callable[..., Finding]:
        unknown = set(opposite or ()) - set(inspect.signature(fn).parameters)
        if unknown:
            raise ValueError(f"{id}: opposite names params {fn.__name__} does not take: {sorted(unknown)}")
        c = CLAIMS[id]
        EXPERIMENTS.add(id, Experiment(c.id, c.title, c.korean, c.claim, fn, quick_verdict, dict(opposite) if opposite else None))
        return fn

    return wrap


def claim_status() -> list[tuple[Claim, bool]]:
    """Every claim of the notes, and whether an experiment implements it."""
    _discover()
    return [(c, c.id in EXPERIMENTS) for c in CLAIMS.values()]


def get_experiment(id: str) -> Experiment:
    """The experiment for claim `id`; a clear error for unknown or not yet implemented claims."""
    _discover()
    id = id.upper()
    if id in CLAIMS and id not in EXPERIMENTS:
        done = ", ".join(EXPERIMENTS.names())
        raise UserError(f"{id} ({CLAIMS[id].title}) has no experiment yet; implemented: {done}")
    return EXPERIMENTS.get(id)


def list_experiments(pattern: str | None = None) -> list[Experiment]:
    _discover()
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
            result = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{path} is not valid JSON ({e}); rerun that experiment") from None
        missing = sorted(RESULT_KEYS - set(result)) if isinstance(result, dict) else ["everything (not a JSON object)"]
        if missing:
            raise UserError(f"{path} lacks {', '.join(missing)}: it is not a whole result; rerun that experiment")
        results.append(result)
    if not results:
        raise UserError(f"{out} holds no lab results; run `deepnotes lab run ... --out {out}` first")
    return sorted(results, key=lambda r: int(r["id"][1:]))
