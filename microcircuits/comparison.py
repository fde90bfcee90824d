"""The top-down modes side by side on one classification config, same seeds and data:
`bp` (B = W^T), `fa` (fixed random B) and `pal` (B learned from noise). As in the PAL
paper, bp and fa run without noise and fa without B^PI learning (B is fixed, so the
self-predicting B^PI = -B it starts with stays exact)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from neurosim.recording import strict_json

from .sweep import mean_sem, metric_over_seeds, plot_over_seeds, run_sweep

MODES = {
    "bp": {"network": {"feedback": "bp", "sigma": 0.0}},
    "fa": {"network": {"feedback": "fa", "sigma": 0.0, "eta_pi": 0.0}},
    "pal": {"network": {"feedback": "pal"}},
}


def compare_modes(config: dict, seeds, out, modes=tuple(MODES), title: str = "") -> str:
    """Run every mode for every seed; write accuracy.png, angles.png, table.md and
    summaries.json under out; return the table (markdown)."""
    out = Path(out)
    runs = run_sweep(config, {m: MODES[m] for m in modes}, seeds, out)
    paths = {m: [s["results"] for s in summaries] for m, summaries in runs.items()}
    rows = ["| mode | seeds | test accuracy, mean +- s.e.m. | per seed | angle(B_1, W_2^T) end (deg) | "
            "angle(dW_1, dW_1^BP), last 10 % (deg) | wall per run (s) |", "|---|---|---|---|---|---|---|"]
    for mode, summaries in runs.items():
        acc = [s["final"]["test_accuracy"] for s in summaries]
        mean, sem = mean_sem(acc)
        angle = np.mean([s["final"]["angles_deg"]["B_WT"][0] for s in summaries])
        _, dw = metric_over_seeds(paths[mode], "angle_dW1_BP")
        tail = dw[:, -max(1, dw.shape[1] // 10):]
        rows.append(f"| {mode} | {len(acc)} | {mean:.3f} +- {sem:.3f} | {', '.join(f'{a:.3f}' for a in acc)} | "
                    f"{angle:.1f} | {np.nanmean(tail):.1f} | "
                    f"{np.mean([s['wall_time_s'] for s in summaries]):.0f} |")
    plot_over_seeds({m: (p, "test_accuracy") for m, p in paths.items()}, out / "accuracy.png",
                    "test accuracy", title)
    plot_over_seeds({m: (p, "angle_B1_W2T") for m, p in paths.items()}, out / "angles.png",
                    "angle(B_1, W_2^T) (deg)", title)
    plot_over_seeds({m: (p, "angle_dW1_BP") for m, p in paths.items()}, out / "update_angles.png",
                    "angle(dW_1, dW_1^BP) (deg)", title)
    (out / "summaries.json").write_text(json.dumps(strict_json(runs), indent=1, allow_nan=False))
    table = "\n".join(rows)
    (out / "table.md").write_text(table + "\n")
    return table
