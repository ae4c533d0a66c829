"""TrainConfig: everything that defines a training run, saved as config.json["train"]."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from deepnotes.errors import UserError

# Learning rates that work out of the box for each optimizer (overridden by --lr).
DEFAULT_LR = {
    "sgd": 0.05, "adam": 1e-3, "adamw": 1e-3, "adadelta": 1.0, "rmsprop": 1e-3, "adagrad": 1e-2,
    # the scratch versions (deepnotes.optim), same defaults as their torch counterparts
    "scratch-sgd": 0.05, "scratch-momentum": 0.05, "scratch-nesterov": 0.05,
    "scratch-adagrad": 1e-2, "scratch-rmsprop": 1e-3, "scratch-adam": 1e-3,
}  # fmt: skip
SCHEDULES = ("none", "step", "exponential", "cosine", "onecycle", "linear")
AUGMENTS = ("none", "flip", "crop", "crop+flip")  # see deepnotes.data.transforms.TensorBatches
ADVERSARIAL = ("none", "fgsm", "pgd")  # adversarial training (Madry et al. 2017), see deepnotes.explain.attack
# Mixed precision: bf16 runs the forward pass under torch.autocast (matmuls and convolutions in
# bfloat16, weights, gradients and the optimizer in float32; no loss scaling needed: bf16 has
# float32's exponent range). Usually faster on CPUs with AVX512-BF16/AMX and on GPUs from Ampere on,
# but not for every op (large transposed convolutions: benchmarks/precision.py).
PRECISIONS = ("fp32", "bf16")
MAX_SEED = 2**63 - 1  # torch.manual_seed and numpy's generators all take 0..2**63 - 1


# Options that only some tasks take (each task lists the ones it takes in Task.options); a task
# refuses any of them given a value other than the default. The rest apply to every run.
TASK_OPTIONS = (
    "label_smoothing", "augment", "crop_padding", "num_classes", "adversarial", "adv_eps", "adv_steps", "adv_alpha",
    "tokenizer", "block_size", "steps_per_epoch",
)  # fmt: skip
# How a corpus becomes a stream of token ids (deepnotes.text.streams)
TOKENIZERS = ("char", "word", "bpe")


def option_flag(name: str) -> str:
    """The command-line flag of a TrainConfig field: label_smoothing -> --label-smoothing."""
    return "--" + name.replace("_", "-")


@dataclass
class TrainConfig:
    model: str
    data: str = "digits"
    epochs: int = 10
    batch_size: int = 128
    lr: float | None = None  # None: DEFAULT_LR[optimizer]
    optimizer: str = "adam"
    momentum: float = 0.9  # sgd, scratch-momentum, scratch-nesterov
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    step_size: int = 1  # epochs between decays for schedule "step"
    gamma: float = 0.7  # decay factor for "step" and "exponential"
    label_smoothing: float = 0.0
    augment: str = "none"
    crop_padding: int | None = None  # None: image side // 8 (3 pixels for 28x28)
    channels_last: bool = True
    threads: int | None = None  # None: all cores (divided among local processes under DDP)
    seed: int = 0
    target_accuracy: float | None = None  # stop once the task's headline metric reaches it (Task.target)
    out: str | None = None  # None: runs/<model>-<data>
    data_dir: str | None = None
    resume: bool = False
    model_args: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None  # None: the dataset's number of classes
    from_run: str | None = None  # transfer learning: start from this run's weights (head replaced)
    freeze: list[str] = field(default_factory=list)  # module names to keep fixed, e.g. ["features"]
    eval_batch_size: int = 1000
    progress: bool = True
    # Adversarial training (Madry et al., arXiv:1706.06083): every training batch is replaced by
    # its FGSM or PGD version against the current model (the model never sees the clean batch).
    # adv_eps is the L-inf radius in [0, 1] pixel units (8/255 ~ 0.031 is CIFAR's, 0.1 Fashion-MNIST's);
    # adv_alpha None: PGD's step 2.5 * adv_eps / adv_steps.
    adversarial: str = "none"
    adv_eps: float = 8 / 255
    adv_steps: int = 7
    adv_alpha: float | None = None
    precision: str = "fp32"  # of training steps; the test set is always scored in fp32
    # Gradient clipping by norm (Pascanu et al. 2013, arXiv:1211.5063): before each optimizer step
    # the gradients of all trainable parameters are scaled so their joint L2 norm is at most this.
    clip_grad_norm: float | None = None
    # Token streams: the tokenizer (None: the model's default, else "char"; "bpe:N" learns N merges),
    # the tokens per training sequence (None: the model's context), and the steps between two
    # evaluations, an epoch (None: 250, nanoGPT's eval_interval).
    tokenizer: str | None = None
    block_size: int | None = None
    steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in DEFAULT_LR:
            raise UserError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(DEFAULT_LR)}")
        if self.augment not in AUGMENTS:
            raise UserError(f"unknown augmentation {self.augment!r}; choose one of {', '.join(AUGMENTS)}")
        if self.adversarial not in ADVERSARIAL:
            raise UserError(f"unknown adversarial training {self.adversarial!r}; choose one of {', '.join(ADVERSARIAL)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr is None or _finite(self.lr) and self.lr > 0, f"--lr must be a finite number > 0, e.g. 0.01, got {self.lr}"),
            (_finite(self.momentum) and 0 <= self.momentum < 1, f"--momentum must be in [0, 1), e.g. 0.9, got {self.momentum}"),
            (
                _finite(self.weight_decay) and self.weight_decay >= 0,
                f"--weight-decay must be a finite number >= 0, e.g. 5e-4, got {self.weight_decay}",
            ),
            (_finite(self.gamma) and self.gamma > 0, f"gamma (the step/exponential decay factor) must be a finite number > 0, got {self.gamma}"),
            (self.step_size >= 1, f"step_size (epochs between decays) must be >= 1, got {self.step_size}"),
            (
                isinstance(self.seed, int) and 0 <= self.seed <= MAX_SEED,
                f"--seed must be an integer in 0..{MAX_SEED} (2**63 - 1), got {self.seed}",
            ),
            (self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}"),
            (
                self.target_accuracy is None or _finite(self.target_accuracy) and self.target_accuracy > 0,
                f"--target-accuracy is a number > 0 in the units of the task's headline metric, e.g. 0.91, got {self.target_accuracy}",
            ),  # its range is the task's (Task.target.upper)
            (
                self.clip_grad_norm is None or _finite(self.clip_grad_norm) and self.clip_grad_norm > 0,
                f"--clip-grad-norm must be a finite number > 0, e.g. 1.0, got {self.clip_grad_norm}",
            ),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (
                _finite(self.warmup_epochs) and self.warmup_epochs >= 0,
                f"--warmup-epochs must be a finite number >= 0, e.g. 1, got {self.warmup_epochs}",
            ),
            (self.crop_padding is None or self.crop_padding >= 1, f"--crop-padding must be >= 1 pixel, got {self.crop_padding}"),
            (
                self.crop_padding is None or "crop" in self.augment,
                f"--crop-padding applies to --augment crop or crop+flip, got --augment {self.augment}",
            ),
            (self.num_classes is None or self.num_classes >= 1, f"--num-classes must be >= 1, got {self.num_classes}"),
            (
                0 <= self.adv_eps <= 1,
                f"--adv-eps is an L-inf radius in [0, 1] pixel units (e.g. 0.1, or 8/255 = 0.031), got {self.adv_eps}",
            ),
            (self.adv_steps >= 1, f"--adv-steps must be >= 1, got {self.adv_steps}"),
            (self.adv_alpha is None or self.adv_alpha > 0, f"--adv-alpha (PGD step size) must be > 0, got {self.adv_alpha}"),
            (
                self.tokenizer is None or _tokenizer_ok(self.tokenizer),
                f"--tokenizer is one of {', '.join(TOKENIZERS)} or bpe:N (N merges, e.g. bpe:2000), got {self.tokenizer!r}",
            ),
            (self.block_size is None or self.block_size >= 2, f"--block-size must be >= 2 tokens, got {self.block_size}"),
            (self.steps_per_epoch is None or self.steps_per_epoch >= 1, f"--steps-per-epoch must be >= 1, got {self.steps_per_epoch}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        self._check_threads()
        self._check_model_args()

    def _check_threads(self) -> None:
        # torch.set_num_threads(100000) creates threads up to the process limit and then crashes
        cores = os.cpu_count() or 1
        if self.threads is not None and not 1 <= self.threads <= cores:
            raise UserError(f"--threads must be between 1 and {cores} (the CPU cores of this machine), got {self.threads}")

    def _check_model_args(self) -> None:
        # these come from elsewhere; as model options they would skip the checks made there
        if "num_classes" in self.model_args:
            k = self.model_args["num_classes"]
            raise UserError(
                f"--model-arg num_classes={k!r} is not taken: give --num-classes {k} instead "
                "(it is checked against the dataset's labels)"
            )
        if "in_chans" in self.model_args:
            raise UserError(f"--model-arg in_chans={self.model_args['in_chans']!r} is not taken: the input channels come from the data; leave it out")
        if "img_size" in self.model_args:
            size = self.model_args["img_size"]
            sides = [size] if isinstance(size, int) else size if isinstance(size, (list, tuple)) and len(size) == 2 else None
            if sides is None or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sides):
                raise UserError(
                    f"--model-arg img_size={size!r} must be one positive integer or two, e.g. img_size=32 or img_size=[32,32] "
                    "(by default the model is built for the data's size)"
                )

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def out_dir(self) -> str:
        return self.out or f"runs/{self.model}-{self.data}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["lr"] = self.learning_rate
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    # Fields that may differ between a run and its --resume (everything else must match).
    RESUMABLE_CHANGES = ("epochs", "target_accuracy", "resume", "progress", "threads", "out", "data_dir")


def _tokenizer_ok(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    kind, _, merges = name.partition(":")
    return kind in TOKENIZERS and (not merges or kind == "bpe" and merges.isdigit() and int(merges) >= 1)


def _finite(x: Any) -> bool:
    """A real number that is neither NaN nor infinite (so a NaN fails every range check)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
