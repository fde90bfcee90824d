"""Every learning principle on teacher-student, Yin-Yang and digits, same seeds and data:
the dendritic microcircuit (bp, fa, pal), prospective configuration (energy), strong
deep feedback control (dfc), dynamic inversion and the MLP baselines (mlp-bp, mlp-bp-online, mlp-fa),
as listed in examples/principles.toml.

    .venv/bin/python examples/compare_principles.py --seeds 3 --out runs/principles

Writes table.md (one table per task), summaries.json, <task>.png (the test measure per
epoch, mean over seeds, min-max shaded) and every run's folder out/<task>/<method>/seed<k>.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from neurosim.config import merge, parse_set
from microcircuits.principles import compare_principles, failed_runs, load_spec

SPEC = Path(__file__).resolve().parent / "principles.toml"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0 .. N-1 (default: the spec's)")
    parser.add_argument("--out", type=Path, default=Path("runs/principles"))
    parser.add_argument("--tasks", nargs="+", default=None, help="a subset of the spec's tasks")
    parser.add_argument("--epochs", type=int, default=None, help="override task.epochs for every run")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config values for every run, e.g. run.dtype=float32")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time")
    parser.add_argument("--reuse", action=argparse.BooleanOptionalAction, default=True,
                        help="read runs whose folder holds a complete results file of the same config and "
                             "continue checkpointed ones, as `neurosim sweep` does (default; --no-reuse runs all)")
    args = parser.parse_args(argv)
    spec = load_spec(args.spec)
    overrides = merge(parse_set(args.set), {"task": {"epochs": args.epochs}} if args.epochs is not None else {})
    for task in spec["tasks"].values():
        for config in task["methods"].values():
            merge(config, overrides)
    t0 = time.perf_counter()
    table = compare_principles(spec, range(args.seeds or spec["seeds"]), args.out, args.tasks, args.workers,
                               args.reuse)
    print(f"{table}\n\n{time.perf_counter() - t0:.0f} s; plots and runs under {args.out}/")
    failed = failed_runs(args.out)
    if failed:  # as `neurosim sweep`: exit 1 when a run did not complete
        print(f"{len(failed)} run(s) did not complete (their rows say why): {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
