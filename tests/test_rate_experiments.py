"""The rate-circuit experiment runner (microcircuits.rate_runner): every model on a
tiny task, the summary's keys, the backends alike, the MLP baseline against
baselines.train, config errors and the CLI."""
import json

import numpy as np
import pytest

from microcircuits import baselines, rate_models
from microcircuits.rate_runner import MLPConfig, load_rate_task
from microcircuits.runners import make_config, run_experiment
from neurosim.recording import SUMMARY_KEYS, read_results

DENDRITIC_KEYS = {"model", "rule", "backend", "target", "replicas", "seed", "task", "sim_time_ms", "wall_time_s",
                  "steps_per_s", "final"}
YINYANG = {"name": "yinyang", "n_train": 40, "n_test": 20, "target_on": 1.0, "target_off": 0.0, "epochs": 2}
CONFIGS = {
    "energy": {"network": {"layers": [4, 6, 3], "activation": "tanh", "eta": 0.2, "t_pres": 1.0, "dt": 0.05},
               "task": YINYANG},
    "dfc": {"network": {"layers": [4, 6, 3], "q_start": "transpose", "init_q": 1.0, "tau_u": 0.3, "t_pres": 1.0,
                        "dt": 0.05, "eta_w": 0.05}, "task": YINYANG},
    "inversion": {"network": {"layers": [5, 4, 2], "eta": 0.05, "t_pres": 1.0, "dt": 0.02},
                  "task": {"name": "teacher_student", "n_train": 40, "n_test": 20, "epochs": 2, "teacher_init": 1.0}},
    "mlp": {"network": {"layers": [4, 6, 3], "eta": 0.2}, "task": YINYANG},
}


def _run(model, out, run=None, **sections):
    config = {"model": model, **{k: dict(v) for k, v in CONFIGS[model].items()},
              "run": {"backend": "torch", **(run or {})}}
    for section, values in sections.items():
        config[section] = {**config[section], **values}
    return run_experiment(config, out, log=lambda *a: None)


@pytest.mark.parametrize("model", ["energy", "dfc", "inversion", "mlp"])
def test_each_model_trains_and_writes_the_dendritic_summary_keys(model, tmp_path):
    summary = _run(model, tmp_path, run={"batch": 4} if model == "dfc" else None)
    assert set(summary) == DENDRITIC_KEYS and set(SUMMARY_KEYS) <= set(summary)
    assert json.loads((tmp_path / "summary.json").read_text()) == {"status": "complete", **summary}
    for name in ("weights.npz", "curve.png", "results.h5"):
        assert (tmp_path / name).stat().st_size > 0
    final = summary["final"]
    assert len(final["curve"]) == 3  # before training and after each of 2 epochs
    assert summary["model"] == model and summary["replicas"] == 1 and summary["seed"] == 0
    if model == "inversion":
        assert "test_accuracy" not in final and final["curve"][-1] == final["mse"] < final["curve"][0]
    else:
        assert final["curve"][-1] == final["test_accuracy"] and 0 <= final["test_accuracy"] <= 1
    weights = np.load(tmp_path / "weights.npz")
    assert weights["W1"].shape == (CONFIGS[model]["network"]["layers"][1], CONFIGS[model]["network"]["layers"][0])
    metrics = read_results(tmp_path / "results.h5")["metrics"]
    np.testing.assert_allclose(metrics["test_mse"].values[-1], final["mse"])
    if model != "mlp":
        assert summary["backend"] == "torch" and summary["target"] == "cpu/float64"
        assert summary["sim_time_ms"] > 0 and summary["steps_per_s"] > 0


@pytest.mark.parametrize("model", ["energy", "inversion"])
def test_brian2_numpy_matches_torch(model, tmp_path):
    one = {"epochs": 1}
    torch_run = _run(model, tmp_path / "torch", task=one)
    brian2_run = _run(model, tmp_path / "brian2", run={"backend": "brian2", "target": "numpy"}, task=one)
    assert brian2_run["backend"] == "brian2" and brian2_run["target"] == "numpy"
    assert brian2_run["sim_time_ms"] == torch_run["sim_time_ms"]
    np.testing.assert_allclose(brian2_run["final"]["curve"], torch_run["final"]["curve"], rtol=1e-6)
    a, b = np.load(tmp_path / "torch" / "weights.npz"), np.load(tmp_path / "brian2" / "weights.npz")
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-9)


