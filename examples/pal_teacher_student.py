"""PAL 1-1-1 teacher-student with a wrong-sign top-down weight (docs/equations.md
section 2, "Fig 4a-b"): feedback alignment keeps B's wrong sign and fails; PAL flips B
and learns.

    .venv/bin/python examples/pal_teacher_student.py --seeds 3 --out runs/pal_teacher_student

Runs pal and fa (the paper's FA: sigma = 0, eta_pi = 0) on the same seeds; writes
angle.png (angle(B, W2^T): 180 deg = wrong sign, 0 = right sign), mse.png and table.md.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from microcircuits.sweep import mean_sem, metric_over_seeds, plot_over_seeds, run_sweep, script_config, script_parser

CONFIG = Path(__file__).resolve().parent / "pal_teacher_student.toml"
VARIANTS = {"pal": {}, "fa": {"network": {"feedback": "fa", "sigma": 0.0, "eta_pi": 0.0}}}


def main(argv=None):
    args = script_parser(__doc__, seeds=3, out="runs/pal_teacher_student").parse_args(argv)
    config = script_config(CONFIG, args)
    runs = run_sweep(config, VARIANTS, range(args.seeds), args.out)
    paths = {name: [s["results"] for s in summaries] for name, summaries in runs.items()}
    rows = ["| variant | seeds | final test mse, mean +- s.e.m. | seeds with B > 0 at the end | "
            "first time B > 0 (s), mean | wall per run (s) |", "|---|---|---|---|---|---|"]
    for name, summaries in runs.items():
        times, angle = metric_over_seeds(paths[name], "angle_B1_W2T")
        flipped = angle[:, -1] < 90
        first = [times[np.argmax(a < 90)] / 1000 for a in angle if np.any(a < 90)]
        mse, sem = mean_sem([s["final"]["mse"] for s in summaries])
        rows.append(f"| {name} | {len(summaries)} | {mse:.2e} +- {sem:.1e} | {int(flipped.sum())}/{len(flipped)} | "
                    f"{np.mean(first) if first else float('nan'):.1f} | "
                    f"{np.mean([s['wall_time_s'] for s in summaries]):.0f} |")
    plot_over_seeds({n: (p, "angle_B1_W2T") for n, p in paths.items()}, args.out / "angle.png",
                    "angle(B, W2^T) (deg)", "1-1-1 teacher-student, wrong-sign B")
    plot_over_seeds({n: (p, "test_mse") for n, p in paths.items()}, args.out / "mse.png",
                    "test mse", "1-1-1 teacher-student", log_y=True)
    (args.out / "summaries.json").write_text(json.dumps(runs, indent=1))
    table = "\n".join(rows)
    (args.out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
