"""Replica-steps per second of the torch backend for the 4-30-3 and 784-100-10
microcircuits, for 1 to 1024 replicas, against the Brian2 backend (cpp_standalone)
running the same network for several seeds one after another, measured in the same run.

    python -m benchmarks.torch_replicas [--device cpu|cuda] [--replicas 1 10 100]
        [--layers 4-30-3 784-100-10] [--compile] [--brian2-seeds 10] [--out benchmarks/results]

The network is the Yin-Yang PAL setting (examples/pal_yinyang.toml: dt 0.1 ms, every
rule learning, OU noise on the hidden apical dendrites, target on), random inputs and
targets, one presentation per ms. torch: "loop" counts the steps after the first block
(which compiles, when compiled); "wall" adds building and compiling. Brian2: one
standalone program per seed (build and compile about 20 s each) and its loop time.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.recording import library_versions
from neurosim.schedule import Schedule


def config(layers: list[int]) -> MicrocircuitConfig:
    return MicrocircuitConfig(layers=layers, feedback="pal", dt=0.1, eta_fw=[10.0, 0.1], eta_ip=0.5, eta_pi=0.5,
                              eta_bw=0.5, alpha=1e-5, sigma=0.05, tau_xi=0.3, tau_hp=0.3, init_w=0.1, init_b=1.0)


def schedule(layers: list[int], n_presentations: int, seed: int) -> Schedule:
    rng = np.random.default_rng(seed)
    out = f"P{len(layers) - 1}.target"
    return Schedule(1.0, {"x": rng.uniform(0, 1, (n_presentations, layers[0])),
                          out: rng.uniform(-2, 2, (n_presentations, layers[-1]))})


def bench_torch(layers, replicas: int, device: str, dtype: str, compiled: bool, seconds: float) -> dict:
    """Run long enough for about `seconds` of loop, judged from a short first run."""
    cfg = config(layers)
    nets = [build(cfg, initial_weights(cfg, s)) for s in range(replicas)]
    sim = TorchSimulator(nets, device=device, dtype=dtype, seed=list(range(replicas)), compile=compiled)
    probe = sim.run_replicas(schedule(layers, 3, 0))[0]
    per_step = probe.run_time_s / max(1, probe.steps - 10)
    n_pres = int(np.clip(seconds / max(per_step, 1e-9) / 10, 3, 20_000))
    t0 = time.perf_counter()
    result = sim.run_replicas(schedule(layers, n_pres, 1))[0]
    wall = time.perf_counter() - t0 + (probe.wall_time_s if compiled else 0.0)  # count the compile once
    loop_steps = result.steps - 10
    return {"replicas": replicas, "steps": result.steps, "loop_s": result.run_time_s, "wall_s": wall,
            "replica_steps_per_s": replicas * loop_steps / result.run_time_s,
            "replica_steps_per_s_wall": replicas * result.steps / wall}


def bench_brian2(layers, seeds: int, n_steps: int) -> dict:
    """`seeds` standalone runs one after another, as a user of the Brian2 backend would run them."""
    cfg = config(layers)
    t0 = time.perf_counter()
    loop = 0.0
    for seed in range(seeds):
        result = Brian2Simulator(build(cfg, initial_weights(cfg, seed)), target="cpp_standalone",
                                 seed=seed).run(schedule(layers, n_steps // 10, seed))
        loop += result.run_time_s
    wall = time.perf_counter() - t0
    return {"seeds": seeds, "steps": n_steps, "loop_s": loop, "wall_s": wall,
            "replica_steps_per_s": seeds * n_steps / loop, "replica_steps_per_s_wall": seeds * n_steps / wall}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--layers", nargs="+", default=["4-30-3", "784-100-10"])
    parser.add_argument("--replicas", nargs="+", type=int, default=[1, 4, 10, 16, 64, 256, 1024])
    parser.add_argument("--compile", action="store_true", help="torch.compile the step (CUDA graphs on a GPU)")
    parser.add_argument("--seconds", type=float, default=3.0, help="loop time aimed at per torch point")
    parser.add_argument("--brian2-seeds", type=int, default=10, help="0 skips the Brian2 reference")
    parser.add_argument("--brian2-steps", type=int, default=100_000)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    report = {"device": device, "dtype": args.dtype, "compiled": args.compile, "versions": library_versions(),
              "networks": {}}
    lines = [f"torch on {args.device} ({device}), {args.dtype}, {'compiled' if args.compile else 'eager'}; "
             f"Brian2 cpp_standalone, {args.brian2_seeds} seeds one after another", ""]
    for spec in args.layers:
        layers = [int(n) for n in spec.split("-")]
        ref = bench_brian2(layers, args.brian2_seeds, args.brian2_steps) if args.brian2_seeds else None
        rows = [bench_torch(layers, r, args.device, args.dtype, args.compile, args.seconds) for r in args.replicas]
        report["networks"][spec] = {"brian2": ref, "torch": rows}
        lines += [f"### {spec}", "",
                  "| run | replica-steps/s (loop) | vs Brian2 (loop) | replica-steps/s (wall) | vs Brian2 (wall) |",
                  "|---|---|---|---|---|"]
        if ref:
            lines.append(f"| brian2 cpp_standalone, {ref['seeds']} seeds x {ref['steps']} steps one after another | "
                         f"{ref['replica_steps_per_s']:,.0f} | 1.0x | {ref['replica_steps_per_s_wall']:,.0f} | 1.0x |")
        for row in rows:
            vs = lambda key: f"{row[key] / ref[key]:.2f}x" if ref else "-"  # noqa: E731
            lines.append(f"| torch, {row['replicas']} replicas x {row['steps']} steps | "
                         f"{row['replica_steps_per_s']:,.0f} | {vs('replica_steps_per_s')} | "
                         f"{row['replica_steps_per_s_wall']:,.0f} | {vs('replica_steps_per_s_wall')} |")
        lines.append("")
        print("\n".join(lines), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = (f"torch_replicas_{'_'.join(args.layers)}_{args.device.split(':')[0]}_{args.dtype}"
            f"{'_compiled' if args.compile else ''}")
    (out / f"{name}.json").write_text(json.dumps(report, indent=2))
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
