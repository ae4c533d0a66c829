"""`deepnotes attack RUN_DIR`: a classification run's test accuracy under FGSM / PGD against eps."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepnotes.cli.common import DEFAULT_EPS, attack_methods, eps_list


def add_parser(sub) -> None:
    at = sub.add_parser(
        "attack",
        help="accuracy of a trained run under FGSM / PGD adversarial attacks, against epsilon",
        description="Attack test images with L-inf FGSM and/or PGD at each epsilon and write OUT/attack.json "
        "(the table), OUT/accuracy_vs_eps.png and OUT/examples_METHOD.png (clean, perturbation, adversarial). "
        "Epsilon is in [0, 1] pixel units (the pixels the model sees before normalization): "
        "write 0.1 or 8/255.",
    )
    at.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `deepnotes train`")
    at.add_argument("--method", default="fgsm,pgd", type=attack_methods, metavar="M", help="fgsm, pgd or fgsm,pgd (default: fgsm,pgd)")
    at.add_argument(
        "--eps", default=DEFAULT_EPS, type=eps_list, metavar="LIST",
        help=f"comma-separated radii in [0, 1] pixel units, fractions allowed (default: {DEFAULT_EPS})",
    )  # fmt: skip
    at.add_argument("--steps", type=int, default=10, metavar="N", help="PGD steps (default: 10; step size 2.5 * eps / steps)")
    at.add_argument("--n", type=int, default=1000, metavar="N", help="test images to attack, a seeded random subset (default: 1000)")
    at.add_argument("--seed", type=int, default=0, help="subset and PGD random starts (default: 0)")
    at.add_argument("--out", metavar="DIR", help="the folder to write (default: RUN_DIR/attack)")


def run(args: argparse.Namespace) -> int:
    from deepnotes.tasks import load_run
    from deepnotes.tasks.classification import attack_test_set

    run = load_run(args.run_dir)
    out = Path(args.out) if args.out else Path(args.run_dir) / "attack"
    result, figures = attack_test_set(run, args.method, args.eps, steps=args.steps, n=args.n, seed=args.seed, out=out)
    config = run.config
    print(f"{config.model} on {result['n']} {config.dataset} test images; eps in [0, 1] pixel units (x255 in brackets)")
    header = f"{'eps':>8} {'(/255)':>8}" + "".join(f" {m.upper() + (f' ({args.steps} steps)' if m == 'pgd' else ''):>16}" for m in args.method)
    print(header)
    for e in sorted(set(args.eps)):
        acc = {r["method"]: r["accuracy"] for r in result["rows"] if r["eps"] == e}
        print(f"{e:>8.4f} {e * 255:>8.3g}" + "".join(f" {acc[m]:>16.1%}" for m in args.method))
    print(f"wrote {out / 'attack.json'}, " + ", ".join(str(f) for f in figures))
    return 0
