"""Dynamic inversion (microcircuits.inversion): the loop's steady state on both backends
against r_x = W^T (W W^T + alpha I)^-1 delta, ||W r_x - delta|| -> 0 as alpha -> 0 for a
contracting layer, an unstable loop refused before it runs, and the 30-20-10 linear
regression learned as well as backprop."""
import numpy as np
import pytest

from microcircuits import baselines, inversion
from microcircuits.metrics import angle_deg
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


def test_stabilize_moves_a_random_feedback_until_the_loop_is_stable():
    """The paper code's smoothed-spectral-abscissa descent on B: the random draw is
    unstable, the moved B is stable below -0.01 and still random (not -W^T), W is not
    touched, and the circuit settles at that B's steady state B (W B - alpha I)^-1 delta."""
    raw_cfg = inversion.Config(layers=[30, 20, 10], feedback="random", alpha=0.01, eta=0.0, t_pres=200.0)
    raw = inversion.initial_weights(raw_cfg, 0)
    # measured: +0.57 before; -0.043 after, B turned by 17 degrees and 77 degrees from -W^T
    assert inversion.largest_real_eigenvalue(raw_cfg, raw, 2) > 0.1
    cfg = inversion.Config(**{**raw_cfg.__dict__, "stabilize": True})
    weights = inversion.initial_weights(cfg, 0)
    np.testing.assert_array_equal(weights["W2"], raw["W2"])
    assert -0.05 < inversion.largest_real_eigenvalue(cfg, weights, 2) < inversion.STABLE_BELOW
    w, b = weights["W2"], weights["B2"]
    assert 5 < angle_deg(b, raw["B2"]) < 40 and angle_deg(b, -w.T) > 60
    delta = Y - inversion.forward(cfg, weights, X)[0]
    np.testing.assert_allclose(settle(cfg, weights)["rx2.z"], inversion.inverted_error(w, b, cfg.alpha, delta),
                               rtol=1e-6, atol=1e-9)


def test_stabilize_refuses_what_it_cannot_make_stable():
    with pytest.raises(ValueError, match="stabilize applies to feedback = 'random' only"):
        inversion.Config(layers=[30, 20, 10], stabilize=True)
    # expanding without damping: M (0, y) = 0 for y in the null space of B, whatever B is
    cfg = inversion.Config(layers=[5, 10, 20], feedback="random", alpha=0.0, stabilize=True)
    with pytest.raises(ValueError, match=r"random feedback B2 .* still unstable after 200 steps"):
        inversion.initial_weights(cfg, 0)


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


def nonlinear(feedback="transpose", alpha=0.1, **values):
    """30-20-10-10, tanh hidden layers with biases, as in the paper's nonlinear regression."""
    return inversion.Config(layers=[30, 20, 10, 10], activation="tanh", bias=True, init_bias=0.5, alpha=alpha,
                            eta=0.0, t_pres=40.0, feedback=feedback, **values)


@pytest.mark.parametrize("backend, feedback", [("torch", "transpose"), ("brian2", "transpose"),
                                               ("torch", "initial_transpose"), ("torch", "backprop")])
def test_nonlinear_loops_settle_at_the_linearised_cascade(backend, feedback):
    """delta_{l-1} = tanh'(a_{l-1}) * r_x, r_x the damped pseudo-inverse of delta_l (or
    W^T delta_l for backprop), layer by layer; without the derivative delta_1 would be off
    by tens of per cent."""
    cfg = nonlinear(feedback)
    weights = inversion.initial_weights(cfg, 0)
    x, y = RNG.normal(size=30), RNG.normal(size=10)
    net = inversion.build(cfg, weights)
    sim = TorchSimulator(net) if backend == "torch" else Brian2Simulator(net, target="numpy")
    state = sim.run(inversion.schedule(cfg, [x], [y])).final_state
    deltas = inversion.steady_errors(cfg, weights, x, y)
    for l, expected in enumerate(deltas[:-1], start=1):
        np.testing.assert_allclose(state[f"delta{l}.z"], expected, atol=1e-8, err_msg=f"delta{l}")
    a1 = weights["W1"] @ x + weights["bias1"].ravel()
    assert np.linalg.norm(deltas[0] / (1 - np.tanh(a1) ** 2) - deltas[0]) > 0.1 * np.linalg.norm(deltas[0])


def test_large_damping_turns_the_inverted_errors_into_backprop():
    """alpha^(L-l) delta_l -> backprop's delta_l as alpha grows (W B - alpha I ~ -alpha I)."""
    x, y = RNG.normal(size=30), RNG.normal(size=10)
    bp = inversion.steady_errors(nonlinear("backprop"), inversion.initial_weights(nonlinear("backprop"), 0), x, y)
    errors = []
    for alpha in (1e2, 1e3, 1e4):
        cfg = nonlinear(alpha=alpha)
        di = inversion.steady_errors(cfg, inversion.initial_weights(cfg, 0), x, y)
        errors.append(np.linalg.norm(alpha ** 2 * di[0] - bp[0]) / np.linalg.norm(bp[0]))
    assert errors[1] < 5e-3 and errors[0] > 8 * errors[1] > 64 * errors[2], errors


def test_the_stability_metrics_follow_the_loops():
    cfg = nonlinear("initial_transpose")
    weights = inversion.initial_weights(cfg, 0)
    metrics = inversion.epoch_metrics(cfg, weights, None)
    assert metrics["angle_B2_minus_W2T_deg"] == pytest.approx(0.0, abs=1e-6)
    assert all(metrics[f"loop{l}_max_real_eig"] < 0 for l in (2, 3))
    weights["W3"] = weights["W3"] + RNG.normal(0, 0.3, weights["W3"].shape)  # W drifts, B stays
    assert inversion.epoch_metrics(cfg, weights, None)["angle_B3_minus_W3T_deg"] > 10
