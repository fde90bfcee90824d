"""Dynamic inversion (microcircuits.inversion): the loop's steady state on both backends
against r_x = W^T (W W^T + alpha I)^-1 delta, ||W r_x - delta|| -> 0 as alpha -> 0 for a
contracting layer, an unstable loop refused before it runs, and the 30-20-10 linear
regression learned as well as backprop."""
import numpy as np
import pytest

from microcircuits import baselines, inversion
from microcircuits.rate_models import feedforward
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator

RNG = np.random.default_rng(0)
X, Y = RNG.normal(size=30), RNG.normal(size=10)


def settle(cfg, weights, backend="torch"):
    net = inversion.build(cfg, weights)
    sim = TorchSimulator(net) if backend == "torch" else Brian2Simulator(net, target="numpy")
    return sim.run(inversion.schedule(cfg, [X], [Y])).final_state


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_the_loop_settles_at_the_damped_pseudo_inverse(backend):
    cfg = inversion.Config(layers=[30, 20, 10], alpha=0.01, eta=0.0, t_pres=30.0)
    weights = inversion.initial_weights(cfg, 0)
    delta = Y - inversion.forward(cfg, weights, X)[0]
    w = weights["W2"]
    expected = w.T @ np.linalg.solve(w @ w.T + cfg.alpha * np.eye(10), delta)
    np.testing.assert_allclose(settle(cfg, weights, backend)["rx2.z"], expected, atol=1e-9)
    np.testing.assert_allclose(inversion.inverted_error(w, -w.T, cfg.alpha, delta), expected, atol=1e-12)


def test_the_inverted_error_is_exact_as_alpha_goes_to_zero():
    residual = []
    for alpha in (0.1, 0.01, 0.001):
        cfg = inversion.Config(layers=[30, 20, 10], alpha=alpha, eta=0.0, t_pres=50.0)
        weights = inversion.initial_weights(cfg, 0)
        delta = Y - inversion.forward(cfg, weights, X)[0]
        rx = settle(cfg, weights)["rx2.z"]
        residual.append(np.linalg.norm(weights["W2"] @ rx - delta) / np.linalg.norm(delta))
    assert residual[0] > 0.1 and residual[2] < 0.01, residual  # measured 0.196, 0.031, 0.0042
    assert residual[0] > residual[1] > residual[2]


def test_an_expanding_layer_without_damping_is_refused_before_it_runs():
    cfg = inversion.Config(layers=[5, 10, 20], alpha=0.0)
    with pytest.raises(ValueError, match=r"inversion loop of layer 2 is unstable.*expands \(10 -> 20\).*alpha > 0"):
        inversion.build(cfg, inversion.initial_weights(cfg, 0))
    damped = inversion.Config(layers=[5, 10, 20], alpha=0.1)
    inversion.build(damped, inversion.initial_weights(damped, 0))  # damping makes it stable
    contracting = inversion.Config(layers=[20, 10, 5], alpha=0.0)
    inversion.build(contracting, inversion.initial_weights(contracting, 0))


def test_random_feedback_is_checked_too():
    cfg = inversion.Config(layers=[30, 20, 10], feedback="random", alpha=0.0)
    weights = inversion.initial_weights(cfg, 0)
    weights["B2"] = weights["W2"].T.copy()  # B = +W^T: W B positive, the loop runs away
    with pytest.raises(ValueError, match="inversion loop of layer 2 is unstable"):
        inversion.build(cfg, weights)


def regression(seeds, epochs, n_train):
    """30-20-10 linear teacher-student: test mse of inversion and of backprop (same
    initial weights, data order and step eta t_pres) per seed."""
    cfg = inversion.Config(layers=[30, 20, 10], alpha=0.01, eta=0.02, t_pres=5.0)
    out = {"inversion": [], "bp": []}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        teacher = inversion.initial_weights(cfg, seed + 100)
        x, x_test = rng.normal(size=(n_train, 30)), rng.normal(size=(100, 30))
        y, y_test = inversion.forward(cfg, teacher, x), inversion.forward(cfg, teacher, x_test)
        weights = inversion.initial_weights(cfg, seed)
        bp = [weights["W1"], weights["W2"]]
        for epoch in range(epochs):
            order = rng.permutation(len(x))
            run = TorchSimulator(inversion.build(cfg, weights), samples=10).run(
                inversion.schedule(cfg, x[order], y[order], batch=10))
            weights.update(run.final_weights)
            bp = baselines.train(bp, x[order], y[order], "linear", "linear", "bp", cfg.eta * cfg.t_pres, seed, 10)
        out["inversion"].append(np.mean((inversion.forward(cfg, weights, x_test) - y_test) ** 2))
        out["bp"].append(np.mean((feedforward(bp, x_test, "linear", "linear")[-1] - y_test) ** 2))
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("seeds, epochs, n_train", [
    ([0, 1], 5, 100), pytest.param([0, 1, 2, 3, 4], 8, 200, marks=pytest.mark.slow)])
def test_the_regression_task_is_learned_as_well_as_by_backprop(seeds, epochs, n_train):
    mse = regression(seeds, epochs, n_train)
    print({k: np.round(v, 4).tolist() for k, v in mse.items()})
    start = np.mean(Y ** 2)
    spread = np.std(mse["bp"]) + np.std(mse["inversion"])
    assert np.mean(mse["inversion"]) < np.mean(mse["bp"]) + spread + 0.02, mse
    assert np.all(mse["inversion"] < 0.3 * start), mse
