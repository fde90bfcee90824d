"""The spiking dendritic neuron (neurosim.models.dendritic.SpikingDendriticNeuron,
docs/equations.md section 1b): Brian2 and torch fire the same spikes and learn the same
weights from the same draws; the recorded states replay through the documented
equations; the spike-based dendritic prediction rule changes a weight on average as the
rate rule does."""
import numpy as np
import pytest

from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.models.dendritic import DendriticNeuron, SpikingDendriticNeuron, output_pyramidal
from neurosim.models.rate import Input
from neurosim.network import Network, Population, Projection
from neurosim.recording import Recording
from neurosim.rules import DendriticPrediction
from neurosim.schedule import Schedule

PRESENTATIONS, T_PRES, DT = 4, 10.0, 0.1
STEPS = int(PRESENTATIONS * T_PRES / DT)
SPIKING = ("P1", "P2", "I1")


def _circuit(pal_noise="ou"):
    """3-4-2 spiking microcircuit, PAL feedback with OU noise (or from the spike noise),
    every projection learning, random lateral weights (so that every rule and signal is
    exercised)."""
    cfg = MicrocircuitConfig(layers=[3, 4, 2], neuron="spiking", feedback="pal", sigma=0.1 * (pal_noise == "ou"),
                             eta_fw=0.1, eta_ip=0.1, eta_pi=0.1, eta_bw=0.5, r_max=0.5, tau_s=3.0, dt=DT,
                             sps="random", pal_noise=pal_noise)
    return build(cfg, initial_weights(cfg, 1))


def _draws(seed=0, ou=True):
    rng = np.random.default_rng(seed)
    draws = {"P1": rng.standard_normal((STEPS, 4))} if ou else {}
    draws.update({f"{p}.spikes": rng.uniform(0, 1, (STEPS, n)) for p, n in (("P1", 4), ("P2", 2), ("I1", 2))})
    return draws


def _schedule(seed=0):
    rng = np.random.default_rng(seed)
    return Schedule(t_pres=T_PRES, data={"x": rng.uniform(0, 1, (PRESENTATIONS, 3)),
                                         "P2.target": rng.uniform(0, 1, (PRESENTATIONS, 2))})


RECORDING = Recording({"P1": ["u", "u_breve", "r", "psp", "ou"], "I1": ["u_breve", "r", "psp"]}, dt=DT,
                      spikes=list(SPIKING), weights=["W1", "W2", "B1", "WIP1", "BPI1"], weights_dt=1.0)


def _events(train):
    return sorted(zip(np.round(train.times / DT).astype(int).tolist(), train.indices.tolist()))


@pytest.fixture(scope="module")
def runs():
    net, draws = _circuit(), _draws()
    torch_run = TorchSimulator(net, noise=draws).run(_schedule(), RECORDING)
    brian2_run = Brian2Simulator(net, target="numpy", noise=draws).run(_schedule(), RECORDING)
    return net, draws, torch_run, brian2_run


def test_brian2_and_torch_fire_the_same_spikes_and_learn_the_same_weights(runs):
    _, _, t, b = runs
    for pop in SPIKING:
        assert len(t.spikes[pop].times) > 10, pop  # the test sees spikes in every population
        assert _events(t.spikes[pop]) == _events(b.spikes[pop]), pop
    for name, w in t.final_weights.items():
        np.testing.assert_allclose(w, b.final_weights[name], rtol=0, atol=1e-12, err_msg=name)
    for key in ("P1.u", "P1.psp", "P1.ou", "I1.psp"):
        np.testing.assert_allclose(t.traces[key].values, b.traces[key].values, rtol=0, atol=1e-12, err_msg=key)


