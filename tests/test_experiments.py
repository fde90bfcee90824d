"""Schedules of the experiment runner: settling, test blocks, the alignment task."""
import numpy as np
import pytest

from microcircuits.defaults import DEFAULTS
from microcircuits.dendritic import MicrocircuitConfig
from microcircuits.dendritic_runner import _update_angles, build_schedule, make_config
from microcircuits.metrics import backprop_updates
from microcircuits.tasks import load_task
from neurosim.recording import Trace
from neurosim.schedule import Schedule


def _task_cfg(**values):
    return {**DEFAULTS["task"], **values}


def test_alignment_schedule_settles_then_learns_without_target():
    cfg = MicrocircuitConfig(layers=[5, 4, 3])
    task_cfg = _task_cfg(name="alignment", n_train=10, epochs=3, settle=4.0, t_pres=2.0)
    task = load_task(task_cfg, cfg, seed=0)
    assert task.train_y is None and len(task.test_x) == 0
    assert task.train_x.shape == (10, 5) and task.train_x.min() >= 0 and task.train_x.max() <= 1
    schedule, starts = build_schedule(task, task_cfg, "P2", 3, seed=0)
    assert starts == []  # no test set, no test blocks
    assert schedule.n_presentations == 2 + 3 * 10  # settle 4 ms = 2 presentations
    np.testing.assert_array_equal(schedule.learn, [0, 0] + [1] * 30)
    assert not schedule.gates["P2.target"].any()
    # every epoch presents each sample once, reshuffled
    x = schedule.data["x"][2:]
    for e in range(3):
        block = x[10 * e:10 * (e + 1)]
        assert sorted(map(tuple, block)) == sorted(map(tuple, task.train_x))


def test_test_blocks_every_k_epochs_and_after_the_last():
    cfg = MicrocircuitConfig(layers=[1, 2, 1])
    task_cfg = _task_cfg(name="teacher_student", n_train=6, n_test=3, epochs=5, test_every=2)
    task = load_task(task_cfg, cfg, seed=1)
    schedule, starts = build_schedule(task, task_cfg, "P2", 1, seed=1)
    # epochs 0, 2, 4 are tested before training, and the end
    assert starts == [0, 3 + 12, 3 + 12 + 3 + 12, 3 * 3 + 5 * 6]
    assert schedule.n_presentations == 4 * 3 + 5 * 6
    for s in starts:
        assert not schedule.learn[s:s + 3].any() and not schedule.gates["P2.target"][s:s + 3].any()
    assert schedule.learn.sum() == 30 and schedule.gates["P2.target"].sum() == 30



def test_update_angles_measure_the_change_against_backprop_on_the_taught_samples():
    """A weight change equal to +backprop's summed step over a window gives 0 degrees,
    minus it 180; presentations without target or learning do not count."""
    cfg = MicrocircuitConfig(layers=[2, 3, 2])
    rng = np.random.default_rng(0)
    x, u = rng.uniform(0, 1, (6, 2)), rng.uniform(-1, 1, (6, 2))
    taught = np.array([1, 1, 0, 1, 0, 1.0])
    schedule = Schedule(1.0, {"x": x, "P2.target": u}, {"P2.target": taught}, np.array([1, 1, 1, 1, 0, 1.0]))
    w0 = [rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, (2, 3))]
    step0 = backprop_updates(cfg, w0, x[[0, 1]], u[[0, 1]])  # window [0, 3): presentation 2 untaught
    w1 = [a + 0.01 * d for a, d in zip(w0, step0)]
    step1 = backprop_updates(cfg, w1, x[[3, 5]], u[[3, 5]])  # window [3, 6): 4 does not learn
    w2 = [a - 0.01 * d for a, d in zip(w1, step1)]
    traces = [Trace(np.array([0.0, 3.0, 6.0]), np.stack([a, b, c])) for a, b, c in zip(w0, w1, w2)]
    angles = _update_angles(traces, schedule, cfg, "P2")
    for l in (1, 2):
        np.testing.assert_allclose(angles[f"angle_dW{l}_BP"].values, [0.0, 180.0], atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "brian2"])
