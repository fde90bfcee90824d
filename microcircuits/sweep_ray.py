"""`neurosim sweep`: the runs of a spec (microcircuits.sweep_spec) as Ray tasks, locally or
on a cluster, into one results table written as runs finish.

One task per run on Brian2; on torch a variant's consecutive seeds of the dendritic
microcircuit are one task, run as replicas. A task runs in its run's folder exactly as
`neurosim run` would and returns one row per run: status, final metrics, wall time, the
Ray node it ran on, its attempt. A run that raises or diverges is a row with its status
and message and the others go on; a worker that dies (a killed process) is retried once by
Ray (`max_retries=1`), then reported as a failed row. The table (SWEEP_CSV, SWEEP_MD:
every run, and per variant the mean and standard deviation over seeds) is rewritten each
time a run finishes, the plots over time (the mean over seeds, min to max shaded) at most
once a minute and at the end.

Resume: a run whose folder holds a complete results file of the same config (its hash,
in DONE) is not run again; a run with a checkpoint continues from it; the rest start.
SIGINT or SIGTERM stops a sweep within a second: the runs still going stop with their
last checkpoints kept, and `Interrupted` says how many (the CLI exits 128 + signal).
"""
from __future__ import annotations

import csv
import json
import os
import statistics
import time
from pathlib import Path

from neurosim import checkpoint
from neurosim import interrupt
from neurosim.interrupt import Interrupted
from neurosim.recording import DivergenceError, read_results

from .sweep_spec import Run, config_hash

PLOT_EVERY_S = 60.0  # the plots are redrawn at most this often while runs finish, and at the end
SWEEP_CSV, SWEEP_MD, DONE, ATTEMPTS, PID = "sweep.csv", "sweep.md", "sweep_done.json", "sweep_attempts", "sweep.pid"
COLUMNS = ("label", "variant", "seed", "status", "test_accuracy", "mse", "wall_time_s", "node", "attempt", "message",
           "folder")


def tasks(runs: list[Run]) -> list[list[Run]]:
    """The runs grouped into tasks: a torch variant's consecutive seeds of the dendritic
    microcircuit together (as replicas; the rate runners run one seed per run), every
    other run alone."""
    out, groups = [], {}
    for run in runs:
        if run.backend == "torch" and run.config["model"] == "dendritic":
            groups.setdefault((run.label, run.variant), []).append(run)
        else:
            out.append([run])
    for group in groups.values():
        seeds = [r.seed for r in group]
        if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 1:
            out.append(group)
        else:
            out.extend([r] for r in group)
    return out


def finished(run: Run, out: Path) -> dict | None:
    """The row of a complete earlier run of exactly this config in its folder, else None."""
    folder = out / run.folder
    try:
        done = json.loads((folder / DONE).read_text())
        results = read_results(folder / "results.h5")
    except (OSError, ValueError):
        return None
    if done.get("hash") != config_hash(run.config) or results["status"] != "complete":
        return None
    return done["row"]


