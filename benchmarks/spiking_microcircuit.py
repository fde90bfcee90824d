"""Wall time per 100 ms sample of the spiking dendritic microcircuit (issue 16): Yin-Yang
4-30-3 (examples/yinyang_spiking_microcircuit.toml: every neuron spiking, PAL with OU
noise, every rule on, dt 0.1 ms), each run a separate `neurosim run` process timed from
the outside (start-up, build, run, metrics and plots included), against the rate
microcircuit of the same config measured in the same run.

    python -m benchmarks.spiking_microcircuit [--samples 200] [--out benchmarks/results]

The issue's point of comparison, the NEST version of the spiking microcircuit, needs
about 0.3 s of wall time per 100 ms sample on 8 threads (its authors' figure; NEST is
not installed here).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks import save
from benchmarks.whole_runs import timed

CONFIG = "examples/yinyang_spiking_microcircuit.toml"


def command(out: str, samples: int, *extra: str) -> list[str]:
    """One epoch of `samples` training samples and a test block of `samples // 4`."""
    return [str(Path(sys.executable).with_name("neurosim")), "run", CONFIG, "--set", "task.epochs=1",
            "--set", f"task.n_train={samples}", "--set", f"task.n_test={samples // 4}", "--out", out, *extra]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    # one epoch: a test block, the training samples, a test block
    n = args.samples + 2 * (args.samples // 4)
    runs = [("spiking, brian2 cpp_standalone, first run (empty cache)", ()),
            ("spiking, brian2 cpp_standalone, second run", ()),
            ("rate, brian2 cpp_standalone, second run", ("--set", 'network.neuron="rate"')),
            ("spiking, torch eager, 1 replica", ("--backend", "torch", "--no-compile"))]
    rows = []
    with tempfile.TemporaryDirectory(prefix="neurosim_spiking_") as tmp:
        timed(command(f"{tmp}/warm", args.samples, "--set", 'network.neuron="rate"'), f"{tmp}/cache")
        for k, (name, extra) in enumerate(runs):
            result = timed(command(f"{tmp}/run{k}", args.samples, *extra), f"{tmp}/cache")
            rows.append({"run": name, **result, "per_sample_s": result["whole_s"] / n})
            print(f"{name}: {result['whole_s']:.1f} s", flush=True)
    rate = next(r for r in rows if r["run"].startswith("rate"))["per_sample_s"]
    lines = [f"| run ({n} samples of 100 ms) | whole process (s) | per sample (ms) | per sample / rate circuit's "
             "| loop steps/s |", "|---|---|---|---|---|"]
    for r in rows:
        steps = f"{r['steps_per_s']:,.0f}" if r["steps_per_s"] else ""
        lines.append(f"| {r['run']} | {r['whole_s']:.1f} | {1000 * r['per_sample_s']:.1f} | "
                     f"{r['per_sample_s'] / rate:.2f} | {steps} |")
    table = "\n".join(lines)
    print(table)
    save(args.out, "spiking_microcircuit", table, {"samples": n, "rows": rows})


if __name__ == "__main__":
    main()
