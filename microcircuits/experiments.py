"""Tasks and the training loop shared by the circuits: a config (TOML sections
`network`, `task`, `run`) -> a schedule of test and training blocks -> one simulation
-> metrics -> results.h5 and summary.json.

A run is `epochs` x [test block, training block] followed by a last test block. Test
blocks present the test set with the target off and plasticity off; the output's rate
at the end of each presentation is the network's answer.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim import datasets
from neurosim.recording import DivergenceError, Recording, Trace, write_results, write_summary
from neurosim.schedule import Schedule

from . import dendritic
from .metrics import accuracy, angle_deg, feedforward

TASKS = ("yinyang", "digits", "teacher_student")
DEFAULTS = {
    "model": "dendritic",
    "network": {},
    "task": {"name": "yinyang", "epochs": 10, "t_pres": 1.0, "n_train": None, "n_test": None,
             "target_on": 1.0, "target_off": 0.1, "teacher_layers": None, "teacher_init": 2.0,
             "mismatch_every": 10},
    "run": {"backend": "brian2", "target": "cpp_standalone", "seed": 0},
}


def make_config(user: dict) -> dict:
    """Defaults overlaid with the user's config; unknown sections or keys are errors."""
    config = copy.deepcopy(DEFAULTS)
    for section, values in user.items():
        if section not in config:
            raise ValueError(f"unknown config section or key {section!r}; known: {sorted(config)}")
        if section == "model":
            if values != "dendritic":
                raise ValueError(f"unknown model {values!r}; available: ['dendritic']")
            continue
        if not isinstance(values, dict):
            raise ValueError(f"config section [{section}] must be a table, got {values!r}")
        if section != "network":
            unknown = sorted(set(values) - set(config[section]))
            if unknown:
                raise ValueError(f"unknown keys in [{section}]: {unknown}; known: {sorted(config[section])}")
        config[section].update(values)
    dendritic.MicrocircuitConfig.from_dict(config["network"])  # validates [network]
    if config["task"]["name"] not in TASKS:
        raise ValueError(f"task.name must be one of {TASKS}, got {config['task']['name']!r}")
    if config["run"]["backend"] != "brian2":
        raise ValueError(f"run.backend {config['run']['backend']!r} is not available; choose 'brian2'")
    return config


@dataclass
class Task:
    train_x: np.ndarray
    train_y: np.ndarray  # target potentials, one row per sample
    test_x: np.ndarray
    test_y: np.ndarray
    test_labels: np.ndarray | None  # None for regression


def load_task(task: dict, cfg: dendritic.MicrocircuitConfig, seed: int) -> Task:
    name = task["name"]
    if name == "yinyang":
        train, _, test = datasets.yin_yang_splits(seed=seed)
    elif name == "digits":
        train, test = datasets.digits(seed=seed)
    else:
        teacher_layers = task["teacher_layers"] or cfg.layers
        if teacher_layers[0] != cfg.layers[0] or teacher_layers[-1] != cfg.layers[-1]:
            raise ValueError(f"task.teacher_layers {teacher_layers} must share input and output size "
                             f"with network.layers {cfg.layers}")
        teacher_cfg = dendritic.MicrocircuitConfig(layers=teacher_layers, init_w=task["teacher_init"])
        weights = dendritic.initial_weights(teacher_cfg, seed + 10_000)
        teacher = [weights[f"W{l}"] for l in range(1, teacher_cfg.n_layers + 1)]
        n_train, n_test = task["n_train"] or 1000, task["n_test"] or 200
        train = datasets.teacher_student(lambda x: feedforward(teacher_cfg, teacher, x)[-1], n_train,
                                         cfg.layers[0], seed)
        test = datasets.teacher_student(lambda x: feedforward(teacher_cfg, teacher, x)[-1], n_test,
                                        cfg.layers[0], seed + 1)
        return Task(train.x, train.y, test.x, test.y, None)
    train = train.subset(np.arange(min(len(train), task["n_train"] or len(train))))
    test = test.subset(np.arange(min(len(test), task["n_test"] or len(test))))
    for ds in (train, test):
        if ds.x.shape[1] != cfg.layers[0] or ds.n_classes != cfg.layers[-1]:
            raise ValueError(f"task {name!r} has {ds.x.shape[1]} inputs and {ds.n_classes} classes, but "
                             f"network.layers is {cfg.layers}")
    on, off = task["target_on"], task["target_off"]
    return Task(train.x, datasets.one_hot_targets(train.labels, train.n_classes, on, off),
                test.x, datasets.one_hot_targets(test.labels, test.n_classes, on, off), test.labels)


def build_schedule(task: Task, epochs: int, t_pres: float, out: str, seed: int) -> tuple[Schedule, list]:
    """epochs x [test, shuffled train] + test. Returns the schedule and the test blocks'
    first presentation indices."""
    rng = np.random.default_rng(seed)
    xs, ys, gate, starts = [], [], [], []
    n_test, n_train, pos = len(task.test_x), len(task.train_x), 0
    for epoch in range(epochs + 1):
        starts.append(pos)
        xs.append(task.test_x)
        ys.append(task.test_y)
        gate.append(np.zeros(n_test))
        pos += n_test
        if epoch == epochs:
            break
        order = rng.permutation(n_train)
        xs.append(task.train_x[order])
        ys.append(task.train_y[order])
        gate.append(np.ones(n_train))
        pos += n_train
    gate = np.concatenate(gate)
    key = f"{out}.target"
    schedule = Schedule(t_pres, {"x": np.concatenate(xs), key: np.concatenate(ys)}, {key: gate}, gate)
    return schedule, starts


