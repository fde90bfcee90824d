"""Engine pieces: seeded OU noise, the results file, the CLI."""
import json

import numpy as np
import pytest

from microcircuits.cli import main
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.config import parse_set
from neurosim.network import Network, Population, Projection
from neurosim.models.dendritic import pyramidal
from neurosim.models.rate import Input
from neurosim.noise import OUNoise
from neurosim.recording import SUMMARY_KEYS, Recording, read_results
from neurosim.schedule import Schedule


def _noisy_network(sigma=0.5, tau=2.0):
    pops = [Population("x", 1, Input()),
            Population("P", 200, pyramidal(activation="linear"), noise=OUNoise("apical", sigma, tau))]
    return Network(pops, [Projection("W", "x", "P", "basal", np.zeros((200, 1)))], dt=0.1)


def _noise_run(seed):
    schedule = Schedule(1.0, {"x": np.zeros((200, 1))})
    result = Brian2Simulator(_noisy_network(), target="numpy", seed=seed).run(
        schedule, Recording({"P": ["ou", "v_apical"]}, dt=1.0))
    return result.traces["P.ou"].values


def test_ou_noise_is_reproducible_from_its_seed_and_has_the_stationary_spread():
    a, b, c = _noise_run(1), _noise_run(1), _noise_run(2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    stationary = a[50:]  # after 25 tau
    assert stationary.std() == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    assert abs(stationary.mean()) < 0.02
    # correlation time tau = 2 ms: lag-1 ms autocorrelation exp(-1/2)
    lag = np.mean([np.corrcoef(stationary[:-1, i], stationary[1:, i])[0, 1] for i in range(200)])
    assert lag == pytest.approx(np.exp(-0.5), abs=0.05)


def test_noise_reaches_the_soma_through_the_apical_coupling():
    """u_breve = g_api (v_api + xi) / g_sum with no other input; v_api itself stays noise-free."""
    schedule = Schedule(1.0, {"x": np.zeros((5, 1))})
    result = Brian2Simulator(_noisy_network(), target="numpy").run(
        schedule, Recording({"P": ["ou", "v_apical", "u_breve"]}, dt=1.0))
    m = pyramidal()
    g_sum = m.g_l + sum(m.dendrites.values())
    ou = result.traces["P.ou"].values
    assert np.abs(ou[1:]).max() > 0.1
    np.testing.assert_allclose(result.traces["P.u_breve"].values, m.dendrites["apical"] / g_sum * ou, atol=1e-12)
    np.testing.assert_array_equal(result.traces["P.v_apical"].values, 0.0)


def test_parse_set_reads_toml_values():
    assert parse_set(["network.eta_fw=[1.0, 0.5]", "network.feedback=fa", "task.epochs=3"]) == {
        "network": {"eta_fw": [1.0, 0.5], "feedback": "fa"}, "task": {"epochs": 3}}


def test_cli_run_writes_results_summary_and_plots(tmp_path):
    config = tmp_path / "ts.toml"
    config.write_text("""
[network]
layers = [3, 6, 2]
dt = 0.1
eta_fw = [1.0, 0.5]
[task]
name = "teacher_student"
epochs = 2
n_train = 40
n_test = 10
[run]
target = "numpy"
""")
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--seed", "3", "--set", "network.feedback=fa"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary)
    assert (summary["rule"], summary["seed"], summary["backend"]) == ("fa", 3, "brian2")
    assert summary["sim_time_ms"] == pytest.approx((3 * 10 + 2 * 40) * 1.0)
    assert set(summary["final"]) >= {"mse", "angles_deg"}
    results = read_results(out / "results.h5")
    assert results["status"] == "complete"
    assert results["config"]["network"]["feedback"] == "fa"
    assert "brian2" in results["versions"] and "numpy" in results["versions"]
    assert len(results["metrics"]["test_mse"].times) == 3  # before training and after each epoch
    assert results["final_weights"]["W1"].shape == (6, 3)
    assert (out / "learning_curve.png").stat().st_size > 0 and (out / "apical_mismatch.png").exists()
