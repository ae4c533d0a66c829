"""Registries: every model, dataset, task and experiment is found by name in one of these tables.

The CLI, the lab and the tests all go through them (the habit of timm's _registry.py /
_factory.py), so a name that works in one place works everywhere. This module imports no
package of deepnotes: the packages fill the tables when they are imported (as timm's and
detectron2's registries are filled), and expose the look-ups that need them filled:

    deepnotes.models.create_model("lenet5", num_classes=10)   # models/<family>.py register_variants(...)
    deepnotes.models.list_models("resnet*")
    deepnotes.data.load_dataset("digits")                     # data/datasets.py register_dataset(...)
    deepnotes.tasks.get_task("classification")                # tasks/<task>.py register_task(...)

An unknown name is a UserError that lists the closest valid names. Tests register their own
entries inside `with MODELS.scoped():` (or DATASETS / TASKS), which puts the table back as it
was on leaving, so nothing a test registers is ever seen by another test or by users.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

from deepnotes.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> entry table with helpful errors. `kind` is used in messages ("model", "dataset")."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
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
        names = sorted(self._entries)
        if pattern:
            names = [n for n in names if fnmatch.fnmatch(n, pattern)]
        return names

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def entries(self) -> list[T]:
        """Every entry, sorted by name."""
        return [self._entries[n] for n in sorted(self._entries)]

    @contextlib.contextmanager
    def scoped(self) -> Iterator["Registry[T]"]:
        """Entries added inside the block are gone after it (tests register their own models,
        datasets and tasks this way)."""
        saved = dict(self._entries)
        try:
            yield self
        finally:
            self._entries = saved


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Variant:
    """One variant of a model family, the same record for every family (and for tests).

    `config` is the family's config dataclass (its fields become builder keyword arguments)
    or a dict of builder keyword arguments; the builder always gets num_classes and
    in_chans = input_size[0] too, and img_size = input_size[1:] when `pass_img_size` (models
    whose parameters depend on the input size, e.g. ViT's position embedding). `num_params`
    is the published parameter count of the variant as registered (with these num_classes
    and in_chans), None only where nothing is published (a test model). `paper` defaults to
    the family's. With `fixed_input_size` the model takes only input_size[1:] (LeNet-5's
    32x32); otherwise the trainer builds it for the data's own size.

    Token models (inputs="tokens": translation, language models) have input_size = (vocab_size,
    max_len): the builder gets vocab_size = input_size[0] (the input vocabulary) instead of
    in_chans, and num_classes is the output vocabulary (what each position is classified into).
    """

    description: str
    num_params: int | None
    input_size: tuple[int, ...]  # images: (in_chans, height, width); tokens: (vocab_size, max_len)
    config: Any
    num_classes: int
    paper: str = ""
    task: str = "classification"  # the name of a registered task (deepnotes.tasks): "classification", "segmentation", ...
    fixed_input_size: bool = False
    pass_img_size: bool = False
    inputs: str = "images"  # or "tokens"
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig values the command line defaults to for it (GloVe: AdaGrad, lr 0.05)

    def builder_kwargs(self) -> dict[str, Any]:
        """builder(**builder_kwargs()) builds the variant."""
        config = asdict(self.config) if is_dataclass(self.config) else dict(self.config)
        sizes = {"img_size": tuple(self.input_size[1:])} if self.pass_img_size else {}
        given = {"vocab_size": self.input_size[0]} if self.inputs == "tokens" else {"in_chans": self.input_size[0]}
        clash = sorted(set(config) & {"num_classes", *given, *sizes})
        if clash:
            raise ValueError(f"{', '.join(clash)} come from the Variant's own fields, not from its config")
        return {"num_classes": self.num_classes, **given, **sizes, **config}


@dataclass(frozen=True)
class ModelEntry:
    """One registered model variant.

    builder(**kwargs) returns an nn.Module; `defaults` are the variant's keyword arguments
    (Variant.builder_kwargs), which create_model's overrides replace. The other fields are the
    Variant's (see there); `variant` is the record itself.
    """

    name: str
    builder: Callable[..., Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    paper: str = ""
    num_params: int | None = None
    input_size: tuple[int, ...] = (1, 28, 28)
    fixed_input_size: bool = False
    task: str = "classification"
    num_classes: int | None = None
    variant: Variant | None = None
    inputs: str = "images"  # or "tokens" (Variant.inputs)


MODELS: Registry[ModelEntry] = Registry("model")



def register_variants(builder: Callable[..., Any], variants: dict[str, Variant], *, paper: str = "") -> list[ModelEntry]:
    """Register every variant of a family: name -> Variant, built by builder(**variant.builder_kwargs()).
    `paper` is the family's, for the variants that do not name their own. Every variant is
    checked before any is registered."""
    entries = []
    for name, v in variants.items():
        if not isinstance(v, Variant):
            raise TypeError(f"model {name!r}: expected a Variant, got {type(v).__name__}")
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        if not v.task:
            raise ValueError(f"model {name!r}: name its task (a registered deepnotes.tasks name, e.g. classification)")
        if v.inputs not in ("images", "tokens"):
            raise ValueError(f"model {name!r}: inputs must be images or tokens, got {v.inputs!r}")
        if len(v.input_size) != (3 if v.inputs == "images" else 2):
            shape = "(in_chans, height, width)" if v.inputs == "images" else "(vocab_size, max_len)"
            raise ValueError(f"model {name!r}: input_size must be {shape}, got {v.input_size}")
        entries.append(ModelEntry(
            name=name, builder=builder, defaults=v.builder_kwargs(), description=v.description, paper=v.paper or paper,
            num_params=v.num_params, input_size=tuple(v.input_size), fixed_input_size=v.fixed_input_size, task=v.task,
            num_classes=v.num_classes, variant=v, inputs=v.inputs,
        ))  # fmt: skip
    return [MODELS.add(e.name, e) for e in entries]


def get_model_entry(name: str) -> ModelEntry:
    return MODELS.get(name)


FITTED_TO_DATA = ("num_classes", "in_chans", "img_size", "vocab_size")  # the overrides a trainer sets from the data


def create_model(name: str, **overrides: Any):
    """Build the registered model `name`, with keyword overrides of its config.

    An override the builder does not accept is a UserError naming the accepted ones. A ValueError
    or TypeError raised while building with overrides that differ from the variant's own (a width
    of 0, a number where a list belongs) is a UserError naming those overrides and the reason; if
    the variant's own settings fail, that is a bug and keeps its traceback.
    """
    entry = MODELS.get(name)
    kwargs = {**entry.defaults, **overrides}
    try:
        return entry.builder(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, TypeError) and "unexpected keyword" in str(e):
            accepted = _accepted_options(entry)
            bad = sorted(set(overrides) - set(accepted))
            raise UserError(
                f"model {name!r} does not take {', '.join(bad) or 'that option'}; "
                f"it takes: {', '.join(accepted)}"
            ) from None
        changed = {k: v for k, v in overrides.items() if k not in entry.defaults or _differs(entry.defaults[k], v)}
        if not changed:
            raise  # the variant as registered does not build: a bug, not the user's input
        # the options a user gives first; those that fit the model to the data (trainer) after them
        fitted = {k: changed.pop(k) for k in FITTED_TO_DATA if k in changed and len(changed) > 1}
        given = ", ".join(f"{k}={_show(v)}" for k, v in changed.items())
        given += f" (and {', '.join(f'{k}={_show(v)}' for k, v in fitted.items())})" if fitted else ""
        reason = " ".join(str(e).split()) or type(e).__name__
        raise UserError(f"model {name!r} cannot be built with {given}: {reason}") from None


def _accepted_options(entry: ModelEntry) -> list[str]:
    """The builder's keyword arguments; for a builder taking **config, its config's fields."""
    import inspect

    params = inspect.signature(entry.builder).parameters
    accepted = [p for p, v in params.items() if p != "self" and v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)]
    if any(v.kind == v.VAR_KEYWORD for v in params.values()) and entry.variant is not None:
        config = entry.variant.config
        accepted += [f for f in (asdict(config) if is_dataclass(config) else dict(config)) if f not in accepted]
    return accepted


def _differs(default: Any, value: Any) -> bool:
    """value is not the default (lists and tuples compare by their items: JSON has no tuples)."""
    try:
        return bool(_plain(default) != _plain(value))
    except Exception:  # values that do not compare (arrays): count as changed
        return True


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _show(value: Any) -> str:
    """A value as the user wrote it on the command line (JSON), or its repr."""
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


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
    """One registered dataset. loader(data_dir=None, download=True) returns its data.

    `kind` says what the loader returns, so that a task can say which datasets it trains on:
    "images" (deepnotes.data.ImageData: images and class labels), "scenes"
    (deepnotes.data.scenes.SceneDataset: images with per-pixel masks and boxes), "pairs"
    (deepnotes.data.pairs.SentencePairs: sentence pairs for translation).
    """

    name: str
    loader: Callable[..., Any]
    description: str
    kind: str = "images"


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(name: str, loader: Callable[..., Any], *, description: str, kind: str = "images") -> DatasetEntry:
    return DATASETS.add(name, DatasetEntry(name, loader, description, kind))


def list_datasets(pattern: str | None = None) -> list[str]:
    return DATASETS.names(pattern)


# --------------------------------------------------------------------------- tasks

# A task (deepnotes.tasks) is an object; the table only needs its name.
TASKS: Registry[Any] = Registry("task")


def register_task(task: Any) -> Any:
    """Register a task object under task.name (see deepnotes.tasks.base.Task)."""
    return TASKS.add(task.name, task)
