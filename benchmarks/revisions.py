"""Before and after: the step benchmark (benchmarks/microcircuit_steps.py), the CUBA
benchmark (benchmarks/cuba.py) and the torch replica benchmark
(benchmarks/torch_replicas.py) of two git revisions, interleaved in one run so that a
busy moment of the machine hits both alike.

    python -m benchmarks.revisions --old REV [--new HEAD] [--repeat 3] [--steps 200000]
        [--cuba-duration 1000] [--torch-replicas 10] [--out benchmarks/results]

Each revision is checked out into a temporary git worktree and its own scripts run
there (`python -m benchmarks.<script>`, this environment's Python, the revision's
package). The table gives, per measure, the best of the repeats for each revision and
the ratio new / old of the rates (above 1: the new revision is faster).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands(args) -> dict:
    """script -> its arguments."""
    return {"microcircuit_steps": ["--steps", str(args.steps), "--numpy-steps", "20000"],
            "cuba": ["--duration", str(args.cuba_duration), "--repeat", "1", "--devices", ""],
            "torch_replicas": ["--layers", "4-30-3", "--replicas", str(args.torch_replicas), "--compiled-replicas",
                               "--brian2-seeds", "0", "--seconds", "10"]}


def measures(args) -> dict:
    """name -> (script, function(results folder) -> a rate, higher is faster)."""
    def cuba(mode):  # hand-written loop time / the package's: the package's speed as a fraction
        rows = lambda out: _rows(out / "cuba.json")  # noqa: E731
        return lambda out: rows(out)[f"brian2 by hand, {mode}"]["loop_s"] / rows(out)[f"neurosim brian2, {mode}"]["loop_s"]

    return {
        "microcircuit steps/s, brian2 cython": (
            "microcircuit_steps", lambda out: _rows(out / "microcircuit_steps.json")["brian2 runtime (cython)"]["steps_per_s"]),
        "microcircuit steps/s, brian2 cpp_standalone": (
            "microcircuit_steps", lambda out: _rows(out / "microcircuit_steps.json")["brian2 cpp_standalone"]["steps_per_s"]),
        "CUBA loop, cython: hand-written / neurosim": ("cuba", cuba("runtime (cython)")),
        "CUBA loop, cpp_standalone: hand-written / neurosim": ("cuba", cuba("cpp_standalone")),
        f"torch 4-30-3 eager, {args.torch_replicas} replicas: replica-steps/s": (
            "torch_replicas", lambda out: json.loads(next(out.glob("torch_replicas_*.json")).read_text())
            ["networks"]["4-30-3"]["torch"][0]["replica_steps_per_s"]),
    }


def _rows(path: Path) -> dict:
    return json.loads(path.read_text())["rows"]


def run(tree: Path, script: str, arguments: list[str], out: Path) -> None:
    subprocess.run([sys.executable, "-m", f"benchmarks.{script}", *arguments, "--out", str(out)], cwd=tree,
                   check=True, stdout=subprocess.DEVNULL)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the revision to compare against (a commit, tag or branch)")
    parser.add_argument("--new", default="HEAD")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200_000, help="steps of the microcircuit's Brian2 runs")
    parser.add_argument("--cuba-duration", type=float, default=1000.0, help="ms simulated by CUBA")
    parser.add_argument("--torch-replicas", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    table, scripts = measures(args), commands(args)
    best = {rev: {} for rev in ("old", "new")}
    with tempfile.TemporaryDirectory(prefix="neurosim_revisions_") as tmp:
        trees = {}
        for rev in ("old", "new"):
            trees[rev] = Path(tmp) / rev
            subprocess.run(["git", "worktree", "add", "--detach", str(trees[rev]), getattr(args, rev)], cwd=ROOT,
                           check=True, capture_output=True)
        try:
            for k in range(args.repeat):
                for script, arguments in scripts.items():
                    for rev in ("old", "new"):  # interleaved
                        out = Path(tmp) / f"{rev}_{script}_{k}"
                        run(trees[rev], script, arguments, out)
                        for name, (source, rate) in table.items():
                            if source == script:
                                best[rev][name] = max(best[rev].get(name, 0.0), rate(out))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    lines = [f"| measure (best of {args.repeat}) | {args.old} | {args.new} | new / old |", "|---|---|---|---|"]
    for name in table:
        old, new = best["old"][name], best["new"][name]
        lines.append(f"| {name} | {old:,.4g} | {new:,.4g} | {new / old:.3f} |")
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "revisions.md").write_text(text + "\n")
    (out / "revisions.json").write_text(json.dumps({"old": args.old, "new": args.new, "best": best}, indent=2))


if __name__ == "__main__":
    main()
