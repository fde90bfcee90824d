"""One experiment over variants and seeds, for the example scripts: each (variant, seed)
is a full run in its own folder `out/<variant>/seed<k>`, run as `neurosim sweep` runs
them (microcircuits.sweep_ray: Ray tasks, on torch a variant's seeds as replicas; a rerun
skips complete runs). Then means over seeds with their standard errors, and plots of a
metric's mean over time with the spread (min to max) over seeds shaded."""
from __future__ import annotations

import argparse
import statistics
import tomllib
from pathlib import Path

import numpy as np

from neurosim.config import merge, parse_set
from neurosim.recording import read_results

from . import sweep_ray
from .runners import make_config
from .sweep_spec import Run, variant_config


def script_parser(doc: str, seeds: int, out: str) -> argparse.ArgumentParser:
    """The options every experiment script shares: --seeds, --out, --epochs, --set."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=seeds)
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--epochs", type=int, default=None, help="override task.epochs")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config values for every variant, e.g. network.eta_bw=0.5")
    parser.add_argument("--backend", choices=["brian2", "torch"], default=None,
                        help="override run.backend (torch: all seeds of a variant in one process)")
    parser.add_argument("--device", default=None, help="torch device (cpu, cuda)")
    return parser


def script_config(path, args) -> dict:
    """An example's TOML config with the script's --epochs and --set applied."""
    config = merge(tomllib.loads(Path(path).read_text()), parse_set(args.set))
    if args.epochs is not None:
        config["task"]["epochs"] = args.epochs
    for key in ("backend", "device"):
        if getattr(args, key) is not None:
            config.setdefault("run", {})[key] = getattr(args, key)
    return config


def run_sweep(config: dict, variants: dict[str, dict], seeds, out, workers: int = 2) -> dict[str, list[dict]]:
    """Run every variant for every seed with `neurosim sweep`'s machinery
    (microcircuits.sweep_ray: Ray tasks on `workers` CPUs, a torch variant's consecutive
    seeds as replicas, complete runs of the same config in `out` not run again), each into
    out/<variant>/seed<k>; returns variant -> summaries (seed order), each with "results"
    (the path of its results.h5). Runs that did not complete are a RuntimeError naming
    them, after the others ran."""
    out = Path(out)
    runs = [Run("", name, seed, make_config(variant_config(config, overrides, seed)))
            for name, overrides in variants.items() for seed in seeds]
    rows = sweep_ray.run_sweep(runs, out, workers=workers)
    bad = [row for row in rows if row["status"] != "complete"]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(rows)} runs did not complete (table: {out / sweep_ray.SWEEP_MD}): "
                           + "; ".join(f"{r['folder']} {r['status']} ({r['message']})" for r in bad[:3]))
    summaries = {name: [] for name in variants}
    for run in runs:
        path = out / run.folder / "results.h5"
        summaries[run.variant].append({**read_results(path)["summary"], "results": str(path)})
    return summaries


def mean_sem(values) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    values = [float(v) for v in values]
    sem = statistics.stdev(values) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return statistics.fmean(values), sem


def metric_over_seeds(paths, key: str) -> tuple[np.ndarray, np.ndarray]:
    """times (ms) and values (seeds x times) of one metric, cut to the shortest run."""
    traces = [read_results(p)["metrics"][key] for p in paths]
    n = min(len(t.times) for t in traces)
    return traces[0].times[:n], np.stack([t.values[:n] for t in traces])


def plot_over_seeds(curves: dict[str, tuple[list, str]], path, ylabel: str, title: str, log_y: bool = False) -> Path:
    """curves: label -> (results paths, metric key); the mean over seeds as a line, min to
    max shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, (paths, key) in curves.items():
        times, values = metric_over_seeds(paths, key)
        line, = ax.plot(times / 1000, values.mean(axis=0), label=f"{label} ({len(values)} seeds)")
        ax.fill_between(times / 1000, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2)
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel="simulated time (s)", ylabel=ylabel, title=title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
