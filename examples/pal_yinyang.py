"""Yin-Yang 4-30-3 with the top-down weights in modes bp, fa and pal, same seeds and
data (docs/equations.md section 2, the paper's classification experiment).

    .venv/bin/python examples/pal_yinyang.py --seeds 5 --out runs/pal_yinyang

Writes accuracy.png, angles.png, update_angles.png (means over seeds, min-max shaded),
table.md and one results folder per run under --out.
"""
from __future__ import annotations

from pathlib import Path

from microcircuits.comparison import MODES, compare_modes
from microcircuits.sweep import script_config, script_parser

CONFIG = Path(__file__).resolve().parent / "pal_yinyang.toml"


def main(argv=None):
    parser = script_parser(__doc__, seeds=5, out="runs/pal_yinyang")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    args = parser.parse_args(argv)
    config = script_config(CONFIG, args)
    print(compare_modes(config, range(args.seeds), args.out, args.modes, title="Yin-Yang 4-30-3"))


if __name__ == "__main__":
    main()
