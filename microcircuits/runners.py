"""Which runner trains a config: its `model` names one. "dendritic" (the default) runs in
microcircuits.dendritic_runner; "energy", "dfc", "inversion" and the MLP baselines "mlp"
run in microcircuits.rate_runner. A runner gives `make_config(user)` (the defaults
overlaid with the user's config, checked) and `run(config, out_dir, progress, log, resume)`;
runners take their data from microcircuits.tasks and their defaults from
microcircuits.defaults, and never import one another."""
from __future__ import annotations

import time
import traceback
from pathlib import Path

from neurosim import checkpoint
from neurosim.interrupt import Interrupted
from neurosim.recording import DivergenceError, RunFailed, write_summary

from . import dendritic_runner, rate_runner
from .defaults import DEFAULTS

RUNNERS = {"dendritic": dendritic_runner, **{model: rate_runner for model in rate_runner.MODELS}}


def runner(config: dict):
    """The runner module of config["model"]; an unknown model is a ValueError naming it."""
    model = config.get("model", DEFAULTS["model"])
    if not isinstance(model, str) or model not in RUNNERS:
        raise ValueError(f"unknown model {model!r}; available: {list(RUNNERS)}")
    return RUNNERS[model]


def make_config(user: dict) -> dict:
    """The full config of the user's: its runner's defaults overlaid with it; unknown
    sections or keys, and settings the model cannot run, are ValueErrors."""
    return runner(user).make_config(user)


TRACEBACK = "traceback.txt"  # in out_dir, beside the summary.json of a failed run


def run_experiment(config: dict, out_dir, progress: bool = False, log=print, resume: bool = False) -> dict | list[dict]:
    """Run one config with its model's runner, writing into out_dir; returns the summary
    (a list of them for the dendritic runner's torch replicas). `resume`: continue from
    the checkpoint in out_dir (see resume_config). Any other error than a bad config, a
    signal or divergence leaves out_dir/summary.json with status `failed` and the error's
    message, the traceback in out_dir/TRACEBACK, and raises RunFailed."""
    module, t0 = runner(config), time.perf_counter()
    try:
        return module.run(config, out_dir, progress=progress, log=log, resume=resume)
    except (ValueError, Interrupted, DivergenceError):
        raise
    except Exception as err:  # noqa: BLE001 - whatever it is, the run's folder says it failed
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / TRACEBACK).write_text(traceback.format_exc())
        message = f"{type(err).__name__}: {err}"
        full = module.make_config(config)
        write_summary(out_dir / "summary.json", {
            "model": full["model"], "rule": None, "backend": full["run"]["backend"], "seed": full["run"]["seed"],
            "task": full["task"]["name"], "sim_time_ms": None, "wall_time_s": time.perf_counter() - t0,
            "steps_per_s": None, "final": {}}, "failed", message)
        raise RunFailed(f"run failed: {message.splitlines()[0]} (status 'failed' in {out_dir / 'summary.json'}, "
                        f"traceback in {out_dir / TRACEBACK})") from err


def resume_config(out_dir) -> dict:
    """The full config a checkpointed run in out_dir was started with."""
    return checkpoint.run_config(out_dir)
