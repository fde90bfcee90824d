"""A checkpointed cpp_standalone run: one program, built once for the whole run and run
once per stretch of it, each run starting where the last one stopped.

The program's loop simulates the stretch [start, end) that $NEUROSIM_WINDOW names, its
clocks set to `start` (standalone_make.windowed_network_loop): the schedule's
TimedArrays, indexed by time, need no change. Each run starts from the last one's state,
given as run-time arguments (every writable variable of every group and synapse: state
variables, the values a model keeps from the last step, weights and rule states) and
from its random generators' state, which the program writes at its end and reads at its
start ($NEUROSIM_RNG_OUT, $NEUROSIM_RNG_IN; standalone_make.portable_random_state). What
the monitors record is gathered stretch by stretch. A stretched run therefore draws the
same numbers and computes the same steps as one program run over the whole run: their
results are equal bit for bit (tests/test_checkpoint.py).

After each stretch the state, the random state and the records so far are the
checkpoint. In stretch mode the program ignores SIGINT (the terminal's Ctrl-C reaches the
whole process group): the signal is recorded by this process, which stops after the
stretch that is running; and the program dies with this process (a SIGKILL of it leaves
no program writing into the project). Spikes in flight between two stretches would be
lost: networks whose spiking projections deliver with a delay are refused.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .. import interrupt
from ..checkpoint import Checkpoint
from ..recording import within_bound

# Code for the program's main (Brian2Simulator, _seed): in stretch mode it ignores SIGINT and
# dies with its parent, and reads the random state the last stretch wrote.
STRETCH_START = """
    if (std::getenv("NEUROSIM_WINDOW"))
    {{
        std::signal(SIGINT, SIG_IGN);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    }}
    if (const char* _state = std::getenv("NEUROSIM_RNG_IN"))
    {{
        std::ifstream _in(_state);
        for (int _i = 0; _i < {threads}; _i++)
            brian::_random_generators[_i].neurosim_load(_in);
    }}"""
# ... and at its end writes the random state for the next stretch
STRETCH_END = """
    if (const char* _state = std::getenv("NEUROSIM_RNG_OUT"))
    {{
        std::ofstream _out(_state);
        for (int _i = 0; _i < {threads}; _i++)
            brian::_random_generators[_i].neurosim_save(_out);
    }}"""


def writable(owner) -> list[str]:
    """The variables of a Brian2 group or synapse object that a run changes and a
    stretch must start from (its own arrays that are neither read-only nor constant)."""
    from brian2.core.variables import ArrayVariable

    return [name for name, var in owner.variables.items()
            if isinstance(var, ArrayVariable) and var.owner.name == owner.name and not var.read_only
            and not var.constant]


def run(directory: str, seed: int, dt: float, n_steps: int, owners: list, monitors: dict,
        checkpoint: Checkpoint, fingerprint, run_program, read_monitors) -> tuple[dict, int, float]:
    """Run the built program in `directory` in stretches of checkpoint.every ms (through
    `run_program(directory, seed, args, env)`), with a checkpoint after each, or go on
    from the checkpoint. Returns (the monitors' records, read after each stretch by
    `read_monitors(monitors)`, the step reached, the programs' summed run time): the step
    is n_steps unless a signal or a state or weight past recording.BOUND stopped the run.
    `owners`: the groups and synapses whose state the stretches hand on."""
    from brian2 import Quantity, get_device

    views = [(owner, name) for owner in owners for name in writable(owner)]
    k, recorded, state, rng, run_time = 0, {}, None, None, 0.0
    if checkpoint.resume:
        k, kept = checkpoint.load(fingerprint, n_steps)
        recorded, state, rng = kept["recorded"], kept["state"], kept["random"]
    every = checkpoint.every_steps(dt) or n_steps
    with tempfile.TemporaryDirectory(prefix="neurosim_rng_") as tmp:
        rng_in, rng_out = Path(tmp) / "in.txt", Path(tmp) / "out.txt"
        while k < n_steps:
            end = min(n_steps, (k // every + 1) * every)
            env = {"NEUROSIM_WINDOW": f"{k * dt / 1000!r} {end * dt / 1000!r}", "NEUROSIM_RNG_OUT": str(rng_out)}
            if rng is not None:
                rng_in.write_text(rng)
                env["NEUROSIM_RNG_IN"] = str(rng_in)
            args = {getattr(owner, name): Quantity(state[f"{owner.name}.{name}"], dim=owner.variables[name].dim)
                    for owner, name in views} if state else None
            run_program(directory, seed, args, env)
            run_time += float(get_device()._last_run_time)
            state = {f"{owner.name}.{name}": np.array(getattr(owner, name)[:]) for owner, name in views}
            _forget_record_counts(monitors)
            recorded = _joined(recorded, read_monitors(monitors))
            rng, k = rng_out.read_text(), end
            if not all(np.all(within_bound(values)) for values in state.values()):
                break  # the result's first_divergence names it
            if k < n_steps:
                checkpoint.save(k, fingerprint, {"state": state, "recorded": recorded, "random": rng})
            if interrupt.requested():
                break
    return recorded, k, run_time


def _forget_record_counts(monitors: dict) -> None:
    """Brian2 reads a standalone monitor's records (n_t, n) from the results file taking n
    from the size it read last time, when that size has n_t = 0: another stretch has
    another n_t."""
    for mon in monitors.values():
        for var in mon.variables.values():
            if getattr(var, "dynamic", False) and isinstance(var.size, tuple) and len(var.size) == 2:
                var.size = (0, var.size[1])


def _joined(before: dict, after: dict) -> dict:
    """Two stretches' records, one after the other."""
    if not before:
        return after
    return {key: {name: np.concatenate([before[key][name], values]) for name, values in records.items()}
            for key, records in after.items()}
