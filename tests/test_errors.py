"""Bad input stops with a message naming the field or value; a diverging run names the
population and the time and keeps what it recorded."""
import json
import warnings

import numpy as np
import pytest

from microcircuits.cli import main
from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
from microcircuits.runners import make_config, run_experiment
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.network import Network, Population, Projection
from neurosim.models.dendritic import pyramidal
from neurosim.models.rate import Input
from neurosim.recording import DivergenceError, Recording, read_results
from neurosim.schedule import Schedule


def test_unknown_config_keys_are_named():
    with pytest.raises(ValueError, match="epohcs"):
        make_config({"task": {"epohcs": 3}})
    with pytest.raises(ValueError, match="learning_rate"):
        make_config({"network": {"learning_rate": 1.0}})
    with pytest.raises(ValueError, match="trainer"):
        make_config({"trainer": {}})


def test_bad_run_settings_are_named():
    with pytest.raises(ValueError, match=r"run.backend must be one of \['brian2', 'torch'\], got 'nest'"):
        make_config({"run": {"backend": "nest"}})
    with pytest.raises(ValueError, match="run.replicas must be an integer >= 1, got 0"):
        make_config({"run": {"backend": "torch", "replicas": 0}})
    assert make_config({"run": {"replicas": 4}})["run"]["replicas"] == 4  # Brian2 runs them one after another


def test_cli_reports_config_errors_and_exits_2(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text('[network]\nlayers = [4, 30, 3]\ng_bas = -0.1\n')
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "g_bas" in capsys.readouterr().err


@pytest.mark.parametrize("field", ["g_l", "g_bas", "g_api", "g_den", "g_nI", "g_tgt"])
def test_negative_conductances_are_refused(field):
    with pytest.raises(ValueError, match=field):
        MicrocircuitConfig(**{field: -0.01})


def test_negative_conductance_in_a_neuron_model_is_refused():
    with pytest.raises(ValueError, match="g_apical"):
        pyramidal(g_api=-1.0)


def test_weights_that_do_not_fit_the_layer_sizes_are_refused():
    cfg = MicrocircuitConfig(layers=[4, 30, 3])
    weights = initial_weights(cfg, 0)
    weights["W2"] = np.zeros((3, 20))
    with pytest.raises(ValueError, match=r"W2.*\(3, 20\).*\(3, 30\)"):
        build(cfg, weights)


def test_a_projection_onto_a_missing_compartment_is_refused():
    pops = [Population("x", 2, Input()), Population("P", 3, pyramidal())]
    with pytest.raises(ValueError, match="dendrite"):
        Network(pops, [Projection("W", "x", "P", "dendrite", np.zeros((3, 2)))])


def test_nan_in_the_data_is_named():
    x = np.ones((5, 2))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"'x'.*presentation 3, neuron 1"):
        Schedule(1.0, {"x": x})


def test_data_that_do_not_fit_the_network_are_refused():
    cfg = MicrocircuitConfig(layers=[4, 5, 3])
    net = build(cfg, initial_weights(cfg, 0))
    schedule = Schedule(1.0, {"x": np.ones((2, 5)), "P2.target": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"'x' has 5 columns.*4 neurons"):
        Brian2Simulator(net, target="numpy").run(schedule)


def _exploding_network():
    """Linear neurons with a strong positive loop through the top-down weights."""
    cfg = MicrocircuitConfig(layers=[1, 1, 1], activation="linear", feedback="fa", dt=0.1)
    weights = {"W1": [[1.0]], "W2": [[100.0]], "B1": [[100.0]], "WIP1": [[0.0]], "BPI1": [[0.0]]}
    return build(cfg, {k: np.array(v) for k, v in weights.items()})


def test_divergence_names_population_and_time_and_keeps_the_recording():
    schedule = Schedule(1.0, {"x": np.ones((100, 1)), "P2.target": np.zeros((100, 1))},
                        {"P2.target": np.zeros(100)})
    sim = Brian2Simulator(_exploding_network(), target="numpy", check_every_ms=5.0)
    diverged = r"population P\d has (NaN or inf in \w+|\|\w+\| > 1e\+12) at t = [\d.]+ ms"
    with pytest.raises(DivergenceError, match=diverged) as info:
        sim.run(schedule, Recording({"P1": ["u_breve"]}, dt=1.0))
    err = info.value
    assert err.divergence.time_ms < 100.0  # stopped early, not at the end of the schedule
    trace = err.result.traces["P1.u_breve"]
    assert len(trace.times) >= 2 and np.isfinite(trace.values[0]).all()
    assert trace.times[-1] <= err.divergence.time_ms


def test_a_diverged_experiment_still_writes_its_results(tmp_path):
    config = {
        "network": {"layers": [4, 10, 2], "activation": "linear", "feedback": "fa", "init_w": 10.0,
                    "init_b": 100.0, "dt": 0.1, "sps": "random"},
        "task": {"name": "teacher_student", "epochs": 2, "n_train": 50, "n_test": 10},
        "run": {"target": "numpy"},
    }
    with pytest.raises(DivergenceError):
        run_experiment(config, tmp_path)
    results = read_results(tmp_path / "results.h5")
    assert results["status"] == "diverged"
    assert "population " in results["status_detail"] and " at t = " in results["status_detail"]
    text = (tmp_path / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"summary.json holds {c}: not strict JSON"))
    assert summary["rule"] == "fa" and summary["status"] == "diverged"
    assert summary["status_detail"] == results["status_detail"]


