"""Replica-steps per second of the torch backend for the 4-30-3 and 784-100-10
microcircuits, for 1 to 1024 replicas, against the Brian2 backend (cpp_standalone)
running the same network for several seeds one after another, measured in the same run.

    python -m benchmarks.torch_replicas [--device cpu|cuda] [--replicas 1 10 100]
        [--compiled-replicas 1 10] [--layers 4-30-3 784-100-10] [--brian2-seeds 10]
        [--brian2-steps 100000] [--out benchmarks/results]

The network is the Yin-Yang PAL setting (examples/pal_yinyang.toml: dt 0.1 ms, every
rule learning, OU noise on the hidden apical dendrites, target on), random inputs and
targets, one presentation per ms. Brian2: one standalone program per seed (building and
compiling about 20 s each), `--brian2-seeds` of them one after another, each running
`--brian2-steps` steps. torch: eager for every `--replicas`, torch.compile'd for every
`--compiled-replicas`. Two rates: "loop" counts only the simulation loop (torch: after
the first block, which compiles); "run of N steps" is what a run of the Brian2
reference's length costs with building and compiling included (torch: its set-up time
plus N steps at the loop rate).
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
    setup = probe.wall_time_s - probe.steps * per_step  # building, and compiling the first block
    n_pres = int(np.clip(seconds / max(per_step, 1e-9) / 10, 3, 20_000))
    result = sim.run_replicas(schedule(layers, n_pres, 1))[0]
    rate = replicas * (result.steps - 10) / result.run_time_s
    return {"replicas": replicas, "compiled": compiled, "steps": result.steps, "loop_s": result.run_time_s,
            "setup_s": setup, "replica_steps_per_s": rate}


def rate_for_run(row: dict, n_steps: int) -> float:
    """Replica-steps/s of a run of n_steps steps, set-up included."""
    return row["replicas"] * n_steps / (row["setup_s"] + row["replicas"] * n_steps / row["replica_steps_per_s"])


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
            "replica_steps_per_s": seeds * n_steps / loop, "replica_steps_per_s_run": seeds * n_steps / wall}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--layers", nargs="+", default=["4-30-3", "784-100-10"])
    parser.add_argument("--replicas", nargs="+", type=int, default=[1, 4, 10, 16, 64, 256, 1024])
    parser.add_argument("--compiled-replicas", nargs="*", type=int, default=[1, 10, 64],
                        help="replica counts to run torch.compile'd too (CUDA graphs on a GPU)")
    parser.add_argument("--seconds", type=float, default=3.0, help="loop time aimed at per torch point")
    parser.add_argument("--brian2-seeds", type=int, default=10, help="0 skips the Brian2 reference")
    parser.add_argument("--brian2-steps", type=int, default=100_000)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    report = {"device": device, "dtype": args.dtype, "versions": library_versions(), "networks": {}}
    lines = [f"torch on {args.device} ({device}), {args.dtype}; Brian2 cpp_standalone, {args.brian2_seeds} seeds "
             f"of {args.brian2_steps} steps one after another", ""]
    for spec in args.layers:
        layers = [int(n) for n in spec.split("-")]
        ref = bench_brian2(layers, args.brian2_seeds, args.brian2_steps) if args.brian2_seeds else None
        rows = [bench_torch(layers, r, args.device, args.dtype, False, args.seconds) for r in args.replicas]
        rows += [bench_torch(layers, r, args.device, args.dtype, True, args.seconds) for r in args.compiled_replicas]
        for row in rows:
            row["replica_steps_per_s_run"] = rate_for_run(row, args.brian2_steps)
        report["networks"][spec] = {"brian2": ref, "torch": rows}
        lines += [f"### {spec}", "",
                  f"| run | replica-steps/s (loop) | vs Brian2 (loop) | set-up (s) | replica-steps/s, run of "
                  f"{args.brian2_steps} steps | vs Brian2 (run) |", "|---|---|---|---|---|---|"]
        if ref:
            lines.append(f"| brian2 cpp_standalone, {ref['seeds']} seeds one after another | "
                         f"{ref['replica_steps_per_s']:,.0f} | 1.0x | {(ref['wall_s'] - ref['loop_s']) / ref['seeds']:.1f} "
                         f"per seed | {ref['replica_steps_per_s_run']:,.0f} | 1.0x |")
        for row in rows:
            vs = lambda key: f"{row[key] / ref[key]:.2f}x" if ref else "-"  # noqa: E731
            lines.append(f"| torch {'compiled' if row['compiled'] else 'eager'}, {row['replicas']} replicas "
                         f"({row['steps']} steps timed) | {row['replica_steps_per_s']:,.0f} | "
                         f"{vs('replica_steps_per_s')} | {row['setup_s']:.1f} | {row['replica_steps_per_s_run']:,.0f} | "
                         f"{vs('replica_steps_per_s_run')} |")
        lines.append("")
        print("\n".join(lines), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"torch_replicas_{'_'.join(args.layers)}_{args.device.split(':')[0]}_{args.dtype}"
    (out / f"{name}.json").write_text(json.dumps(report, indent=2))
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
