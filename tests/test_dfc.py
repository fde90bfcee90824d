"""Deep feedback control (microcircuits.dfc): the controller's simulated steady state
against u_ss = (J Q + alpha~ I)^-1 delta on both backends; with strong feedback the
output sits at the label while the control it needs falls over training; Q learned from
noise turns towards the damped pseudo-inverse of J; digits within 3 points of backprop."""
import numpy as np
import pytest

from microcircuits import baselines, dfc
from microcircuits.metrics import angle_deg
from microcircuits.rate_models import feedforward
from neurosim import datasets
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.recording import DivergenceError, Recording

X, Y = np.array([0.5, -0.2, 0.8]), np.array([0.3, -0.4])


def stable_feedback(cfg, weights, x, seed=5):
    """Q = J^T + noise: J Q near J J^T, whose eigenvalues are positive (a stable controller)."""
    j = dfc.jacobian(cfg, weights, x)
    q = j.T + 0.3 * np.random.default_rng(seed).normal(size=j.T.shape)
    edges = np.cumsum([0] + cfg.layers[1:])
    weights.update({f"Q{l}": q[edges[l - 1]:edges[l]] for l in range(1, cfg.n_layers + 1)})
    assert np.min(np.linalg.eigvals(j @ q).real) > 0.5
    return weights


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_the_controller_settles_at_the_predicted_steady_state(backend):
    cfg = dfc.Config(layers=[3, 5, 4, 2], activation="linear", eta_w=0.0, t_pres=100.0)
    weights = stable_feedback(cfg, dfc.initial_weights(cfg, 0), X)
    net = dfc.build(cfg, weights)
    sim = TorchSimulator(net) if backend == "torch" else Brian2Simulator(net, target="numpy")
    run = sim.run(dfc.schedule(cfg, [X], [Y]))
    expected = dfc.steady_control(cfg, weights, X, Y)
    np.testing.assert_allclose(run.final_state["u.z"], expected, atol=1e-3)
    # the output sits at the label, off by e = alpha~ u_ss only
    np.testing.assert_allclose(Y - run.final_state["v3.z"], cfg.alpha_tilde * expected, atol=1e-6)
    assert np.linalg.norm(expected) > 0.3  # a real error was controlled


def test_a_tanh_network_settles_at_the_linearised_steady_state():
    """u_ss is the linearisation at the feed-forward state: exact for a small error."""
    cfg = dfc.Config(layers=[3, 5, 4, 2], activation="tanh", eta_w=0.0, t_pres=100.0)
    weights = stable_feedback(cfg, dfc.initial_weights(cfg, 0), X)
    y = dfc.forward(cfg, weights, X)[0] + np.array([0.02, -0.01])
    run = TorchSimulator(dfc.build(cfg, weights)).run(dfc.schedule(cfg, [X], [y]))
    expected = dfc.steady_control(cfg, weights, X, y)
    np.testing.assert_allclose(run.final_state["u.z"], expected, atol=1e-3 * np.linalg.norm(expected) * 10)


def test_with_strong_feedback_the_output_sits_at_the_label_while_control_falls():
    """Teacher-student 4-8-2 (minibatches of 4): at the end of every presentation the
    output is at the label (|e| = alpha~ |u|, below 3 % of the feed-forward error), and
    the control ||Q u||^2 it takes falls over training."""
    cfg = dfc.Config(layers=[4, 8, 2], eta_w=0.02, q_start="transpose", init_q=1.0, tau_u=1.0, t_pres=10.0)
    weights = dfc.initial_weights(cfg, 0)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (100, 4))
    teacher = dfc.initial_weights(dfc.Config(layers=[4, 8, 2], init_w=2.0), 9)
    y = dfc.forward(cfg, teacher, x)
    control, error = [], []
    for epoch in range(4):
        run = TorchSimulator(dfc.build(cfg, weights), samples=4).run(
            dfc.schedule(cfg, x, y, batch=4), Recording({"e": ["z"], "a1": ["z"], "a2": ["z"]}, dt=cfg.t_pres))
        weights.update(run.final_weights)
        ends = slice(1, None)  # record k + 1: the end of presentation k
        control.append(np.mean(np.sum(run.traces["a1.z"].values[ends] ** 2, -1)
                               + np.sum(run.traces["a2.z"].values[ends] ** 2, -1)))
        error.append(np.max(np.abs(run.traces["e.z"].values[ends])))
    delta = np.abs(y - dfc.forward(cfg, dfc.initial_weights(cfg, 0), x)).mean()
    assert max(error) < 0.03 * delta, (error, delta)
    assert control[-1] < 0.5 * control[0], control


