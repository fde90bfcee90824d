"""One description, every feature for every model: spiking replicas, a learning spiking
projection on both backends, compiled torch blocks, NaN or inf caught in rate and
spiking populations, and a model or rule that a backend lacks refused when its
simulator is built."""
from dataclasses import dataclass

import numpy as np
import pytest

from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.models.rate import Input, Leaky
from neurosim.models.spiking import LI, LIF
from neurosim.network import Network, Population, Projection
from neurosim.recording import DivergenceError, Recording
from neurosim.rules import Hebbian
from neurosim.schedule import Schedule
from test_spiking import every_model

DT, T_PRES = 0.1, 5.0
LEARNING_REC = Recording({"o": ["v"]}, dt=DT, weights=["W"], weights_dt=T_PRES, spikes=["h", "o"])


def test_eight_spiking_replicas_equal_eight_single_runs():
    """Each replica its own weights, per-neuron parameters and data, one program."""
    nets = [every_model(np.random.default_rng(seed)) for seed in range(8)]
    schedules = [Schedule(T_PRES, {"x": np.random.default_rng(10 + k).uniform(0, 1, (3, 4))}) for k in range(8)]
    rec = Recording({"c": ["I", "v"], "o": ["v"]}, dt=1.0, spikes=["h", "c", "i"])
    together = TorchSimulator(nets, seed=list(range(8))).run_replicas(schedules, rec, reset=True)
    for k, (net, sched, got) in enumerate(zip(nets, schedules, together)):
        alone = TorchSimulator(net, seed=k).run(sched, rec, reset=True)
        for name in rec.spikes:
            np.testing.assert_array_equal(got.spikes[name].times, alone.spikes[name].times)
            np.testing.assert_array_equal(got.spikes[name].indices, alone.spikes[name].indices)
        for key, trace in alone.traces.items():
            np.testing.assert_allclose(got.traces[key].values, trace.values, rtol=1e-12, atol=1e-14, err_msg=key)
    assert len(together[0].spikes["h"].times) != len(together[1].spikes["h"].times)


def learning_network(eta=0.02):
    """x -> h (LIF) -> o (LIF), h -> o learns by Hebbian(eta): dW = dt lambda eta v_o s_h^T
    at each spike of h, v_o read at the start of the step."""
    rng = np.random.default_rng(5)
    pops = [Population("x", 3, Input()), Population("h", 12, LIF(tau=5.0, v_reset=-0.1)),
            Population("o", 4, LIF(tau=4.0, v_leak=0.2, bias=0.3))]
    projs = [Projection("in", "x", "h", weight=rng.uniform(0, 3, (12, 3)), delay=0),
             Projection("W", "h", "o", weight=rng.normal(0.3, 0.5, (4, 12)), rule=Hebbian(eta), delay=0),
             Projection("back", "o", "h", weight=rng.normal(0, 0.5, (12, 4)), delay=1)]
    return Network(pops, projs, dt=DT)


@pytest.fixture(scope="module")
def learning_runs():
    net = learning_network()
    sched = Schedule(T_PRES, {"x": np.random.default_rng(6).uniform(0, 1, (6, 3))}, learn=[1, 1, 0, 1, 0.5, 1])
    return net, sched, TorchSimulator(net).run(sched, LEARNING_REC), \
        Brian2Simulator(net, target="numpy").run(sched, LEARNING_REC)


def test_a_learning_spiking_projection_is_equal_on_both_backends(learning_runs):
    _, _, a, b = learning_runs
    for name in ("h", "o"):
        np.testing.assert_array_equal(a.spikes[name].times, b.spikes[name].times)
        np.testing.assert_array_equal(a.spikes[name].indices, b.spikes[name].indices)
    np.testing.assert_allclose(a.traces["w:W"].values, b.traces["w:W"].values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.final_weights["W"], b.final_weights["W"], rtol=0, atol=1e-12)


def test_the_spiking_rule_is_the_documented_one(learning_runs):
    """Replay: W_end = W_0 + sum over steps k of dt lambda eta v_o(k) s_h(k)^T, with v_o(k)
    o's potential at the start of step k and s_h(k) h's spikes in step k (a sign, a
    factor or a one-step delay would break it)."""
    net, sched, run, _ = learning_runs
    v = run.traces["o.v"].values
    steps = len(v) - 1
    spikes = np.zeros((steps, 12))
    spikes[np.round(run.spikes["h"].times / DT).astype(int), run.spikes["h"].indices] = 1
    learn = np.repeat(sched.learn, int(round(T_PRES / DT)))
    change = DT * 0.02 * np.einsum("k,ki,kj->ij", learn, v[:-1], spikes)
    np.testing.assert_allclose(run.final_weights["W"], net.projection("W").weight + change, rtol=0, atol=1e-12)
    assert np.abs(change).max() > 0.01


