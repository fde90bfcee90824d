"""Spiking populations on both backends: the same spikes and potentials step for step,
the step equations themselves, replicas, Poisson statistics, spikes in the results file,
and bad input refused."""
import numpy as np
import pytest

from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.models.rate import Input
from neurosim.models.spiking import IF, LI, LIF, CubaLIF, PoissonInput
from neurosim.models.base import Model
from neurosim.network import Network, Population, Projection
from neurosim.recording import Recording, read_results, write_results
from neurosim.schedule import Schedule


def every_model(rng) -> Network:
    """x -> h (LIF, bias) -> c (CubaLIF) -> i (IF) -> o (LI) in the same step, and a loop
    i -> h one step later."""
    pops = [Population("x", 4, Input()),
            Population("h", 20, LIF(tau=5.0, v_leak=0.1, v_reset=-0.2, r=rng.uniform(0.5, 1.5, 20), bias=0.5)),
            Population("c", 10, CubaLIF(tau_mem=4.0, tau_syn=2.0, r=2.0, w_in=1.5)),
            Population("i", 6, IF(r=5.0, v_threshold=rng.uniform(0.8, 1.2, 6))),
            Population("o", 3, LI(tau=3.0, v_leak=-0.1))]
    conns = [Projection("a", "x", "h", weight=rng.normal(0, 2, (20, 4)), delay=0),
             Projection("b", "h", "c", weight=rng.normal(2.0, 1, (10, 20)), delay=0),
             Projection("c2", "c", "i", weight=rng.normal(3, 1, (6, 10)), delay=0),
             Projection("d", "i", "o", weight=rng.normal(0, 1, (3, 6)), delay=0),
             Projection("f", "i", "h", weight=rng.normal(0, 1, (20, 6)), delay=1)]
    return Network(pops, conns, dt=0.1)


RECORD = Recording({"h": ["v"], "c": ["I", "v"], "i": ["v"], "o": ["v"]}, dt=0.1, spikes=["h", "c", "i"])


@pytest.fixture(scope="module")
def runs():
    rng = np.random.default_rng(0)
    net = every_model(rng)
    schedule = Schedule(5.0, {"x": rng.uniform(0, 1, (8, 4))})
    torch_run = TorchSimulator(net).run(schedule, RECORD, reset=True)
    brian_run = Brian2Simulator(net, target="numpy").run(schedule, RECORD, reset=True)
    return net, schedule, torch_run, brian_run


def test_backends_give_the_same_spikes_and_potentials(runs):
    _, _, a, b = runs
    for name in RECORD.spikes:
        assert len(a.spikes[name].times) > 10, f"{name} should fire in this test"
        np.testing.assert_array_equal(a.spikes[name].times, b.spikes[name].times)
        np.testing.assert_array_equal(a.spikes[name].indices, b.spikes[name].indices)
    for key in a.traces:
        np.testing.assert_allclose(a.traces[key].times, b.traces[key].times, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.traces[key].values, b.traces[key].values, rtol=0, atol=1e-12)


