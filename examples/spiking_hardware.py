"""The tables of docs/results.md section 3: trained microcircuits as spiking classifiers,
simulated here and by other people's simulators, and mapped onto every chip.

    python examples/spiking_hardware.py RESULTS.h5 [RESULTS.h5 ...] [--out runs/spiking_hardware]

For each results file: test accuracy of the rate network (the microcircuit's effective
network), of its spiking conversion on neurosim's torch backend, and of the exported NIR
graph simulated by Norse (from_nir) and snnTorch (import_from_nir); then the mapping onto
every target in hardware/targets (cores, quantised accuracy, or the limit that stops
it). Writes tables.md and one mapping report (JSON) per file and target.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nir
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hardware.mapping import MappingError  # noqa: E402
from hardware.nir import write_nir  # noqa: E402
from hardware.targets import TARGETS  # noqa: E402
from microcircuits.conversion import (ConversionSettings, load_trained, rate_predictions, spike_counts,  # noqa: E402
                                      to_spiking)
from microcircuits.export import map_results  # noqa: E402

SETTINGS = ConversionSettings()


def step_module(module, x, steps: int, stateful: bool) -> np.ndarray:
    """Output spike counts of an imported torch module, constant input x, `steps` steps."""
    counts, state = 0, None
    with torch.no_grad():
        for _ in range(steps):
            out = module(torch.tensor(x, dtype=torch.float32), state) if stateful else module(torch.tensor(x, dtype=torch.float32))
            out, state = out if isinstance(out, tuple) else (out, None)
            counts = counts + out
    return counts.numpy()


def accuracies(path, out: Path) -> dict[str, float]:
    from norse.torch import from_nir
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    trained = load_trained(path)
    x, labels = trained.task.test_x, trained.task.test_labels
    network = to_spiking(trained.cfg, trained.weights, SETTINGS)
    graph = nir.read(write_nir(network, out / "network.nir"), type_check=True)
    steps = round(SETTINGS.t_sample / SETTINGS.dt)
    snn = import_from_nir(graph)
    snntorch.utils.reset(snn)
    predictions = {
        "rate": rate_predictions(trained.cfg, trained.weights, x),
        "spiking (neurosim, torch)": np.argmax(spike_counts(network, x, SETTINGS.t_sample), 1),
        "Norse from_nir": np.argmax(step_module(from_nir(graph, dt=SETTINGS.dt / 1000), x, steps, True), 1),
        "snnTorch import_from_nir": np.argmax(step_module(snn, x, steps, False), 1),
    }
    return {k: float(np.mean(p == labels)) for k, p in predictions.items()}


def mapping_row(path, target: str, out: Path) -> str:
    try:
        report = map_results(path, target)
    except MappingError as err:
        return f"| {target} | does not fit: {err.limit} is {err.value} ({err.population}), {err.allowed} | | | |"
    (out / f"map_{target}.json").write_text(report.to_json() + "\n")
    errors = ", ".join(f"{q['relative_error']:.3f}" for q in report.quantisation.values())
    spiking = next(k for k in report.accuracy if k.startswith("spiking"))
    return (f"| {target} | {report.cores_used} of {report.cores_available} | {spiking.split()[1][1:-1]} | "
            f"{errors} | {report.accuracy[spiking]:.3f} -> {report.accuracy['quantised']:.3f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+")
    parser.add_argument("--out", default="runs/spiking_hardware")
    args = parser.parse_args(argv)
    lines = []
    for path in args.results:
        out = Path(args.out) / Path(path).parent.name
        out.mkdir(parents=True, exist_ok=True)
        acc = accuracies(path, out)
        lines += [f"### {path}", "", "| simulator | test accuracy |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in acc.items()]
        lines += ["", "| target | cores | neuron | relative weight error per layer | accuracy spiking -> quantised |",
                  "|---|---|---|---|---|"]
        lines += [mapping_row(path, target, out) for target in TARGETS] + [""]
        print("\n".join(lines[-(len(acc) + len(TARGETS) + 8):]), flush=True)
    (Path(args.out) / "tables.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
