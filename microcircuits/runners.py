"""Which runner trains a config: its `model` names one. "dendritic" (the default) runs in
microcircuits.dendritic_runner; "energy", "dfc", "inversion" and the MLP baselines "mlp"
run in microcircuits.rate_runner. A runner gives `make_config(user)` (the defaults
overlaid with the user's config, checked) and `run(config, out_dir, progress, log, resume)`;
runners take their data from microcircuits.tasks and their defaults from
microcircuits.defaults, and never import one another."""
from __future__ import annotations

import json
from pathlib import Path

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


def run_experiment(config: dict, out_dir, progress: bool = False, log=print, resume: bool = False) -> dict | list[dict]:
    """Run one config with its model's runner, writing into out_dir; returns the summary
    (a list of them for the dendritic runner's torch replicas). `resume`: continue from
    the checkpoint in out_dir (see resume_config)."""
    return runner(config).run(config, out_dir, progress=progress, log=log, resume=resume)


def resume_config(out_dir) -> dict:
    """The full config a checkpointed run in out_dir was started with."""
    path = Path(out_dir) / dendritic_runner.RUN_CONFIG
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"--resume {out_dir}: no checkpointed run there ({path} is missing)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"--resume {out_dir}: {path} is damaged ({err})") from None
