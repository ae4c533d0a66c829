"""Registries: every model, dataset and (later) experiment is found by name here.

The CLI, the lab and the tests all go through these functions (the habit of timm's
_registry.py / _factory.py), so a name that works in one place works everywhere.

    register_model(name, builder, ...)        # done by each models/<family>.py at import
    create_model("lenet5", num_classes=10)    # build with overrides of the variant's config
    list_models("resnet*")                    # sorted names matching a glob pattern

An unknown name is a UserError that lists the closest valid names.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Generic, TypeVar

from deepnotes.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> entry table with helpful errors. `kind` is used in messages ("model", "dataset")."""

    def __init__(self, kind: str, populate: Callable[[], None] | None = None):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._populate = populate
        self._populated = populate is None

    def _ensure(self) -> None:
        # Entries register themselves when their module is imported; import lazily so that
        # `import deepnotes.registry` stays cheap.
        if not self._populated:
            self._populated = True
            self._populate()

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        self._ensure()
        try:
            return self._entries[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(name, self._entries, n=5, cutoff=0.4)
        hint = f"closest: {', '.join(close)}" if close else f"valid: {', '.join(sorted(self._entries))}"
        raise UserError(
            f"unknown {self.kind} {name!r}; {hint} (`deepnotes list` shows them all)"
        ) from None

    def names(self, pattern: str | None = None) -> list[str]:
        self._ensure()
        names = sorted(self._entries)
        if pattern:
            names = [n for n in names if fnmatch.fnmatch(n, pattern)]
        return names

    def __contains__(self, name: str) -> bool:
        self._ensure()
        return name in self._entries


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelEntry:
    """One registered model variant.

    builder(**kwargs) returns an nn.Module; `defaults` are the variant's keyword arguments,
    which create_model's overrides replace. `num_params` is the published parameter count of
    the variant as registered (with its default num_classes/in_chans), asserted in a test.
    `input_size` is (in_chans, height, width) the variant is defined for; when
    `fixed_input_size` is False the model accepts other sizes (the trainer then builds it
    for the data's own size where the builder takes `img_size`).
    """

    name: str
    builder: Callable[..., Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    paper: str = ""
    num_params: int | None = None
    input_size: tuple[int, int, int] = (1, 28, 28)
    fixed_input_size: bool = False
    task: str = "classification"


def _import_models() -> None:
    importlib.import_module("deepnotes.models")


MODELS: Registry[ModelEntry] = Registry("model", _import_models)


def register_model(
    name: str,
    builder: Callable[..., Any],
    *,
    description: str,
    paper: str = "",
    num_params: int | None = None,
    input_size: tuple[int, int, int] = (1, 28, 28),
    fixed_input_size: bool = False,
    task: str = "classification",
    **defaults: Any,
) -> ModelEntry:
    """Register a model variant: `builder(**defaults)` must build it."""
    entry = ModelEntry(
        name=name,
        builder=builder,
        defaults=dict(defaults),
        description=description,
        paper=paper,
        num_params=num_params,
        input_size=tuple(input_size),
        fixed_input_size=fixed_input_size,
        task=task,
    )
    return MODELS.add(name, entry)


def register_variants(
    builder: Callable[..., Any], variants: dict[str, tuple[Any, int, tuple[int, int, int], str]], *, paper: str,
    img_size: bool = False,
) -> None:
    """Register every variant of a family. `variants` maps name -> (config dataclass, parameter
    count as registered, (in_chans, H, W), description); the variant is builder(**asdict(config),
    num_classes=..., in_chans=...): 1000 classes for ImageNet-sized inputs (>= 224 px),
    10 for the small ones (Fashion-MNIST, CIFAR). img_size=True also passes img_size=(H, W).
    Every variant accepts other input sizes (fixed_input_size=False)."""
    for name, (cfg, count, input_size, description) in variants.items():
        sizes = {"img_size": tuple(input_size[1:])} if img_size else {}
        register_model(
            name, builder, description=description, paper=paper, num_params=count, input_size=input_size,
            fixed_input_size=False, num_classes=1000 if min(input_size[1:]) >= 224 else 10, in_chans=input_size[0],
            **sizes, **asdict(cfg),
        )  # fmt: skip


def get_model_entry(name: str) -> ModelEntry:
    return MODELS.get(name)


def create_model(name: str, **overrides: Any):
    """Build the registered model `name`, with keyword overrides of its config.

    An override the builder does not accept is a UserError naming the accepted ones.
    """
    entry = MODELS.get(name)
    kwargs = {**entry.defaults, **overrides}
    try:
        return entry.builder(**kwargs)
    except TypeError as e:
        # Only translate the "unexpected keyword" case; other TypeErrors are bugs.
        if "unexpected keyword" not in str(e):
            raise
        import inspect

        accepted = [p for p in inspect.signature(entry.builder).parameters if p != "self"]
        bad = sorted(set(overrides) - set(accepted))
        raise UserError(
            f"model {name!r} does not take {', '.join(bad) or 'that option'}; "
            f"it takes: {', '.join(accepted)}"
        ) from None


def list_models(pattern: str | None = None) -> list[str]:
    return MODELS.names(pattern)


def builder_accepts(name: str, argument: str) -> bool:
    """True when the variant's builder takes `argument` (e.g. img_size)."""
    import inspect

    params = inspect.signature(MODELS.get(name).builder).parameters
    return argument in params


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset. loader(data_dir=None, download=True) returns a deepnotes.data.ImageData."""

    name: str
    loader: Callable[..., Any]
    description: str
    task: str = "classification"


def _import_datasets() -> None:
    importlib.import_module("deepnotes.data")


DATASETS: Registry[DatasetEntry] = Registry("dataset", _import_datasets)


def register_dataset(name: str, loader: Callable[..., Any], *, description: str, task: str = "classification") -> DatasetEntry:
    return DATASETS.add(name, DatasetEntry(name, loader, description, task))


def list_datasets(pattern: str | None = None) -> list[str]:
    return DATASETS.names(pattern)