def test_pal_from_spike_noise_is_the_same_on_both_backends():
    """PAL correlating psp - phi(u_breve) of its target (no OU noise): same spikes and B."""
    net, draws = _circuit("spikes"), _draws(ou=False)
    assert net.population("P1").noise is None
    recording = Recording(spikes=["P1", "P2"], weights=["B1"], weights_dt=10.0)
    t = TorchSimulator(net, noise=draws).run(_schedule(), recording)
    b = Brian2Simulator(net, target="numpy", noise=draws).run(_schedule(), recording)
    assert _events(t.spikes["P1"]) == _events(b.spikes["P1"])
    b_start = t.traces["w:B1"].values[0]
    assert np.abs(t.final_weights["B1"] - b_start).max() > 1e-3  # the rule learns
    np.testing.assert_allclose(t.final_weights["B1"], b.final_weights["B1"], rtol=0, atol=1e-12)


def test_pal_from_spike_noise_needs_spiking_neurons():
    with pytest.raises(ValueError, match='pal_noise = "spikes" needs neuron = "spiking"'):
        MicrocircuitConfig(layers=[3, 4, 2], feedback="pal", pal_noise="spikes")
    with pytest.raises(ValueError, match="pal_noise must be one of"):
        MicrocircuitConfig(layers=[3, 4, 2], feedback="pal", neuron="spiking", pal_noise="white")


@pytest.mark.parametrize("backend", [2, 3], ids=["torch", "brian2"])
def test_recorded_states_replay_through_the_escape_noise_and_psp_equations(runs, backend):
    """s(n) = [w(n) < r_max dt phi(u_breve(n))], psp(n) = (1 - dt/tau_s) psp(n-1) +
    s(n)/(r_max tau_s), with the state at t = n dt recorded after step n; the spike of
    step n is recorded at t = n dt. A wrong threshold factor, jump, decay or a one-step
    shift of the draws fails."""
    net, draws, result = runs[0], runs[1], runs[backend]
    for pop in ("P1", "I1"):
        model = net.population(pop).model
        r, psp = result.traces[f"{pop}.r"].values, result.traces[f"{pop}.psp"].values
        fired = np.zeros((STEPS + 1, psp.shape[1]))
        for n, i in _events(result.spikes[pop]):
            fired[n, i] = 1
        n = np.arange(1, len(r))  # state n is the one after the step that drew w(n - 1)
        expected = draws[f"{pop}.spikes"][n - 1] < model.r_max * DT * r[n]
        np.testing.assert_array_equal(fired[n - 1], expected, err_msg=pop)
        jump = fired[n - 1] / (model.r_max * model.tau_s)
        np.testing.assert_allclose(psp[n], (1 - DT / model.tau_s) * psp[n - 1] + jump, rtol=0, atol=1e-12,
                                   err_msg=pop)


def _single(neuron, eta):
    """One output pyramid with a clamped input of 3 rates and its basal weights learning."""
    return Network([Population("x", 3, Input()), Population("P", 2, neuron)],
                   [Projection("W", "x", "P", "basal", np.full((2, 3), 0.4), DendriticPrediction(eta))], dt=DT)


def test_spike_rule_changes_the_weight_on_average_as_the_rate_rule():
    """dW/dt = eta (s/(r_max dt) - phi(vhat)) x^T: over many independent draws its mean
    equals the rate rule's eta (phi(u_breve) - phi(vhat)) x^T for the same potentials (the
    weights move too little here to change them), within 4 standard errors; a rule
    missing the 1/(r_max dt) would be off by a factor of about 1/r_max dt."""
    replicas, eta, r_max = 64, 1e-4, 2.0
    schedule = Schedule(t_pres=1000.0, data={"x": np.array([[0.2, 0.6, 1.0]]), "P.target": np.array([[0.9, 0.1]])})
    out = output_pyramidal(g_tgt=0.06)
    rate = TorchSimulator(_single(out, eta)).run(schedule).final_weights["W"]
    spiking = SpikingDendriticNeuron(out.g_l, out.dendrites, out.nudging, r_max=r_max, tau_s=3.0)
    runs = TorchSimulator([_single(spiking, eta)] * replicas, seed=list(range(replicas))).run_replicas(schedule)
    change = np.stack([r.final_weights["W"] for r in runs]) - 0.4
    mean, sem = change.mean(0), change.std(0, ddof=1) / np.sqrt(replicas)
    assert np.all(np.abs(rate - 0.4) > 10 * sem)  # the rate rule's change is well resolved
    np.testing.assert_array_less(np.abs(mean - (rate - 0.4)), 4 * sem + 1e-12)


