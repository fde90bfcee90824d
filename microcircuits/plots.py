"""Plots made from results files (never from live objects)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neurosim.recording import read_results  # noqa: E402


def plot_run(results_path, out_dir) -> list[Path]:
    """learning_curve.png (test accuracy or mse over simulated time) and apical_mismatch.png."""
    res, out_dir = read_results(results_path), Path(out_dir)
    label = f"{res['summary']['rule']} (seed {res['summary']['seed']})"
    metric = "test_accuracy" if "test_accuracy" in res["metrics"] else "test_mse"
    paths = [out_dir / "learning_curve.png", out_dir / "apical_mismatch.png"]

    fig, ax = plt.subplots(figsize=(5, 3.5))
    trace = res["metrics"][metric]
    ax.plot(trace.times / 1000, trace.values, "o-", label=label)
    ax.set(xlabel="simulated time (s)", ylabel=metric.replace("_", " "), title="learning curve")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key, trace in sorted(res["metrics"].items()):
        if key.startswith("apical_mismatch_"):
            ax.semilogy(trace.times / 1000, trace.values, label=key.removeprefix("apical_mismatch_"))
    ax.set(xlabel="simulated time (s)", ylabel="||v_api||", title="apical mismatch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths


def plot_comparison(runs: dict, path) -> Path:
    """Test accuracy over time of several runs (name -> results.h5) in one figure."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, results_path in runs.items():
        trace = read_results(results_path)["metrics"]["test_accuracy"]
        ax.plot(trace.times / 1000, trace.values, "o-", label=name)
    ax.set(xlabel="simulated time (s)", ylabel="test accuracy", title="Yin-Yang")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
