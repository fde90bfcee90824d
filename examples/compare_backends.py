"""The same experiment on the Brian2 and the torch backend: a metric's mean over seeds
(min-max shaded) from two sweep folders, one plot per metric, and a table of the final
values (mean +- s.e.m. over seeds).

    .venv/bin/python examples/compare_backends.py --brian2 runs/pal_alignment/linear/pal \\
        --torch runs/torch_pal_alignment/linear/pal --metrics angle_B1_W2T angle_B2_W3T \\
        --out runs/compare_alignment
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from microcircuits.sweep import mean_sem, metric_over_seeds, plot_over_seeds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brian2", type=Path, required=True, help="folder with seed<k>/results.h5 (Brian2 runs)")
    parser.add_argument("--torch", type=Path, required=True, help="the same for the torch runs")
    parser.add_argument("--metrics", nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {name: sorted(folder.glob("seed*/results.h5")) for name, folder in
            (("brian2", args.brian2), ("torch", args.torch))}
    for name, paths in runs.items():
        if not paths:
            raise SystemExit(f"no seed*/results.h5 under the {name} folder")
    rows = ["| metric | brian2 at the end, mean +- s.e.m. (seeds) | torch at the end | largest gap between "
            "the means over time | Brian2's seed spread (max - min), averaged over time |", "|---|---|---|---|---|"]
    for metric in args.metrics:
        cells, curves = [], []
        for paths in runs.values():
            _, values = metric_over_seeds(paths, metric)
            last = np.flatnonzero(np.all(np.isfinite(values), axis=0))[-1]  # the last point every seed has
            mean, sem = mean_sem(values[:, last])
            cells.append(f"{mean:.3g} +- {sem:.2g} ({len(paths)})")
            curves.append(values)
        n = min(c.shape[1] for c in curves)
        gap = np.nanmax(np.abs(curves[0][:, :n].mean(0) - curves[1][:, :n].mean(0)))
        spread = np.nanmean(curves[0].max(0) - curves[0].min(0))
        rows.append(f"| {metric} | {' | '.join(cells)} | {gap:.3g} | {spread:.3g} |")
        plot_over_seeds({name: (paths, metric) for name, paths in runs.items()}, args.out / f"{metric}.png",
                        metric, "brian2 vs torch")
    table = "\n".join(rows)
    (args.out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
