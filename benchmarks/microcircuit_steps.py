"""Simulation steps per second of the 5-20-10-20-5 microcircuit (the "Fig 3a-c" setting of
docs/equations.md section 2: U[-1,1] weights, eta_fw = 1, eta_PI = 5, eta_IP = 0,
dt = 0.01 ms, 1 ms per sample, no target), on the Brian2 backend (runtime cython, cpp_standalone)
against the plain numpy loop of the same equations, measured in the same run.

    python -m benchmarks.microcircuit_steps [--steps 200000] [--out benchmarks/results]

run from the repository root (the numpy loop is the tests' oracle,
tests/oracle/microcircuit_loop.py).

Steps/s count the simulation loop alone (Brian2's own run time, without code
generation and compilation, which are reported separately).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.recording import library_versions
from neurosim.schedule import Schedule
from tests.oracle.microcircuit_loop import from_microcircuit, simulate

LAYERS = [5, 20, 10, 20, 5]


def setting(dt=0.01):
    return MicrocircuitConfig(layers=LAYERS, feedback="fa", sps="set", init_w=1.0, init_b=1.0, dt=dt,
                              eta_fw=1.0, eta_ip=0.0, eta_pi=5.0)


def schedule(n_samples, seed=0):
    x = np.random.default_rng(seed).uniform(0, 1, (n_samples, LAYERS[0]))
    out = f"P{len(LAYERS) - 1}.target"
    return Schedule(1.0, {"x": x, out: np.zeros((n_samples, LAYERS[-1]))}, {out: np.zeros(n_samples)})


def bench_brian2(target, n_steps):
    cfg = setting()
    sim = Brian2Simulator(build(cfg, initial_weights(cfg, 0)), target=target)
    result = sim.run(schedule(n_steps // 100))
    return {"steps": result.steps, "run_s": result.run_time_s, "total_s": result.wall_time_s,
            "steps_per_s": result.steps_per_s}


def bench_numpy(n_steps):
    cfg = setting()
    params, weights = from_microcircuit(cfg, initial_weights(cfg, 0), t_pres=1.0)
    sched = schedule(n_steps // 100)
    k = sched.n_presentations
    t0 = time.perf_counter()
    simulate(params, weights, sched.data["x"], None, np.zeros(k), np.ones(k))
    run = time.perf_counter() - t0
    return {"steps": k * 100, "run_s": run, "total_s": run, "steps_per_s": k * 100 / run}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000, help="steps for the Brian2 runs")
    parser.add_argument("--numpy-steps", type=int, default=50_000)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    rows = {"numpy loop": bench_numpy(args.numpy_steps),
            "brian2 runtime (cython)": bench_brian2("cython", args.steps),
            "brian2 cpp_standalone": bench_brian2("cpp_standalone", args.steps)}
    ref = rows["numpy loop"]["steps_per_s"]
    lines = ["| implementation | steps | steps/s | vs numpy loop | total wall (s) |", "|---|---|---|---|---|"]
    for name, row in rows.items():
        row["ratio"] = row["steps_per_s"] / ref
        lines.append(f"| {name} | {row['steps']} | {row['steps_per_s']:,.0f} | {row['ratio']:.1f}x | "
                     f"{row['total_s']:.1f} |")
    table = "\n".join(lines)
    print(f"5-20-10-20-5 microcircuit, dt = 0.01 ms, on {platform.processor() or platform.machine()}")
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "microcircuit_steps.json").write_text(json.dumps(
        {"layers": LAYERS, "rows": rows, "versions": library_versions()}, indent=2))
    (out / "microcircuit_steps.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
