"""The plain numpy loop on a dendritic-microcircuit config, as a whole process: the
reference that benchmarks/whole_runs.py times the package against. It reads the config
with tomllib and runs the independent numpy transcription (tests/oracle/microcircuit_loop.py)
and nothing of the package, so its wall time is what the paper-style script costs.

    python -m benchmarks.numpy_loop examples/pal_alignment_linear.toml [--epochs 5] [--seed 0]

The alignment task as the package runs it: `settle` ms of U[0, 1] inputs with plasticity
off, then `epochs` shuffled passes over `n_train` of them with plasticity on; W, B from
U[-init_w, init_w], U[-init_b, init_b], the interneuron weights self-predicting (W^IP =
W_{l+1}, B^PI = -B). Prints the angles between B_l and W_{l+1}^T at the end.
"""
from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

import numpy as np

from tests.oracle.microcircuit_loop import LoopParams, simulate


def weights(layers, init_w, init_b, rng):
    n = len(layers) - 1
    w = [rng.uniform(-init_w, init_w, (layers[l], layers[l - 1])) for l in range(1, n + 1)]
    b = [rng.uniform(-init_b, init_b, (layers[l], layers[l + 1])) for l in range(1, n)]
    return {"W": w, "B": b, "WIP": [w[l].copy() for l in range(1, n)], "BPI": [-x for x in b]}


def angle_deg(a, b):
    cos = np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--epochs", type=int, help="override task.epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = tomllib.loads(Path(args.config).read_text())
    net, task = config["network"], config["task"]
    if task["name"] != "alignment" or net.get("feedback") != "pal" or net.get("sps") != "set":
        raise SystemExit("numpy_loop runs the PAL alignment configs (task alignment, feedback pal, sps set)")
    epochs = task["epochs"] if args.epochs is None else args.epochs
    layers = net["layers"]
    params = LoopParams(layers=layers, dt=net["dt"], t_pres=task["t_pres"], activation=net["activation"],
                        feedback="pal", eta_fw=net["eta_fw"], eta_ip=net["eta_ip"], eta_pi=net["eta_pi"],
                        eta_bw=net["eta_bw"], alpha=net["alpha"], sigma=net["sigma"], tau_xi=net["tau_xi"],
                        tau_hp=net["tau_hp"])
    rng = np.random.default_rng(args.seed)
    start = weights(layers, net["init_w"], net["init_b"], rng)
    x_train = rng.uniform(0.0, 1.0, (task["n_train"], layers[0]))
    n_settle = int(round(task["settle"] / task["t_pres"]))
    order = [np.arange(n_settle) % len(x_train)] + [rng.permutation(len(x_train)) for _ in range(epochs)]
    x = x_train[np.concatenate(order)]
    learn = np.r_[np.zeros(n_settle), np.ones(len(x) - n_settle)]
    t0 = time.perf_counter()
    result = simulate(params, start, x, None, np.zeros(len(x)), learn,
                      record_every=int(task["record_every"] / net["dt"]), seed=args.seed)
    loop = time.perf_counter() - t0
    w, b = result["weights"]["W"], result["weights"]["B"]
    angles = [angle_deg(b[l], w[l + 1].T) for l in range(len(b))]
    print(f"numpy loop: {result['n_steps'] * net['dt'] / 1000:g} s simulated, {result['n_steps']} steps in "
          f"{loop:.1f} s ({result['n_steps'] / loop:,.0f} steps/s); angles B_l vs W_l+1^T = {', '.join(f'{a:.1f}' for a in angles)} deg")


if __name__ == "__main__":
    main()
