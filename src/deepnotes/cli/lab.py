"""`deepnotes lab list | run ID... | report [RESULTS]`: the experiments, one per claim of the notes."""

from __future__ import annotations

import argparse

from deepnotes.lab import DEFAULT_OUT as LAB_OUT  # cheap: deepnotes.lab imports no torch


def add_parser(sub) -> None:
    lab = sub.add_parser("lab", help="the experiments: every claim of the notes, measured")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)
    lab_sub.add_parser("list", help="every claim: id, title, Korean term, implemented or not")
    lr = lab_sub.add_parser("run", help="run experiments and write OUT/ID/result.json and figures")
    lr.add_argument("ids", metavar="ID", nargs="+", help="claim ids (C05 C06 ...), or 'all' for every implemented one")
    lr.add_argument("--quick", action="store_true", help="tiny sizes: every experiment finishes in seconds")
    lr.add_argument("--out", default=LAB_OUT, metavar="DIR", help=f"the folder to write (default: {LAB_OUT})")
    lr.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    lrep = lab_sub.add_parser("report", help="render RESULTS/report.html from the results `lab run` wrote in RESULTS")
    lrep.add_argument("results", metavar="RESULTS", nargs="?", default=LAB_OUT, help=f"the folder `lab run --out` wrote (default: {LAB_OUT})")
    lrep.add_argument("--markdown", metavar="FILE", help="also write the results as Markdown (docs/lab.md)")


def run(args: argparse.Namespace) -> int:
    from deepnotes import lab

    if args.lab_command == "list":
        for claim, implemented in lab.claim_status():
            status = "implemented" if implemented else "-"
            print(f"{claim.id}  {status:<11}  {claim.title}  ({claim.korean})")
        return 0
    if args.lab_command == "report":
        from deepnotes.lab.report import write_lab_markdown, write_lab_report

        print(write_lab_report(args.results))
        if args.markdown:
            print(write_lab_markdown(args.results, args.markdown))
        return 0
    ids = [e.id for e in lab.list_experiments()] if args.ids == ["all"] else [i.upper() for i in args.ids]
    for i in ids:
        lab.get_experiment(i)  # unknown or unimplemented ids fail before anything runs
    for i in ids:
        r = lab.run_experiment(i, args.out, quick=args.quick, seed=args.seed, log=lambda m: print(f"  {m}", flush=True))
        print(f"{r['id']} {r['title']}: {r['verdict']} ({r['seconds']:.1f}s) - {r['reason']}", flush=True)
    print(f"results in {args.out}/; `deepnotes lab report {args.out}` renders them")
    return 0
