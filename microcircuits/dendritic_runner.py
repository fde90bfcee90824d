"""The runner of the dendritic microcircuit (model "dendritic", microcircuits.dendritic):
a config (TOML sections `network`, `task`, `run`) -> a schedule of test and training
blocks -> one simulation -> metrics -> results.h5, summary.json and plots.

A run is an optional settling block (`settle` ms, plasticity off), then `epochs` x
[test block, training block] followed by a last test block; with `test_every` = k only
every k-th epoch is tested. Test blocks present the test set with the target off and
plasticity off; the output's rate at the end of each presentation is the network's
answer. Task `alignment` (PAL's B-alignment runs) has no target and no test set: the
inputs are U[0, 1] vectors, and the config's learning rates say which weights learn
(the paper's runs freeze W with eta_fw = 0). The data come from microcircuits.tasks.
"""
from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim import activations, checkpoint as checkpoints, interrupt, schema
from neurosim.recording import DivergenceError, Recording, Trace, write_results, write_summary
from neurosim.schedule import Schedule

from . import dendritic
from .defaults import DEFAULTS, overlay
from .metrics import accuracy, alignment_target, angle_deg, backprop_updates, mean_field_apical
from .tasks import TASKS, Task, load_task


def make_config(user: dict) -> dict:
    """Defaults overlaid with the user's config; unknown sections or keys are errors."""
    if user.get("model", "dendritic") != "dendritic":
        raise ValueError(f"unknown model {user['model']!r}; available: ['dendritic']")
    config = overlay(copy.deepcopy(DEFAULTS), user)
    cfg = dendritic.MicrocircuitConfig.from_dict(config["network"])  # validates [network]
    n = cfg.layers
    weights = 4 * sum(a * b for a, b in zip(n, n[1:])) * config["run"]["replicas"]  # W, B, W^IP, B^PI
    schema.check_memory(f"network.layers {n} with {config['run']['replicas']} replica(s)", 8 * 4 * weights)
    if config["task"]["name"] not in TASKS:
        raise ValueError(f"task.name must be one of {TASKS}, got {config['task']['name']!r}")
    run = config["run"]
    if run["checkpoint_every"] is not None and run["backend"] == "brian2":
        if run["replicas"] > 1:
            raise ValueError(f"run.checkpoint_every: on brian2, checkpoints run one replica; this run has "
                             f"{run['replicas']} (torch checkpoints replicas together)")
        if run["target"] == "cpp_standalone" and cfg.neuron == "spiking":
            raise ValueError("run.checkpoint_every: on cpp_standalone the spiking microcircuit cannot checkpoint (its "
                             "spikes in flight between two stretches are not kept); use cython, numpy or torch")
    return config


# From this many steps per replica a run on the CPU compiles its step by default: the PAL
# microcircuit's step runs at about 5,300 steps/s eager and 17,000 - 23,000 compiled, and
# compiling takes 35 - 75 s the first time (about 10 s once inductor's cache holds it), so
# compiling pays off from about 400,000 steps (docs/performance.md, "Whole runs").
COMPILE_FROM_STEPS = 400_000


def compile_default(run: dict, n_steps: int) -> bool | None:
    """run.compile as given; unset on a torch CPU run, whether the run has at least
    COMPILE_FROM_STEPS steps (unset elsewhere: the backend's default, CUDA compiles)."""
    if run["compile"] is not None or run["backend"] != "torch" or run["device"] != "cpu":
        return run["compile"]
    return n_steps >= COMPILE_FROM_STEPS


SPIKING_READOUT = 10  # records of the output per presentation in a spiking circuit


def readout_points(cfg) -> int:
    """How many times per presentation the output's u_breve is recorded: once, at its end,
    in a rate circuit; SPIKING_READOUT times in a spiking one, whose output is read as
    the mean over the presentation's second half (its u_breve carries the spike noise of
    the layer below)."""
    return SPIKING_READOUT if cfg.neuron == "spiking" else 1


