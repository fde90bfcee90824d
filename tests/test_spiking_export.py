"""The trained spiking microcircuit's forward pathway goes to NIR and the chips as it is
(microcircuits/spiking_export.py): the graph read back from its NIR file fires the
circuit's own spikes for the same draws, on both backends; the Threshold unit and the
EscapeNoise source fire with probability c phi(x); only chips that run every node take it."""
import nir
import numpy as np
import pytest

from hardware.mapping import MappingError, map_network
from hardware.nir import read_nir, write_nir
from hardware.targets import load_target
from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
from microcircuits.spiking_export import NOISE, forward_graph, metadata, simulated
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.models.rate import Input
from neurosim.models.spiking import EscapeNoise, Threshold
from neurosim.network import Network, Population, Projection
from neurosim.recording import Recording
from neurosim.schedule import Schedule

DT, T = 0.1, 30.0
STEPS = int(T / DT)
LAYERS = [3, 5, 4, 2]


def _trained(activation="logistic"):
    """A 3-5-4-2 spiking circuit with random forward weights, B = B^PI = 0 (no top-down
    input: the circuit is its forward pathway), no learning, no OU noise."""
    cfg = MicrocircuitConfig(layers=LAYERS, neuron="spiking", feedback="fa", r_max=2.0, tau_s=3.0, dt=DT,
                             activation=activation, init_w=[-3.0, 3.0])
    weights = initial_weights(cfg, 4)
    for l in (1, 2):
        weights[f"B{l}"][:], weights[f"BPI{l}"][:] = 0.0, 0.0
    return cfg, weights


def _events(train, shift=0):
    """(step, neuron) of each spike, from step 3 on (the circuit's input arrives one step late)."""
    steps = np.round(train.times / DT).astype(int) + shift
    return sorted((s, i) for s, i in zip(steps.tolist(), train.indices.tolist()) if 3 <= s < STEPS - 3)


@pytest.mark.parametrize("backend", ["torch", "brian2"])
@pytest.mark.parametrize("activation", ["logistic", "hard_sigmoid"])
def test_the_nir_graph_fires_the_circuits_spikes(tmp_path, backend, activation):
    cfg, weights = _trained(activation)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1, 3))
    draws = {f"{p}.spikes": rng.uniform(0, 1, (STEPS, n)) for p, n in (("P1", 5), ("P2", 4), ("P3", 2), ("I1", 4),
                                                                       ("I2", 2))}
    circuit = Brian2Simulator(build(cfg, weights), target="numpy", noise=draws).run(
        Schedule(T, {"x": x, "P3.target": np.zeros((1, 2))}, gates={"P3.target": [0.0]}),
        Recording(spikes=["P1", "P2", "P3"]))

    path = write_nir(forward_graph(cfg, [weights[f"W{l}"] for l in (1, 2, 3)]), tmp_path / "g.nir", metadata(cfg))
    graph = nir.read(path)
    assert graph.metadata["escape_noise"] == "noise_P1,noise_P2,noise_P3"
    assert {type(n).__name__ for n in graph.nodes.values()} == {"Input", "Linear", "Threshold", "LI", "Output"}
    network = simulated(read_nir(path), cfg)
    # layer l of the graph runs l - 1 steps ahead of the circuit's: its noise does too
    noise = {f"{NOISE.format(f'P{l}')}.spikes": np.roll(draws[f"P{l}.spikes"], -(l - 1), axis=0) for l in (1, 2, 3)}
    recording = Recording(spikes=["P1", "P2", "P3"])
    schedule = Schedule(T, {"x": x})
    if backend == "torch":
        run = TorchSimulator(network, noise=noise, dtype="float64").run(schedule, recording)
    else:
        run = Brian2Simulator(network, target="numpy", noise=noise).run(schedule, recording)
    for l in (1, 2, 3):
        ours, theirs = _events(run.spikes[f"P{l}"], shift=l - 1), _events(circuit.spikes[f"P{l}"])
        assert len(theirs) > 20, l  # the layer fires, and not in every step
        assert len(theirs) < 0.8 * (STEPS - 6) * LAYERS[l], l
        assert ours == theirs, f"P{l}"