def test_spiking_neuron_refuses_what_it_cannot_fire():
    with pytest.raises(ValueError, match="activation 'relu' is not a rate in"):
        SpikingDendriticNeuron(0.03, {"basal": 0.1}, activation="relu")
    with pytest.raises(ValueError, match="r_max must be a finite number > 0"):
        SpikingDendriticNeuron(0.03, {"basal": 0.1}, r_max=0.0)
    fast = SpikingDendriticNeuron(0.03, {"basal": 0.1}, {"target": 0.06}, r_max=20.0)
    with pytest.raises(ValueError, match="r_max dt must be <= 1"):
        TorchSimulator(_single(fast, 0.1))
    rate = _single(DendriticNeuron(0.03, {"basal": 0.1}, {"target": 0.06}), 0.1)
    with pytest.raises(ValueError, match="noise given for P.spikes, which is not a stream it draws from"):
        TorchSimulator(rate, noise={"P.spikes": np.zeros((10, 2))})
    with pytest.raises(ValueError, match="noise given for P.spikes"):
        Brian2Simulator(rate, target="numpy", noise={"P.spikes": np.zeros((10, 2))})


def test_the_readout_of_a_spiking_circuit_averages_each_presentations_second_half():
    from microcircuits.dendritic_runner import presentation_readout
    from neurosim.recording import Trace

    values = np.arange(31.0)[:, None] * [1.0, -1.0]  # 3 presentations x 10 records, and t = 0
    # presentation 1 ends at record 20: the mean of records 16 .. 20
    trace = Trace(np.arange(31) * 0.1, values)
    np.testing.assert_allclose(presentation_readout(trace, 1, 2, 10), [[18.0, -18.0], [28.0, -28.0]])
    ends = Trace(np.arange(4.0), np.arange(4.0)[:, None])  # one record per presentation: its end
    np.testing.assert_allclose(presentation_readout(ends, 0, 3, 1), [[1.0], [2.0], [3.0]])


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_neurosim_run_trains_the_spiking_microcircuit(tmp_path, backend):
    """The Yin-Yang spiking config, shortened, through the CLI: results, metrics from the
    averaged readout, spike-driven weight changes in every learning projection."""
    import json

    from microcircuits.cli import main
    from neurosim.recording import read_results

    out = tmp_path / backend
    assert main(["run", "examples/yinyang_spiking_microcircuit.toml", "--backend", backend, "--set", "task.epochs=1",
                 "--set", "task.n_train=6", "--set", "task.n_test=3", "--set", "task.t_pres=10.0",
                 "--set", 'run.target="numpy"', "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sim_time_ms"] == 120.0 and 0.0 <= summary["final"]["test_accuracy"] <= 1.0
    results = read_results(out / "results.h5")
    assert len(results["metrics"]["test_accuracy"].values) == 2  # before and after the epoch
    for name in ("W1", "W2", "B1", "WIP1", "BPI1"):
        w = results["traces"][f"w:{name}"].values
        assert np.abs(w[-1] - w[0]).max() > 0, name


@pytest.mark.parametrize("feedback", ["bp", "fa"])
def test_mean_field_apical_mismatch_is_the_rate_circuits_steady_state(feedback):
    """metrics.mean_field_apical against the rate circuit simulated to its steady state
    (torch), with random lateral weights; zero in the self-predicting state."""
    from microcircuits.metrics import mean_field_apical

    cfg = MicrocircuitConfig(layers=[3, 5, 4, 2], feedback=feedback, sps="random", init_w=1.0, dt=0.1)
    weights = initial_weights(cfg, 3)
    x = np.random.default_rng(4).uniform(0, 1, (3, 3))
    schedule = Schedule(200.0, {"x": x, "P3.target": np.zeros((3, 2))}, {"P3.target": np.zeros(3)})
    result = TorchSimulator(build(cfg, weights)).run(schedule, Recording({"P1": ["v_apical"], "P2": ["v_apical"]},
                                                                         dt=200.0))
    expected = mean_field_apical(cfg, weights, x)
    for l in (1, 2):
        assert np.abs(expected[l - 1]).max() > 0.1
        np.testing.assert_allclose(result.traces[f"P{l}.v_apical"].values[1:], expected[l - 1], atol=1e-8)
    cfg_set = MicrocircuitConfig(layers=[3, 5, 4, 2], feedback=feedback, sps="set", init_w=1.0)
    for v in mean_field_apical(cfg_set, initial_weights(cfg_set, 3), x):
        np.testing.assert_allclose(v, 0.0, atol=1e-12)


def test_mean_field_apical_says_when_the_loop_has_no_steady_state():
    from microcircuits.metrics import mean_field_apical

    cfg = MicrocircuitConfig(layers=[2, 3, 2], feedback="fa", activation="linear", sps="random")
    weights = {"W1": np.full((3, 2), 5.0), "W2": np.full((2, 3), 5.0), "B1": np.full((3, 2), 50.0),
               "WIP1": np.zeros((2, 3)), "BPI1": np.zeros((3, 2))}
    with pytest.raises(ValueError, match="did not settle"):
        mean_field_apical(cfg, weights, np.ones((1, 2)))


def _pal_angles(tmp_path, overrides, example="pal_alignment_spiking.toml", seconds=30):
    """angle(B_l, W_{l+1}^T) per hidden layer (layers x snapshots) of a spiking PAL example, shortened."""
    import tomllib
    from pathlib import Path

    from microcircuits.runners import run_experiment
    from microcircuits.sweep import variant_config
    from neurosim.recording import read_results

    toml = Path(__file__).resolve().parent.parent / "examples" / example
    short = {"task": {"epochs": seconds, "record_every": 100}}  # of the 300 s run
    config = variant_config(tomllib.loads(toml.read_text()), {**short, **overrides}, 0)
    out = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    run_experiment(config, out, log=lambda *a: None)
    metrics = read_results(out / "results.h5")["metrics"]
    return np.stack([metrics[f"angle_B{l}_W{l + 1}T"].values for l in (1, 2, 3)])


def test_pal_from_spike_noise_aligns_the_top_down_weights(tmp_path):
    """30 s of examples/pal_alignment_spiking.toml: every hidden layer's B turns from
    about 90 degrees towards W^T (the full 300 s reaches 24 - 31: docs/results.md); without
    B learning it stays. A wrong sign of the noise or of the rule turns B away instead."""
    a = _pal_angles(tmp_path, {})
    assert np.all(np.abs(a[:, 0] - 90) < 10), a[:, 0]
    assert np.all(a[:, -1] < 55), a[:, -1]
    still = _pal_angles(tmp_path, {"network": {"eta_bw": 0.0}})
    np.testing.assert_allclose(still[:, -1], still[:, 0], atol=1e-9)


def test_pal_from_ou_noise_aligns_the_top_down_weights_in_spiking_form(tmp_path):
    """20 s of examples/pal_alignment_spiking_ou.toml (OU noise on the apical compartments,
    as in the rate model): B turns from about 90 degrees to below 60 in every hidden layer
    (the full 300 s: docs/results.md); with sigma = 0 there is nothing to correlate and B
    keeps its direction."""
    a = _pal_angles(tmp_path, {}, "pal_alignment_spiking_ou.toml", 20)
    assert np.all(np.abs(a[:, 0] - 90) < 10), a[:, 0]
    assert np.all(a[:, -1] < 60), a[:, -1]
    quiet = _pal_angles(tmp_path, {"network": {"sigma": 0.0}}, "pal_alignment_spiking_ou.toml", 20)
    np.testing.assert_allclose(quiet[:, -1], quiet[:, 0], atol=1e-6)