def presentation_readout(volts: Trace, first: int, n: int, points: int) -> np.ndarray:
    """The output of presentations first .. first+n-1 (n, size): the record at each one's
    end (points = 1), or the mean of the records in its second half, its end included."""
    ends = (first + np.arange(1, n + 1)) * points  # record i is at i t_pres / points
    rows = ends[:, None] - np.arange(max(1, points // 2))[None, :]
    return volts.values[rows].mean(axis=1)


def build_schedule(task: Task, task_cfg: dict, out: str, n_out: int, seed: int) -> tuple[Schedule, list]:
    """settle + epochs x [test (every test_every epochs), shuffled train] + test. Returns the
    schedule and the test blocks' first presentation indices."""
    t_pres, epochs, test_every = float(task_cfg["t_pres"]), int(task_cfg["epochs"]), int(task_cfg["test_every"])
    rng = np.random.default_rng(seed)
    n_test, n_train = len(task.test_x), len(task.train_x)
    n_settle = int(round(float(task_cfg["settle"]) / t_pres))
    n_tests = (epochs // test_every + 1 + (epochs % test_every > 0)) if n_test else 0  # as in the loop below
    presentations = n_settle + epochs * n_train + n_tests * n_test
    # the schedule's rows (x, target, gate, learn) and the recording, about as large
    schema.check_memory(f"task.epochs, n_train and n_test make {presentations:,} presentations, whose schedule and "
                        "recording", 2 * 8 * presentations * (task.train_x.shape[1] + 2 * n_out + 2))
    xs, ys, gate, learn, starts, pos = [], [], [], [], [], 0

    def block(x, y, target, plastic):
        nonlocal pos
        xs.append(x)
        ys.append(y if y is not None else np.zeros((len(x), n_out)))
        gate.append(np.full(len(x), float(target and y is not None)))
        learn.append(np.full(len(x), float(plastic)))
        pos += len(x)

    if n_settle:
        block(task.train_x[np.arange(n_settle) % n_train], None, False, False)
    for epoch in range(epochs + 1):
        if n_test and (epoch % test_every == 0 or epoch == epochs):
            starts.append(pos)
            block(task.test_x, task.test_y, False, False)
        if epoch == epochs:
            break
        order = rng.permutation(n_train)
        block(task.train_x[order], None if task.train_y is None else task.train_y[order], True, True)
    key = f"{out}.target"
    schedule = Schedule(t_pres, {"x": np.concatenate(xs), key: np.concatenate(ys)},
                        {key: np.concatenate(gate)}, np.concatenate(learn))
    return schedule, starts


# Unless run.checkpoint_every says otherwise, a run on torch or Brian2's runtime writes a
# checkpoint every tenth of its simulated time (and when a signal stops it).
DEFAULT_CHECKPOINTS = 10


def run(config: dict, out_dir, progress: bool = False, log=print, resume: bool = False) -> dict | list[dict]:
    """Run one config; write results.h5, summary.json and plots into out_dir; return the
    summary. With run.replicas = R > 1, seeds run.seed .. run.seed + R - 1 run as replicas
    (torch: in one tensor program; Brian2: one after another, on cpp_standalone with one
    program built once), each written to out_dir/seed<k>; returns their summaries. A run
    that diverges still writes everything recorded so far, then re-raises. A torch run on
    the CPU with run.compile unset compiles its step from COMPILE_FROM_STEPS steps.
    A run on torch or on one replica of Brian2 writes a checkpoint (neurosim.checkpoint:
    out_dir/CHECKPOINT and the config, RUN_CONFIG) every run.checkpoint_every ms of
    simulated time (unset: every 1/DEFAULT_CHECKPOINTS of the run, but on cpp_standalone
    none: its checkpoints split the run into program runs) and when a signal stops the
    run; `resume` continues from it, bit for bit as the run would have gone on."""
    config = make_config(config)
    out_dir = Path(out_dir)
    run = config["run"]
    seeds = [int(run["seed"]) + i for i in range(run["replicas"])]
    task_cfg = config["task"]
    cfg = dendritic.MicrocircuitConfig.from_dict(config["network"])
    out = dendritic.output_key(cfg)
    replicas = [_Replica(config, cfg, seed, out_dir if len(seeds) == 1 else out_dir / f"seed{seed}") for seed in seeds]
    first = replicas[0]
    checkpoint = _checkpoint(config, out_dir, resume, first.schedule.duration)
    hidden = dendritic.hidden_layers(cfg)
    record_every = task_cfg["record_every"] or (len(first.task.train_x)
                                                + (len(first.task.test_x) if task_cfg["test_every"] == 1 else 0))
    t_pres = float(task_cfg["t_pres"])
    recording = Recording({out: ["u_breve"], **{p: ["v_apical"] for p in hidden}}, dt=t_pres,
                          weights=[p.name for p in first.net.projections if p.kind == "all_to_all"],
                          weights_dt=record_every * t_pres,
                          every={out: t_pres / readout_points(cfg),
                                 **{p: task_cfg["mismatch_every"] * t_pres for p in hidden}})
    n_steps = int(round(first.schedule.duration / cfg.dt))
    compiled = compile_default(run, n_steps)
    if compiled and run["compile"] is None:
        log(f"compiling the step with torch.compile: {n_steps:,} steps, where the compiled loop (about 4x eager) "
            "repays the compile (about a minute the first time); --no-compile runs eager")
    run["compile"] = compiled
    where = f"brian2/{run['target']}" if run["backend"] == "brian2" else \
        f"torch/{run['device']}/{run['dtype']}, {len(seeds)} replica(s)"
    log(f"running {cfg.feedback} on {task_cfg['name']}: {cfg.layers}, {task_cfg['epochs']} epochs, "
        f"{first.schedule.duration:g} ms simulated, {where}")
    t0 = time.perf_counter()
    with interrupt.on_signals():
        results = _simulate(run, replicas, recording, progress, checkpoint)
        signum = interrupt.requested()
    wall = time.perf_counter() - t0
    summaries, errors = [], []
    for replica, result in zip(replicas, results):
        summary, error = replica.finish(result, wall)
        summaries.append(summary)
        errors += [error] if error is not None else []
    stopped = [r.seed for r, result in zip(replicas, results) if result.interrupted]
    unrun = [r.seed for r in replicas[len(results):]]
    if stopped or unrun:  # (a signal after the last step leaves a complete run)
        what = ([f"seeds {stopped} stopped part way (status 'interrupted', results so far in {out_dir})"]
                if stopped else []) + ([f"seeds {unrun} not run"] if unrun else []) + \
            ([f"continue with: neurosim run --resume {out_dir}"] if checkpoint is not None else [])
        raise interrupt.Interrupted(signum, f"run interrupted by {interrupt.describe(signum)}: {'; '.join(what)}")
    if checkpoint is not None:  # the run is over: its results hold everything
        checkpoints.finished(out_dir)
    if errors:
        raise errors[0]
    return summaries[0] if len(summaries) == 1 else summaries


def _checkpoint(config: dict, out_dir: Path, resume: bool, duration_ms: float):
    """The Checkpoint of this run (every run.checkpoint_every ms, by default a
    DEFAULT_CHECKPOINTS-th of the run), or None: Brian2 replicas cannot checkpoint (make_config
    refuses checkpoint_every there), and cpp_standalone does only when asked to."""
    run = config["run"]
    if run["backend"] == "brian2" and (run["replicas"] > 1 or (run["target"] == "cpp_standalone"
                                                               and run["checkpoint_every"] is None)):
        if resume:
            raise ValueError(f"--resume {out_dir}: this brian2 run ({run['target']!r}, {run['replicas']} "
                             "replica(s), run.checkpoint_every unset) wrote no checkpoints")
        return None
    return checkpoints.for_run(out_dir, config, run["checkpoint_every"] or duration_ms / DEFAULT_CHECKPOINTS, resume)


@dataclass
class _Replica:
    """One seed of an experiment: its data, schedule and initial network."""

    config: dict
    cfg: dendritic.MicrocircuitConfig
    seed: int
    out_dir: Path

    def __post_init__(self):
        self.task = load_task(self.config["task"], self.cfg, self.seed)
        self.out = dendritic.output_key(self.cfg)
        self.schedule, self.starts = build_schedule(self.task, self.config["task"], self.out, self.cfg.layers[-1],
                                                    self.seed)
        self.net = dendritic.build(self.cfg, dendritic.initial_weights(self.cfg, self.seed))

    def finish(self, result, wall: float):
        """Metrics, results.h5, summary.json and plots; returns (summary, DivergenceError or None)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        config = copy.deepcopy(self.config)
        config["run"]["seed"] = self.seed
        error = DivergenceError(result.divergence, result) if result.divergence is not None else None
        metrics = compute_metrics(result, self.task, self.schedule, self.starts, self.cfg, self.out)
        summary = make_summary(config, self.cfg, result, metrics, wall)
        status, detail = ("diverged", str(error)) if error is not None else \
            ("interrupted", result.interrupted) if result.interrupted else ("complete", "")
        write_results(self.out_dir / "results.h5", config=config, result=result, metrics=metrics, summary=summary,
                      status=status, detail=detail)
        write_summary(self.out_dir / "summary.json", summary, status, detail)
        from .plots import plot_run, plot_safely

        plot_safely(plot_run, self.out_dir / "results.h5", self.out_dir)
        return summary, error


def _simulate(run: dict, replicas: list[_Replica], recording: Recording, progress: bool, checkpoint=None) -> list:
    """One RunResult per replica, from the configured backend (diverged runs included)."""
    if run["backend"] == "torch":
        from neurosim.backends.torch import TorchSimulator

        sim = TorchSimulator([r.net for r in replicas], device=run["device"], dtype=run["dtype"],
                             seed=[r.seed for r in replicas], compile=run["compile"])
        return sim.run_replicas([r.schedule for r in replicas], recording, progress=progress, checkpoint=checkpoint)
    from neurosim.backends.brian2 import Brian2Simulator

    sim = Brian2Simulator([r.net for r in replicas], target=run["target"], seed=[r.seed for r in replicas])
    return sim.run_replicas([r.schedule for r in replicas], recording, progress=progress, checkpoint=checkpoint)


def compute_metrics(result, task: Task, schedule: Schedule, starts: list, cfg, out: str) -> dict[str, Trace]:
    """The metrics of docs/equations.md section 7 over time: test accuracy / mse per test
    block, apical mismatch, and at every weight snapshot angle(B_l, W_{l+1}^T),
    angle(B_l, phi'_l W_{l+1}^T phi'_{l+1}) and angle(dW_l, dW_l^BP) (the weights' change
    until the next snapshot against backprop's summed steps for the samples learned in
    between, at the snapshot's weights)."""
    metrics = {}
    phi = activations.numpy(cfg.activation)
    if starts:
        volts, points = result.traces[f"{out}.u_breve"], readout_points(cfg)
        n_test = len(task.test_x)
        times, acc, err = [], [], []
        for start in starts:
            end = (start + n_test) * points  # the record at the end of the block's last presentation
            if end >= len(volts.times):
                break
            readout = presentation_readout(volts, start, n_test, points)
            times.append(volts.times[end])
            err.append(np.mean((readout - task.test_y) ** 2))
            if task.test_labels is not None:
                acc.append(accuracy(phi(readout), task.test_labels))
        metrics["test_mse"] = Trace(np.array(times), np.array(err))
        if task.test_labels is not None:
            metrics["test_accuracy"] = Trace(np.array(times), np.array(acc))
    for pop in dendritic.hidden_layers(cfg):
        trace = result.traces[f"{pop}.v_apical"]
        metrics[f"apical_mismatch_{pop}"] = Trace(trace.times, np.linalg.norm(trace.values, axis=1))
    w = [result.traces[f"w:W{l}"] for l in range(1, cfg.n_layers + 1)]
    times = w[0].times
    probe = task.probe_inputs()
    ws = [[wl.values[k] for wl in w] for k in range(len(times))]  # the forward weights per snapshot
    if cfg.neuron == "spiking":  # its measured v_api carries spike noise: also the mismatch its weights leave
        snapshots = [{name[2:]: result.traces[name].values[k] for name in result.traces if name.startswith("w:")}
                     for k in range(len(times))]
        mismatch, unsettled = np.full((len(times), cfg.n_layers - 1), np.nan), []
        for k, weights in enumerate(snapshots):
            try:
                mismatch[k] = [np.linalg.norm(a, axis=1).mean() for a in mean_field_apical(cfg, weights, probe)]
            except ValueError as error:  # NaN in the metric, and said
                unsettled.append((times[k], error))
        if unsettled:
            warnings.warn(f"apical_mismatch_mean_field is NaN at {len(unsettled)} of {len(times)} weight snapshots, "
                          f"from {unsettled[0][0]:g} ms: {unsettled[0][1]}", stacklevel=2)
        for l in range(1, cfg.n_layers):
            metrics[f"apical_mismatch_mean_field_P{l}"] = Trace(times, mismatch[:, l - 1])
    for l in range(1, cfg.n_layers):
        b = result.traces[f"w:B{l}"].values
        metrics[f"angle_B{l}_W{l + 1}T"] = Trace(times, np.array([angle_deg(bb, wk[l].T) for bb, wk in zip(b, ws)]))
        metrics[f"angle_B{l}_J{l}"] = Trace(times, np.array(
            [angle_deg(bb, alignment_target(cfg, wk, probe, l)) for bb, wk in zip(b, ws)]))
    if task.train_y is not None and any(cfg.eta_fw):
        metrics.update(_update_angles(w, schedule, cfg, out))
    return metrics


def _update_angles(w: list, schedule: Schedule, cfg, out: str) -> dict[str, Trace]:
    """angle(W_l(t_k+1) - W_l(t_k), sum of backprop steps for the presentations with target
    and learning in [t_k, t_k+1), at W(t_k)), per layer."""
    times = w[0].times
    key = f"{out}.target"
    taught = schedule.learn * schedule.gates[key] > 0
    angles = [[] for _ in w]
    for k in range(len(times) - 1):
        p = np.arange(int(round(times[k] / schedule.t_pres)), int(round(times[k + 1] / schedule.t_pres)))
        p = p[taught[p]]
        weights = [wl.values[k] for wl in w]
        bp = backprop_updates(cfg, weights, schedule.data["x"][p], schedule.data[key][p]) if len(p) else None
        for l, wl in enumerate(w):
            change = wl.values[k + 1] - wl.values[k]
            angles[l].append(angle_deg(change, bp[l]) if bp is not None else np.nan)
    return {f"angle_dW{l + 1}_BP": Trace(times[:-1], np.array(a)) for l, a in enumerate(angles)}


def make_summary(config, cfg, result, metrics, wall) -> dict:
    final = {}
    if "test_accuracy" in metrics and len(metrics["test_accuracy"].values):
        final["test_accuracy"] = float(metrics["test_accuracy"].values[-1])
    if "test_mse" in metrics and len(metrics["test_mse"].values):
        final["mse"] = float(metrics["test_mse"].values[-1])
    mismatch = [float(metrics[f"apical_mismatch_{p}"].values[-1]) for p in dendritic.hidden_layers(cfg)
                if len(metrics[f"apical_mismatch_{p}"].values)]
    final["apical_mismatch"] = mismatch
    if cfg.neuron == "spiking":
        final["apical_mismatch_mean_field"] = [float(metrics[f"apical_mismatch_mean_field_{p}"].values[-1])
                                               for p in dendritic.hidden_layers(cfg)]
    final["angles_deg"] = {
        "B_WT": [float(metrics[f"angle_B{l}_W{l + 1}T"].values[-1]) for l in range(1, cfg.n_layers)],
        "B_J": [float(metrics[f"angle_B{l}_J{l}"].values[-1]) for l in range(1, cfg.n_layers)]}
    return {
        "model": config["model"], "rule": cfg.feedback, "backend": config["run"]["backend"],
        "target": config["run"]["target"] if config["run"]["backend"] == "brian2" else
        f"{config['run']['device']}/{config['run']['dtype']}",
        "replicas": config["run"]["replicas"], "seed": int(config["run"]["seed"]), "task": config["task"]["name"],
        "sim_time_ms": result.sim_time_ms, "wall_time_s": wall, "steps_per_s": result.steps_per_s,
        "final": final,
    }