def test_without_control_switching_samples_teaches_nothing():
    """The basal prediction b_l is filtered like the soma, so f(v_l) - f(b_l) is the
    low-passed apical input alone: with Q = 0 no weight moves, however often the sample
    changes (an unfiltered b_l would learn the soma's lag v_l(old) - b_l(new) at every
    switch). With Q, the same samples teach."""
    cfg = dfc.Config(layers=[3, 5, 2], eta_w=0.05, t_pres=2.0, tau_u=1.0, q_start="transpose", init_q=1.0)
    x = np.random.default_rng(0).uniform(-1, 1, (20, 3))
    y = np.random.default_rng(1).uniform(-1, 1, (20, 2))
    moved = {}
    for q_start in ("zero", "transpose"):
        weights = dfc.initial_weights(cfg, 0)
        if q_start == "zero":
            weights.update({k: np.zeros_like(v) for k, v in weights.items() if k.startswith("Q")})
        run = TorchSimulator(dfc.build(cfg, weights)).run(dfc.schedule(cfg, x, y))
        moved[q_start] = max(np.abs(run.final_weights[k] - weights[k]).max() for k in ("W1", "W2"))
    assert moved["zero"] < 1e-12 and moved["transpose"] > 1e-2, moved


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_settled_learning_is_the_steady_state_update(backend):
    """settle: each sample is shown with plasticity off, then on; the change is then
    eta_w t_pres Q_l u_ss r_{l-1}^T with the controlled rates (linear layers: v_l = W_l r_{l-1}
    + Q_l u_ss exactly)."""
    cfg = dfc.Config(layers=[3, 5, 2], activation="linear", eta_w=1e-3, t_pres=20.0, tau_u=1.0, settle=True)
    weights = stable_feedback(cfg, dfc.initial_weights(cfg, 0), X)
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3))
    y = np.random.default_rng(3).uniform(-1, 1, (2, 2))
    net = dfc.build(cfg, weights)
    sim = TorchSimulator(net) if backend == "torch" else Brian2Simulator(net, target="numpy")
    run = sim.run(dfc.schedule(cfg, x, y))
    expected = {"W1": 0.0, "W2": 0.0}
    for xx, yy in zip(x, y):
        u = dfc.steady_control(cfg, weights, xx, yy)
        r1 = weights["W1"] @ xx + weights["Q1"] @ u
        expected["W1"] = expected["W1"] + np.outer(weights["Q1"] @ u, xx)
        expected["W2"] = expected["W2"] + np.outer(weights["Q2"] @ u, r1)
    for k in ("W1", "W2"):
        change = run.final_weights[k] - weights[k]
        np.testing.assert_allclose(change, cfg.eta_w * cfg.t_pres * expected[k], rtol=0.02,
                                   atol=0.02 * np.abs(change).max())


def damped_pinv_angle(cfg, weights, x):
    """angle(Q, mean over samples of J^T (J J^T + alpha~ I)^-1), degrees."""
    target = []
    for xx in x:
        j = dfc.jacobian(cfg, weights, xx)
        target.append(j.T @ np.linalg.inv(j @ j.T + cfg.alpha_tilde * np.eye(len(j))))
    return angle_deg(dfc.feedback_matrix(cfg, weights), np.mean(target, 0))


def test_feedback_learned_from_noise_turns_towards_the_damped_pseudo_inverse():
    """No output error (targets = the network's own output): noise in the apical
    compartments alone teaches Q. From a random start (~100 deg) Q turns towards
    J^T (J J^T + alpha~ I)^-1; without noise it does not."""
    angles = {}
    for sigma in (0.1, 0.0):
        cfg = dfc.Config(layers=[4, 8, 3], eta_w=0.0, eta_q=0.5, sigma=sigma, tau_noise=5.0, tau_u=0.3)
        weights = dfc.initial_weights(cfg, 0)
        x = np.random.default_rng(1).uniform(-1, 1, (200, 4))
        start = damped_pinv_angle(cfg, weights, x[:50])
        for epoch in range(2):
            run = TorchSimulator(dfc.build(cfg, weights), seed=epoch, samples=8).run(
                dfc.schedule(cfg, x, dfc.forward(cfg, weights, x), batch=8))
            weights.update(run.final_weights)
        angles[sigma] = (start, damped_pinv_angle(cfg, weights, x[:50]))
    assert angles[0.1][0] > 90 and angles[0.1][1] < 70, angles  # measured: 100.6 -> 56.9
    assert abs(angles[0.0][1] - angles[0.0][0]) < 5, angles


