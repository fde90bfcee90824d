"""From a trained microcircuit to spikes, NIR, PyNN and chips: accuracy kept by the
conversion, the NIR graph read back by nir (type-checked) and simulated by Norse and
snnTorch, export-import-simulate reproducing the spikes on both backends, mapping onto
every target, damaged inputs refused."""
import json
import subprocess
import sys

import nir
import numpy as np
import pytest
import torch

from hardware.mapping import MappingError, map_network, quantise
from hardware.nir import read_nir, to_nir, write_nir
from hardware.targets import TARGETS, load_target
from microcircuits.cli import main
from microcircuits.conversion import (ConversionSettings, load_trained, rate_predictions, spike_counts,
                                      to_spiking)
from microcircuits.dendritic import MicrocircuitConfig
from microcircuits.export import map_results
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.models.rate import Input
from neurosim.models.spiking import LIF, CubaLIF, values
from neurosim.network import Network, Population, Projection
from neurosim.recording import Recording
from neurosim.schedule import Schedule
from test_spiking import every_model

SETTINGS = ConversionSettings()
STEPS = round(SETTINGS.t_sample / SETTINGS.dt)


class Converted:
    def __init__(self, path):
        self.path = path
        self.trained = load_trained(path)
        self.x, self.labels = self.trained.task.test_x, self.trained.task.test_labels
        self.network = to_spiking(self.trained.cfg, self.trained.weights, SETTINGS)
        self.counts = spike_counts(self.network, self.x, SETTINGS.t_sample)
        self.rate_accuracy = accuracy(rate_predictions(self.trained.cfg, self.trained.weights, self.x), self.labels)


def accuracy(predictions, labels) -> float:
    predictions = np.asarray(predictions)
    return float(np.mean((np.argmax(predictions, 1) if predictions.ndim == 2 else predictions) == labels))


@pytest.fixture(scope="module")
def yinyang(trained_yinyang):
    return Converted(trained_yinyang)


def test_conversion_keeps_the_rate_networks_accuracy(yinyang):
    """The effective rate network is what the microcircuit computed (its own test accuracy
    in the results file), and its spiking version classifies within 3 points of it."""
    from neurosim.recording import read_results

    recorded = read_results(yinyang.path)["summary"]["final"]["test_accuracy"]
    assert abs(yinyang.rate_accuracy - recorded) < 0.01
    assert yinyang.rate_accuracy > 0.7
    assert abs(accuracy(yinyang.counts, yinyang.labels) - yinyang.rate_accuracy) < 0.03


def test_hard_sigmoid_pairs_keep_the_clip():
    """Hidden units driven up to twice past the clip: the pair's rate difference is
    clip(u/6 + 1/2, 0, 1) * rate within 4 of 50 spikes (reset to zero loses the overshoot
    of each spike, most at high rates); the relu half alone fires twice as fast."""
    cfg = MicrocircuitConfig(layers=[1, 5, 1], activation="hard_sigmoid")
    w1 = np.array([[-30.0], [-5.0], [0.0], [10.0], [20.0]])
    net = to_spiking(cfg, [w1, np.ones((1, 5))], SETTINGS)
    run = TorchSimulator(net).run(Schedule(SETTINGS.t_sample, {"x": [[1.0]]}), Recording(spikes=["P1"]))
    counts = run.spikes["P1"].counts(10, [0.0, SETTINGS.t_sample])[0, 0]
    k = cfg.g_bas / (cfg.g_l + cfg.g_bas + cfg.g_api)
    expected = np.clip(k * w1[:, 0] / 6 + 0.5, 0, 1) * SETTINGS.rate * STEPS
    np.testing.assert_allclose(counts[:5] - counts[5:], expected, atol=4)
    assert counts[4] > 2 * SETTINGS.rate * STEPS


def test_activations_that_do_not_convert_are_refused():
    with pytest.raises(ValueError, match="activation 'logistic' does not convert.*hard_sigmoid"):
        to_spiking(MicrocircuitConfig(layers=[2, 3, 1]), [np.ones((3, 2)), np.ones((1, 3))])


def test_brian2_runs_the_converted_network_like_torch(yinyang):
    counts = spike_counts(yinyang.network, yinyang.x[:5], SETTINGS.t_sample, backend="brian2", target="numpy")
    np.testing.assert_array_equal(counts, yinyang.counts[:5])


