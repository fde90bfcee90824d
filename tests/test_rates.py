"""Rate units (neurosim.models.rate) on both backends against a numpy transcription of
the documented step: shared and tied weights between other populations than their
owner's, rule factors from named populations, anti-Hebbian learning with decay, and
derivative gains and signals, a product unit; cpp_standalone against the runtime; the noise's variance; a torch
minibatch against single runs."""
import numpy as np
import pytest

from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.models.rate import Input, Leaky, Product
from neurosim.network import Network, Population, Projection
from neurosim.noise import WhiteNoise
from neurosim.recording import Recording
from neurosim.rules import Hebbian
from neurosim.schedule import Schedule

DT, T_PRES = 0.1, 2.0
RNG = np.random.default_rng(3)
W1, W2 = RNG.normal(0, 0.5, (4, 3)), RNG.normal(0, 0.5, (2, 4))


def network():
    """in -> a (W1, learns with factors d and in) -> b; c reads W1 (shared) from in2, and
    e reads W1^T (tied) from d; W2 anti-Hebbian with decay; p multiplies a's value by
    d's f'. The inputs arrive in the same step (delay 0), everything else one step later."""
    pops = [Population("inp", 3, Input()), Population("inp2", 3, Input()),
            Population("a", 4, Leaky(0.5, activation="tanh")),
            Population("b", 2, Leaky(1.0, leak=0.5)), Population("c", 4, Leaky(DT)),
            Population("d", 4, Leaky(0.3, activation="logistic")), Population("e", 3, Leaky(0.2)),
            Population("p", 4, Product(0.4))]
    projs = [Projection("W1", "inp", "a", weight=W1, rule=Hebbian(0.05, post="d"), delay=0),
             Projection("W2", "a", "b", weight=W2, rule=Hebbian(-0.02, pre="c", decay=0.1)),
             Projection("S", "inp2", "c", shared="W1", signal="value", delay=0),
             Projection("T", "d", "e", tied="W1", gain="derivative", scale=-0.7),
             Projection("cd", "c", "d", kind="one_to_one", signal="value"),
             Projection("bd", "b", "a", weight=RNG.normal(0, 0.5, (4, 2)), gain="derivative"),
             Projection("ap", "a", "p", kind="one_to_one", signal="value", port="input"),
             Projection("dp", "d", "p", kind="one_to_one", signal="derivative", port="gain", scale=2.0)]
    return Network(pops, projs, dt=DT)


def schedule():
    rng = np.random.default_rng(4)
    return Schedule(T_PRES, {"inp": rng.uniform(-1, 1, (3, 3)), "inp2": rng.uniform(-1, 1, (3, 3))},
                    learn=[1.0, 0.0, 0.5])


def numpy_step(net, sched):
    """The documented Euler step, written out for this network."""
    f = {"linear": lambda x: x, "tanh": np.tanh, "logistic": lambda x: 1 / (1 + np.exp(-x))}
    df = {"linear": lambda x: np.ones_like(x), "tanh": lambda x: 1 - np.tanh(x) ** 2,
          "logistic": lambda x: f["logistic"](x) * (1 - f["logistic"](x))}
    z = {p.name: np.zeros(p.size) for p in net.populations}
    w = {"W1": W1.copy(), "W2": W2.copy(), "bd": net.projection("bd").weight.copy()}
    act = {p.name: getattr(p.model, "activation", "linear") for p in net.populations}
    spp = int(round(T_PRES / DT))
    for k in range(sched.n_presentations * spp):
        n, lam = k // spp, sched.learn[k // spp]
        z["inp"], z["inp2"] = sched.data["inp"][n], sched.data["inp2"][n]
        r = {name: f[act[name]](v) for name, v in z.items()}
        x = {"a": w["W1"] @ r["inp"] + df["tanh"](z["a"]) * (w["bd"] @ r["b"]), "b": w["W2"] @ r["a"],
             "c": w["W1"] @ z["inp2"], "d": z["c"], "e": -0.7 * df["linear"](z["e"]) * (w["W1"].T @ r["d"]),
             "p": z["a"] * 2.0 * df["logistic"](z["d"])}
        w["W1"] = w["W1"] + DT * lam * 0.05 * np.outer(z["d"], r["inp"])
        w["W2"] = w["W2"] + DT * lam * (-0.02 * np.outer(z["b"], z["c"]) - 0.1 * w["W2"])
        for p in net.populations:
            if not p.is_input:
                leak = getattr(p.model, "leak", 1.0)  # a Product's is 1
                z[p.name] = z[p.name] + DT / p.model.tau * (-leak * z[p.name] + x[p.name])
    return z, w


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_the_step_is_the_documented_one(backend):
    net, sched = network(), schedule()
    sim = TorchSimulator(net) if backend == "torch" else Brian2Simulator(net, target="numpy")
    run = sim.run(sched)
    z, w = numpy_step(net, sched)
    for name, values in z.items():
        np.testing.assert_allclose(run.final_state[f"{name}.z"], values, rtol=1e-10, atol=1e-12, err_msg=name)
    for name in ("W1", "W2"):
        np.testing.assert_allclose(run.final_weights[name], w[name], rtol=1e-10, atol=1e-12, err_msg=name)
    assert not np.allclose(w["W1"], W1) and not np.allclose(w["W2"], W2)


