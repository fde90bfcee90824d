"""From a results file of a trained microcircuit to NIR, PyNN and chip mappings: the
work behind `neurosim export` and `neurosim map`. The microcircuit is read and converted
to spikes here (microcircuits.conversion); the hardware package sees only the spiking
network."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from hardware.mapping import MappingReport, map_network
from hardware.nir import write_nir
from hardware.targets import load_target

from .conversion import ConversionSettings, Trained, load_trained, rate_predictions, spike_counts, to_spiking

FORMATS = ("nir", "pynn")


def spiking_accuracy(network, trained: Trained, settings: ConversionSettings) -> float:
    """Test accuracy of a spiking network (argmax of output spike counts; torch backend)."""
    counts = spike_counts(network, trained.task.test_x, settings.t_sample)
    return float(np.mean(np.argmax(counts, axis=1) == trained.task.test_labels))


def export_results(path, fmt: str, out, settings: ConversionSettings = ConversionSettings(),
                   samples: int = 100) -> Path:
    """Convert the trained network of a results file and write it as NIR (HDF5) or as a
    PyNN script (which runs the first `samples` test inputs)."""
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {FORMATS}, got {fmt!r}")
    trained = load_trained(path)
    network = to_spiking(trained.cfg, trained.weights, settings)
    if fmt == "nir":
        return write_nir(network, out)
    from hardware.pynn import write_pynn_script

    return write_pynn_script(network, out, trained.task.test_x[:samples], settings.t_sample)


def map_results(path, target_name: str, settings: ConversionSettings = ConversionSettings()) -> MappingReport:
    """Convert with the first of LIF, CubaLIF, IF that the target runs, map, and report
    the test accuracy of the rate network, the spiking one and the quantised one."""
    target = load_target(target_name)
    trained = load_trained(path)
    neuron = next((m for m in ("LIF", "CubaLIF", "IF") if m in target.neuron_models), settings.neuron)
    settings = replace(settings, neuron=neuron)
    network = to_spiking(trained.cfg, trained.weights, settings)
    report, _ = map_network(network, target, evaluate=lambda net: spiking_accuracy(net, trained, settings))
    report.accuracy = {"rate": float(np.mean(rate_predictions(trained.cfg, trained.weights, trained.task.test_x)
                                             == trained.task.test_labels)),
                       f"spiking ({neuron})": spiking_accuracy(network, trained, settings), **report.accuracy}
    return report