def test_a_truncated_results_file_is_refused(tmp_path):
    path = tmp_path / "results.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 10)
    with pytest.raises(ValueError, match="results.h5"):
        read_results(path)


@pytest.mark.parametrize("settings,field", [
    ({"feedback": "pal", "tau_hp": 0.0}, "tau_hp"),
    ({"feedback": "pal", "tau_xi": -1.0}, "tau_xi"),
    ({"sigma": -0.1}, "sigma"),
    ({"feedback": "pal", "eta_bw": [1.0, 2.0]}, "eta_bw"),
    ({"init_w": [0.5, -0.5]}, "init_w"),
    ({"init_b": -1.0}, "init_b"),
    ({"feedback": "pa"}, "feedback"),
])
def test_bad_pal_settings_are_named(settings, field):
    with pytest.raises(ValueError, match=field):
        MicrocircuitConfig(layers=[2, 3, 1], **settings)


def test_phaseless_alignment_needs_noise_on_its_compartment():
    from neurosim.rules import PhaselessAlignment

    pops = [Population("x", 2, Input()), Population("P", 3, pyramidal()), Population("Q", 2, pyramidal())]
    projs = [Projection("W", "x", "P", "basal", np.zeros((3, 2))),
             Projection("B", "Q", "P", "apical", np.zeros((3, 2)), PhaselessAlignment(1.0))]
    with pytest.raises(ValueError, match="OUNoise"):
        Network(pops, projs)


def test_replayed_noise_must_fit_the_run():
    cfg = MicrocircuitConfig(layers=[2, 3, 1], feedback="pal", dt=0.1, sigma=0.1)
    net = build(cfg, initial_weights(cfg, 0))
    schedule = Schedule(1.0, {"x": np.zeros((2, 2)), "P2.target": np.zeros((2, 1))})
    with pytest.raises(ValueError, match="noise for P1"):
        Brian2Simulator(net, target="numpy", noise={"P1": np.zeros((5, 3))}).run(schedule)
    with pytest.raises(ValueError, match="has no noise source"):
        Brian2Simulator(net, noise={"P2": np.zeros((20, 1))})


