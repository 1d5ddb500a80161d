"""`optimlab reproduce --list | <name>... | all --out DIR`: the notes' experiments, one command each."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reproduce", help="re-run the notes' experiments: figures, numbers, a page each")
    parser.add_argument("names", nargs="*", metavar="name", help="experiment names, or 'all'")
    parser.add_argument("--list", action="store_true", help="list the experiments")
    parser.add_argument("--out", default="reproduce", help="output folder (default: ./reproduce)")
    parser.add_argument("--quick", action="store_true", help="reduced budgets (fewer epochs and seeds)")
    parser.add_argument("--also", action="append", default=[], metavar="SPEC",
                        help="an optimizer spec to run next to the lecture's six in cs231n-optimizers "
                             "(repeatable), e.g. --also lion:lr=1e-3 --also sf-adamw")
    parser.add_argument("--json", action="store_true", help="print the findings and numbers as JSON")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: fastest for these small models; 0 = torch's default)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..outputs import check_output_dir
    from ..reproduce import EXPERIMENTS, Budget, get_experiment, run_experiment, write_index
    from .compare import MAX_THREADS

    if not 0 <= args.threads <= MAX_THREADS:
        raise ValueError(f"--threads {args.threads} must be between 0 (torch's default) and {MAX_THREADS}")
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.list or not args.names:
        width = max(len(name) for name in EXPERIMENTS)
        for experiment in EXPERIMENTS.values():
            print(f"{experiment.name:<{width}}  {experiment.summary}")
        return 0
    names = list(EXPERIMENTS) if args.names == ["all"] else args.names
    for name in names:
        get_experiment(name)  # reject unknown names before running anything
    if args.also:
        from ..optim.registry import resolve

        if "cs231n-optimizers" not in names:
            raise ValueError("--also adds optimizers to cs231n-optimizers; name that experiment (or all)")
        for spec in args.also:
            resolve(spec)  # a bad spec fails here, before anything runs
    check_output_dir(args.out, "--out")
    results = []
    for name in names:
        result, folder = run_experiment(name, args.out, Budget(quick=args.quick, also=tuple(args.also)))
        results.append((result, folder))
        if not args.json:
            print(f"== {result.title} ({result.seconds:.1f} s) -> {folder / 'index.html'}")
            for line in result.printed:
                print(f"   {line}")
            for finding in result.findings:
                print(f" - {finding}")
    index = write_index(results, args.out)
    if args.json:
        print(json.dumps([{"name": r.name, "title": r.title, "printed": r.printed, "findings": r.findings,
                           "numbers": r.numbers, "seconds": r.seconds, "folder": str(f)} for r, f in results],
                         indent=2, default=str))
    else:
        print(f"index: {index}")
    return 0