def test_nir_graph_is_read_back_with_type_checking(yinyang, tmp_path):
    graph = nir.read(write_nir(yinyang.network, tmp_path / "net.nir"), type_check=True)
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {"x": "Input", "W1": "Affine", "P1": "LIF", "W2": "Affine", "P2": "LIF", "output": "Output"}
    assert sorted(graph.edges) == sorted([("x", "W1"), ("W1", "P1"), ("P1", "W2"), ("W2", "P2"), ("P2", "output")])
    lif = graph.nodes["P1"]
    np.testing.assert_allclose(lif.tau, SETTINGS.tau / 1000)  # NIR's seconds
    np.testing.assert_allclose(lif.v_threshold, SETTINGS.threshold)
    np.testing.assert_array_equal(graph.nodes["W2"].weight, yinyang.network.projection("W2").weight)
    assert graph.metadata["dt_ms"] == SETTINGS.dt


def _run_module(module, x, steps, reset=None) -> np.ndarray:
    """Output spike counts of a torch module stepped `steps` times with constant input x."""
    if reset is not None:
        reset(module)
    counts, state = 0, None
    inputs = torch.tensor(x, dtype=torch.float32)
    with torch.no_grad():
        for _ in range(steps):
            out = module(inputs, state) if reset is None else module(inputs)
            out, state = out if isinstance(out, tuple) else (out, None)
            counts = counts + out
    return counts.numpy()


def test_norse_simulates_the_exported_graph_like_neurosim(yinyang, tmp_path):
    from norse.torch import from_nir

    graph = nir.read(write_nir(yinyang.network, tmp_path / "net.nir"), type_check=True)
    counts = _run_module(from_nir(graph, dt=SETTINGS.dt / 1000), yinyang.x, STEPS)
    assert abs(accuracy(counts, yinyang.labels) - yinyang.rate_accuracy) < 0.03
    assert np.mean(counts == yinyang.counts) > 0.999  # float32 in Norse, float64 here
    assert np.max(np.abs(counts - yinyang.counts)) <= 1


def test_snntorch_simulates_the_exported_graph(yinyang, tmp_path):
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    graph = nir.read(write_nir(yinyang.network, tmp_path / "net.nir"), type_check=True)
    counts = _run_module(import_from_nir(graph), yinyang.x, STEPS, reset=snntorch.utils.reset)
    assert abs(accuracy(counts, yinyang.labels) - yinyang.rate_accuracy) < 0.03
    assert np.mean(counts == yinyang.counts) > 0.99


def _spike_trains(network, schedule, backend, reset=False):
    names = [p.name for p in network.populations if p.model.events and not p.is_input]
    sim = TorchSimulator(network, samples=schedule.samples) if backend == "torch" else \
        Brian2Simulator(network, target="numpy")
    run = sim.run(schedule, Recording(spikes=names), reset=reset)
    return {n: (run.spikes[n].times, run.spikes[n].indices, run.spikes[n].samples) for n in names}


def _assert_same_trains(a, b):
    assert a.keys() == b.keys()
    for name in a:
        for left, right in zip(a[name], b[name]):
            np.testing.assert_array_equal(left, right)


def test_export_import_reproduces_the_spikes(yinyang, tmp_path):
    back = read_nir(write_nir(yinyang.network, tmp_path / "net.nir"))
    batch = Schedule(SETTINGS.t_sample, {"x": yinyang.x[None, :200]})
    _assert_same_trains(_spike_trains(yinyang.network, batch, "torch"), _spike_trains(back, batch, "torch"))
    sequence = Schedule(20.0, {"x": yinyang.x[:3]})
    _assert_same_trains(_spike_trains(yinyang.network, sequence, "brian2", True),
                        _spike_trains(back, sequence, "brian2", True))


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_every_model_round_trips(backend, tmp_path):
    """LIF, CubaLIF, IF and LI with per-neuron parameters, a bias and a loop."""
    rng = np.random.default_rng(3)
    net = every_model(rng)
    back = read_nir(write_nir(net, tmp_path / "all.nir"))
    assert [type(p.model) for p in back.populations] == [type(p.model) for p in net.populations]
    assert [p.delay for p in back.projections] == [p.delay for p in net.projections]
    for pop in net.populations:
        for key, value in values(pop.model, pop.size).items() if not pop.is_input else ():
            np.testing.assert_allclose(values(back.population(pop.name).model, pop.size)[key], value, rtol=1e-12)
    schedule = Schedule(5.0, {"x": rng.uniform(0, 1, (4, 4))})
    _assert_same_trains(_spike_trains(net, schedule, backend, True), _spike_trains(back, schedule, backend, True))


def _write_graph(path, nodes, edges, type_check=True):
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt_ms": 0.1}, type_check=type_check))
    return path


def _lif(n):
    return nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))


