"""Whole runs as a user waits for them: every run a separate process (start-up, imports,
build, run, writing results), the package against the plain numpy loop
(benchmarks/numpy_loop.py) measured in the same run, on the PAL "Fig 3a-c" setting
(examples/pal_alignment_linear.toml: 5-20-10-20-5, dt 0.01 ms, OU noise, B learning by
PAL) for a short run (5 epochs: 0.6 s simulated, 60,000 steps) and the full one (100
epochs: 10.1 s, 1,010,000 steps).

    python -m benchmarks.whole_runs [--long-epochs 100] [--seeds 10] [--out benchmarks/results]

Rows: the numpy loop; `neurosim run` on cpp_standalone with an empty project cache
(first run: builds) and again with the same cache (second run); a sweep of `--seeds`
seeds of the short run, as one process each sharing one cache and as one process
(`--replicas`: one program rerun with each seed's weights and data), both against that
many first runs (builds: the distinct programs the cache folder held); the torch
backend at 1 replica on the CPU: the short run eager and compiled, the long run with
its default (compiled), inductor's cache warmed by a first compiled run.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from benchmarks import save


ROOT = Path(__file__).resolve().parents[1]
CONFIG = "examples/pal_alignment_linear.toml"
RATE = re.compile(r"\(([\d.,e+]+) steps/s\)")


def timed(command: list[str], cache: str) -> dict:
    """Wall time of one process, its loop rate as it printed it."""
    env = dict(os.environ, NEUROSIM_CACHE=cache)
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    rates = RATE.findall(done.stdout)
    return {"whole_s": wall, "steps_per_s": float(rates[-1].replace(",", "")) if rates else None}


def numpy_loop(epochs: int) -> list[str]:
    return [sys.executable, "-m", "benchmarks.numpy_loop", CONFIG, "--epochs", str(epochs)]


def neurosim(epochs: int, out: str, *extra: str) -> list[str]:
    return [str(Path(sys.executable).with_name("neurosim")), "run", CONFIG, "--set", f"task.epochs={epochs}",
            "--out", out, *extra]


def programs(cache: str) -> set:
    return {(p.parent.name, p.stat().st_mtime_ns) for p in Path(cache).glob("standalone/*/main")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short-epochs", type=int, default=5)
    parser.add_argument("--long-epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="neurosim_whole_runs_") as tmp:
        def row(name, length, reference, result):
            rows.append({"run": name, "length": length, "reference": reference, **result})
            print(f"{name} ({length}): {result['whole_s']:.1f} s", flush=True)

        for length, epochs in (("short", args.short_epochs), ("long", args.long_epochs)):
            cache = f"{tmp}/cache_{length}"
            row("numpy loop", length, None, timed(numpy_loop(epochs), cache))
            row("neurosim run, cpp_standalone, first run (empty cache)", length, "numpy loop",
                timed(neurosim(epochs, f"{tmp}/{length}_1"), cache))
            row("neurosim run, cpp_standalone, second run", length, "numpy loop",
                timed(neurosim(epochs, f"{tmp}/{length}_2"), cache))

        first = next(r for r in rows if r["length"] == "short" and "first run" in r["run"])
        cache, seen, t0 = f"{tmp}/cache_sweep", set(), time.perf_counter()
        for seed in range(args.seeds):
            timed(neurosim(args.short_epochs, f"{tmp}/sweep_{seed}", "--seed", str(seed)), cache)
            seen |= programs(cache)
        rows.append({"run": f"{args.seeds} seeds, one process each, one cache (empty at the start)",
                     "length": "short", "reference": f"{args.seeds} first runs", "whole_s": time.perf_counter() - t0,
                     "reference_s": args.seeds * first["whole_s"], "builds": len(seen), "steps_per_s": None})
        print(f"sweep: {rows[-1]['whole_s']:.1f} s, {len(seen)} build(s)", flush=True)
        cache = f"{tmp}/cache_replicas"
        result = timed(neurosim(args.short_epochs, f"{tmp}/replicas", "--replicas", str(args.seeds)), cache)
        rows.append({"run": f"{args.seeds} seeds in one process (`--replicas {args.seeds}`), empty cache",
                     "length": "short", "reference": f"{args.seeds} first runs", **result,
                     "reference_s": args.seeds * first["whole_s"], "builds": len(programs(cache))})
        print(f"replicas: {result['whole_s']:.1f} s", flush=True)

        cache = f"{tmp}/cache_torch"
        row("neurosim run, torch, 1 replica, CPU, eager", "short", "numpy loop",
            timed(neurosim(args.short_epochs, f"{tmp}/torch_eager", "--backend", "torch"), cache))
        timed(neurosim(args.short_epochs, f"{tmp}/torch_warmup", "--backend", "torch", "--compile"), cache)
        row("neurosim run, torch, 1 replica, CPU, compiled (inductor cache warm)", "short", "numpy loop",
            timed(neurosim(args.short_epochs, f"{tmp}/torch_compiled", "--backend", "torch", "--compile"), cache))
        row("neurosim run, torch, 1 replica, CPU, default: compiled from 400,000 steps (inductor cache warm)",
            "long", "numpy loop", timed(neurosim(args.long_epochs, f"{tmp}/torch_long", "--backend", "torch"), cache))

    task = tomllib.loads((ROOT / CONFIG).read_text())["task"]
    seconds = {length: (task["settle"] + epochs * task["n_train"] * task["t_pres"]) / 1000
               for length, epochs in (("short", args.short_epochs), ("long", args.long_epochs))}
    numpy_s = {r["length"]: r["whole_s"] for r in rows if r["run"] == "numpy loop"}
    lines = ["| run | simulated | whole process (s) | numpy loop's whole run / this | loop steps/s | builds |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ref_s = r.get("reference_s") or numpy_s[r["length"]]
        ratio = "" if r["reference"] is None else f"{ref_s / r['whole_s']:.2f}x" + (
            f" (vs {r['reference']}: {ref_s:.0f} s)" if r.get("reference_s") else "")
        rate = f"{r['steps_per_s']:,.0f}" if r["steps_per_s"] else ""
        lines.append(f"| {r['run']} | {seconds[r['length']]:g} s | {r['whole_s']:.1f} | {ratio} | {rate} | {r.get('builds', '')} |")
    table = "\n".join(lines)
    print(table)
    save(args.out, "whole_runs", table, {"rows": rows})


if __name__ == "__main__":
    main()
