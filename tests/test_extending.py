"""The worked example of docs/guide.md ("Extending the package", examples/extending.py):
a new neuron model and a new rule run on both backends, equal step for step, and do
what their equations say (adaptation lengthens the intervals; Oja's rule finds the
first principal component)."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.models.rate import Input, Leaky
from neurosim.network import Network, Population, Projection
from neurosim.recording import Recording
from neurosim.schedule import Schedule

SPEC = importlib.util.spec_from_file_location("extending", Path(__file__).parents[1] / "examples" / "extending.py")
extending = sys.modules["extending"] = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(extending)


def test_the_adaptive_neuron_slows_down_alike_on_both_backends():
    net = Network([Population("x", 1, Input()), Population("n", 2, extending.AdaptiveLIF(tau=10.0, b=[0.0, 0.3]))],
                  [Projection("drive", "x", "n", weight=[[1.5], [1.5]], delay=0)], dt=0.1)
    rec = Recording({"n": ["v", "w_a"]}, dt=0.1, spikes=["n"])
    runs = [sim.run(Schedule(200.0, {"x": [[1.0]]}), rec) for sim in (Brian2Simulator(net, target="numpy"),
                                                                      TorchSimulator(net))]
    np.testing.assert_array_equal(runs[0].spikes["n"].times, runs[1].spikes["n"].times)
    np.testing.assert_allclose(runs[0].traces["n.w_a"].values, runs[1].traces["n.w_a"].values, atol=1e-12)
    train = runs[1].spikes["n"]
    plain, adapting = (np.diff(train.times[train.indices == k]) for k in (0, 1))
    assert np.ptp(plain) < 0.11  # no adaptation: regular firing
    assert adapting[-1] > 1.5 * adapting[0] and len(adapting) < len(plain)


def test_ojas_rule_finds_the_first_principal_component_on_both_backends():
    """y = W x arrives one step after a new sample (tau = dt), so |W| settles a little
    below 1 (at 50 steps per sample, within 0.05)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) @ np.diag([2.0, 1.0, 0.5])
    net = Network([Population("x", 3, Input()), Population("y", 1, Leaky(tau=0.1))],
                  [Projection("W", "x", "y", weight=rng.normal(0, 0.3, (1, 3)), rule=extending.Oja(0.005), delay=0)],
                  dt=0.1)
    rec = Recording(weights=["W"], weights_dt=10.0)
    runs = [sim.run(Schedule(5.0, {"x": x}), rec) for sim in (Brian2Simulator(net, target="numpy"), TorchSimulator(net))]
    np.testing.assert_allclose(runs[0].traces["w:W"].values, runs[1].traces["w:W"].values, rtol=1e-9, atol=1e-12)
    w = runs[1].final_weights["W"][0]
    first = np.linalg.eigh(x.T @ x)[1][:, -1]  # the samples' first principal component
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=0.05)
    assert abs(w @ first) / np.linalg.norm(w) > 0.99