def test_damaged_nir_files_are_refused(yinyang, tmp_path):
    good = write_nir(yinyang.network, tmp_path / "good.nir")
    truncated = tmp_path / "truncated.nir"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated.nir: not a readable NIR file"):
        read_nir(truncated)
    x = {"x": nir.Input(input_type={"input": np.array([3])})}
    out = {"output": nir.Output(output_type={"output": np.array([3])})}
    delay = _write_graph(tmp_path / "delay.nir", {**x, "D": nir.Delay(np.ones(3)), **out},
                         [("x", "D"), ("D", "output")])
    with pytest.raises(ValueError, match="node 'D' is of type 'Delay', which neurosim cannot simulate"):
        read_nir(delay)
    shapes = _write_graph(tmp_path / "shapes.nir", {**x, "W": nir.Affine(np.ones((4, 3)), np.zeros(4)), "P": _lif(5),
                                                    "output": nir.Output(output_type={"output": np.array([5])})},
                          [("x", "W"), ("W", "P"), ("P", "output")], type_check=False)
    with pytest.raises(ValueError, match=r"not a valid NIR graph .*W.output: \[\[4\]\] -> P.input: \[\[5\]\]"):
        read_nir(shapes)
    graph = nir.NIRGraph(nodes={**x, "W": nir.Linear(np.ones((4, 2))), "P": _lif(4)},
                         edges=[("x", "W"), ("W", "P")], metadata={"dt_ms": 0.1}, type_check=False)
    from hardware.nir import from_nir

    with pytest.raises(ValueError, match="shapes do not connect: 'x' sends 3 values, the weight takes 2"):
        from_nir(graph)


def test_damaged_results_files_are_refused(trained_yinyang, tmp_path, capsys):
    truncated = tmp_path / "results.h5"
    truncated.write_bytes(trained_yinyang.read_bytes()[:5000])
    assert main(["map", str(truncated), "--target", "loihi2"]) == 2
    assert "results.h5: not a readable results file" in capsys.readouterr().err
    assert main(["export", str(truncated), "--format", "nir", "--out", str(tmp_path / "n.nir")]) == 2
    assert not (tmp_path / "n.nir").exists()


