"""Mixed precision (bf16 autocast) against float32: training-step throughput, same process.

    python benchmarks/precision.py                 # table of images/s and the bf16 / fp32 speed-up
    python benchmarks/precision.py --json          # ... and one JSON line, printed last
    python benchmarks/precision.py --threads 2 --models vit_tiny_28 unet_small
    python benchmarks/precision.py --models vit_tiny_28 --model-arg fused_attention=true

For each model, forward + backward + SGD step on random data at the size it trains on (the
registered input size; channels_last, as `deepnotes train` runs) is timed in float32 and under
torch.autocast(dtype=torch.bfloat16), which is what `deepnotes train --precision bf16` does. The
two settings alternate over --rounds rounds (so a burst of other work hits both), each round the
median of --steps timed steps after warm-up; the table shows the median over rounds and the
speed-up = bf16 images/s / fp32 images/s (> 1: bf16 is faster). CPUs gain from bf16 only with
native support (AVX512-BF16 or AMX, e.g. AMD Zen 4, Intel Cooper Lake / Sapphire Rapids); elsewhere
autocast adds conversions and can be slower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch
from machine import busy_warning, load_average, train_step_throughput, use_threads  # benchmarks/machine.py

from deepnotes.cli.common import parse_model_arg  # the parser of `deepnotes train --model-arg`

# model -> batch size (the one its recipe trains with)
MODELS = {"resnet20": 128, "vgg_small": 128, "vit_tiny_28": 128, "unet_small": 32}


def compare(name: str, batch: int, steps: int, rounds: int, model_args: dict | None = None) -> dict[str, float]:
    """Median images/s over `rounds` alternating fp32 / bf16 measurements of one model."""
    from deepnotes.models import create_model, get_model_entry

    entry = get_model_entry(name)
    masks = entry.task == "segmentation"
    torch.manual_seed(0)
    model = create_model(name, **(model_args or {}))
    speeds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(rounds):
        for label, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            speeds[label].append(train_step_throughput(
                model, entry.input_size, batch, steps, num_classes=entry.defaults.get("num_classes", 10), masks=masks, autocast_dtype=dtype,
            ))  # fmt: skip
    return {k: statistics.median(v) for k, v in speeds.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON line of results, last")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores torch sees)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), metavar="MODEL", help=f"registry names [{' '.join(MODELS)}]")
    parser.add_argument("--model-arg", dest="model_args", action="append", type=parse_model_arg, default=[], metavar="KEY=VALUE",
                        help="a model option for every model, as `deepnotes train --model-arg` (repeatable)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=None, help="one batch size for all (default: each model's, see MODELS)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per measurement [4]")
    parser.add_argument("--rounds", type=int, default=3, help="alternating fp32 / bf16 rounds [3]")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1 or (args.batch_size is not None and args.batch_size < 1):
        parser.error("need --steps >= 1, --rounds >= 1 and --batch-size >= 1")
    from deepnotes.models import get_model_entry

    for name in args.models:
        get_model_entry(name)  # an unknown name fails here, with the close matches

    threads = use_threads(args.threads)
    bf16_native = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    print(f"training step, float32 vs bf16 autocast: {threads} thread{'s' if threads != 1 else ''}, torch {torch.__version__}, "
          f"native bf16 on this CPU: {'yes' if bf16_native else 'no'}")  # fmt: skip
    load_start = busy_warning()
    print(f"{'model':<14} {'batch':>5} {'fp32 img/s':>11} {'bf16 img/s':>11} {'bf16/fp32':>10}")
    rows = []
    for name in args.models:
        batch = args.batch_size or MODELS.get(name, 128)
        s = compare(name, batch, args.steps, args.rounds, dict(args.model_args))
        speedup = s["bf16"] / s["fp32"]
        rows.append({"model": name, "batch": batch, "fp32_images_per_second": round(s["fp32"], 1),
                     "bf16_images_per_second": round(s["bf16"], 1), "speedup": round(speedup, 3)})  # fmt: skip
        print(f"{name:<14} {batch:>5} {s['fp32']:>11,.0f} {s['bf16']:>11,.0f} {speedup:>10.2f}", flush=True)
    if args.json:
        print(json.dumps({
            "benchmark": "precision", "rows": rows, "model_args": dict(args.model_args), "steps": args.steps, "rounds": args.rounds, "threads": threads,
            "bf16_native": bf16_native, "torch": torch.__version__, "load_average": [load_start, load_average()],
        }), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
