"""Transfer learning (전이학습): start from a trained run, replace the head, freeze what should
not change.

    deepnotes train lenet5 --data digits --from runs/lenet-fm --freeze features

The new model is built for the new data (its own num_classes); every weight of the source
run is copied except the modules the model names in `classifier_modules` (its head, and any
auxiliary classifiers), which start fresh. Frozen modules
keep requires_grad=False and stay in eval mode during training, so their BatchNorm running
statistics do not move either: frozen weights and buffers end bit-identical.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from deepnotes.errors import UserError
from deepnotes.rundir import RunConfig, RunDir


def classifier_prefixes(model: nn.Module, model_name: str) -> tuple[str, ...]:
    """The state_dict prefixes of the modules that depend on the classes (model.classifier_modules).
    A model that declares none (classifier_modules = (): a model over tokens whose output is its
    vocabulary, kept with the tokenizer) keeps every weight."""
    declared = getattr(model, "classifier_modules", None)
    if declared is not None and tuple(declared) == ():
        return ()
    names = tuple(declared or ())
    modules = dict(model.named_modules())
    if not names or not all(isinstance(modules.get(n), nn.Module) for n in names):
        raise UserError(f"{model_name} names no classifier modules (classifier_modules), so --from cannot replace its classifier")
    return tuple(f"{n}." for n in names)


def source_config(run_dir: str | Path, model_name: str) -> RunConfig:
    """The config of the run to start from; it must hold the same model."""
    source = RunDir(run_dir).read_config()
    if source.model != model_name:
        raise UserError(f"--from {run_dir} holds a {source.model} run, but the model to train is {model_name}")
    return source


def start_from_run(model: nn.Module, model_name: str, run_dir: str | Path) -> None:
    """Copy the source run's weights into `model`, except its classifier modules."""
    new_heads = classifier_prefixes(model, model_name)
    state = {k: v for k, v in RunDir(run_dir).read_weights().items() if not k.startswith(new_heads)}
    own = model.state_dict()
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        raise UserError(
            f"--from {run_dir}: {', '.join(wrong[:3])} have other shapes in the source run "
            "(different in_chans or model options?); transfer needs the same body"
        )
    missing = [k for k in own if not k.startswith(new_heads) and k not in state]
    if missing:
        raise UserError(f"--from {run_dir}: the source weights lack {', '.join(missing[:3])}")
    model.load_state_dict(state, strict=False)


def _stay_in_eval(module: nn.Module, args) -> None:
    if module.training:
        module.eval()


def freeze(model: nn.Module, prefixes: list[str] | tuple[str, ...]) -> list[str]:
    """Freeze the submodules named by `prefixes` (e.g. "features"); return the frozen parameter names."""
    modules = dict(model.named_modules())
    frozen: list[str] = []
    for prefix in prefixes:
        if prefix not in modules or prefix == "":
            top = ", ".join(name for name, _ in model.named_children())
            raise UserError(f"--freeze {prefix!r} is not a module of the model; top-level modules: {top}")
        module = modules[prefix]
        for name, p in module.named_parameters():
            p.requires_grad_(False)
            frozen.append(f"{prefix}.{name}")
        # model.train() would switch BatchNorm/Dropout back to training: undo it at every call
        module.register_forward_pre_hook(_stay_in_eval)
    return frozen
