"""Target alignment against depth (Song et al. 2024): deep linear networks of 1 to 15 weight
matrices, every layer 64 wide, one learning step on one sample,

    alignment = cos(out(W + dW) - out(W), y - out(W)),   out(W) = W_L ... W_1 x,

for prospective configuration (the rate circuit of microcircuits.energy simulated with torch:
relax for t_pres, then learn for t_pres, E = sum_l 1/2 ||x_l - W_l x_{l-1}||^2) and for
backprop's gradient step on 1/2 ||y - out||^2 with the same learning rate (1e-4).
W_l ~ N(0, 1/64), x ~ N(0, 1/64), y = out + N(0, 1/64) (microcircuits.energy_depth).

    .venv/bin/python examples/energy_depth.py --seeds 5 --out runs/energy_depth   # depths 1..15

Writes table.md and alignment.png (mean over seeds +- sd, every seed as a dot) under --out.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from microcircuits.energy_depth import backprop_step, prospective_step, random_problem, target_alignment

WIDTH = 64


def measure(depth: int, seed: int) -> dict:
    weights, x, y = random_problem(depth, WIDTH, seed)
    pc_weights, residual, t_pres = prospective_step(weights, x, y)
    return {"pc": target_alignment(weights, pc_weights, x, y),
            "bp": target_alignment(weights, backprop_step(weights, x, y), x, y),
            "residual": residual, "t_pres": t_pres}


def mean_sd(values) -> str:
    values = np.asarray(values)
    return f"{values.mean():.3f} +- {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def table(results: dict[int, list[dict]], seeds: int) -> str:
    rows = [f"| depth L | PC alignment, mean +- sd ({seeds} seeds) | BP alignment, mean +- sd | t_pres (ms) "
            "| relaxation residual, max |", "|---|---|---|---|---|"]
    for depth, runs in results.items():
        t_lo, t_hi = min(r["t_pres"] for r in runs), max(r["t_pres"] for r in runs)
        rows.append(f"| {depth} | {mean_sd([r['pc'] for r in runs])} | {mean_sd([r['bp'] for r in runs])} "
                    f"| {t_lo:g}{f'-{t_hi:g}' if t_hi > t_lo else ''} | {max(r['residual'] for r in runs):.1e} |")
    return "\n".join(rows) + "\n"


def plot(results: dict[int, list[dict]], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths, seeds = np.array(list(results)), len(next(iter(results.values())))
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for key, label in (("pc", "prospective configuration (circuit)"), ("bp", "backprop")):
        values = np.array([[r[key] for r in runs] for runs in results.values()])
        mean, sd = values.mean(axis=1), values.std(axis=1, ddof=1) if seeds > 1 else 0.0
        line, = ax.plot(depths, mean, marker="o", label=label)
        ax.fill_between(depths, mean - sd, mean + sd, color=line.get_color(), alpha=0.2)
        ax.plot(np.repeat(depths, seeds), values.ravel(), ".", color=line.get_color(), alpha=0.4, ms=3)
    ax.set(xlabel="depth L (weight matrices)", ylabel="target alignment", ylim=(0, 1.05),
           title=f"one step, linear nets {WIDTH} wide ({seeds} seeds, mean +- sd)")
    ax.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=list(range(1, 16)))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("runs/energy_depth"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    args.out.mkdir(parents=True, exist_ok=True)
    results, t0 = {}, time.perf_counter()
    for depth in args.depths:
        results[depth] = [measure(depth, seed) for seed in range(args.seeds)]
        print(f"depth {depth}: done at {time.perf_counter() - t0:.0f} s", flush=True)
    text = table(results, args.seeds)
    (args.out / "table.md").write_text(text)
    plot(results, args.out / "alignment.png")
    print(text + f"wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