def run_experiment(config: dict, out_dir, progress: bool = False, log=print) -> dict:
    """Run one config; write results.h5, summary.json and plots into out_dir; return the summary.
    A run that diverges still writes everything recorded so far, then re-raises."""
    from neurosim.backends.brian2 import Brian2Simulator

    config = make_config(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed, task_cfg = int(config["run"]["seed"]), config["task"]
    cfg = dendritic.MicrocircuitConfig.from_dict(config["network"])
    task = load_task(task_cfg, cfg, seed)
    out = dendritic.output_key(cfg)
    epochs, t_pres = int(task_cfg["epochs"]), float(task_cfg["t_pres"])
    schedule, starts = build_schedule(task, epochs, t_pres, out, seed)
    net = dendritic.build(cfg, dendritic.initial_weights(cfg, seed))
    hidden = dendritic.hidden_layers(cfg)
    epoch_ms = (len(task.train_x) + len(task.test_x)) * t_pres
    recording = Recording({out: ["r", "u_breve"], **{p: ["v_apical"] for p in hidden}}, dt=t_pres,
                          weights=[p.name for p in net.projections if p.kind == "all_to_all"],
                          weights_dt=epoch_ms, every={p: task_cfg["mismatch_every"] * t_pres for p in hidden})
    sim = Brian2Simulator(net, target=config["run"]["target"], seed=seed,
                          build_dir=str(out_dir / "standalone"))
    log(f"running {cfg.feedback} on {task_cfg['name']}: {cfg.layers}, {epochs} epochs, "
        f"{schedule.duration:g} ms simulated, brian2/{config['run']['target']}")
    t0 = time.perf_counter()
    status, error = "complete", None
    try:
        result = sim.run(schedule, recording, progress=progress)
    except DivergenceError as err:
        result, status, error = err.result, "diverged", err
    metrics = compute_metrics(result, task, starts, cfg, out)
    summary = make_summary(config, cfg, result, metrics, time.perf_counter() - t0)
    write_results(out_dir / "results.h5", config=config, result=result, metrics=metrics, summary=summary,
                  status=status if error is None else f"{status}: {error}")
    write_summary(out_dir / "summary.json", summary)
    from .plots import plot_run

    plot_run(out_dir / "results.h5", out_dir)
    if error is not None:
        raise error
    return summary


def compute_metrics(result, task: Task, starts: list, cfg, out: str) -> dict[str, Trace]:
    """Test accuracy / mse per test block, apical mismatch over time, angle(B_l, W_{l+1}^T)."""
    metrics = {}
    rates, volts = result.traces[f"{out}.r"], result.traces[f"{out}.u_breve"]
    n_test = len(task.test_x)
    times, acc, err = [], [], []
    for start in starts:
        rows = np.arange(start + 1, start + 1 + n_test)  # record k+1 = end of presentation k
        if rows[-1] >= len(rates.times):
            break
        times.append(rates.times[rows[-1]])
        err.append(np.mean((volts.values[rows] - task.test_y) ** 2))
        if task.test_labels is not None:
            acc.append(accuracy(rates.values[rows], task.test_labels))
    metrics["test_mse"] = Trace(np.array(times), np.array(err))
    if task.test_labels is not None:
        metrics["test_accuracy"] = Trace(np.array(times), np.array(acc))
    for pop in dendritic.hidden_layers(cfg):
        trace = result.traces[f"{pop}.v_apical"]
        metrics[f"apical_mismatch_{pop}"] = Trace(trace.times, np.linalg.norm(trace.values, axis=1))
    for l in range(1, cfg.n_layers):
        b, w = result.traces.get(f"w:B{l}"), result.traces.get(f"w:W{l + 1}")
        if b is not None and w is not None:
            angles = [angle_deg(bb, ww.T) for bb, ww in zip(b.values, w.values)]
            metrics[f"angle_B{l}_W{l + 1}T"] = Trace(b.times, np.array(angles))
    return metrics


def make_summary(config, cfg, result, metrics, wall) -> dict:
    final = {}
    if "test_accuracy" in metrics and len(metrics["test_accuracy"].values):
        final["test_accuracy"] = float(metrics["test_accuracy"].values[-1])
    if len(metrics["test_mse"].values):
        final["mse"] = float(metrics["test_mse"].values[-1])
    mismatch = [float(metrics[f"apical_mismatch_{p}"].values[-1]) for p in dendritic.hidden_layers(cfg)
                if len(metrics[f"apical_mismatch_{p}"].values)]
    final["apical_mismatch"] = mismatch
    final["angles_deg"] = {"B_WT": [angle_deg(result.final_weights[f"B{l}"], result.final_weights[f"W{l + 1}"].T)
                                    for l in range(1, cfg.n_layers)]}
    return {
        "model": config["model"], "rule": cfg.feedback, "backend": config["run"]["backend"],
        "target": config["run"]["target"], "seed": int(config["run"]["seed"]), "task": config["task"]["name"],
        "sim_time_ms": result.sim_time_ms, "wall_time_s": wall, "steps_per_s": result.steps_per_s,
        "final": final,
    }
