"""`make demo`: the microcircuit on Yin-Yang with its top-down weights in modes `bp`,
`fa` and `pal`, same seeds and data, two runs at a time, then a table and plots. Its
config, microcircuits/configs/yinyang_demo.toml, ships with the package."""
from __future__ import annotations

import sys
import time
import tomllib
from importlib.resources import files
from pathlib import Path

from .comparison import MODES, compare_modes

CONFIG = files("microcircuits.configs") / "yinyang_demo.toml"


def run_demo(out: Path, epochs: int | None = None, seeds: int = 1) -> str:
    config = tomllib.loads(CONFIG.read_text())
    if epochs is not None:
        config["task"]["epochs"] = epochs
    print(f"training the 4-30-3 microcircuit on Yin-Yang ({CONFIG.name}), modes {', '.join(MODES)}, "
          f"{seeds} seed(s), {config['task']['epochs']} epochs, 2 runs at a time ...", flush=True)
    t0 = time.perf_counter()
    table = compare_modes(config, range(seeds), out, title="Yin-Yang 4-30-3")
    print(f"done in {time.perf_counter() - t0:.0f} s\n\n{table}\n")
    print(f"plots: accuracy.png, angles.png, update_angles.png under {out}/, and each run's own under "
          f"{out}/<mode>/seed<k>/")
    sys.stdout.flush()
    return table