def test_summary_json_is_strict_json_with_its_status(tmp_path):
    """NaN and infinite numbers become null (Python's json would write NaN and Infinity);
    the status comes first and must be one of the four."""
    from neurosim.recording import write_summary

    summary = {"model": "m", "rule": "r", "backend": "b", "seed": np.int64(1), "sim_time_ms": 1.0,
               "wall_time_s": 1.0, "steps_per_s": float("nan"),
               "final": {"mse": float("inf"), "curve": np.array([0.5, -np.inf]), "angles": [np.float32(3.0)]}}
    write_summary(tmp_path / "summary.json", summary, "diverged", "population P1 has NaN or inf at t = 2 ms")
    data = json.loads((tmp_path / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert list(data)[:2] == ["status", "status_detail"] and data["status"] == "diverged"
    assert data["steps_per_s"] is None and data["final"] == {"mse": None, "curve": [0.5, None], "angles": [3.0]}
    assert data["seed"] == 1
    with pytest.raises(ValueError, match=r"status must be one of \('complete', 'interrupted', 'diverged', 'failed'\)"):
        write_summary(tmp_path / "summary.json", summary, "done")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the metrics of the huge potentials overflow
@pytest.mark.parametrize("backend, neuron", [("torch", "rate"), ("brian2", "rate"), ("torch", "spiking"),
                                             ("brian2", "spiking")])
def test_runaway_weights_stop_the_run_as_diverged(tmp_path, backend, neuron):
    """eta_fw = 1e200 sends weights and potentials past BOUND without a NaN, in the rate
    and the spiking microcircuit: the run stops, says which population and variable, its
    files say `diverged`, and its plots are drawn from the finite part."""
    config = {"network": {"layers": [4, 10, 2], "feedback": "fa", "dt": 0.1, "eta_fw": [1e200, 1e200],
                          "neuron": neuron},
              "task": {"name": "teacher_student", "epochs": 1, "n_train": 20, "n_test": 10,
                       **({"t_pres": 10.0} if neuron == "spiking" else {})},
              "run": {"backend": backend, **({"target": "numpy"} if backend == "brian2" else {})}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DivergenceError, match=r"population P\d has \|\w+\| > 1e\+12 at t = "):
            run_experiment(config, tmp_path, log=lambda *a: None)
    assert not [w for w in caught if "not drawn" in str(w.message)]
    results = read_results(tmp_path / "results.h5")
    assert results["status"] == "diverged" and "> 1e+12" in results["status_detail"]
    assert json.loads((tmp_path / "summary.json").read_text(), parse_constant=pytest.fail)["status"] == "diverged"
    for plot in ("learning_curve.png", "angles.png", "apical_mismatch.png"):
        assert (tmp_path / plot).stat().st_size > 0, plot


def test_an_error_of_the_run_itself_is_status_failed(tmp_path, capsys, monkeypatch):
    """An exception inside a run (here in its metrics): one line, exit 3, summary.json
    with status `failed` and the message, the traceback beside it."""
    from microcircuits import dendritic_runner

    def broken(*args, **kwargs):
        raise MemoryError("no room for the metrics")

    monkeypatch.setattr(dendritic_runner, "compute_metrics", broken)
    out = tmp_path / "out"
    assert main(["run", "examples/teacher_student.toml", "--target", "numpy", "--set", "task.epochs=1",
                 "--set", "task.n_train=5", "--set", "task.n_test=5", "--out", str(out)]) == 3
    err = capsys.readouterr().err.split("\r")[-1]  # from the progress bar's last line
    assert err.split("\n")[1].startswith("neurosim: run failed: MemoryError: no room for the metrics (status "
                                         "'failed'") and err.count("\n") == 2
    summary = json.loads((out / "summary.json").read_text(), parse_constant=pytest.fail)
    assert summary["status"] == "failed" and summary["status_detail"] == "MemoryError: no room for the metrics"
    assert "in broken" in (out / "traceback.txt").read_text()


def test_export_and_map_refuse_what_they_cannot_convert(tmp_path, capsys):
    """A regression run, another model's run and a bad --samples: one line naming why, exit 2."""
    from neurosim.config import load_config, merge

    regression = {"network": {"layers": [4, 5, 2], "dt": 0.1},
                  "task": {"name": "teacher_student", "epochs": 1, "n_train": 5, "n_test": 5},
                  "run": {"target": "numpy"}}
    run_experiment(regression, tmp_path / "ts", log=lambda *a: None)
    mlp = merge(load_config("examples/mlp_bp_digits.toml"), {"task": {"epochs": 1, "n_train": 20, "n_test": 20}})
    run_experiment(mlp, tmp_path / "mlp", log=lambda *a: None)
    for run, why in (("ts", "learned 'teacher_student', not a classification task (yinyang, digits)"),
                     ("mlp", "a 'mlp' run; export and map take the results of a dendritic microcircuit")):
        assert main(["map", str(tmp_path / run / "results.h5"), "--target", "loihi2"]) == 2
        assert why in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path / "ts" / "results.h5"), "--format", "pynn", "--out", "x.py", "--samples", "-5"])
    assert "--samples: must be a positive integer, got -5" in capsys.readouterr().err


