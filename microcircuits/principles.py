"""All learning principles on the same tasks and seeds: the dendritic microcircuit
(bp, fa, pal), prospective configuration, strong-feedback DFC, dynamic inversion and the
MLP baselines (bp, fa). A spec (TOML) lists per task the settings every method shares
and, per method, an example config and its own overrides:

    seeds = 3
    [tasks.yinyang.shared]            # merged into every method's config
    task = { name = "yinyang", epochs = 10 }
    network = { layers = [4, 30, 3] }
    [tasks.yinyang.methods."energy"]
    config = "energy_yinyang.toml"    # relative to the spec's folder
    set = { network = { eta = 0.5 } } # this method's overrides, applied last

Seed k is run.seed = k for every method: the same data split, data order and (where the
shapes agree) initial forward weights. Each (task, method, seed) is one run, as `neurosim
sweep` runs them (microcircuits.sweep_ray), in out/<task>/<method>/seed<k>; a run that
fails (diverges) is reported in the table, not fatal. The table gives the task's measure: test accuracy (classification)
or test mse (regression), after the last epoch."""
from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path

import numpy as np

from neurosim.config import load_config, merge
from neurosim.recording import read_results, strict_json

from . import sweep_ray
from .runners import make_config
from .sweep import mean_sem
from .sweep_spec import Run

SECTIONS = ("network", "task", "run")