def test_the_step_is_the_documented_euler_step(runs):
    """Replay the recorded states through the equations of neurosim.models.spiking in numpy:
    a sign, a factor or a one-step delay in either backend would break this."""
    net, schedule, run, _ = runs
    v = {k: run.traces[f"{k}.v"].values for k in "hcio"}
    cur = run.traces["c.I"].values
    spikes = {k: np.zeros((len(v[k]), net.population(k).size)) for k in "hci"}
    for k in spikes:
        steps = np.round(run.spikes[k].times / net.dt).astype(int)
        spikes[k][steps, run.spikes[k].indices] = 1
    w = {c.name: c.weight for c in net.projections}
    h, c, i = (net.population(k) for k in "hci")
    spp = schedule.steps_per_presentation(net.dt)
    for t in range(len(v["h"]) - 1):
        if (t + 1) % spp == 0:
            continue  # the state is reset at the next presentation
        x = schedule.data["x"][t // spp]
        loop = spikes["i"][t - 1] if t > 0 else np.zeros(6)  # i is advanced after h: h reads its previous step
        xh = h.model.bias + w["a"] @ x + w["f"] @ loop
        vh = v["h"][t] + 0.1 / 5.0 * (0.1 - v["h"][t] + h.model.r * xh)
        np.testing.assert_allclose(np.where(spikes["h"][t] > 0, -0.2, vh), v["h"][t + 1], atol=1e-12)
        assert np.all((vh > 1.0) == (spikes["h"][t] > 0))
        i_new = cur[t] + 0.1 / 2.0 * (1.5 * (w["b"] @ spikes["h"][t]) - cur[t])
        np.testing.assert_allclose(i_new, cur[t + 1], atol=1e-12)
        vc = v["c"][t] + 0.1 / 4.0 * (-v["c"][t] + 2.0 * i_new)
        np.testing.assert_allclose(np.where(spikes["c"][t] > 0, 0.0, vc), v["c"][t + 1], atol=1e-12)
        vi = v["i"][t] + 0.1 * 5.0 * (w["c2"] @ spikes["c"][t])
        np.testing.assert_allclose(np.where(spikes["i"][t] > 0, 0.0, vi), v["i"][t + 1], atol=1e-12)
        vo = v["o"][t] + 0.1 / 3.0 * (-0.1 - v["o"][t] + w["d"] @ spikes["i"][t])
        np.testing.assert_allclose(vo, v["o"][t + 1], atol=1e-12)


def test_standalone_and_minibatch_agree():
    """cpp_standalone gives the runtime spikes; a torch minibatch of samples gives each
    sample's single run."""
    rng = np.random.default_rng(1)
    net = every_model(rng)
    data = rng.uniform(0, 1, (3, 4))
    rec = Recording(spikes=["h", "i"])
    single = [TorchSimulator(net).run(Schedule(5.0, {"x": row[None]}), rec) for row in data]
    batch = TorchSimulator(net, samples=3).run(Schedule(5.0, {"x": data[None]}), rec)
    for k, run in enumerate(single):
        mine = batch.spikes["h"].samples == k
        np.testing.assert_array_equal(batch.spikes["h"].times[mine], run.spikes["h"].times)
        np.testing.assert_array_equal(batch.spikes["h"].indices[mine], run.spikes["h"].indices)
    sequence = Schedule(5.0, {"x": data})
    standalone = Brian2Simulator(net, target="cpp_standalone").run(sequence, rec, reset=True)
    runtime = TorchSimulator(net).run(sequence, rec, reset=True)
    for name in rec.spikes:
        np.testing.assert_array_equal(standalone.spikes[name].times, runtime.spikes[name].times)
        np.testing.assert_array_equal(standalone.spikes[name].indices, runtime.spikes[name].indices)


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_poisson_rates_and_seeds(backend):
    rates = np.array([[0.0, 50.0, 200.0, 800.0]])
    net = Network([Population("p", 4, PoissonInput())], [], dt=1.0)
    schedule = Schedule(10_000.0, {"p": rates})

    def run(seed):
        sim = TorchSimulator(net, seed=seed) if backend == "torch" else \
            Brian2Simulator(net, target="numpy", seed=seed)
        return sim.run(schedule, Recording(spikes=["p"])).spikes["p"]

    first, again, other = run(0), run(0), run(1)
    counts = np.bincount(first.indices, minlength=4)
    expected = rates[0] * 10.0
    assert np.all(np.abs(counts - expected) <= 4 * np.sqrt(expected)), (counts, expected)
    assert counts[0] == 0
    np.testing.assert_array_equal(first.times, again.times)
    assert len(other.times) != len(first.times) or not np.array_equal(other.times, first.times)


def test_spikes_are_written_to_the_results_file(runs, tmp_path):
    _, _, run, _ = runs
    write_results(tmp_path / "r.h5", config={}, result=run, metrics={}, summary={})
    back = read_results(tmp_path / "r.h5")["spikes"]
    for name, train in run.spikes.items():
        np.testing.assert_array_equal(back[name].times, train.times)
        np.testing.assert_array_equal(back[name].indices, train.indices)


def test_counts_per_window():
    from neurosim.recording import SpikeTrain

    dt = 0.1
    steps = np.array([0, 9, 10, 29, 30])
    train = SpikeTrain(steps * dt, np.array([0, 1, 1, 0, 1]), np.zeros(5, int))
    counts = train.counts(2, np.arange(4) * 1.0)  # windows of 10 steps
    np.testing.assert_array_equal(counts[:, 0, :], [[1, 1], [0, 1], [1, 0]])


class _Sink(Model):
    """A model that takes input and sends nothing."""

    ports = ("input",)


@pytest.mark.parametrize("make, message", [
    (lambda: Population("h", 3, LIF(tau=0.0)), "tau must be > 0"),
    (lambda: Population("h", 3, LIF(tau=1.0, v_threshold=[1.0, 2.0])), "v_threshold must be a number or 3"),
    (lambda: Population("h", 3, "LIF"), "unknown neuron model"),
    (lambda: Network([Population("x", 2, Input()), Population("h", 3, LIF(tau=1.0))],
                     [Projection("w", "x", "h", weight=np.ones((2, 3)))]), r"needs \(target, source\) = \(3, 2\)"),
    (lambda: Network([Population("o", 2, _Sink()), Population("h", 2, LIF(tau=1.0))],
                     [Projection("w", "o", "h", weight=np.ones((2, 2)))]), "_Sink\\) is a read-out that sends nothing"),
    (lambda: Network([Population("x", 2, Input())],
                     [Projection("w", "x", "x", weight=np.ones((2, 2)))]), "is an input population"),
])
def test_bad_networks_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_runs_are_named():
    net = Network([Population("p", 2, PoissonInput()), Population("h", 2, LIF(tau=1.0))],
                  [Projection("w", "p", "h", weight=np.eye(2), delay=0)], dt=0.1)
    with pytest.raises(ValueError, match=r"Poisson rates of p must lie in \[0, 10000\] Hz"):
        TorchSimulator(net).run(Schedule(1.0, {"p": [[1.0, 2e4]]}))
    with pytest.raises(ValueError, match=r"Poisson rates of p must lie in \[0, 10000\] Hz"):
        Brian2Simulator(net, target="numpy").run(Schedule(1.0, {"p": [[1.0, 2e4]]}))
    with pytest.raises(ValueError, match="cannot record 'I' of h"):
        TorchSimulator(net).run(Schedule(1.0, {"p": [[1.0, 2.0]]}), Recording({"h": ["I"]}))
    with pytest.raises(ValueError, match="one sample at a time"):
        Brian2Simulator(net).run(Schedule(1.0, {"p": [[[1.0, 2.0]] * 2]}))


@pytest.mark.parametrize("delay", [0, 1])
def test_an_li_sends_its_potential_this_step_or_the_last(delay):
    """q reads o's v of this step (delay 0) or of the previous one (delay 1), on both backends."""
    net = Network([Population("x", 2, Input()), Population("h", 2, LIF(tau=2.0)), Population("o", 2, LI(tau=3.0)),
                   Population("q", 2, LI(tau=1.0))],
                  [Projection("a", "x", "h", weight=3 * np.eye(2), delay=0),
                   Projection("b", "h", "o", weight=np.eye(2), delay=0),
                   Projection("c", "o", "q", weight=np.eye(2), delay=delay)], dt=0.1)
    recording, schedule = Recording({"q": ["v"], "o": ["v"]}, dt=0.1), Schedule(5.0, {"x": np.array([[1.0, 2.0]])})
    for run in (Brian2Simulator(net, target="numpy").run(schedule, recording),
                TorchSimulator(net, dtype="float64").run(schedule, recording)):
        o, q = (run.traces[k].values.reshape(-1, 2) for k in ("o.v", "q.v"))
        sent = o if delay == 0 else np.vstack([np.zeros((1, 2)), o[:-1]])
        expected, v = [], np.zeros(2)
        for n in range(len(o)):
            v = v + 0.1 * (sent[n] - v)
            expected.append(v)
        assert o[-1].min() > 0.1  # the LIF fires and o integrates its spikes
        np.testing.assert_allclose(q, expected, rtol=0, atol=1e-12)