def test_cli_runs_seeds_as_replicas_like_single_runs(tmp_path, backend):
    """`neurosim run --replicas 2` writes seed<k>/ folders whose results equal
    single-seed runs of the same config (torch: one tensor program; brian2: one
    cpp_standalone program run twice), with the keys of a single run."""
    import json

    from microcircuits.runners import run_experiment
    from microcircuits.cli import main
    from neurosim.recording import read_results

    config = tmp_path / "ts.toml"
    config.write_text('[network]\nlayers = [2, 4, 1]\nfeedback = "pal"\ndt = 0.1\neta_fw = 0.5\neta_bw = 1.0\n'
                      'sigma = 0.1\ntau_xi = 0.3\ntau_hp = 0.3\n[task]\nname = "teacher_student"\nepochs = 2\n'
                      'n_train = 20\nn_test = 10\n')
    assert main(["run", str(config), "--backend", backend, "--replicas", "2", "--seed", "3",
                 "--out", str(tmp_path / "both")]) == 0
    for seed in (3, 4):
        single = run_experiment({**_toml(config), "run": {"backend": backend, "seed": seed}}, tmp_path / f"s{seed}",
                                log=lambda *a: None)
        together = json.loads((tmp_path / "both" / f"seed{seed}" / "summary.json").read_text())
        assert together["seed"] == single["seed"] == seed and together["replicas"] == 2
        a, b = (read_results(p) for p in (tmp_path / "both" / f"seed{seed}" / "results.h5",
                                          tmp_path / f"s{seed}" / "results.h5"))
        np.testing.assert_allclose(a["metrics"]["test_mse"].values, b["metrics"]["test_mse"].values, rtol=1e-10)
        np.testing.assert_allclose(a["final_weights"]["B1"], b["final_weights"]["B1"], rtol=1e-10)
    brian2_keys = {"model", "rule", "backend", "seed", "sim_time_ms", "wall_time_s", "steps_per_s", "final"}
    assert brian2_keys <= set(together)


def test_a_long_torch_run_on_the_cpu_compiles_by_default():
    from microcircuits.dendritic_runner import COMPILE_FROM_STEPS, compile_default

    run = make_config({"run": {"backend": "torch"}})["run"]
    assert compile_default(run, COMPILE_FROM_STEPS) is True
    assert compile_default(run, COMPILE_FROM_STEPS - 1) is False
    assert compile_default({**run, "compile": False}, 10 * COMPILE_FROM_STEPS) is False
    assert compile_default({**run, "device": "cuda"}, 10 * COMPILE_FROM_STEPS) is None  # the backend's: compiled
    assert compile_default(make_config({})["run"], 10 * COMPILE_FROM_STEPS) is None  # brian2


def _toml(path):
    import tomllib

    return tomllib.loads(path.read_text())


def test_the_demo_config_is_package_data_and_valid():
    """`neurosim demo` reads its config from the installed package, not from examples/."""
    import tomllib

    from microcircuits.demo import CONFIG
    from microcircuits.runners import make_config

    config = make_config(tomllib.loads(CONFIG.read_text()))
    assert CONFIG.name == "yinyang_demo.toml"
    assert config["network"]["layers"] == [4, 30, 3] and config["task"]["name"] == "yinyang"


def test_yinyang_sizes_beyond_the_usual_split():
    """n_train / n_test above the 5000 / 1000 split draw more samples (the PAL GeNN code's
    6000 / 900); at or below it the data are the split's, as before."""
    from neurosim.datasets import yin_yang_splits

    cfg = MicrocircuitConfig(layers=[4, 30, 3])
    big = load_task(_task_cfg(name="yinyang", n_train=6000, n_test=1200), cfg, seed=3)
    assert big.train_x.shape == (6000, 4) and big.test_x.shape == (1200, 4)
    assert len(np.unique(big.train_x, axis=0)) == 6000
    small = load_task(_task_cfg(name="yinyang", n_train=200, n_test=50), cfg, seed=3)
    train, _, test = yin_yang_splits(seed=3)
    np.testing.assert_array_equal(small.train_x, train.x[:200])
    np.testing.assert_array_equal(small.test_x, test.x[:50])


def test_teacher_inputs_law_and_biases():
    """task.inputs = "normal" draws N(0, 1) inputs; task.teacher_bias adds U[lo, hi]
    biases to the network teacher; both are refused where they would be ignored."""
    cfg = MicrocircuitConfig(layers=[30, 20, 10])
    base = _task_cfg(name="teacher_student", n_train=2000, teacher_activation=["tanh", "linear"],
                     teacher_init=[-0.01, 0.01], inputs="normal")
    plain = load_task(base, cfg, seed=0)
    assert abs(plain.train_x.mean()) < 0.01 and abs(plain.train_x.std() - 1) < 0.01
    biased = load_task({**base, "teacher_bias": [0.5, 0.5]}, cfg, seed=0)
    np.testing.assert_array_equal(biased.train_x, plain.train_x)
    assert abs((biased.train_y - plain.train_y).mean() - 0.5) < 0.05  # the output bias, through a tiny W3
    with pytest.raises(ValueError, match="task.inputs = 'normal' applies to the teacher_student task only"):
        load_task(_task_cfg(name="yinyang", inputs="normal"), MicrocircuitConfig(), seed=0)
    with pytest.raises(ValueError, match="teacher_bias needs a network teacher"):
        load_task(_task_cfg(name="teacher_student", teacher_bias=[0, 1]), cfg, seed=0)
    with pytest.raises(ValueError, match=r"teacher_bias must be a pair \[lo, hi\]"):
        load_task({**base, "teacher_bias": [1, 0]}, cfg, seed=0)
