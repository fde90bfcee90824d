"""`make demo`: the microcircuit on Yin-Yang with top-down weights in mode `bp` and `fa`,
same seeds and data, run side by side (one process per run), then a table and a plot."""
from __future__ import annotations

import json
import statistics
import sys
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .experiments import run_experiment
from .plots import plot_comparison

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "yinyang_demo.toml"
MODES = ("bp", "fa")


def _one(args):
    mode, seed, epochs, out = args
    config = tomllib.loads(CONFIG.read_text())
    config["network"]["feedback"] = mode
    config["run"]["seed"] = seed
    if epochs is not None:
        config["task"]["epochs"] = epochs
    return run_experiment(config, out, log=lambda *a: None)


def run_demo(out: Path, epochs: int | None = None, seeds: int = 1) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(mode, seed, epochs, out / f"{mode}_seed{seed}") for mode in MODES for seed in range(seeds)]
    print(f"training the 4-30-3 microcircuit on Yin-Yang ({CONFIG.name}), modes {', '.join(MODES)}, "
          f"{seeds} seed(s), 2 runs at a time ...", flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        summaries = list(pool.map(_one, jobs))
    print(f"done in {time.perf_counter() - t0:.0f} s\n")
    print("| mode | seed | test accuracy | test mse | simulated (s) | wall (s) | steps/s |")
    print("|---|---|---|---|---|---|---|")
    for (mode, seed, *_), s in zip(jobs, summaries):
        f = s["final"]
        print(f"| {mode} | {seed} | {f['test_accuracy']:.3f} | {f['mse']:.4f} | {s['sim_time_ms'] / 1000:.0f} | "
              f"{s['wall_time_s']:.0f} | {s['steps_per_s']:,.0f} |")
    for mode in MODES:
        acc = [s["final"]["test_accuracy"] for (m, *_), s in zip(jobs, summaries) if m == mode]
        spread = f" +- {statistics.stdev(acc):.3f}" if len(acc) > 1 else ""
        print(f"{mode}: mean test accuracy {statistics.mean(acc):.3f}{spread}")
    plot = plot_comparison({f"{m} seed {s}": o / "results.h5" for m, s, _, o in jobs}, out / "accuracy.png")
    (out / "demo.json").write_text(json.dumps([{"mode": j[0], **s} for j, s in zip(jobs, summaries)], indent=2))
    print(f"\nplots: {plot} and each run's learning_curve.png, apical_mismatch.png under {out}/")
    sys.stdout.flush()
    return summaries