@pytest.mark.parametrize("setting, message", [
    ("network.prospective=\"false\"", "network.prospective must be true or false, got 'false'"),
    ("task.epochs=1.5", "task.epochs must be an integer >= 0, got 1.5"),
    ("task.epochs=true", "task.epochs must be an integer >= 0, got True"),
    ("run.seed=1.5", "run.seed must be an integer >= 0, got 1.5"),
    ("network.layers=[4.7, 30, 3.2]", "network.layers must be a list of integers, got [4.7, 30, 3.2]"),
    ("network.dt=\"fast\"", "network.dt must be a number, got 'fast'"),
    ("network.sigma=[0.1, 0.2]", "network.sigma must be a number, got [0.1, 0.2]"),
    ("task.t_pres=0", "task.t_pres must be a number > 0, got 0"),
    ("task.n_train=-5", "task.n_train must be an integer >= 1 (or unset), got -5"),
    ("task.n_train=0", "task.n_train must be an integer >= 1 (or unset), got 0"),
    ("run.compile=\"no\"", "run.compile must be true or false (or unset), got 'no'"),
])
def test_values_of_the_wrong_type_or_range_are_refused_not_converted(setting, message, tmp_path, capsys):
    """The values a user found reinterpreted (truncated, or a string read as True): one
    line naming the key, the value and what is allowed, exit 2, nothing run."""
    assert main(["run", "examples/yinyang_bp.toml", "--set", setting, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"neurosim: error: {message}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("config, message", [
    ({"task": {"epochs": 10**11, "n_train": 100, "n_test": 10}},
     r"task.epochs, n_train and n_test make 11,000,000,000,010 presentations, whose schedule and recording need about "
     r"[\d,.]+ GiB; this machine has [\d.]+ GiB"),
    ({"network": {"layers": [4, 10**9, 3]}}, r"network.layers \[4, 1000000000, 3\] with 1 replica\(s\) need about"),
    ({"model": "mlp", "network": {"layers": [4, 10**9, 3]}}, r"network.layers \[4, 1000000000, 3\] need about"),
])
def test_runs_too_large_for_the_machine_are_refused_before_allocating(config, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        run_experiment(config, tmp_path / "out", log=lambda *a: None)
    assert not (tmp_path / "out").exists()


def test_out_is_checked_held_and_never_overwritten_silently(tmp_path, capsys):
    """--out: a file is refused; a folder another run holds is refused; a complete run is
    kept unless --overwrite; the lock goes when the run ends."""
    from filelock import FileLock

    args = ["run", "examples/teacher_student.toml", "--target", "numpy", "--set", "task.epochs=1",
            "--set", "task.n_train=5", "--set", "task.n_test=5"]
    (tmp_path / "file").write_text("")
    assert main([*args, "--out", str(tmp_path / "file")]) == 2
    assert f"--out {tmp_path / 'file'} is a file, not a folder" in capsys.readouterr().err
    out = tmp_path / "out"
    out.mkdir()
    with FileLock(str(out / ".neurosim.lock"), timeout=0):
        assert main([*args, "--out", str(out)]) == 2
    assert "is in use by another run" in capsys.readouterr().err
    assert main([*args, "--out", str(out)]) == 0
    assert not (out / ".neurosim.lock").exists()
    first = (out / "results.h5").stat().st_mtime_ns
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds a complete run" in err and "pass --overwrite to replace it" in err
    assert (out / "results.h5").stat().st_mtime_ns == first
    assert main([*args, "--out", str(out), "--overwrite"]) == 0


@pytest.mark.parametrize("example, setting", [("dfc_digits", "network.eta_w=1e200"),
                                              ("energy_yinyang", "network.eta=1e150")])
def test_a_diverging_rate_circuit_keeps_what_it_ran(example, setting, tmp_path, capsys):
    """The DFC and energy runners: the diverged epoch's message, status `diverged`, the
    curve until then, its plot and weights written; exit 1."""
    out = tmp_path / "out"
    assert main(["run", f"examples/{example}.toml", "--backend", "torch", "--set", setting, "--set", "task.epochs=2",
                 "--out", str(out)]) == 1
    assert "has NaN or inf" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text(), parse_constant=pytest.fail)
    assert summary["status"] == "diverged" and "in epoch 1" in summary["status_detail"]
    assert read_results(out / "results.h5")["status"] == "diverged"
    assert (out / "curve.png").stat().st_size > 0 and (out / "weights.npz").exists()
