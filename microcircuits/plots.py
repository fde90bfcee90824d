"""Plots made from results files (never from live objects). A diverged run's metrics end
in NaN or inf: its plots show the finite part, and a plot that cannot be drawn is a
warning, never the end of a run whose results are already written."""
from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neurosim.recording import read_results  # noqa: E402


def plot_safely(plot, *args) -> list[Path]:
    """plot(*args), or a warning naming what went wrong (the run's files are written)."""
    try:
        return plot(*args)
    except Exception as err:  # noqa: BLE001 - a plot is never worth a run
        warnings.warn(f"{getattr(plot, '__name__', 'plot')}: not drawn ({type(err).__name__}: {err})", stacklevel=2)
        plt.close("all")
        return []


def finite(values) -> np.ndarray:
    """values with NaN for every non-finite entry (a diverged run's end): matplotlib
    leaves those points out."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values), values, np.nan)


def plot_run(results_path, out_dir) -> list[Path]:
    """learning_curve.png (test accuracy or mse over simulated time, when the task tests),
    angles.png (the top-down weights' angles to W^T and to phi' W^T phi') and
    apical_mismatch.png, each from the finite values."""
    res, out_dir = read_results(results_path), Path(out_dir)
    label = f"{res['summary']['rule']} (seed {res['summary']['seed']})"
    metrics, paths = res["metrics"], []
    metric = next((m for m in ("test_accuracy", "test_mse") if m in metrics), None)
    if metric is not None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(metrics[metric].times / 1000, finite(metrics[metric].values), "o-", label=label)
        ax.set(xlabel="simulated time (s)", ylabel=metric.replace("_", " "), title="learning curve")
        ax.legend()
        paths.append(_save(fig, out_dir / "learning_curve.png"))
    angles = sorted(k for k in metrics if k.startswith("angle_B"))
    if angles:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for key in angles:
            ax.plot(metrics[key].times / 1000, finite(metrics[key].values), label=key.removeprefix("angle_"))
        ax.set(xlabel="simulated time (s)", ylabel="angle (deg)", title=f"top-down weights, {label}")
        ax.legend(fontsize="small")
        paths.append(_save(fig, out_dir / "angles.png"))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key, trace in sorted(metrics.items()):
        if key.startswith("apical_mismatch_"):
            ax.semilogy(trace.times / 1000, finite(trace.values), label=key.removeprefix("apical_mismatch_"))
    ax.set(xlabel="simulated time (s)", ylabel="||v_api||", title="apical mismatch")
    ax.legend()
    paths.append(_save(fig, out_dir / "apical_mismatch.png"))
    return paths


def _save(fig, path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