def test_a_threshold_unit_reading_escape_noise_fires_with_chance_c_phi():
    n, c, steps = 6, 0.4, 40_000
    x = np.linspace(-4, 4, n)
    net = Network([Population("x", n, Input()), Population("m", n, EscapeNoise("logistic", c)),
                   Population("P", n, Threshold())],
                  [Projection("a", "x", "P", weight=np.eye(n), delay=0), Projection("b", "m", "P", weight=np.eye(n),
                                                                                      delay=0)], dt=1.0)
    run = TorchSimulator(net, seed=3, dtype="float64").run(Schedule(float(steps), {"x": x[None]}),
                                                            Recording(spikes=["P"]))
    p = c / (1 + np.exp(-x))
    counts = run.spikes["P"].counts(n, [0.0, float(steps)])[0, 0]
    np.testing.assert_array_less(np.abs(counts / steps - p), 4 * np.sqrt(p * (1 - p) / steps))


def test_escape_noise_refuses_what_has_no_inverse():
    with pytest.raises(ValueError, match="EscapeNoise: activation must be one of"):
        EscapeNoise("relu", 0.5)
    with pytest.raises(ValueError, match="chance is a probability per step, at most 1"):
        EscapeNoise("logistic", 1.5)


def test_a_rate_circuit_has_no_escape_noise_graph():
    with pytest.raises(ValueError, match="not spiking"):
        forward_graph(MicrocircuitConfig(layers=[2, 3, 1]), [np.ones((3, 2)), np.ones((1, 3))])


def test_the_graph_maps_onto_loihi2_with_its_noise_weights_exact():
    cfg, weights = _trained()
    graph = forward_graph(cfg, [weights[f"W{l}"] for l in (1, 2, 3)])
    report, quantised = map_network(graph, load_target("loihi2"))
    assert report.cores_used == 1
    np.testing.assert_array_equal(quantised.projection(f"{NOISE.format('P1')}_to_P1").weight, np.eye(5))
    with pytest.raises(MappingError, match="P1 does not fit spinnaker1: the neuron model is Threshold"):
        map_network(graph, load_target("spinnaker1"))


def test_cli_exports_and_maps_a_trained_spiking_circuit(tmp_path, capsys):
    """`neurosim run` of the Yin-Yang spiking config (a few samples) -> `neurosim export`
    (the NIR graph of its forward pathway, no conversion) and `neurosim map` onto Loihi 2;
    PyNN and chips without a Threshold unit are refused with the reason."""
    from microcircuits.cli import main
    from microcircuits.runners import run_experiment
    from neurosim.config import load_config, merge

    config = merge(load_config("examples/yinyang_spiking_accuracy.toml"),
                   {"task": {"epochs": 1, "n_train": 10, "n_test": 50, "test_every": 1},
                    "run": {"backend": "torch"}})
    run_experiment(config, tmp_path / "run", progress=False, log=lambda *a: None)
    results = tmp_path / "run" / "results.h5"
    assert main(["export", str(results), "--format", "nir", "--out", str(tmp_path / "g.nir")]) == 0
    graph = nir.read(tmp_path / "g.nir")
    assert graph.metadata["spike_chance"] == pytest.approx(1.0) and graph.metadata["activation"] == "logistic"
    assert isinstance(graph.nodes["psp_P1"], nir.LI) and isinstance(graph.nodes["P2"], nir.Threshold)
    capsys.readouterr()
    assert main(["map", str(results), "--target", "loihi2"]) == 0
    text = capsys.readouterr().out
    assert "accuracy spiking circuit (its run)" in text and "accuracy forward graph" in text
    assert main(["export", str(results), "--format", "pynn", "--out", str(tmp_path / "s.py")]) == 2
    assert "exports to NIR only" in capsys.readouterr().err
    assert main(["map", str(results), "--target", "spinnaker2"]) == 2
    assert "P1 does not fit spinnaker2: the neuron model is Threshold" in capsys.readouterr().err
    assert main(["map", str(results), "--target", "xylo"]) == 2  # the escape noise needs 30 input channels
    assert "noise_P1 does not fit xylo: input channels is 30, the chip allows at most 16" in capsys.readouterr().err
