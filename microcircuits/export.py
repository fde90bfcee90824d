"""From a results file of a trained microcircuit to NIR, PyNN and chip mappings: the
work behind `neurosim export` and `neurosim map`. A rate microcircuit is converted to
spikes here (microcircuits.conversion); a spiking one goes as it is, its escape noise as
inputs (microcircuits.spiking_export). The hardware package sees only the spiking network."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from hardware.mapping import MappingReport, map_network
from hardware.nir import write_nir
from hardware.targets import load_target

from . import spiking_export
from .conversion import ConversionSettings, Trained, load_trained, rate_predictions, spike_counts, to_spiking

FORMATS = ("nir", "pynn")
TOOLCHAINS = ("spinnaker1",)  # targets whose own toolchain `neurosim map --toolchain` runs
TOOLCHAIN_SAMPLES = 3  # samples in the script the toolchain maps: its layout does not depend on them


def spiking_accuracy(network, trained: Trained, settings: ConversionSettings) -> float:
    """Test accuracy of a spiking network (argmax of output spike counts; torch backend)."""
    counts = spike_counts(network, trained.task.test_x, settings.t_sample)
    return float(np.mean(np.argmax(counts, axis=1) == trained.task.test_labels))


def escape_noise_accuracy(graph, trained: Trained, seed: int = 0) -> float:
    """Test accuracy of a spiking microcircuit's forward graph, run with its escape noise
    drawn (argmax of output spike counts over the trained presentation time; torch)."""
    network = spiking_export.simulated(graph, trained.cfg)
    counts = spike_counts(network, trained.task.test_x, float(trained.config["task"]["t_pres"]), seed=seed)
    return float(np.mean(np.argmax(counts, axis=1) == trained.task.test_labels))


def export_results(path, fmt: str, out, settings: ConversionSettings | None = None, samples: int = 100) -> Path:
    """Write the trained network of a results file as NIR (HDF5) or as a PyNN script (which
    runs the first `samples` test inputs): a rate circuit converted with `settings`, a
    spiking one as it is (NIR only)."""
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {FORMATS}, got {fmt!r}")
    trained = load_trained(path)
    if trained.cfg.neuron == "spiking":
        if settings is not None:
            raise ValueError("conversion settings apply to rate circuits; a spiking circuit is exported as trained")
        if fmt != "nir":
            raise ValueError("a spiking microcircuit exports to NIR only: PyNN has no threshold unit with an escape "
                             "noise input")
        return write_nir(spiking_export.forward_graph(trained.cfg, trained.weights), out,
                         spiking_export.metadata(trained.cfg))
    settings = settings or ConversionSettings()
    network = to_spiking(trained.cfg, trained.weights, settings)
    if fmt == "nir":
        return write_nir(network, out)
    from hardware.pynn import write_pynn_script

    return write_pynn_script(network, out, trained.task.test_x[:samples], settings.t_sample)


def map_results(path, target_name: str, settings: ConversionSettings | None = None) -> MappingReport:
    """Map the trained network of a results file and report test accuracies. A rate
    circuit: converted with the first of LIF, CubaLIF, IF that the target runs; the rate
    network's, the spiking one's and the quantised one's accuracy. A spiking circuit: its
    forward graph as it is; the circuit's own (from its run), the graph's and the
    quantised graph's, with escape noise drawn."""
    target = load_target(target_name)
    trained = load_trained(path)
    if trained.cfg.neuron == "spiking":
        if settings is not None:
            raise ValueError("conversion settings apply to rate circuits; a spiking circuit is mapped as trained")
        graph = spiking_export.forward_graph(trained.cfg, trained.weights)
        report, _ = map_network(graph, target, evaluate=lambda net: escape_noise_accuracy(net, trained))
        report.accuracy = {"spiking circuit (its run)": trained.test_accuracy,
                           "forward graph": escape_noise_accuracy(graph, trained), **report.accuracy}
        return report
    settings = settings or ConversionSettings()
    neuron = next((m for m in ("LIF", "CubaLIF", "IF") if m in target.neuron_models), settings.neuron)
    settings = replace(settings, neuron=neuron)
    network = to_spiking(trained.cfg, trained.weights, settings)
    report, _ = map_network(network, target, evaluate=lambda net: spiking_accuracy(net, trained, settings))
    report.accuracy = {"rate": float(np.mean(rate_predictions(trained.cfg, trained.weights, trained.task.test_x)
                                             == trained.task.test_labels)),
                       f"spiking ({neuron})": spiking_accuracy(network, trained, settings), **report.accuracy}
    return report


def check_toolchain(target_name: str) -> None:
    """ValueError unless the package can run `target_name`'s own toolchain."""
    if target_name not in TOOLCHAINS:
        raise ValueError(f"--toolchain runs a chip's own toolchain, which this package has for {list(TOOLCHAINS)} "
                         f"only, not {target_name!r}")


def toolchain_check(path, target_name: str, report: MappingReport, folder) -> tuple[str, list[str]]:
    """Export the results file's network as `neurosim export --format pynn` does (with
    TOOLCHAIN_SAMPLES samples; the inputs only set i_offset per sample), run it through the
    target's own toolchain in `folder` (SpiNNaker 1: sPyNNaker's virtual board,
    hardware.spinnaker) and compare what it decided with `report`, our mapper's: (table,
    differences)."""
    check_toolchain(target_name)
    from hardware.spinnaker import compare, run_virtual_board

    script = export_results(path, "pynn", Path(folder) / "net_pynn.py", samples=TOOLCHAIN_SAMPLES)
    return compare(report, run_virtual_board(script, folder))
