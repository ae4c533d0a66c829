"""Scratch LSTM against torch's fused kernel: time per forward + backward, same process.

    python benchmarks/recurrent.py                     # the issue's case: 1 layer, 256 units, 64 steps, batch 64
    python benchmarks/recurrent.py --threads 2 --json  # ... and one JSON line, printed last
    python benchmarks/recurrent.py --quick             # tiny sizes, seconds (the test's smoke run)

deepnotes.layers.recurrent.LSTM runs forward + backward (loss: mean square of the output plus
the final states' sum) on the same inputs and the same parameters, once on the scratch path
(the equations, one step at a time, autograd for the backward) and once on the fused path
(torch.lstm, oneDNN on CPU), alternating, after warm-up; the median of the repeats is reported
and the ratio is scratch / fused (> 1: the fused kernel is faster). A forward-only row (no
gradients, as in inference) is printed too. The goal: scratch/fused within 3 on the issue's case.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
from machine import busy_warning, load_average, use_threads  # benchmarks/machine.py (the scripts run from this folder)


def _step(lstm: torch.nn.Module, x: torch.Tensor, backward: bool) -> float:
    start = time.perf_counter()
    with torch.set_grad_enabled(backward):
        out, (h, c) = lstm(x)
        if backward:
            (out.square().mean() + h.sum() + c.sum()).backward()
    return time.perf_counter() - start


def measure(lstm: torch.nn.Module, x: torch.Tensor, backward: bool, warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds per step on each path, the two paths alternating."""
    times: dict[str, list[float]] = {"scratch": [], "fused": []}
    for i in range(warmup + repeats):
        for path in ("scratch", "fused"):
            lstm.fused = path == "fused"
            t = _step(lstm, x, backward)
            lstm.zero_grad(set_to_none=True)
            x.grad = None
            if i >= warmup:
                times[path].append(t)
    return {path: statistics.median(ts) for path, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON line of results, last")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores torch sees)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats: a smoke run")
    parser.add_argument("--hidden", type=int, default=256, help="hidden units H (= input size)")
    parser.add_argument("--steps", type=int, default=64, help="sequence length T")
    parser.add_argument("--batch", type=int, default=64, help="batch size B")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    if args.quick:
        args.hidden, args.steps, args.batch, args.warmup, args.repeats = 16, 8, 4, 1, 3
    if min(args.hidden, args.steps, args.batch, args.layers, args.repeats) < 1 or args.warmup < 0:
        parser.error("need --hidden, --steps, --batch, --layers, --repeats >= 1 and --warmup >= 0")

    threads = use_threads(args.threads)
    from deepnotes.layers.recurrent import LSTM

    H, T, B = args.hidden, args.steps, args.batch
    print(f"LSTM scratch vs fused: {args.layers} layer{'s' if args.layers != 1 else ''}, {H} units, {T} steps, batch {B}, "
          f"{threads} thread{'s' if threads != 1 else ''}, torch {torch.__version__}")  # fmt: skip
    load_start = busy_warning()
    torch.manual_seed(0)
    lstm = LSTM(H, H, num_layers=args.layers)
    x = torch.randn(T, B, H, requires_grad=True)
    print(f"{'pass':<20} {'scratch ms':>11} {'fused ms':>9} {'scratch/fused':>14}")
    rows = []
    for name, backward in (("forward + backward", True), ("forward (no grad)", False)):
        t = measure(lstm, x, backward, args.warmup, args.repeats)
        ratio = t["scratch"] / t["fused"]
        rows.append({"pass": name, "scratch_ms": round(1e3 * t["scratch"], 3), "fused_ms": round(1e3 * t["fused"], 3),
                     "ratio": round(ratio, 3)})  # fmt: skip
        print(f"{name:<20} {1e3 * t['scratch']:>11.2f} {1e3 * t['fused']:>9.2f} {ratio:>14.2f}", flush=True)
    load_end = load_average()
    if args.json:
        print(json.dumps({
            "benchmark": "recurrent",
            "module": "LSTM",
            "hidden_size": H,
            "steps": T,
            "batch": B,
            "num_layers": args.layers,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "rows": rows,
            "threads": threads,
            "torch": torch.__version__,
            "load_average": [load_start, load_end],
        }), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
