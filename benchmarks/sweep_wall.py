"""Wall time of a whole sweep: `neurosim sweep SPEC --workers 2` (Ray) against a process
pool of 2 mapping `run_experiment` over the same runs, which is how the example scripts
swept before Ray (microcircuits/sweep.py at git 2c0b72c). Both ways run the spec's runs
on the current engine, each as a separate process whose whole wall time is measured (Ray's
start-up, imports, the table and plots included), into a fresh folder.

    python -m benchmarks.sweep_wall [--specs examples/sweeps/pal_alignment.toml ...] [--repeats 2]

The standalone builds live in a project cache (neurosim/backends/standalone_cache.py);
the benchmark starts from an empty cache of its own, so the first way of the first repeat
pays the builds. The ways alternate (pool, ray; then ray, pool; ...) and every time is
reported; the ratio is taken over the warm repeats (all but the first). The runs' final
metrics of the two ways are compared for equality.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks import save
from microcircuits.sweep_spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = ["examples/sweeps/pal_alignment.toml", "examples/sweeps/pal_yinyang.toml"]
WAYS = ("process pool (before Ray)", "neurosim sweep (Ray)")


def _run(job):
    from microcircuits.runners import run_experiment

    config, out = job
    run_experiment(config, out, log=lambda *a: None)


def process_pool(spec: str, out: str, workers: int) -> None:
    """The runs of `spec` on a process pool of `workers`, each into out/<run folder>."""
    runs, _ = load_spec(spec)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_run, [(run.config, Path(out) / run.folder) for run in runs]))


def command(way: str, spec: str, out: Path, workers: int) -> list[str]:
    if way == WAYS[0]:
        return [sys.executable, "-m", "benchmarks.sweep_wall", "--process-pool", spec, str(out),
                "--workers", str(workers)]
    return [str(Path(sys.executable).parent / "neurosim"), "sweep", spec, "--workers", str(workers),
            "--out", str(out), "--no-resume"]


def finals(spec: str, out: Path) -> dict[str, tuple[dict, float]]:
    """run folder -> (final metrics, the run's own wall time) from each run's summary.json."""
    runs, _ = load_spec(spec)
    result = {}
    for run in runs:
        summary = json.loads((out / run.folder / "summary.json").read_text())
        if summary["status"] != "complete":
            raise RuntimeError(f"{out / run.folder}: status {summary['status']}")
        result[run.folder] = (summary["final"], summary["wall_time_s"])
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=SPECS)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--process-pool", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.process_pool:
        return process_pool(*args.process_pool, args.workers)

    rows, lines = [], ["| sweep | runs | repeat | way | wall (s) | sum of the runs' own wall (s) | "
                       "wall x workers / sum | vs process pool, same repeat |",
                       "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="neurosim_sweep_wall_") as tmp:
        env = {**os.environ, "NEUROSIM_CACHE": str(Path(tmp) / "cache")}
        for spec in args.specs:
            n_runs = len(load_spec(spec)[0])
            for repeat in range(args.repeats):
                ways = WAYS if repeat % 2 == 0 else WAYS[::-1]
                times, metrics = {}, {}
                for way in ways:
                    out = Path(tmp) / Path(spec).stem / str(repeat) / ("pool" if way == WAYS[0] else "ray")
                    t0 = time.perf_counter()
                    subprocess.run(command(way, spec, out, args.workers), cwd=ROOT, env=env, check=True,
                                   stdout=subprocess.DEVNULL)
                    times[way] = time.perf_counter() - t0
                    metrics[way] = finals(spec, out)
                    own = sum(wall for _, wall in metrics[way].values())
                    rows.append({"spec": spec, "runs": n_runs, "repeat": repeat, "way": way,
                                 "wall_s": times[way], "runs_wall_s": own})
                    print(f"{Path(spec).stem} repeat {repeat} {way}: {times[way]:.1f} s", flush=True)
                same = {k: v[0] for k, v in metrics[WAYS[0]].items()} == {k: v[0] for k, v in metrics[WAYS[1]].items()}
                if not same:
                    raise RuntimeError(f"{spec}: the two ways' final metrics differ (repeat {repeat})")
                for row in rows[-2:]:
                    row["same_metrics"] = same
                    row["vs_pool"] = row["wall_s"] / times[WAYS[0]]
    for row in rows:
        lines.append(f"| {Path(row['spec']).stem} | {row['runs']} | {row['repeat']} | {row['way']} | "
                     f"{row['wall_s']:.1f} | {row['runs_wall_s']:.1f} | "
                     f"{row['wall_s'] * args.workers / row['runs_wall_s']:.2f} | {row['vs_pool']:.2f} |")
    table = "\n".join(lines)
    print(table)
    save(args.out, "sweep_wall", table, {"rows": rows, "workers": args.workers})


if __name__ == "__main__":
    main()
