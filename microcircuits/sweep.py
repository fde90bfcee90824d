"""One experiment over variants and seeds: each (variant, seed) is a full run of
`run_experiment` in its own folder `out/<variant>/seed<k>`: on Brian2 one process per
run, two at a time; on torch one process per variant, with its seeds as replicas. Then
means over seeds with their standard errors, and plots of a metric's mean over time
with the spread (min to max) over seeds shaded."""
from __future__ import annotations

import argparse
import copy
import statistics
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from neurosim.config import merge, parse_set
from neurosim.recording import read_results

from .runners import run_experiment


def variant_config(config: dict, overrides: dict, seed: int) -> dict:
    """config with overrides ({section: {key: value}}) applied and run.seed = seed."""
    return merge(merge(copy.deepcopy(config), copy.deepcopy(overrides)), {"run": {"seed": seed}})


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


def _run(job):
    config, out = job
    return run_experiment(config, out, log=lambda *a: None)


def run_sweep(config: dict, variants: dict[str, dict], seeds, out, workers: int = 2) -> dict[str, list[dict]]:
    """Run every variant for every seed; returns variant -> summaries (seed order), each
    with "results" (the path of its results.h5)."""
    out = Path(out)
    seeds = list(seeds)
    if config.get("run", {}).get("backend") == "torch":
        return _run_replicas(config, variants, seeds, out)
    keys = [(name, seed) for name in variants for seed in seeds]
    jobs = [(variant_config(config, variants[name], seed), out / name / f"seed{seed}") for name, seed in keys]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        summaries = list(pool.map(_run, jobs))
    runs = {name: [] for name in variants}
    for (name, _), (_, folder), summary in zip(keys, jobs, summaries):
        runs[name].append({**summary, "results": str(folder / "results.h5")})
    return runs


def _run_replicas(config: dict, variants: dict[str, dict], seeds: list[int], out: Path) -> dict[str, list[dict]]:
    """torch: each variant's seeds as replicas of one run (seeds must be consecutive)."""
    if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        raise ValueError(f"the torch backend runs consecutive seeds as replicas; got {seeds}")
    runs = {}
    for name, overrides in variants.items():
        variant = merge(variant_config(config, overrides, seeds[0]), {"run": {"replicas": len(seeds)}})
        # several replicas write out/name/seed<k> themselves; a single one writes where it is told
        summaries = run_experiment(variant, out / name if len(seeds) > 1 else out / name / f"seed{seeds[0]}",
                                   log=lambda *a: None)
        summaries = summaries if isinstance(summaries, list) else [summaries]
        runs[name] = [{**s, "results": str(out / name / f"seed{seed}" / "results.h5")}
                      for s, seed in zip(summaries, seeds)]
    return runs


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
