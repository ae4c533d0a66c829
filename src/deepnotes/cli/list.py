"""`deepnotes list [PATTERN]`: every registered model, dataset, task and experiment, one line each."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    ls = sub.add_parser("list", help="registered models, datasets, tasks and experiments")
    ls.add_argument("pattern", nargs="?", help="glob pattern, e.g. 'lenet*'")


def run(args: argparse.Namespace) -> int:
    from deepnotes.data import DATASETS
    from deepnotes.lab import list_experiments
    from deepnotes.models import MODELS
    from deepnotes.tasks import TASKS

    rows = []
    for name in MODELS.names(args.pattern):
        e = MODELS.get(name)
        params = f" ({e.num_params:,} params)" if e.num_params else ""
        rows.append(("model", name, e.description + params))
    for name in DATASETS.names(args.pattern):
        rows.append(("dataset", name, DATASETS.get(name).description))
    for name in TASKS.names(args.pattern):
        task = TASKS.get(name)
        rows.append(("task", name, f"{task.description} (trains on {', '.join(task.data_kinds)})"))
    for e in list_experiments(args.pattern):
        rows.append(("experiment", e.id, f"{e.title} ({e.korean})"))
    if not rows:
        print(f"nothing registered matches {args.pattern!r}")
        return 0
    width = max(len(r[1]) for r in rows)
    for kind, name, text in rows:
        print(f"{kind:<10} {name:<{width}}  {text}")
    return 0
