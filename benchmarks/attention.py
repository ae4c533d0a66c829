"""Scratch attention against torch's fused kernel: time per forward + backward, same process.

    python benchmarks/attention.py                     # table of times and ratios
    python benchmarks/attention.py --json              # ... and one JSON line, printed last
    python benchmarks/attention.py --threads 1 --lengths 64 256 1024

For each sequence length L, deepnotes.layers.attention.MultiHeadAttention (self-attention,
need_weights=False) and deepnotes.layers.transformer.TransformerEncoderLayer run forward +
backward on the same inputs, once on the scratch path (softmax(QK^T / sqrt(d)) V written
out, the (B, heads, L, L) weights materialised) and once on the fused path
(F.scaled_dot_product_attention), alternating, after warm-up; the median of the repeats is
reported and the ratio is scratch / fused (> 1: the fused kernel is faster). The batch is
shrunk as L grows so that every row handles about the same number of tokens.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
from machine import busy_warning, load_average, use_threads  # benchmarks/machine.py (the scripts run from this folder)

EMBED_DIM, NUM_HEADS, FFN = 256, 8, 1024
TOKENS = 4096  # batch * length per step, kept about constant across lengths


def _step(module: torch.nn.Module, x: torch.Tensor, is_mha: bool) -> float:
    start = time.perf_counter()
    out = module(x, x, x, need_weights=False)[0] if is_mha else module(x)
    out.square().mean().backward()
    return time.perf_counter() - start


def measure(module: torch.nn.Module, x: torch.Tensor, is_mha: bool, warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds per forward + backward on each path, the two paths alternating."""
    from deepnotes.layers.attention import use_fused

    times: dict[str, list[float]] = {"scratch": [], "fused": []}
    for i in range(warmup + repeats):
        for path in ("scratch", "fused"):
            with use_fused(path == "fused"):
                t = _step(module, x, is_mha)
            module.zero_grad(set_to_none=True)
            if i >= warmup:
                times[path].append(t)
    return {path: statistics.median(ts) for path, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON line of results, last")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores torch sees)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024], help="sequence lengths")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or min(args.lengths) < 1:
        parser.error("need --repeats >= 1, --warmup >= 0 and lengths >= 1")

    threads = use_threads(args.threads)
    from deepnotes.layers.attention import MultiHeadAttention
    from deepnotes.layers.transformer import TransformerEncoderLayer

    print(f"attention forward + backward, scratch vs fused: d={EMBED_DIM}, {NUM_HEADS} heads, FFN {FFN}, "
          f"~{TOKENS} tokens per step, {threads} thread{'s' if threads != 1 else ''}, torch {torch.__version__}")  # fmt: skip
    load_start = busy_warning()
    print(f"{'module':<14} {'L':>5} {'batch':>5} {'scratch ms':>11} {'fused ms':>9} {'scratch/fused':>14}")
    rows = []
    for L in args.lengths:
        batch = max(1, TOKENS // L)
        torch.manual_seed(0)
        x = torch.randn(batch, L, EMBED_DIM, requires_grad=True)
        modules = {
            "mha": MultiHeadAttention(EMBED_DIM, NUM_HEADS),
            "encoder_layer": TransformerEncoderLayer(EMBED_DIM, NUM_HEADS, FFN, dropout=0.0),
        }
        for name, module in modules.items():
            t = measure(module, x, name == "mha", args.warmup, args.repeats)
            ratio = t["scratch"] / t["fused"]
            rows.append({"module": name, "length": L, "batch": batch, "scratch_ms": round(1e3 * t["scratch"], 3),
                         "fused_ms": round(1e3 * t["fused"], 3), "ratio": round(ratio, 3)})  # fmt: skip
            print(f"{name:<14} {L:>5} {batch:>5} {1e3 * t['scratch']:>11.2f} {1e3 * t['fused']:>9.2f} {ratio:>14.2f}", flush=True)
    load_end = load_average()
    if args.json:
        print(json.dumps({
            "benchmark": "attention",
            "embed_dim": EMBED_DIM,
            "num_heads": NUM_HEADS,
            "dim_feedforward": FFN,
            "tokens_per_step": TOKENS,
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
