"""Which runner trains a config: its `model` names one. "dendritic" (the default) runs in
microcircuits.dendritic_runner; "energy", "dfc", "inversion" and the MLP baselines "mlp"
run in microcircuits.rate_runner. A runner gives `make_config(user)` (the defaults
overlaid with the user's config, checked) and `run(config, out_dir, progress, log)`;
runners take their data from microcircuits.tasks and their defaults from
microcircuits.defaults, and never import one another."""
from __future__ import annotations

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


def run_experiment(config: dict, out_dir, progress: bool = False, log=print) -> dict | list[dict]:
    """Run one config with its model's runner, writing into out_dir; returns the summary
    (a list of them for the dendritic runner's torch replicas)."""
    return runner(config).run(config, out_dir, progress=progress, log=log)