def test_standalone_equals_the_runtime_target(capfd):
    """The same rate circuit compiled to C++ (cpp_standalone, printing its progress) and
    run by Brian2's runtime."""
    net, sched = network(), schedule()
    rec = Recording({"a": ["z"], "e": ["z", "I_T"]}, dt=DT, weights=["W1", "W2"], weights_dt=T_PRES)
    runtime = Brian2Simulator(net, target="numpy").run(sched, rec)
    standalone = Brian2Simulator(net, target="cpp_standalone").run(sched, rec, progress=True)
    printed = capfd.readouterr().out
    assert " 50.0 % of " in printed and "100.0 % of " in printed and "cpp_standalone project " in printed
    for key in runtime.traces:
        np.testing.assert_allclose(standalone.traces[key].values, runtime.traces[key].values, rtol=1e-12,
                                   atol=1e-14, err_msg=key)
    for key in runtime.final_weights:
        np.testing.assert_allclose(standalone.final_weights[key], runtime.final_weights[key], rtol=1e-12, err_msg=key)
    assert len(runtime.traces["e.z"].times) == 3 * 20 + 1


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_noise_has_the_documented_variance(backend):
    """tau dz/dt = -z + sigma sqrt(tau) xi is stationary with variance sigma^2 / 2."""
    net = Network([Population("inp", 1, Input()), Population("z", 200, Leaky(2.0), WhiteNoise(0.3))], dt=0.1)
    sched = Schedule(400.0, {"inp": [[0.0]]})
    sim = TorchSimulator(net, seed=1) if backend == "torch" else Brian2Simulator(net, seed=1)
    run = sim.run(sched, Recording({"z": ["z"]}, dt=4.0))
    values = run.traces["z.z"].values[10:]  # after 20 tau
    assert np.var(values) == pytest.approx(0.3 ** 2 / 2, rel=0.05)
    assert abs(np.mean(values)) < 0.01


def test_a_torch_minibatch_is_the_single_runs_with_the_mean_update():
    """Without learning, sample k of a minibatch is the run of sample k alone; with it,
    one step changes W by the mean of the per-sample changes."""
    net, sched = network(), schedule()
    batch = Schedule(T_PRES, {k: np.stack([v, v[::-1]], axis=1) for k, v in sched.data.items()}, learn=np.zeros(3))
    both = TorchSimulator(net, samples=2).run(batch)
    for k, order in enumerate([slice(None), slice(None, None, -1)]):
        single = TorchSimulator(net).run(Schedule(T_PRES, {n: v[order] for n, v in sched.data.items()},
                                                  learn=np.zeros(3)))
        np.testing.assert_allclose(both.final_state["a.z"][k], single.final_state["a.z"], rtol=1e-12)
    one = Network(net.populations, net.projections, dt=T_PRES / 20)
    steps = [TorchSimulator(one).run(Schedule(T_PRES / 20, {n: v[i:i + 1] for n, v in sched.data.items()}))
             for i in range(2)]
    mean = (steps[0].final_weights["W2"] + steps[1].final_weights["W2"]) / 2
    pair = TorchSimulator(one, samples=2).run(Schedule(T_PRES / 20, {n: v[None, :2] for n, v in sched.data.items()}))
    np.testing.assert_allclose(pair.final_weights["W2"], mean, rtol=1e-12)


def test_bad_wiring_is_named():
    pops = [Population("a", 3, Input()), Population("b", 2, Leaky()), Population("c", 3, Leaky())]
    w = np.zeros((2, 3))
    with pytest.raises(ValueError, match="shared with W, whose weight must have shape"):
        Network(pops, [Projection("W", "a", "b", weight=w), Projection("S", "b", "c", shared="W")])
    with pytest.raises(ValueError, match="rule's post factor must be a population of 2 neurons, got 'c'"):
        Network(pops, [Projection("W", "a", "b", weight=w, rule=Hebbian(1.0, post="c"))])
    with pytest.raises(ValueError, match="give shared or tied, not both"):
        Projection("S", "a", "b", shared="W", tied="W")
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        WhiteNoise(-1.0)
    with pytest.raises(ValueError, match=r"projections \['A', 'B'\] form a loop with delay 0"):
        Network(pops, [Projection("A", "b", "c", weight=np.zeros((3, 2)), delay=0),
                       Projection("B", "c", "b", weight=np.zeros((2, 3)), delay=0)])
