"""Whole runs of one network structure on cpp_standalone with the project cache
(neurosim/backends/standalone_cache.py): the first run builds, later runs with the same
or another seed, weights or learning rate compile only what changed. The PAL "Fig 3a-c"
setting of examples/pal_alignment_linear.toml (5-20-10-20-5, dt 0.01 ms), in one process,
with an empty cache of its own.

    python -m benchmarks.standalone_cache [--epochs 5] [--out benchmarks/results]

"whole" is the Brian2Simulator.run call: code generation, compilation, the run and
reading the results back.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import tomllib
from pathlib import Path

from benchmarks import save
from microcircuits import dendritic
from microcircuits.dendritic_runner import _Replica, make_config
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.recording import Recording

ROOT = Path(__file__).resolve().parents[1]
RUNS = [("first run (empty cache)", 0, 50.0), ("same seed and settings", 0, 50.0), ("another seed", 1, 50.0),
        ("another learning rate (eta_bw 20)", 1, 20.0), ("another seed and weights", 2, 20.0)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs of 100 samples x 1 ms (after 100 ms settling)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    config = make_config(tomllib.loads((ROOT / "examples" / "pal_alignment_linear.toml").read_text()))
    config["task"]["epochs"] = args.epochs
    rows, simulated = {}, 0.0
    with tempfile.TemporaryDirectory(prefix="neurosim_cache_") as cache:
        os.environ["NEUROSIM_CACHE"] = cache
        for name, seed, eta_bw in RUNS:
            config["network"]["eta_bw"] = eta_bw
            cfg = dendritic.MicrocircuitConfig.from_dict(config["network"])
            replica = _Replica(config, cfg, seed, Path(cache) / "unused")
            recording = Recording(weights=["B1"], weights_dt=100.0)
            t0 = time.perf_counter()
            result = Brian2Simulator(replica.net, target="cpp_standalone", seed=seed).run(replica.schedule, recording)
            rows[name] = {"whole_s": time.perf_counter() - t0, "steps_per_s": result.steps_per_s}
            simulated = replica.schedule.duration
    first = rows[RUNS[0][0]]["whole_s"]
    lines = ["| run | whole (s) | vs first run | loop steps/s |", "|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['whole_s']:.1f} | {row['whole_s'] / first:.2f} | {row['steps_per_s']:,.0f} |")
    table = "\n".join(lines)
    print(f"PAL 5-20-10-20-5, {simulated:g} ms simulated, cpp_standalone")
    print(table)
    save(args.out, "standalone_cache", table, {"rows": rows})


if __name__ == "__main__":
    main()