@pytest.mark.slow
def test_digits_within_3_points_of_backprop():
    train, test = datasets.digits(seed=0)
    cfg = dfc.Config(layers=[64, 64, 10], eta_w=0.04, q_start="transpose", init_q=1.0, tau_u=1.0, settle=True,
                     t_pres=2.5, dt=0.05)
    weights = dfc.initial_weights(cfg, 0)
    bp = [weights["W1"], weights["W2"]]
    y = datasets.one_hot_targets(train.labels, 10, 1.0, 0.0)
    rng = np.random.default_rng(0)
    for epoch in range(6):
        order = rng.permutation(len(train.x))
        run = TorchSimulator(dfc.build(cfg, weights), samples=16).run(
            dfc.schedule(cfg, train.x[order], y[order], batch=16))
        weights.update(run.final_weights)
        bp = baselines.train(bp, train.x[order], y[order], "tanh", "linear", "bp", cfg.eta_w * cfg.t_pres, 0, 16)
    acc = np.mean(np.argmax(dfc.forward(cfg, weights, test.x), 1) == test.labels)
    acc_bp = np.mean(np.argmax(feedforward(bp, test.x, "tanh", "linear")[-1], 1) == test.labels)
    assert acc > acc_bp - 0.03, (acc, acc_bp)


def test_a_sleep_phase_aligns_q_with_the_jacobian_while_w_stays():
    """The sleep phase (dfc.sleep_config): W frozen, targets the network's own outputs,
    apical noise teaches Q where the controller has settled. A linear 4-8-3 network (J
    constant) from a stable but poorly aligned Q: after one phase of 200 samples the
    condition ratio ||J^T (J J^T)^-1 J Q|| / ||Q|| is near 1 and J Q more stable than
    before; without noise only the controller's ringing after each switch of sample moves
    Q, a little. (Learning also in the switch transient shrank Q to the edge of
    stability: ||Q|| 1.77 -> 0.47, min eig(J Q) 0.48 -> 0.05.)"""
    ends = {}
    for sigma in (0.1, 0.0):
        cfg = dfc.Config(layers=[4, 8, 3], activation="linear", tau_u=1.0, sleep_sigma=sigma, sleep_eta_q=0.5,
                         tau_noise=5.0)
        weights = dfc.initial_weights(cfg, 0)
        rng = np.random.default_rng(2)
        back = weights["W2"].T
        weights["Q1"] = 0.3 * back + rng.normal(0, 0.5 / np.sqrt(3), back.shape)
        weights["Q2"] = 0.3 * np.eye(3) + rng.normal(0, 0.5 / np.sqrt(3), (3, 3))
        x = rng.uniform(-1, 1, (200, 4))
        start = dfc.epoch_metrics(cfg, weights, x)
        sleep = dfc.sleep_config(cfg)
        run = TorchSimulator(dfc.build(sleep, weights), seed=0, samples=8).run(
            dfc.schedule(sleep, x, dfc.forward(cfg, weights, x), batch=8))
        assert np.array_equal(run.final_weights["W1"], weights["W1"])
        weights.update(run.final_weights)
        ends[sigma] = dfc.epoch_metrics(cfg, weights, x)
    print(start, ends)
    assert start["jq_min_real_eig"] > 0 and start["q_condition_ratio"] < 0.7  # measured 0.48, 0.68
    assert ends[0.1]["q_condition_ratio"] > 0.95 and ends[0.1]["jq_min_real_eig"] > start["jq_min_real_eig"]  # 0.97, 0.53
    assert ends[0.0]["q_condition_ratio"] < 0.75  # 0.72