# What each chip makes of the two trained networks: None fits; otherwise the limit named.
EXPECTED = {
    ("yinyang", "loihi2"): None, ("yinyang", "spinnaker1"): None, ("yinyang", "spinnaker2"): None,
    ("yinyang", "brainscales2"): None, ("yinyang", "xylo"): None, ("yinyang", "speck"): None,
    ("digits", "loihi2"): None, ("digits", "spinnaker1"): None, ("digits", "spinnaker2"): None,
    ("digits", "brainscales2"): None, ("digits", "xylo"): ("input channels", "x"), ("digits", "speck"): None,
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("task", ["yinyang", "digits"])
def test_mapping_fits_or_names_the_limit(task, target, request):
    path = request.getfixturevalue(f"trained_{task}")
    expected = EXPECTED[(task, target)]
    if expected is not None:
        with pytest.raises(MappingError, match=f"{expected[1]} does not fit {target}: {expected[0]} is"):
            map_results(path, target)
        return
    report = map_results(path, target)
    chip = load_target(target)
    assert 1 <= report.cores_used <= chip.cores
    assert all(core.neurons <= chip.neurons_per_core for core in report.cores)
    data = json.loads(report.to_json())
    assert data["cores_used"] == report.cores_used and set(data["quantisation"]) == {"W1", "W2"}
    spiking = next(v for k, v in report.accuracy.items() if k.startswith("spiking"))
    assert abs(spiking - report.accuracy["rate"]) < 0.05
    assert abs(report.accuracy["quantised"] - spiking) < (0.05 if chip.weight_bits >= 6 else 0.1)
    assert f"target {target}:" in report.to_text()


def _xylo_network(hidden: int, out: int) -> Network:
    cell = CubaLIF(tau_mem=10.0, tau_syn=1.0)
    return Network([Population("x", 4, Input()), Population("h", hidden, cell), Population("o", out, cell)],
                   [Projection("a", "x", "h", weight=np.ones((hidden, 4)), delay=0),
                    Projection("b", "h", "o", weight=np.ones((out, hidden)), delay=0)])


@pytest.mark.parametrize("network, limit", [
    (_xylo_network(20, 10), "o does not fit xylo: output neurons is 10, the chip allows at most 8"),
    (_xylo_network(1200, 4), "the number of cores is 2, the chip allows at most 1"),
    (Network([Population("x", 4, Input()), Population("h", 3, LIF(tau=1.0))],
             [Projection("a", "x", "h", weight=np.ones((3, 4)), delay=0)]), "h does not fit xylo: the neuron model is LIF"),
])
def test_limits_are_named(network, limit):
    with pytest.raises(MappingError, match=limit):
        map_network(network, load_target("xylo"))


def test_xylo_fan_out_is_checked():
    net = Network([Population("x", 4, Input()), Population("h", 100, CubaLIF(10.0, 1.0)),
                   Population("g", 80, CubaLIF(10.0, 1.0)), Population("o", 2, CubaLIF(10.0, 1.0))],
                  [Projection("a", "x", "h", weight=np.ones((100, 4)), delay=0),
                   Projection("b", "h", "g", weight=np.ones((80, 100)), delay=0),
                   Projection("c", "g", "o", weight=np.ones((2, 80)), delay=0)])
    with pytest.raises(MappingError, match="h does not fit xylo: the fan-out .* is 80, the chip allows at most 64"):
        map_network(net, load_target("xylo"))


def test_quantisation_per_layer():
    w = np.array([[0.5, -1.0], [0.26, 0.0]])
    wq, info = quantise(w, load_target("spinnaker2"))  # 4 bits with the sign from the synapse type: 15 steps
    assert info["scale"] == pytest.approx(1.0 / 15)
    np.testing.assert_allclose(wq, np.round(w * 15) / 15)
    assert info["max_error_steps"] <= 0.5
    wq, info = quantise(w, load_target("loihi2"))  # 8 bits signed: 127 steps
    assert np.max(np.abs(wq - w)) <= 0.5 / 127 + 1e-15


def test_cli_export_and_map(trained_yinyang, tmp_path, capsys):
    out = tmp_path / "net.nir"
    assert main(["export", str(trained_yinyang), "--format", "nir", "--out", str(out)]) == 0
    assert [p.name for p in read_nir(out).populations] == ["x", "P1", "P2"]
    report = tmp_path / "map.json"
    assert main(["map", str(trained_yinyang), "--target", "loihi2", "--json", str(report)]) == 0
    assert "target loihi2:" in capsys.readouterr().out
    assert json.loads(report.read_text())["target"] == "loihi2"
    assert main(["map", str(trained_yinyang), "--target", "truenorth"]) == 2
    assert "unknown target 'truenorth'" in capsys.readouterr().err


def test_cli_pynn_export_runs_on_pynn_brian2(yinyang, tmp_path):
    """The trained Yin-Yang network's PyNN script on pyNN.brian2 against neurosim's counts
    (PyNN delivers spikes two steps later: tolerances as in tests/test_pynn.py)."""
    script = tmp_path / "net_pynn.py"
    assert main(["export", str(yinyang.path), "--format", "pynn", "--out", str(script), "--samples", "10"]) == 0
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, capture_output=True, timeout=600)
    counts = np.load(tmp_path / "counts.npz")["P2"]
    mine = yinyang.counts[:10]
    assert abs(counts.sum() - mine.sum()) <= 0.03 * mine.sum()
    assert np.mean(np.argmax(counts, 1) == np.argmax(mine, 1)) >= 0.9


def test_placement_fills_cores_within_neurons_and_synapse_memory():
    """8 neurons and 25 synapses per core: h (10 neurons, 4 synapses each) takes 6 + 4,
    o (10 synapses each) no longer fits beside h[6:10] (16 + 10 > 25) and opens a core."""
    from dataclasses import replace

    from hardware.mapping import place

    chip = replace(load_target("xylo"), neurons_per_core=8, synapses_per_core=25, cores=10)
    net = _xylo_network(10, 2)
    assert [(core.slices, core.synapses) for core in place(net, chip)] == [
        ([("h", 0, 6)], 24), ([("h", 6, 10)], 16), ([("o", 0, 2)], 20)]
    with pytest.raises(MappingError, match="h does not fit xylo: the number of cores is 2, the chip allows at most 1"):
        place(net, replace(chip, cores=1))


def test_nir_nodes_are_in_nirs_seconds():
    """ms -> s for time constants, 1/ms -> 1/s for IF's r (NIR: tau dv/dt = v_leak - v + R I, t in s)."""
    graph = to_nir(every_model(np.random.default_rng(3)))
    np.testing.assert_allclose(graph.nodes["h"].tau, 0.005)
    np.testing.assert_allclose(graph.nodes["c"].tau_mem, 0.004)
    np.testing.assert_allclose(graph.nodes["c"].tau_syn, 0.002)
    np.testing.assert_allclose(graph.nodes["i"].r, 5000.0)
    np.testing.assert_allclose(graph.nodes["o"].tau, 0.003)
    np.testing.assert_allclose(graph.nodes["c"].w_in, 1.5)
    np.testing.assert_allclose(graph.nodes["a"].bias, 0.5)  # h's bias, on its first projection
    assert isinstance(graph.nodes["f"], nir.Linear)
