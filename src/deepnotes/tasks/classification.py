"""Classification: an image in, class logits out; cross-entropy, accuracy and the confusion matrix.

    deepnotes train lenet5 --data digits            # the task comes from the model's registry entry
    deepnotes predict RUN_DIR shoe.png              # and how a trained run is used: predict, cam,
    deepnotes cam RUN_DIR shoe.png                  # templates, attack, attention

Training options of this task: --label-smoothing, --augment / --crop-padding, --num-classes, and
adversarial training (Madry et al. 2017, arXiv:1706.06083): --adversarial fgsm|pgd replaces every
training batch by its attacked version against the current model (deepnotes.explain.attack).
A model with auxiliary classifiers (GoogLeNet, Szegedy et al. 2014) adds model.aux_loss(y, loss_fn).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.errors import UserError
from deepnotes.metrics import confusion_matrix
from deepnotes.registry import register_task
from deepnotes.report.html import ReportParts
from deepnotes.report.plots import Panel
from deepnotes.tasks.base import StepOutput, Target
from deepnotes.tasks.images import ImageTask, load_input, load_inputs, run_input_spec


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module,
    batches,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    device: torch.device = torch.device("cpu"),
) -> dict[str, Any]:
    """Mean loss, accuracy and the predicted labels over all batches (in order)."""
    model.eval()
    loss_sum, correct, seen, preds = 0.0, 0, 0, []
    for x, y in batches.epoch(0):
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += float(loss_fn(logits, y)) * len(y)
        pred = logits.argmax(1)
        correct += int((pred == y).sum())
        seen += len(y)
        preds.append(pred.cpu())
    return {
        "loss": loss_sum / max(1, seen),
        "accuracy": correct / max(1, seen),
        "preds": torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64),
    }


class Classification(ImageTask):
    name = "classification"
    description = "images -> one class each: cross-entropy, accuracy, confusion matrix"
    data_kinds = ("images",)
    options = frozenset({"label_smoothing", "augment", "crop_padding", "num_classes", "adversarial", "adv_eps", "adv_steps", "adv_alpha"})
    commands = ("predict", "cam", "templates", "attack", "attention")
    target = Target("test_accuracy", "test accuracy")

    def setup(self, data, source) -> None:
        super().setup(data, source)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=self.cfg.label_smoothing)

    def build(self, model: nn.Module) -> nn.Module:
        self.model = model
        self.adversarial = self._adversarial(model)
        return model

    def _adversarial(self, model: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
        """The batch -> adversarial batch function of adversarial training, or None.

        The attack runs on the unwrapped model (not the DDP wrapper: its forward would take part in
        gradient synchronization), in eval mode (adversarial_batch), in pixel space with the run's
        normalization. PGD's random starts come from the global torch RNG, which the checkpoint
        saves, so a resumed run sees the same adversarial batches."""
        cfg = self.cfg
        if cfg.adversarial == "none":
            return None
        from deepnotes.explain.attack import adversarial_batch

        how = f"{cfg.adv_steps}-step PGD" if cfg.adversarial == "pgd" else "FGSM"
        self.notes.append(f"adversarial training: each batch replaced by its {how} version, eps {cfg.adv_eps:.4g} ({cfg.adv_eps * 255:.3g}/255)")
        spec = self.spec

        def make(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            adv = adversarial_batch(model, x, y, cfg.adversarial, cfg.adv_eps, mean=spec.mean, std=spec.std, alpha=cfg.adv_alpha, steps=cfg.adv_steps)
            return adv.contiguous(memory_format=torch.channels_last) if cfg.channels_last else adv

        return make

    def before_step(self, batch):
        if self.adversarial is None:
            return batch
        x, y = batch
        return self.adversarial(x, y), y

    def training_step(self, net: nn.Module, batch) -> StepOutput:
        x, y = batch
        logits = net(x)
        loss = self.loss_fn(logits, y)
        aux_loss = getattr(self.model, "aux_loss", None)  # auxiliary classifiers declare their own loss
        if aux_loss is not None:
            loss = loss + aux_loss(y, self.loss_fn)
        correct = (logits.detach().argmax(1) == y).sum()
        return StepOutput(loss, {"loss": loss.detach() * len(y), "correct": correct}, len(y))

    def train_record(self, sums, seen) -> dict[str, float]:
        return {"train_loss": sums.get("loss", 0.0) / max(1, seen), "train_accuracy": sums.get("correct", 0) / max(1, seen)}

    def evaluate(self, core: nn.Module, batches) -> dict[str, Any]:
        return evaluate_classifier(core, batches, self.loss_fn, self.device)

    def test_record(self, ev) -> dict[str, Any]:
        return {"test_loss": ev["loss"], "test_accuracy": ev["accuracy"]}

    def scores_text(self, record) -> str:
        return f"test loss {record['test_loss']:.4f}  test acc {record['test_accuracy']:.2%}"

    def final_metrics(self, ev) -> dict[str, Any]:
        if ev is None:
            return {}
        return {"confusion": confusion_matrix(self.test_y.numpy(), ev["preds"], len(self.classes)).tolist()}

    def curve_panels(self) -> list[Panel]:
        return [
            Panel("Loss", "loss", (("train_loss", "train"), ("test_loss", "test"))),
            Panel("Accuracy", "accuracy (%)", (("train_accuracy", "train"), ("test_accuracy", "test")), scale=100.0),
        ]

    def write_figures(self, run_dir, core, ev, metrics) -> list[dict]:
        from deepnotes.report import plot_confusion

        if "confusion" not in metrics:
            return []
        plot_confusion(np.array(metrics["confusion"]), self.classes, Path(run_dir) / "confusion.png")
        return [{"path": "confusion.png", "caption": "confusion matrix on the test set (rows: true class)"}]

    def report(self, metrics) -> ReportParts:
        parts = super().report(metrics)
        parts.labels = {"train_accuracy": "train acc", "test_accuracy": "test acc"}
        return parts


register_task(Classification)


# --------------------------------------------------------------------------- using a trained run


@torch.no_grad()
def predict_image(run, path: str | Path, top: int = 3, invert: bool | None = None) -> tuple[list[tuple[str, float]], list[str]]:
    """[(class name, probability)] for the `top` classes, and the notes on how the image was converted."""
    run.require("predict")
    spec = run_input_spec(run.config)
    x, notes = load_input(run.config, path, invert)
    probs = torch.softmax(run.model(spec.normalize(x[None])), dim=1)[0]
    p, idx = probs.topk(min(top, len(run.classes)))
    return [(run.classes[i], float(v)) for v, i in zip(p.tolist(), idx.tolist())], notes


def explain_images(run, paths: list[str | Path], method: str, layer: str | None = None, target: int | None = None, invert: bool | None = None):
    """CAM / Grad-CAM / Grad-CAM++ / saliency for image files: (uint8 images (B, C, H, W) as the
    model saw them, the CamResult, the conversion notes per image)."""
    from deepnotes.explain.cam import compute_cam

    run.require("cam")
    images, notes = load_inputs(run.config, paths, invert)
    spec = run_input_spec(run.config)
    result = compute_cam(run.model, spec.normalize(images), method, layer, target, model_name=run.config.model)
    return images, result, notes


def attack_test_set(run, methods: list[str], eps: list[float], *, steps: int = 10, n: int = 1000, seed: int = 0, out: str | Path):
    """FGSM / PGD accuracy against eps on a seeded random subset of the run's test set; writes
    OUT/attack.json, OUT/accuracy_vs_eps.png and OUT/examples_METHOD.png. Returns (result, figures)."""
    from deepnotes.data import load_dataset
    from deepnotes.data.transforms import adapt_size, as_tensors
    from deepnotes.explain.attack import accuracy_vs_eps, attack, draw_attack_examples, plot_accuracy_vs_eps, predict
    from deepnotes.fileio import write_json

    if n < 1 or steps < 1:
        raise UserError(f"--n and --steps must be >= 1, got --n {n} --steps {steps}")
    run.require("attack")
    spec, config = run_input_spec(run.config), run.config
    data = load_dataset(config.dataset, data_dir=config.train.get("data_dir"))
    x, y = as_tensors(data.test_x, data.test_y)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    x, _ = adapt_size(x[idx], spec.img_size)
    y = y[idx]
    eps_list = sorted(set(eps))
    norm = dict(mean=spec.mean, std=spec.std)
    rows = []
    for method in methods:
        rows += accuracy_vs_eps(run.model, x, y, eps_list, method, steps=steps, seed=seed, **norm)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = [plot_accuracy_vs_eps(rows, out / "accuracy_vs_eps.png", title=f"{config.model} on {config.dataset} (n = {len(x)})")]
    eps_show = max(eps_list)
    if eps_show > 0:
        shown_x, shown_y = x[:8], y[:8]
        pred_c, prob_c = predict(run.model, shown_x, **norm)
        for method in methods:
            gen = torch.Generator().manual_seed(seed)
            adv = attack(run.model, shown_x, shown_y, method, eps_show, steps=steps, generator=gen, **norm)
            pred_a, prob_a = predict(run.model, adv, **norm)
            figures.append(draw_attack_examples(
                shown_x, adv, shown_y, pred_c, pred_a, out / f"examples_{method}.png", class_names=run.classes,
                probs_clean=prob_c, probs_adv=prob_a, eps=eps_show, method=method,
            ))  # fmt: skip
    result = {"run": str(run.run_dir), "model": config.model, "dataset": config.dataset, "n": len(x), "seed": seed,
              "eps_units": "[0, 1] pixels (eps_255 = eps * 255)", "rows": rows}  # fmt: skip
    write_json(out / "attack.json", result)
    return result, figures


def attention_figure(run, path: str | Path, out: str | Path, *, head_fusion: str = "mean", discard_ratio: float = 0.0,
                     invert: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """Where a ViT run looks on an image file: the class token's attention per head of the last
    layer and the attention rollout over all layers, drawn to `out`. Returns what was found:
    predicted class and probability, patch grid, depth, heads, the conversion notes, the figure."""
    from deepnotes.explain.attention import attention_maps, draw_attention
    from deepnotes.models import MODELS

    if not 0 <= discard_ratio < 1:
        raise UserError(f"--discard-ratio is a fraction in [0, 1), got {discard_ratio}")
    patch_embed = getattr(run.model, "patch_embed", None)
    if not hasattr(patch_embed, "grid_for"):
        vits = ", ".join(MODELS.names("vit*"))
        raise UserError(
            f"{run.run_dir} holds a {run.config.model} run, which has no attention over image patches; "
            f"`deepnotes attention` needs a transformer run ({vits}), e.g. `deepnotes train vit_tiny_28 --data fashion-mnist`"
        )
    run.require("attention")
    spec = run_input_spec(run.config)
    x, notes = load_input(run.config, path, invert)
    with torch.no_grad():
        probs = torch.softmax(run.model(spec.normalize(x[None])), dim=1)[0]
    k = int(probs.argmax())
    grid = patch_embed.grid_for(tuple(x.shape[-2:]))
    maps = attention_maps(run.model, spec.normalize(x[None]))  # per layer (1, heads, T, T)
    title = (f"{run.config.model}: class-token attention on {grid[0]}x{grid[1]} patches; "
             f"predicted {run.classes[k]} ({float(probs[k]):.0%})")  # fmt: skip
    figure = draw_attention(x, run.model, out, spec=spec, discard_ratio=discard_ratio, head_fusion=head_fusion, title=title)
    return {"predicted": run.classes[k], "probability": float(probs[k]), "grid": grid, "depth": len(maps),
            "heads": maps[-1].shape[1], "notes": notes, "figure": figure}  # fmt: skip