def test_compiled_blocks_equal_eager_steps_for_spiking_and_rate_models(learning_runs):
    """torch.compile of blocks of steps: the learning spiking network and a rate loop
    (delay 0 and 1) give the eager run's spikes, weights and states exactly."""
    net, sched, eager, _ = learning_runs
    compiled = TorchSimulator(net, compile=True).run(sched, LEARNING_REC)
    for name in ("h", "o"):
        np.testing.assert_array_equal(compiled.spikes[name].times, eager.spikes[name].times)
        np.testing.assert_array_equal(compiled.spikes[name].indices, eager.spikes[name].indices)
    np.testing.assert_array_equal(compiled.final_weights["W"], eager.final_weights["W"])
    rng = np.random.default_rng(1)
    rate = Network([Population("x", 3, Input()), Population("h", 8, Leaky(2.0)), Population("z", 2, Leaky(1.0))],
                   [Projection("in", "x", "h", weight=rng.normal(0, 1, (8, 3)), delay=0),
                    Projection("out", "h", "z", weight=rng.normal(0, 1, (2, 8)), delay=1),
                    Projection("back", "z", "h", weight=rng.normal(0, 0.3, (8, 2)), delay=1)], dt=DT)
    sched, rec = Schedule(T_PRES, {"x": rng.uniform(0, 1, (6, 3))}), Recording({"z": ["z"], "h": ["z"]}, dt=DT)
    eager, compiled = (TorchSimulator(rate, compile=c).run(sched, rec) for c in (False, True))
    for key, trace in eager.traces.items():
        np.testing.assert_array_equal(compiled.traces[key].values, trace.values, err_msg=key)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_is_caught_in_rate_and_spiking_populations():
    """A leaky rate loop that grows without bound, and a read-out fed beyond float range."""
    rate = Network([Population("x", 1, Input()), Population("z", 3, Leaky(1.0))],
                   [Projection("in", "x", "z", weight=np.ones((3, 1)), delay=0),
                    Projection("loop", "z", "z", weight=300.0 * np.eye(3))], dt=DT)
    spiking = Network([Population("x", 2, Input()), Population("o", 2, LI(tau=1.0))],
                      [Projection("in", "x", "o", weight=np.full((2, 2), 1e308), delay=0)], dt=DT)
    for net in (rate, spiking):
        sched = Schedule(10.0, {"x": np.ones((20, net.population("x").size))})
        for sim in (TorchSimulator(net, check_every_ms=1.0), Brian2Simulator(net, target="numpy", check_every_ms=1.0)):
            with pytest.raises(DivergenceError, match=r"population (z|o) has (NaN or inf in \w+|\|\w+\| > 1e\+12)") as err:
                sim.run(sched)
            assert err.value.divergence.time_ms < 100


@dataclass(frozen=True)
class TorchOnly(Hebbian):
    """Hebbian with its Brian2 code taken away: a rule only the torch backend knows."""

    brian2 = None


@dataclass(frozen=True)
class Brian2OnlyLeaky(Leaky):
    """A leaky unit with its torch step taken away."""

    torch = None


def test_what_a_backend_lacks_is_refused_when_built():
    net = Network([Population("x", 2, Input()), Population("z", 2, Leaky())],
                  [Projection("W", "x", "z", weight=np.eye(2), rule=TorchOnly(0.1), delay=0)], dt=DT)
    with pytest.raises(ValueError, match=r"the brian2 backend has no TorchOnly \(projection W\)"):
        Brian2Simulator(net)
    TorchSimulator(net).run(Schedule(1.0, {"x": np.ones((1, 2))}))
    net = Network([Population("x", 2, Input()), Population("z", 2, Brian2OnlyLeaky())],
                  [Projection("W", "x", "z", weight=np.eye(2), delay=0)], dt=DT)
    with pytest.raises(ValueError, match=r"the torch backend has no Brian2OnlyLeaky \(population z\)"):
        TorchSimulator(net)
    Brian2Simulator(net, target="numpy").run(Schedule(1.0, {"x": np.ones((1, 2))}))


def test_a_rule_that_cannot_change_a_weight_is_left_out_of_the_microcircuit():
    """Rule.inert: a learning rate of 0 (and for Hebbian no decay) changes no weight; the
    microcircuit then builds the projection without its rule, so no step computes it."""
    from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
    from neurosim.rules import DendriticPrediction, PhaselessAlignment, Silencing

    assert DendriticPrediction(0.0).inert() and Silencing(0.0).inert() and PhaselessAlignment(0.0, 1e-3).inert()
    assert not DendriticPrediction(0.1).inert() and not PhaselessAlignment(0.5).inert()
    assert Hebbian(0.0).inert() and not Hebbian(0.0, decay=0.1).inert()
    cfg = MicrocircuitConfig(layers=[3, 4, 2], feedback="pal", sigma=0.1, eta_fw=0.0, eta_ip=0.0, eta_pi=1.0,
                             eta_bw=1.0)
    net = build(cfg, initial_weights(cfg, 0))
    assert net.projection("W1").rule is None and net.projection("WIP1").rule is None
    assert isinstance(net.projection("BPI1").rule, Silencing)
    assert isinstance(net.projection("B1").rule, PhaselessAlignment)