def test_mlp_equals_baselines_train_on_the_same_data_order(tmp_path):
    """Same initial weights (forward_weights), the per-epoch permutation from
    default_rng(seed), minibatches of run.batch: the runner is baselines.train."""
    seed, batch = 3, 4
    config = {"model": "mlp", "network": {"layers": [4, 6, 3], "eta": 0.2, "rule": "bp"}, "task": YINYANG,
              "run": {"seed": seed, "batch": batch}}
    summary = run_experiment(config, tmp_path, log=lambda *a: None)
    cfg = MLPConfig(layers=[4, 6, 3], eta=0.2)
    task = load_rate_task(make_config(config)["task"], cfg, seed)
    weights = list(rate_models.forward_weights(cfg.layers, seed, cfg.init_w).values())
    rng, curve = np.random.default_rng(seed), []
    for epoch in range(3):
        out = rate_models.feedforward(weights, task.test_x, "tanh", "linear")[-1]
        curve.append(float(np.mean(np.argmax(out, axis=1) == task.test_labels)))
        if epoch < 2:
            order = rng.permutation(len(task.train_x))
            weights = baselines.train(weights, task.train_x[order], task.train_y[order], "tanh", "linear", "bp", 0.2,
                                      seed, batch)
    saved = np.load(tmp_path / "weights.npz")
    for l, w in enumerate(weights, start=1):
        np.testing.assert_array_equal(saved[f"W{l}"], w)
    assert summary["final"]["curve"] == curve
    assert summary["rule"] == "bp" and summary["backend"] == "numpy"


def test_epoch_metrics_hook_lands_in_final_as_lists(tmp_path, monkeypatch):
    from microcircuits import inversion

    monkeypatch.setattr(inversion, "epoch_metrics", lambda cfg, w, x: {"norm_W1": float(np.linalg.norm(w["W1"]))},
                        raising=False)
    summary = _run("inversion", tmp_path, task={"epochs": 1})
    norms = summary["final"]["norm_W1"]
    assert len(norms) == 2 and norms[1] == pytest.approx(np.linalg.norm(np.load(tmp_path / "weights.npz")["W1"]))


@pytest.mark.parametrize("config, message", [
    ({"model": "hopfield"}, "unknown model 'hopfield'"),
    ({"model": "dfc", "network": {"layers": [4, 6, 3], "tau_z": 1.0}}, "unknown keys in [network]: ['tau_z']"),
    ({"model": "mlp", "network": {"momentum": 0.9}}, "unknown keys in [network]: ['momentum']"),
    ({"model": "mlp", "network": {"rule": "pal"}}, "rule must be one of"),
    ({"model": "energy", "run": {"backend": "brian2", "batch": 4}}, "run.batch = 4 needs run.backend = 'torch'"),
    ({"model": "energy", "run": {"batch": 0}}, "run.batch must be an integer >= 1, got 0"),
    ({"model": "energy", "run": {"backend": "brian2", "target": "c++"}}, "run.target must be one of"),
    ({"model": "energy", "run": {"bach": 2}}, "unknown keys in [run]: ['bach']"),
    ({"model": "inversion", "task": {"name": "alignment"}}, "task.name must be one of"),
    ({"model": "inversion", "task": {"t_pres": 2.0}}, "task.t_pres does not apply"),
    ({"model": "dfc", "run": {"backend": "torch", "replicas": 2}}, "run.replicas = 2"),
    ({"model": "dfc", "network": {"settle": "yes"}}, "settle must be true or false"),
    ({"model": "dfc", "task": {"name": "teacher_student", "teacher_activation": "tanh"}}, "task.teacher_activation"),
])
def test_config_errors_are_clear(config, message, tmp_path):
    with pytest.raises(ValueError) as err:
        run_experiment(config, tmp_path, log=lambda *a: None)
    assert message in str(err.value)


def test_dendritic_config_has_no_batch():
    """The dendritic runner's [run] is unchanged: batch belongs to the rate models."""
    with pytest.raises(ValueError, match=r"unknown keys in \[run\]: \['batch'\]"):
        make_config({"run": {"batch": 2}})
    run = make_config({"model": "energy"})["run"]
    assert run["batch"] == 1 and run["backend"] == "brian2" and run["target"] == "cpp_standalone"


def test_cli_runs_a_rate_model(tmp_path, capsys):
    from microcircuits.cli import main

    config = tmp_path / "energy.toml"
    config.write_text('model = "energy"\n[network]\nlayers = [4, 6, 3]\nactivation = "tanh"\nt_pres = 1.0\n'
                      'dt = 0.05\n[task]\nname = "yinyang"\nepochs = 1\nn_train = 20\nn_test = 10\ntarget_on = 1.0\n'
                      'target_off = 0.0\n[run]\nbackend = "torch"\nbatch = 2\n')
    assert main(["run", str(config), "--seed", "2", "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["seed"] == 2 and summary["rule"] == "prospective" and len(summary["final"]["curve"]) == 2
    assert "energy/prospective seed 2 on torch" in capsys.readouterr().out
    assert main(["run", str(config), "--backend", "brian2", "--out", str(tmp_path / "bad")]) == 2
    assert "needs run.backend = 'torch'" in capsys.readouterr().err
