"""The runner of the rate-circuit principles (microcircuits.energy, .dfc,
.inversion; the interface in microcircuits.rate_models) and of their MLP baselines
(microcircuits.baselines): a config (TOML sections `network`, `task`, `run`, with
`model` = "energy" | "dfc" | "inversion" | "mlp") -> epochs of training -> summary.json
with the keys of the dendritic runs, results.h5, weights.npz and curve.png.

Every epoch trains on the training set once, in an order drawn from
np.random.default_rng(run.seed) (the same order for every model and backend), in
minibatches of run.batch samples (a remainder is dropped): a principle rebuilds its
network from the current weights and simulates module.schedule(...) with learning on
(noise seed run.seed + epoch) on torch, or on Brian2 (batch 1; target "cpp_standalone",
the default: one build for all epochs, about 10 s, where the runtime's Cython compiles
for minutes on first use; or "cython", "numpy"); "mlp" takes baselines.train's steps
instead (rule "bp" or "fa", eta per sample; no simulator: backend "numpy"). Before the
first epoch and after every one, module.forward on the test set (no target) gives the
test mse and, for classification, the accuracy (argmax). A principle module may define
`epoch_metrics(cfg, weights, x_test) -> dict[str, float]`; its values are recorded at the
same times and land in summary["final"] as lists. A module with `sleep_phases(cfg,
epoch)` and `sleep_config(cfg)` (dfc) runs that many sleep phases before an epoch: the
same samples with the sleep config, the targets the network's own feed-forward outputs.

Tasks: yinyang and digits (one-hot targets task.target_on / task.target_off; the rate
models' outputs are not squashed, so target_on = 1, target_off = 0 is the usual choice)
and teacher_student: a teacher network (microcircuits.tasks.network_teacher_task)
with the activations task.teacher_activation = [hidden, output], by default the
student's (network.activation, network.output_activation; linear where the model has
none).
"""
from __future__ import annotations

import copy
import importlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurosim import activations, checkpoint as checkpoints, interrupt, schema
from neurosim.recording import (BOUND, Divergence, DivergenceError, RunResult, Trace, within_bound, write_results,
                                write_summary)

from . import baselines, rate_models
from .defaults import DEFAULTS, overlay
from .plots import finite, plot_safely
from .tasks import Task, load_task, network_teacher_task

MODELS = ("energy", "dfc", "inversion", "mlp")
TASKS = ("yinyang", "digits", "teacher_student")
RUN_DEFAULTS = {**DEFAULTS["run"], "batch": 1}
# [task] keys of the dendritic runner that mean nothing here (the principles' times are in [network])
UNUSED_TASK_KEYS = {"t_pres": "set network.t_pres", "settle": "there is no settling block",
                    "test_every": "every epoch is tested", "record_every": "nothing is recorded during a run",
                    "mismatch_every": "there is no apical mismatch"}
RESERVED = ("test_accuracy", "mse", "curve")