def test_the_runner_runs_the_sleep_phases_before_the_epochs(tmp_path):
    """network.sleep_init_epochs / sleep_epochs: the runner trains Q in sleep phases (W
    untouched there), then the epoch; with none, Q keeps its start when eta_q = 0."""
    from microcircuits.rate_runner import run

    config = {"model": "dfc", "network": {"layers": [4, 8, 2], "activation": "linear", "q_start": "transpose",
                                          "init_q": 1.0, "eta_w": 0.0, "t_pres": 2.0, "sleep_init_epochs": 1,
                                          "sleep_epochs": 1},
              "task": {"name": "teacher_student", "epochs": 2, "n_train": 32, "n_test": 16,
                       "teacher_activation": ["linear", "linear"]},
              "run": {"backend": "torch", "batch": 8}}
    slept = run(config, tmp_path / "slept", log=lambda *a: None)
    awake = run({**config, "network": {**config["network"], "sleep_init_epochs": 0, "sleep_epochs": 0}},
                tmp_path / "awake", log=lambda *a: None)
    assert len(slept["final"]["q_norm"]) == 3  # before training and after each epoch
    assert len(set(slept["final"]["q_norm"])) == 3 and len(set(awake["final"]["q_norm"])) == 1
    w_slept, w_awake = np.load(tmp_path / "slept" / "weights.npz"), np.load(tmp_path / "awake" / "weights.npz")
    np.testing.assert_array_equal(w_slept["W1"], w_awake["W1"])


def test_the_paper_codes_start_of_q():
    cfg = dfc.Config(layers=[64, 200, 10], q_start="xavier")
    weights = dfc.initial_weights(cfg, 0)
    np.testing.assert_array_equal(weights["Q2"], np.eye(10))
    assert weights["Q1"].std() == pytest.approx(np.sqrt(2 / 210), rel=0.05)
    with pytest.raises(ValueError, match="q_start must be one of"):
        dfc.Config(q_start="eye")


def test_q_learning_while_w_learns_needs_a_high_pass_shorter_than_a_presentation():
    """Q and W learning at once (examples/dfc_digits_q_and_w.toml): Q learns from u_hp, u
    minus its low-pass. With 2.5 ms presentations and the default tau_hp = 10 ms, u_hp in
    the learning half of a minibatch still carries much of the sample's steady control
    (the error, not the noise): without noise one epoch moves Q by 88 % of its norm (54 %
    at tau_hp = 1 ms), and with noise and W learning the 4-8-3 tanh net diverges within
    20 ms; at 1 ms it trains two epochs with J Q stable after each (measured min eig 0.04,
    0.43)."""
    def config(tau_hp, sigma, eta_w):
        return dfc.Config(layers=[4, 8, 3], activation="tanh", tau_u=1.0, sigma=sigma, eta_q=0.5, eta_w=eta_w,
                          tau_noise=5.0, tau_hp=tau_hp, settle=True, t_pres=2.5, q_start="xavier")

    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (400, 4))
    y = dfc.forward(config(1.0, 0.0, 0.0), dfc.initial_weights(config(1.0, 0.0, 0.0), 7), x)  # a teacher's
    moved = {}
    for tau_hp in (1.0, 10.0):
        cfg = config(tau_hp, 0.0, 0.0)
        weights = dfc.initial_weights(cfg, 0)
        run = TorchSimulator(dfc.build(cfg, weights), seed=0, samples=8).run(dfc.schedule(cfg, x[:200], y[:200], 8))
        moved[tau_hp] = np.linalg.norm(np.concatenate([run.final_weights[q] - weights[q] for q in ("Q1", "Q2")])) \
            / np.linalg.norm(np.concatenate([weights["Q1"], weights["Q2"]]))
    assert moved[10.0] > 1.4 * moved[1.0], moved
    y = 2 * y
    cfg = config(10.0, 0.1, 0.04)
    with pytest.raises(DivergenceError):
        TorchSimulator(dfc.build(cfg, dfc.initial_weights(cfg, 0)), seed=0, samples=8).run(dfc.schedule(cfg, x, y, 8))
    cfg = config(1.0, 0.1, 0.04)
    weights = dfc.initial_weights(cfg, 0)
    for epoch in range(2):
        run = TorchSimulator(dfc.build(cfg, weights), seed=epoch, samples=8).run(dfc.schedule(cfg, x, y, 8))
        weights.update(run.final_weights)
        assert dfc.epoch_metrics(cfg, weights, x[:50])["jq_min_real_eig"] > 0
