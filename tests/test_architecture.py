"""The house rules, checked by parsing the package's imports (so they stay true):

- layers import only downward (LAYERS, lowest first; a module may import its own layer too);
- a few pairs the layering would allow are forbidden anyway (FORBIDDEN);
- the registry imports no package of deepnotes;
- no private name (_x) is imported from another module;
- no file of the engine (deepnotes/train) mentions a task by name.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "deepnotes"

LAYERS = [
    {"deepnotes", "deepnotes.errors", "deepnotes.fileio", "deepnotes.registry"},
    {"deepnotes.layers", "deepnotes.optim", "deepnotes.metrics"},
    {"deepnotes.data", "deepnotes.text", "deepnotes.images"},
    {"deepnotes.models"},
    {"deepnotes.rundir", "deepnotes.report", "deepnotes.explain"},
    {"deepnotes.train"},
    {"deepnotes.tasks"},
    {"deepnotes.lab"},
    {"deepnotes.cli", "deepnotes.__main__"},
]
FORBIDDEN = {  # importer -> what it may not import although it lies lower
    "deepnotes.models": {"deepnotes.metrics", "deepnotes.report", "deepnotes.explain"},
    "deepnotes.metrics": {"deepnotes.data"},
    "deepnotes.registry": {"deepnotes.fileio"},
}
# task names (those registered now and those to come) and words only a task uses
ENGINE_WORDS = re.compile(
    r"\b(classification|segmentation|detection|translation|language.model|generative|diffusion|gan|contrastive"
    r"|iou|mean_iou|dice|confusion|masks?|bleu|perplexity)\b"
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _unit(module: str) -> str:
    """deepnotes.tasks.segmentation -> deepnotes.tasks (the layer unit: a subpackage or a top module)."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _layer(module: str) -> int:
    unit = _unit(module)
    for i, layer in enumerate(LAYERS):
        if unit in layer:
            return i
    raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: add its package to LAYERS")


def _imports(module: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) for every deepnotes import in `module`, at any depth."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "deepnotes"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "deepnotes":
                continue
            names = [a.name for a in node.names]
            # `from deepnotes.x import y` may import the submodule deepnotes.x.y
            subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
            out.append((base, [n for n in names if f"{base}.{n}" not in MODULES], node.lineno))
            out += [(s, [], node.lineno) for s in subs]
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_downward(module):
    mine = _layer(module)
    wrong = []
    for target, _, line in _imports(module):
        if _unit(target) == _unit(module):
            continue
        if _layer(target) > mine:
            wrong.append(f"line {line}: {target} (layer {_layer(target)} > {mine})")
        if _unit(target) in FORBIDDEN.get(_unit(module), ()) or target in FORBIDDEN.get(module, ()):
            wrong.append(f"line {line}: {target} (forbidden for {_unit(module)})")
    assert not wrong, f"{module} imports upward: " + "; ".join(wrong)


def test_the_registry_imports_no_package():
    found = [t for t, _, _ in _imports("deepnotes.registry") if t != "deepnotes.errors"]
    assert not found, found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_modules(module):
    private = [
        f"line {line}: {', '.join(n for n in names if n.startswith('_') and not n.startswith('__'))} from {target}"
        for target, names, line in _imports(module)
        if target != module and any(n.startswith("_") and not n.startswith("__") for n in names)
    ]
    assert not private, f"{module} imports private names: " + "; ".join(private)


def test_the_engine_names_no_task():
    from deepnotes.tasks import TASKS

    names = set(TASKS.names())
    for path in sorted((PACKAGE / "train").glob("*.py")):
        text = path.read_text().lower()
        found = sorted(set(ENGINE_WORDS.findall(text)) | {n for n in names if re.search(rf"\b{re.escape(n)}\b", text)})
        assert not found, f"{path.name} mentions {found}: the engine must stay task-agnostic (put it in a task)"


def test_the_checks_would_catch_a_violation(tmp_path, monkeypatch):
    """The parser sees imports inside functions and relative ones (else the tests above prove nothing)."""
    fake = tmp_path / "deepnotes" / "models" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from deepnotes.train import engine\n    from ..metrics import _private\n")
    monkeypatch.setitem(MODULES, "deepnotes.models.bad", fake)
    found = _imports("deepnotes.models.bad")
    assert ("deepnotes.train.engine", [], 2) in found and ("deepnotes.metrics", ["_private"], 3) in found
    with pytest.raises(AssertionError, match="imports upward"):
        test_imports_point_downward("deepnotes.models.bad")
    with pytest.raises(AssertionError, match="imports private names"):
        test_no_private_name_crosses_modules("deepnotes.models.bad")