def run_task(group: list[Run], out: str) -> list[dict]:
    """Run one task (in a Ray worker): its runs' rows. Its folder records the process id
    (PID) and the attempt (ATTEMPTS)."""
    import ray

    from .runners import resume_config, run_experiment

    out = Path(out)
    first = group[0]
    folder = out / first.folder if len(group) == 1 else (out / first.folder).parent
    folder.mkdir(parents=True, exist_ok=True)
    attempt = int((folder / ATTEMPTS).read_text()) + 1 if (folder / ATTEMPTS).exists() else 1
    (folder / ATTEMPTS).write_text(str(attempt))
    (folder / PID).write_text(str(os.getpid()))
    try:
        import torch

        torch.set_num_threads(1)  # the runs themselves are parallel
    except ImportError:
        pass
    config = first.config if len(group) == 1 else \
        {**first.config, "run": {**first.config["run"], "replicas": len(group)}}
    node = ray.get_runtime_context().get_node_id()[:8] if ray.is_initialized() else "local"
    t0 = time.perf_counter()
    status, message = "complete", ""
    try:
        if checkpoint.unfinished(folder):
            run_experiment(resume_config(folder), folder, log=lambda *a: None, resume=True)
        else:
            run_experiment(config, folder, log=lambda *a: None)
    except Exception as err:  # noqa: BLE001 - a row says what happened; the sweep goes on
        status, message = _status(err), str(err).splitlines()[0] if str(err) else type(err).__name__
    wall = time.perf_counter() - t0
    rows = []
    for run in group:
        run_folder = out / run.folder
        row = {"label": run.label, "variant": run.variant, "seed": run.seed, "status": status, "wall_time_s": wall,
               "node": node, "attempt": attempt, "message": message, "folder": run.folder,
               **_final(run_folder / "results.h5")}
        if status == "complete":
            (run_folder / DONE).write_text(json.dumps({"hash": config_hash(run.config), "row": row}))
        rows.append(row)
    (folder / PID).unlink(missing_ok=True)
    return rows


def _status(err: Exception) -> str:
    return "diverged" if isinstance(err, DivergenceError) else "interrupted" if isinstance(err, Interrupted) \
        else "failed"


def _final(results: Path) -> dict:
    """The final test accuracy and mse of a results file (empty where it has none)."""
    try:
        final = read_results(results)["summary"]["final"]
    except (OSError, ValueError, KeyError):
        return {}
    return {k: final[k] for k in ("test_accuracy", "mse") if isinstance(final.get(k), (int, float))}


def run_sweep(runs: list[Run], out, workers: int = 2, address: str | None = None, resume: bool = True,
              log=print) -> list[dict]:
    """Run `runs` on Ray (a local cluster of `workers` CPUs, or the cluster at `address`)
    into `out`, skipping complete runs of the same config (`resume`); returns every row,
    in the runs' order, with the table and plots written."""
    import ray

    if address:
        _check_reachable(address)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {run.folder: finished(run, out) if resume else None for run in runs}
    todo = [group for group in tasks(runs) if any(rows[r.folder] is None for r in group)]
    seeds = list(dict.fromkeys(run.seed for run in runs))
    todo.sort(key=lambda group: seeds.index(group[0].seed))  # seed by seed: a stopped sweep has every variant
    log(f"sweep: {len(runs)} runs, {sum(r is not None for r in rows.values())} complete already, "
        f"{sum(len(g) for g in todo)} to run in {len(todo)} task(s)")
    if todo:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ValueError(f"--address {address}: no Ray cluster to connect to ({str(err).splitlines()[0]})"
                             if address else f"Ray did not start ({str(err).splitlines()[0]})") from None
        signum = None
        try:
            remote = ray.remote(num_cpus=1, max_retries=1)(run_task)
            pending = {remote.remote(group, str(out.resolve())): group for group in todo}
            plotted = time.monotonic()
            with interrupt.on_signals():
                while pending and not interrupt.requested():
                    plotted = _next_rows(ray, pending, runs, rows, out, log, plotted)
                signum = interrupt.requested()
        finally:
            ray.shutdown()  # a run still going stops here, with its last checkpoint kept
        if signum:
            write_table(runs, rows, out)
            stopped = sum(len(group) for group in pending.values())
            raise Interrupted(signum, f"sweep stopped by {interrupt.describe(signum)}: {stopped} run(s) not finished "
                                      f"(their checkpoints are kept); the same command again resumes it")
    write_table(runs, rows, out)
    return [rows[run.folder] for run in runs]


