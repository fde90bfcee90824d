"""PAL B-alignment (docs/equations.md section 2, "Fig 3"): the angle between the top-down
weights B_l and W_{l+1}^T over 10 s of simulated learning, near-linear (W, B ~ U[-1, 1])
and nonlinear (W, B ~ U[-5, 5]) settings, with two controls of the near-linear one: noise
off (sigma = 0) and no learning of B (eta_bw = 0).

    .venv/bin/python examples/pal_alignment.py --seeds 10 --out runs/pal_alignment

Writes one results folder per run, angles_<setting>.png (mean over seeds, min-max shaded)
and table.md under --out.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from microcircuits.sweep import mean_sem, metric_over_seeds, plot_over_seeds, run_sweep, script_config, script_parser

HERE = Path(__file__).resolve().parent
SETTINGS = {
    "linear": (HERE / "pal_alignment_linear.toml", {
        "pal": {},
        "pal_sigma0": {"network": {"sigma": 0.0}},
        "pal_eta_bw0": {"network": {"eta_bw": 0.0}},
    }),
    "nonlinear": (HERE / "pal_alignment_nonlinear.toml", {"pal": {}}),
}


def main(argv=None):
    parser = script_parser(__doc__, seeds=10, out="runs/pal_alignment")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args(argv)
    rows = ["| setting | variant | layer | angle(B, W^T) start | end, mean +- s.e.m. | seeds < 30 deg "
            "| angle(B, phi' W^T phi') end | wall per run (s) |", "|---|---|---|---|---|---|---|---|"]
    for setting in args.settings:
        path, variants = SETTINGS[setting]
        config = script_config(path, args)
        runs = run_sweep(config, variants, range(args.seeds), args.out / setting)
        n_hidden = len(config["network"]["layers"]) - 2
        for name, summaries in runs.items():
            paths = [s["results"] for s in summaries]
            wall = np.mean([s["wall_time_s"] for s in summaries])
            for l in range(1, n_hidden + 1):
                _, ang = metric_over_seeds(paths, f"angle_B{l}_W{l + 1}T")
                _, jac = metric_over_seeds(paths, f"angle_B{l}_J{l}")
                end, sem = mean_sem(ang[:, -1])
                rows.append(f"| {setting} | {name} | {l} | {ang[:, 0].mean():.1f} | {end:.1f} +- {sem:.1f} | "
                            f"{int(np.sum(ang[:, -1] < 30))}/{len(ang)} | {jac[:, -1].mean():.1f} | {wall:.0f} |")
            curves = {f"B{l}": (paths, f"angle_B{l}_W{l + 1}T") for l in range(1, n_hidden + 1)}
            plot_over_seeds(curves, args.out / f"angles_{setting}_{name}.png", "angle(B_l, W_{l+1}^T) (deg)",
                            f"PAL B-alignment, {setting}, {name}")
        (args.out / setting / "summaries.json").write_text(json.dumps(runs, indent=1))
    table = "\n".join(rows)
    (args.out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
