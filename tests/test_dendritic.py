"""The microcircuit on Brian2 reproduces the effects of docs/equations.md section 1."""
import numpy as np
import pytest

from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
from microcircuits.metrics import angle_deg, backprop_updates, feedforward
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.recording import Recording
from neurosim.schedule import Schedule


def _schedule(cfg, x, u_tgt=None, target_on=None, learn=None, t_pres=1.0):
    out = f"P{cfg.n_layers}"
    n = len(x)
    u_tgt = np.zeros((n, cfg.layers[-1])) if u_tgt is None else u_tgt
    target_on = np.zeros(n) if target_on is None else target_on
    return Schedule(t_pres, {"x": x, f"{out}.target": u_tgt}, {f"{out}.target": target_on}, learn)


@pytest.mark.parametrize("feedback", ["bp", "fa"])
def test_self_predicting_state_set_directly_silences_apical_dendrites(feedback):
    cfg = MicrocircuitConfig(layers=[5, 20, 10, 3], feedback=feedback, sps="set", init_w=1.0,
                             eta_fw=0.01, eta_ip=0.01, eta_pi=0.01)
    net = build(cfg, initial_weights(cfg, seed=1))
    x = np.random.default_rng(2).uniform(0, 1, (10, 5))
    hidden = {f"P{l}": ["v_apical", f"I_B{l}"] for l in (1, 2)}
    result = Brian2Simulator(net, target="numpy").run(_schedule(cfg, x), Recording(hidden, dt=1.0))
    for l in (1, 2):
        v_api = result.traces[f"P{l}.v_apical"].values[1:]  # end of every presentation
        top_down = result.traces[f"P{l}.I_B{l}"].values[1:]
        ratio = np.linalg.norm(v_api, axis=1) / np.linalg.norm(top_down, axis=1)
        assert np.all(ratio < 1e-3), f"P{l}: |v_api|/|B r| = {ratio.max():.2e}"


def test_self_predicting_state_is_learned():
    cfg = MicrocircuitConfig(layers=[4, 20, 10, 3], sps="random", init_w=1.0, dt=0.1,
                             eta_ip=0.1, eta_pi=0.1)
    net = build(cfg, initial_weights(cfg, seed=1))
    n = 4000
    x = np.random.default_rng(2).uniform(0, 1, (n, 4))
    learn = np.r_[np.zeros(10), np.ones(n - 10)]
    rec = Recording({"P1": ["v_apical"], "P2": ["v_apical"]}, dt=1.0)
    result = Brian2Simulator(net, target="cpp_standalone").run(_schedule(cfg, x, learn=learn), rec)
    for pop in ("P1", "P2"):
        mismatch = np.abs(result.traces[f"{pop}.v_apical"].values[1:]).mean(axis=1)
        before, after = mismatch[:10].mean(), mismatch[-10:].mean()
        assert after < before / 10, f"{pop}: apical mismatch {before:.3g} -> {after:.3g}"


def test_forward_updates_follow_backprop_near_the_self_predicting_state():
    cfg = MicrocircuitConfig(layers=[5, 20, 10, 3], feedback="bp", sps="set", init_w=1.0,
                             g_tgt=0.01, dt=0.1, eta_fw=1e-6)
    weights = initial_weights(cfg, seed=5)
    rng = np.random.default_rng(6)
    x, u_tgt = rng.uniform(0, 1, (3, 5)), rng.uniform(-1, 1, (3, 3))
    # each sample: one presentation to settle (learning off), one to learn
    xs, ys = np.repeat(x, 2, axis=0), np.repeat(u_tgt, 2, axis=0)
    learn = np.tile([0.0, 1.0], 3)
    rec = Recording({}, weights=["W1", "W2", "W3"], weights_dt=10.0)
    result = Brian2Simulator(build(cfg, weights), target="numpy").run(
        _schedule(cfg, xs, ys, np.ones(6), learn, t_pres=10.0), rec)
    w = [result.traces[f"w:W{l}"].values for l in (1, 2, 3)]  # rows: t = 0, 10, 20, ...
    angles = []
    for k in range(3):
        bp = backprop_updates(cfg, [w_l[2 * k + 1] for w_l in w], x[k], u_tgt[k])
        angles.append([angle_deg(w_l[2 * k + 2] - w_l[2 * k + 1], b) for w_l, b in zip(w, bp)])
    print("angles to backprop (deg), rows = samples, columns = layers:", np.round(angles, 2))
    assert np.all(np.array(angles) < 20)


def test_prospective_coding_settles_ten_times_sooner():
    def settle_time(prospective):
        cfg = MicrocircuitConfig(layers=[3, 8, 8, 2], prospective=prospective, sps="set", init_w=1.0, dt=0.1)
        x = np.random.default_rng(3).uniform(0, 1, (2, 3))
        result = Brian2Simulator(build(cfg, initial_weights(cfg, seed=4)), target="numpy").run(
            _schedule(cfg, x, t_pres=100.0), Recording({"P3": ["u_breve"]}, dt=0.1))
        trace = result.traces["P3.u_breve"]
        before, after = trace.values[trace.times <= 100.0][-1], trace.values[-1]
        progress = (trace.values - before) / (after - before)
        done = np.all(progress >= 0.9, axis=1) & (trace.times > 100.0)
        first = np.argmax(done & np.flip(np.cumprod(np.flip(done)).astype(bool)))
        return trace.times[first] - 100.0

    fast, slow = settle_time(True), settle_time(False)
    print(f"90% settling after an input step: {fast:.2f} ms prospective, {slow:.2f} ms without")
    assert fast * 10 <= slow


def _teacher_student(feedback):
    layers = [4, 10, 2]
    cfg = MicrocircuitConfig(layers=layers, feedback=feedback, sps="set", init_w=0.5, dt=0.1,
                             eta_fw=[3.0, 1.0], eta_ip=0.1, eta_pi=0.1)
    teacher = [initial_weights(MicrocircuitConfig(layers=layers, init_w=2.0), 99)[f"W{l}"] for l in (1, 2)]
    rng = np.random.default_rng(2)
    n_train, n_test = 3000, 50
    x_test = rng.uniform(0, 1, (n_test, 4))
    x = np.concatenate([x_test, rng.uniform(0, 1, (n_train, 4)), x_test])
    u_tgt = feedforward(cfg, teacher, x)[-1]
    phase = np.r_[np.zeros(n_test), np.ones(n_train), np.zeros(n_test)]  # test, train, test
    rec = Recording({"P2": ["u_breve"]}, dt=1.0)
    result = Brian2Simulator(build(cfg, initial_weights(cfg, seed=1)), target="cpp_standalone").run(
        _schedule(cfg, x, u_tgt, phase, phase), rec)
    out = result.traces["P2.u_breve"].values[1:]  # end of every presentation
    err = np.mean((out - u_tgt) ** 2, axis=1)
    return err[:n_test].mean(), err[-n_test:].mean()


def test_teacher_student_error_falls_tenfold_with_backprop_feedback():
    before, after = _teacher_student("bp")
    print(f"bp: test mse {before:.4f} -> {after:.5f}")
    assert after < before / 10


def test_teacher_student_error_falls_with_feedback_alignment():
    before, after = _teacher_student("fa")
    print(f"fa: test mse {before:.4f} -> {after:.5f}")
    assert after < before