def _next_rows(ray, pending: dict, runs: list[Run], rows: dict, out: Path, log, plotted: float) -> float:
    """Wait up to a second for a task to finish (so that a signal is seen within a second:
    ray.wait blocks in C++); take its rows into `rows`, log them and rewrite the table.
    Returns when the plots were last drawn."""
    ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
    if not ready:
        return plotted
    group = pending.pop(ready[0])
    try:
        new = ray.get(ready[0])
    except ray.exceptions.RayError as err:  # the worker died twice
        new = [{"label": r.label, "variant": r.variant, "seed": r.seed, "status": "failed",
                "attempt": 2, "message": f"worker died ({type(err).__name__})", "folder": r.folder}
               for r in group]
    for row in new:
        rows[row["folder"]] = row
        log(f"{row['folder']}: {row['status']}" + (f" ({row['message']})" if row["message"] else ""))
    plots = time.monotonic() - plotted >= PLOT_EVERY_S  # drawing takes CPU from the runs
    write_table(runs, rows, out, plots)
    return time.monotonic() if plots else plotted


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """--address names a host:port that accepts connections (Ray itself waits minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address must be HOST:PORT (of `ray start --head`), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ValueError(f"--address {address}: no Ray cluster answers there ({err.strerror or err})") from None


def write_table(runs: list[Run], rows: dict, out: Path, plots: bool = True) -> None:
    """SWEEP_CSV (a row per run; unrun ones `pending`), SWEEP_MD (per variant the mean and
    standard deviation over its complete seeds, and every run) and (`plots`) the plots
    over time."""
    table = [rows[run.folder] or {"label": run.label, "variant": run.variant, "seed": run.seed, "status": "pending",
                                  "folder": run.folder} for run in runs]
    tmp = out / (SWEEP_CSV + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)
    tmp.replace(out / SWEEP_CSV)
    lines = ["| config | variant | complete | test accuracy | test mse | per seed |", "|---|---|---|---|---|---|"]
    variants = list(dict.fromkeys((r["label"], r["variant"]) for r in table))
    for label, variant in variants:
        mine = [r for r in table if (r["label"], r["variant"]) == (label, variant)]
        ok = [r for r in mine if r["status"] == "complete"]
        cells = [_spread([r[k] for r in ok if k in r]) for k in ("test_accuracy", "mse")]
        per_seed = ", ".join(f"{r['seed']}: " + (f"{r['test_accuracy']:.4f}" if "test_accuracy" in r else
                                                 f"{r['mse']:.4g}" if "mse" in r else r["status"]) for r in mine)
        lines.append(f"| {label} | {variant} | {len(ok)}/{len(mine)} | {cells[0]} | {cells[1]} | {per_seed} |")
    lines += ["", "| run | status | node | attempt | message |", "|---|---|---|---|---|"]
    lines += [f"| {r['folder']} | {r['status']} | {r.get('node', '')} | {r.get('attempt', '')} | "
              f"{r.get('message', '')} |" for r in table]
    (out / SWEEP_MD).write_text("\n".join(lines) + "\n")
    if plots:
        _plot(table, out)


def _spread(values) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.fmean(values):.4g} +- {statistics.stdev(values):.2g}"


def _plot(table: list[dict], out: Path) -> None:
    """sweep_<label>.png per config (sweep.png without labels): its test accuracy (or mse)
    over time per variant."""
    from .plots import plot_safely
    from .sweep import plot_over_seeds

    for label in dict.fromkeys(r["label"] for r in table):
        curves = {}
        for variant in dict.fromkeys(r["variant"] for r in table if r["label"] == label):
            paths = [out / r["folder"] / "results.h5" for r in table
                     if (r["label"], r["variant"]) == (label, variant) and r["status"] == "complete"]
            if paths:
                metrics = read_results(paths[0])["metrics"]
                key = next((k for k in ("test_accuracy", "test_mse") if k in metrics), None)
                if key is not None:
                    curves[variant] = (paths, key)
        if curves:
            key = next(iter(curves.values()))[1]
            plot_safely(plot_over_seeds, curves, out / (f"sweep_{label}.png" if label else "sweep.png"),
                        key.replace("_", " "), label, key == "test_mse")
