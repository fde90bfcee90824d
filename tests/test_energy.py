"""Prospective configuration (microcircuits.energy) on both backends: the relaxed state
and the first weight step of the 1-1-2 example against the values that follow from the
energy function, less interference than backprop along training, and the relaxed state
of a deeper network against the minimum of E."""
import numpy as np
import pytest

from microcircuits.energy import EnergyConfig, build, relaxed_linear, schedule
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.recording import Recording

S, Y = np.array([1.0]), np.array([0.0, 1.0])  # input 1; target: output 1 -> 0, output 2 already right


def simulate(backend, cfg, weights, inputs, targets, recording=None):
    net = build(cfg, weights)
    sim = TorchSimulator(net) if backend == "torch" else Brian2Simulator(net, target="numpy")
    return sim.run(schedule(cfg, inputs, targets), recording)


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_first_step_of_the_1_1_2_example_follows_from_the_energy(backend):
    """E = 1/2 (x1 - w1 s)^2 + 1/2 ||y - W2 x1||^2 with all weights 1 is smallest at
    x1 = 2/3: e1 = -1/3, e2 = y - W2 x1 = (-2/3, 1/3), so the step is dw1 = eta e1 s =
    -eta/3 and dW2 = eta e2 x1 = eta (-4/9, 2/9); backprop's is dw1 = -eta, dW2 = (-eta, 0)."""
    cfg = EnergyConfig(eta=0.01 / 20.0, t_pres=20.0)  # eta t_pres = 0.01: W barely moves while it learns
    run = simulate(backend, cfg, [np.ones((1, 1)), np.ones((2, 1))], [S], [Y],
                   Recording({"x1": ["z"], "e1": ["z"], "e2": ["z"]}, dt=cfg.t_pres))
    relaxed = {k: trace.values[1] for k, trace in run.traces.items()}  # the end of the relaxation
    np.testing.assert_allclose(relaxed["x1.z"], [2 / 3], atol=1e-6)
    np.testing.assert_allclose(relaxed["e1.z"], [-1 / 3], atol=1e-6)
    np.testing.assert_allclose(relaxed["e2.z"], [-2 / 3, 1 / 3], atol=1e-6)
    step = 0.01
    np.testing.assert_allclose((run.final_weights["W1"] - 1) / step, [[-1 / 3]], rtol=0.01)
    np.testing.assert_allclose((run.final_weights["W2"] - 1) / step, [[-4 / 9], [2 / 9]], rtol=0.01)


def backprop_1_1_2(eta, steps):
    """Backprop on L = 1/2 ||y - W2 w1 s||^2, linear: output 2 after each step."""
    w1, w2 = 1.0, np.ones(2)
    out2 = []
    for _ in range(steps):
        h = w1 * S[0]
        err = Y - w2 * h
        w1, w2 = w1 + eta * (w2 @ err) * S[0], w2 + eta * err * h
        out2.append(w2[1] * w1 * S[0])
    return np.array(out2)


def target_alignment(before, after):
    """cos(change of the output, target - output)."""
    change, wanted = after - before, Y - before
    return float(change @ wanted / np.linalg.norm(change) / np.linalg.norm(wanted))


def test_prospective_configuration_interferes_less_than_backprop():
    """Along 20 steps of eta = 0.2 (the paper's 1-1-2 setting), output 2 falls far less
    below 1 than under backprop, and the first step's target alignment is higher."""
    cfg = EnergyConfig(eta=0.2 / 20.0, t_pres=20.0)
    steps = 20
    run = simulate("torch", cfg, [np.ones((1, 1)), np.ones((2, 1))], np.tile(S, (steps, 1)),
                   np.tile(Y, (steps, 1)), Recording(weights=["W1", "W2"], weights_dt=2 * cfg.t_pres))
    w1, w2 = run.traces["w:W1"].values[:, 0, 0], run.traces["w:W2"].values[:, :, 0]
    outputs = w2 * w1[:, None] * S[0]  # before each sample, and at the end
    bp = backprop_1_1_2(0.2, steps)
    pc_fall, bp_fall = 1 - outputs[1:, 1].min(), 1 - bp.min()
    assert bp_fall > 0.15 and pc_fall < 0.3 * bp_fall, (pc_fall, bp_fall)
    bp_first = np.array([0.8 * 0.8, 0.8])  # backprop after one step: w1 = 0.8, W2 = (0.8, 1)
    pc_alignment, bp_alignment = target_alignment(outputs[0], outputs[1]), target_alignment(np.ones(2), bp_first)
    assert bp_alignment == pytest.approx(0.874, abs=1e-3)
    assert pc_alignment > 0.98 > bp_alignment
    assert np.linalg.norm(outputs[-1] - Y) < 0.1  # and it learns the target


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_a_deeper_network_relaxes_to_the_minimum_of_the_energy(backend):
    rng = np.random.default_rng(0)
    cfg = EnergyConfig(layers=[3, 4, 5, 2], eta=0.0, t_pres=200.0)
    weights = [rng.normal(0, 0.5, (4, 3)), rng.normal(0, 0.5, (5, 4)), rng.normal(0, 0.5, (2, 5))]
    x, y = rng.uniform(0, 1, 3), rng.uniform(-1, 1, 2)
    run = simulate(backend, cfg, weights, [x], [y], Recording({"x1": ["z"], "x2": ["z"]}, dt=cfg.t_pres))
    expected = relaxed_linear(weights, x, y)
    np.testing.assert_allclose(run.traces["x1.z"].values[1], expected[0], atol=1e-6)
    np.testing.assert_allclose(run.traces["x2.z"].values[1], expected[1], atol=1e-6)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="dt = 0.5 ms must be below tau_x and tau_e"):
        EnergyConfig(dt=0.5)
    with pytest.raises(ValueError, match="network.layers must list at least two positive integer sizes"):
        EnergyConfig(layers=[3])