def load_spec(path) -> dict:
    """The spec as {"seeds": n, "tasks": {task: {"methods": {label: config}}}}, each
    method's config read and merged with the task's shared settings and its own; errors
    name the task, method and key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"spec file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from None
    unknown = sorted(set(raw) - {"seeds", "tasks"})
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; a spec has `seeds` and [tasks.<name>]")
    seeds = raw.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"{path}: seeds must be a positive integer, got {seeds!r}")
    tasks = {}
    for task, entry in raw.get("tasks", {}).items():
        where = f"{path}: [tasks.{task}]"
        extra = sorted(set(entry) - {"shared", "methods"})
        if extra:
            raise ValueError(f"{where}: unknown keys {extra}; known: ['methods', 'shared']")
        shared = entry.get("shared", {})
        _check_sections(shared, f"{where}.shared")
        if not entry.get("methods"):
            raise ValueError(f"{where} lists no methods")
        methods = {}
        for label, method in entry["methods"].items():
            here = f"{where}.methods.{label!r}"
            if not re.fullmatch(r"[\w.+-]+", label):
                raise ValueError(f"{here}: a method's name is a folder name (letters, digits, _ . + -)")
            if set(method) - {"config", "set"} or "config" not in method:
                raise ValueError(f"{here}: give `config` (an example TOML) and optionally `set`, got {sorted(method)}")
            _check_sections(method.get("set", {}), f"{here}.set")
            try:
                config = load_config(path.parent / method["config"])
                config = merge(merge(config, copy.deepcopy(shared)), copy.deepcopy(method.get("set", {})))
                make_config(config)  # validates every section
            except ValueError as err:
                raise ValueError(f"{here}: {err}") from None
            methods[label] = config
        tasks[task] = {"methods": methods}
    if not tasks:
        raise ValueError(f"{path} lists no [tasks.<name>]")
    return {"seeds": seeds, "tasks": tasks}


def _check_sections(values: dict, where: str) -> None:
    if not isinstance(values, dict) or any(k not in SECTIONS or not isinstance(v, dict) for k, v in values.items()):
        raise ValueError(f"{where} must be tables among {SECTIONS}, got {values!r}")


def compare_principles(spec: dict, seeds, out, tasks=None, workers: int = 2, reuse: bool = False) -> str:
    """Run every method of every task (all of `tasks`, default the spec's) for every seed,
    as `neurosim sweep` runs (microcircuits.sweep_ray: Ray tasks, each (task, method,
    seed) in out/<task>/<method>/seed<k>); write out/table.md, out/summaries.json and
    out/<task>.png (test measure per epoch, mean over seeds, min-max shaded); return the
    tables (markdown). reuse: a run whose folder holds a complete results file of the same
    config is read, not run again."""
    out, seeds = Path(out), list(seeds)
    tasks = list(tasks or spec["tasks"])
    missing = sorted(set(tasks) - set(spec["tasks"]))
    if missing:
        raise ValueError(f"tasks {missing} are not in the spec; it has {sorted(spec['tasks'])}")
    planned = [Run(t, m, s, make_config(merge(copy.deepcopy(spec["tasks"][t]["methods"][m]), {"run": {"seed": s}})))
               for t in tasks for m in spec["tasks"][t]["methods"] for s in seeds]
    rows = sweep_ray.run_sweep(planned, out, workers=workers, resume=reuse, log=lambda *a: None)
    runs: dict = {t: {m: [] for m in spec["tasks"][t]["methods"]} for t in tasks}
    for run, row in zip(planned, rows):
        path = out / run.folder / "results.h5"
        runs[run.label][run.variant].append({**read_results(path)["summary"], "results": str(path)}
                                            if row["status"] == "complete" else
                                            {"error": f"{row['status']}: {row['message']}", "results": str(path)})
    (out / "summaries.json").write_text(json.dumps(strict_json(runs), indent=1, allow_nan=False))
    tables = []
    for task in tasks:
        tables.append(f"### {task}\n\n" + task_table(runs[task]))
        plot_curves(runs[task], out / f"{task}.png", task)
    text = "\n\n".join(tables)
    (out / "table.md").write_text(text + "\n")
    return text


def failed_runs(out) -> list[str]:
    """The runs of a comparison in `out` that did not complete (diverged, failed or
    stopped), as task/method/seed<k>, from out/summaries.json."""
    runs = json.loads((Path(out) / "summaries.json").read_text())
    return [f"{task}/{method}/{Path(row['results']).parent.name}" for task, methods in runs.items()
            for method, rows in methods.items() for row in rows if "error" in row]


def measure(summary: dict) -> tuple[str, float]:
    """The task's measure of a run: ("test accuracy", a) or ("test mse", e)."""
    final = summary["final"]
    return ("test accuracy", final["test_accuracy"]) if "test_accuracy" in final else ("test mse", final["mse"])


def task_table(methods: dict[str, list[dict]]) -> str:
    """One row per method: model/rule, backend, the measure's mean +- s.e.m. and per seed."""
    done = [s for runs in methods.values() for s in runs if "error" not in s]
    name = measure(done[0])[0] if done else "measure"
    fmt = "{:.3f}" if name == "test accuracy" else "{:.2e}"
    rows = [f"| method | model / rule | backend | {name}, mean +- s.e.m. | per seed | wall per run (s) |",
            "|---|---|---|---|---|---|"]
    for label, runs in methods.items():
        ok = [s for s in runs if "error" not in s]
        failed = len(runs) - len(ok)
        if not ok:
            rows.append(f"| {label} | - | - | failed ({runs[0]['error'][:80]}) | - | - |")
            continue
        values = [measure(s)[1] for s in ok]
        mean, sem = mean_sem(values)
        per_seed = ", ".join(fmt.format(v) for v in values) + (f"; {failed} failed" if failed else "")
        rows.append(f"| {label} | {ok[0]['model']} / {ok[0]['rule']} | {ok[0]['backend']} | "
                    f"{fmt.format(mean)} +- {fmt.format(sem)} | {per_seed} | "
                    f"{np.mean([s['wall_time_s'] for s in ok]):.0f} |")
    return "\n".join(rows)


def curve(summary: dict) -> np.ndarray:
    """The test measure before training and after every epoch: the rate runs keep it in
    the summary, the dendritic runs in results.h5 (one test block per epoch with
    task.test_every = 1, as the spec sets for them)."""
    name = measure(summary)[0]
    if "curve" in summary["final"]:
        return np.asarray(summary["final"]["curve"], dtype=float)
    key = "test_accuracy" if name == "test accuracy" else "test_mse"
    return np.asarray(read_results(summary["results"])["metrics"][key].values, dtype=float)


def plot_curves(methods: dict[str, list[dict]], path, title: str) -> None:
    """The measure per epoch, mean over the seeds that finished, min to max shaded."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot(1, 1, 1)
    name = "measure"
    for label, runs in methods.items():
        ok = [s for s in runs if "error" not in s]
        if not ok:
            continue
        name = measure(ok[0])[0]
        curves = [curve(s) for s in ok]
        n = min(len(c) for c in curves)
        values = np.stack([c[:n] for c in curves])
        epochs = np.arange(n)
        line, = ax.plot(epochs, values.mean(axis=0), "o-", ms=3, label=label)
        ax.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.15)
    if name == "test mse":
        ax.set_yscale("log")
    ax.set(xlabel="test after epoch", ylabel=name, title=title)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
