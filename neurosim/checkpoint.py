"""Checkpoints: the file a run keeps what it needs to continue exactly, for every backend.

A checkpoint is one pickle, written whole or not at all (to a temporary file, then
renamed over the last one): the position (step k of the run), a fingerprint of what
made it (the network's structure: a checkpoint of another network is refused), the
source revision that wrote it (resuming with another one warns) and the
backend's own state (torch: every state tensor, weight, rule state, divergence and the
recording so far; Brian2: Network.store's snapshot of every group, synapse, monitor,
clock and the random generator, buffers included; the rate runners: weights and
curves at the end of an epoch). `every` is how often a run writes one, in the run's
unit (ms of simulated time for a simulation, epochs for the rate runners); `resume`
says to continue from the file instead of starting.

A run keeps its checkpoint in its output folder as CHECKPOINT, beside the full config it
was started with (RUN_CONFIG, from which `neurosim run --resume OUT` starts it again);
both go when the run completes.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

from .recording import source_revision

CHECKPOINT, RUN_CONFIG = "checkpoint.pkl", "run_config.json"


@dataclass
class Checkpoint:
    path: Path
    every: float = math.inf
    resume: bool = False

    def __post_init__(self):
        self.path = Path(self.path)

    def every_steps(self, dt: float, multiple: int = 1) -> int | None:
        """every (ms) in steps of dt, rounded to a whole number (>= 1) of `multiple`
        steps; None when only a signal writes one."""
        if not math.isfinite(self.every):
            return None
        return max(1, round(self.every / dt / multiple)) * multiple

    def save(self, k: int, fingerprint, state: dict) -> None:
        """Write step k, the fingerprint and the backend's `state` atomically."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump({"k": k, "fingerprint": repr(fingerprint), "state": state, "revision": source_revision()},
                        f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    def load(self, fingerprint, n_steps: int) -> tuple[int, dict]:
        """(step, state) from the file; a damaged file, or one of another network or a
        step outside the run, is refused naming the file."""
        try:
            with open(self.path, "rb") as f:
                data = pickle.load(f)
            k, made_by, state = data["k"], data["fingerprint"], data["state"]
        except (OSError, EOFError, KeyError, TypeError, ValueError, AttributeError, ImportError, IndexError,
                RuntimeError, pickle.UnpicklingError) as err:
            raise ValueError(f"{self.path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
        if made_by != repr(fingerprint) or not 0 < k < n_steps:
            raise ValueError(f"{self.path}: a checkpoint of another network or run (step {k} of {n_steps})")
        written_by, now = data.get("revision"), source_revision()
        if written_by and now and written_by != now:
            warnings.warn(f"{self.path} was written by source revision {written_by} and is resumed by {now}: "
                          "the run goes on with other code and need not equal an uninterrupted run")
        return k, state


def for_run(out_dir, config: dict, every: float, resume: bool) -> Checkpoint:
    """The Checkpoint of a run into out_dir (written every `every`, in the run's own unit;
    inf: only when a signal stops the run), with the run's config written beside it; with
    `resume`, the checkpoint must be there."""
    out_dir = Path(out_dir)
    checkpoint = Checkpoint(out_dir / CHECKPOINT, every, resume)
    if resume and not checkpoint.path.exists():
        raise ValueError(f"--resume {out_dir}: no checkpoint there ({checkpoint.path} is missing)")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RUN_CONFIG).write_text(json.dumps(config))
    return checkpoint


def run_config(out_dir) -> dict:
    """The full config the checkpointed run in out_dir was started with."""
    path = Path(out_dir) / RUN_CONFIG
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"--resume {out_dir}: no checkpointed run there ({path} is missing)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"--resume {out_dir}: {path} is damaged ({err})") from None


def unfinished(out_dir) -> bool:
    """out_dir holds a checkpointed run that has not completed."""
    return (Path(out_dir) / CHECKPOINT).exists()


def finished(out_dir) -> None:
    """The run in out_dir completed: its checkpoint and config go (its results hold everything)."""
    for name in (CHECKPOINT, RUN_CONFIG):
        (Path(out_dir) / name).unlink(missing_ok=True)