@dataclass
class MLPConfig:
    """The feed-forward baseline r_l = f(W_l r_{l-1}) (f = activation, output_activation
    for the last layer) trained by backprop ("bp") or feedback alignment ("fa") with a
    step of eta per sample; W_l ~ N(0, init_w^2 / n_{l-1}) (rate_models.forward_weights)."""

    layers: list = field(default_factory=lambda: [4, 30, 3])
    activation: str = "tanh"
    output_activation: str = "linear"
    rule: str = "bp"
    eta: float = 0.01
    init_w: float = 1.0

    def __post_init__(self):
        self.layers = schema.layer_sizes(self.layers)
        for name in ("activation", "output_activation"):
            if getattr(self, name) not in activations.NAMES:
                raise ValueError(f"{name} must be one of {sorted(activations.NAMES)}, got {getattr(self, name)!r}")
        if self.rule not in baselines.RULES:
            raise ValueError(f"rule must be one of {baselines.RULES}, got {self.rule!r}")
        for name in ("eta", "init_w"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    from_dict = classmethod(rate_models.from_dict)

    @property
    def n_layers(self) -> int:
        return len(self.layers) - 1


def principle(model: str):
    """The module of a principle (None for "mlp")."""
    return None if model == "mlp" else importlib.import_module(f".{model}", __package__)


def network_config(model: str, values: dict):
    """[network] as the model's config (unknown keys and bad values are ValueErrors)."""
    return MLPConfig.from_dict(values) if model == "mlp" else principle(model).Config.from_dict(values)


def make_config(user: dict) -> dict:
    """Defaults overlaid with the user's config (run gets `batch`); unknown sections or
    keys, and settings the rate models cannot run, are ValueErrors."""
    model = user.get("model", DEFAULTS["model"])
    if model not in MODELS:
        raise ValueError(f"model {model!r} is not one of this runner's {MODELS} (microcircuits.runners picks the "
                         f"runner of every model)")
    config = {"model": model, "network": {}, "task": copy.deepcopy(DEFAULTS["task"]), "run": dict(RUN_DEFAULTS)}
    overlay(config, user)
    n = network_config(model, dict(config["network"])).layers  # validates [network]
    schema.check_memory(f"network.layers {n}", 8 * 4 * sum(a * b for a, b in zip(n, n[1:])))  # weights, updates
    task, run = config["task"], config["run"]
    if task["name"] not in TASKS:
        raise ValueError(f"task.name must be one of {TASKS} for model {model!r}, got {task['name']!r}")
    for key, why in UNUSED_TASK_KEYS.items():
        if task[key] != DEFAULTS["task"][key]:
            raise ValueError(f"task.{key} does not apply to model {model!r} ({why})")
    batch, every = run["batch"], run["checkpoint_every"]
    if every is not None and (every != int(every) or every < 1):
        raise ValueError(f"run.checkpoint_every counts epochs for model {model!r}: an integer >= 1, got {every!r}")
    if model != "mlp":
        if run["backend"] == "brian2" and batch != 1:
            raise ValueError(f"run.batch = {batch} needs run.backend = 'torch' (Brian2 presents one sample at a time)")
        if run["replicas"] != 1:
            raise ValueError(f"run.replicas = {run['replicas']!r}: model {model!r} runs one seed per run")
        if run["backend"] == "brian2":
            from neurosim.backends.brian2 import TARGETS

            if run["target"] not in TARGETS:
                raise ValueError(f"run.target must be one of {TARGETS}, got {run['target']!r}")
    return config


def load_rate_task(task: dict, cfg, seed: int) -> Task:
    """The task's data with one-hot or teacher targets (see the module docstring)."""
    if task["name"] != "teacher_student":
        return load_task(task, cfg, seed)  # uses cfg.layers only
    student = [getattr(cfg, "activation", "linear"), getattr(cfg, "output_activation", "linear")]
    return network_teacher_task(task, cfg.layers, task["teacher_activation"] or student, seed)


def run(config: dict, out_dir, progress: bool = False, log=print, resume: bool = False) -> dict:
    """Train one config (see the module docstring); write summary.json, results.h5,
    weights.npz and curve.png into out_dir; return the summary. Weights that turn NaN or
    inf stop the run (DivergenceError) after everything so far is written. There is no
    progress bar (`progress` is ignored): every epoch is logged. A checkpoint
    (neurosim.checkpoint: the weights, the curves, the totals and the shuffling
    generator) is written after every run.checkpoint_every epochs (unset: every epoch)
    and after the epoch a signal stopped; `resume` continues from it on any backend, bit
    for bit as the run would have gone on (each epoch's noise is seeded by its number)."""
    config = make_config(config)
    out_dir = Path(out_dir)
    model, task_cfg, run = config["model"], config["task"], config["run"]
    seed, batch, epochs = int(run["seed"]), int(run["batch"]), int(task_cfg["epochs"])
    module = principle(model)
    cfg = network_config(model, dict(config["network"]))
    task = load_rate_task(task_cfg, cfg, seed)
    if batch > len(task.train_x):
        raise ValueError(f"run.batch = {batch} is larger than the training set ({len(task.train_x)} samples of "
                         f"{task_cfg['name']!r}, task.n_train = {task_cfg['n_train']}): an epoch would train on nothing")
    out_dir.mkdir(parents=True, exist_ok=True)
    if model == "mlp":
        weights = rate_models.forward_weights(cfg.layers, seed, cfg.init_w)
        forward = _mlp_forward
        backend = target = "numpy"
    else:
        weights = module.initial_weights(cfg, seed)
        forward = module.forward
        backend = run["backend"]
        target = run["target"] if backend == "brian2" else f"{run['device']}/{run['dtype']}"
    hook = getattr(module, "epoch_metrics", None)
    rule = getattr(cfg, "rule", None) or module.RULE  # mlp: bp or fa; inversion: also backprop
    log(f"running {model}/{rule} on {task_cfg['name']}: {cfg.layers}, {epochs} epochs of {len(task.train_x)} samples "
        f"(batch {batch}), {backend}/{target}")

    rng = np.random.default_rng(seed)
    history: dict[str, list] = {"times": [], "test_mse": [], "test_accuracy": []}
    extra: dict[str, list] = {}
    totals = {"sim_time_ms": 0.0, "steps": 0, "run_time_s": 0.0}

    def evaluate():
        out = forward(cfg, weights, task.test_x)
        history["times"].append(totals["sim_time_ms"] if model != "mlp" else float(len(history["times"])))
        history["test_mse"].append(float(np.mean((out - task.test_y) ** 2)))
        if task.test_labels is not None:
            history["test_accuracy"].append(float(np.mean(np.argmax(out, axis=1) == task.test_labels)))
        for key, value in (hook(cfg, weights, task.test_x) if hook else {}).items():
            if key in RESERVED:
                raise ValueError(f"epoch_metrics of {model!r} returns {key!r}, a name the summary reserves")
            extra.setdefault(key, []).append(float(value))

    t0, start = time.perf_counter(), 0
    checkpoint = checkpoints.for_run(out_dir, config, run["checkpoint_every"] or 1, resume)
    fingerprint = {key: config[key] for key in ("model", "network", "task")}, seed
    if resume:
        start, kept = checkpoint.load(fingerprint, epochs)
        weights, history, extra, totals = kept["weights"], kept["history"], kept["extra"], kept["totals"]
        rng.bit_generator.state = kept["rng"]
    else:
        evaluate()
    status, detail, divergence = "complete", "", None
    with interrupt.on_signals():
        for epoch in range(start, epochs):
            order = rng.permutation(len(task.train_x))
            x, y = task.train_x[order], task.train_y[order]
            if model == "mlp":
                t_run = time.perf_counter()
                ws = baselines.train([weights[f"W{l}"] for l in range(1, cfg.n_layers + 1)], x, y, cfg.activation,
                                     cfg.output_activation, cfg.rule, cfg.eta, seed, batch)
                totals["run_time_s"] += time.perf_counter() - t_run
                totals["steps"] += len(x) // batch
                weights.update({f"W{l}": w for l, w in enumerate(ws, start=1)})
            else:
                # sleep phases first (a module with sleep_phases: its feedback learns from noise,
                # the targets its own outputs), each with its own noise seed; then the epoch
                sleeps = module.sleep_phases(cfg, epoch) if hasattr(module, "sleep_phases") else 0
                for phase in range(sleeps + 1):
                    awake = phase == sleeps
                    net_cfg = cfg if awake else module.sleep_config(cfg)
                    targets = y if awake else forward(cfg, weights, x)
                    noise_seed = seed + epoch + (0 if awake else 1_000_003 * (phase + 1))
                    what = f"epoch {epoch + 1}" if awake else f"sleep phase {phase + 1} before epoch {epoch + 1}"
                    try:
                        result = _simulator(module.build(net_cfg, weights), run, noise_seed).run(
                            module.schedule(net_cfg, x, targets, batch))
                    except DivergenceError as err:  # what it ran until then is kept
                        result, status, detail = err.result, "diverged", f"{err} in {what}"
                        divergence = err.divergence
                    weights.update(result.final_weights)
                    for key in totals:
                        totals[key] += getattr(result, key)
                    if result.interrupted:
                        status, detail = "interrupted", f"{result.interrupted} of {what}"
                    if status != "complete":
                        break
                if status != "complete":
                    break
            bad = [k for k, w in weights.items() if not np.all(within_bound(w))]
            if bad:
                status, detail = "diverged", f"weights {bad} have NaN, inf or |w| > {BOUND:g} after epoch {epoch + 1}"
                divergence = Divergence.of(f"w:{bad[0]}", weights[bad[0]][~within_bound(weights[bad[0]])],
                                           totals["sim_time_ms"])
                break
            evaluate()
            acc = f"test accuracy {history['test_accuracy'][-1]:.4f}, " if history["test_accuracy"] else ""
            log(f"epoch {epoch + 1}/{epochs}: {acc}test mse {history['test_mse'][-1]:.4g}")
            if epoch + 1 < epochs and (interrupt.requested() or (epoch + 1) % checkpoint.every == 0):
                checkpoint.save(epoch + 1, fingerprint, {"weights": weights, "history": history, "extra": extra,
                                                         "totals": totals, "rng": rng.bit_generator.state})
            if interrupt.requested() and epoch + 1 < epochs:
                status, detail = "interrupted", f"{interrupt.describe(interrupt.requested())} after epoch {epoch + 1}"
                break
        signum = interrupt.requested()
    wall = time.perf_counter() - t0

    final = {}
    if history["test_accuracy"]:
        final["test_accuracy"] = history["test_accuracy"][-1]
    final["mse"] = history["test_mse"][-1]
    final["curve"] = list(history["test_accuracy"] or history["test_mse"])
    final.update(extra)
    summary = {
        "model": model, "rule": rule, "backend": backend, "target": target, "replicas": 1, "seed": seed,
        "task": task_cfg["name"], "sim_time_ms": float(totals["sim_time_ms"]), "wall_time_s": wall,
        "steps_per_s": totals["steps"] / totals["run_time_s"] if totals["run_time_s"] > 0 else float("nan"),
        "final": final,
    }
    _write(out_dir, config, summary, weights, history, extra, totals, wall, status, detail)
    if status == "interrupted":
        resume_with = f"; continue with: neurosim run --resume {out_dir}" if checkpoint.path.exists() else \
            " (before the first checkpoint: nothing to resume)"
        raise interrupt.Interrupted(signum, f"{model} run interrupted by {detail}; results so far "
                                    f"are in {out_dir} (status 'interrupted'){resume_with}")
    if status == "complete":
        checkpoints.finished(out_dir)
    if status == "diverged":
        raise DivergenceError(divergence, None, f"{model} run diverged: {detail}; results so far are in {out_dir}")
    return summary


def _mlp_forward(cfg: MLPConfig, weights: dict, x) -> np.ndarray:
    return rate_models.feedforward([weights[f"W{l}"] for l in range(1, cfg.n_layers + 1)], x, cfg.activation,
                                   cfg.output_activation)[-1]


def _simulator(net, run: dict, seed: int):
    if run["backend"] == "torch":
        from neurosim.backends.torch import TorchSimulator

        return TorchSimulator(net, device=run["device"], dtype=run["dtype"], seed=seed, samples=run["batch"],
                              compile=run["compile"])
    from neurosim.backends.brian2 import Brian2Simulator

    return Brian2Simulator(net, target=run["target"], seed=seed)


def _write(out_dir: Path, config: dict, summary: dict, weights: dict, history: dict, extra: dict, totals: dict,
           wall: float, status: str, detail: str) -> None:
    """summary.json, weights.npz, curve.png and results.h5 (metrics at each test: times
    in simulated ms, or the epoch for "mlp")."""
    write_summary(out_dir / "summary.json", summary, status, detail)
    np.savez(out_dir / "weights.npz", **weights)
    times = np.asarray(history["times"], dtype=float)
    metrics = {"test_mse": Trace(times, np.asarray(history["test_mse"]))}
    if history["test_accuracy"]:
        metrics["test_accuracy"] = Trace(times, np.asarray(history["test_accuracy"]))
    metrics.update({k: Trace(times[:len(v)], np.asarray(v)) for k, v in extra.items()})
    result = RunResult({}, weights, {}, totals["sim_time_ms"], totals["steps"], wall, totals["run_time_s"])
    write_results(out_dir / "results.h5", config=config, result=result, metrics=metrics, summary=summary,
                  status=status, detail=detail)
    plot_safely(_plot_curve, out_dir / "curve.png", summary, history)


def _plot_curve(path: Path, summary: dict, history: dict) -> None:
    """Test accuracy (classification) and mse per epoch (0: before training)."""
    from matplotlib.figure import Figure

    panels = [("test accuracy", history["test_accuracy"])] if history["test_accuracy"] else []
    panels.append(("test mse", history["test_mse"]))
    fig = Figure(figsize=(4.5 * len(panels), 3.5))
    for k, (label, values) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), k)
        values = finite(values)  # an overflowed test error is left out
        ax.plot(np.arange(len(values)), values, "o-")
        if label == "test mse" and np.nanmin(values) > 0:
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel=label)
    fig.suptitle(f"{summary['model']}/{summary['rule']} on {summary['task']} (seed {summary['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
