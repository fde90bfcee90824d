"""What both spiking backends check and derive the same way."""
from __future__ import annotations

import numpy as np

from ..recording import Recording
from ..schedule import Schedule
from ..spiking import SpikingNetwork, state_variables


def check_spiking_recording(net: SpikingNetwork, recording: Recording, backend: str) -> None:
    """State variables (v; I of CubaLIF) of neuron populations; spikes of spiking ones."""
    for pop_name, variables in recording.variables.items():
        pop = net.population(pop_name)
        allowed = state_variables(pop.model)
        for var in variables:
            if var not in allowed:
                raise ValueError(f"cannot record {var!r} of {pop_name} on the {backend} backend; "
                                 f"choose from {sorted(allowed)}")
    for pop_name in recording.spikes:
        if not net.population(pop_name).spiking:
            raise ValueError(f"{pop_name} sends no spikes to record")
    if recording.weights:
        raise ValueError("spiking networks have fixed weights; there are none to record over time")


def poisson_probabilities(schedule: Schedule, name: str, dt: float) -> np.ndarray:
    """rate (Hz) * dt per step, (presentations, samples, n); refused above 1."""
    p = schedule.batched(name) * dt / 1000.0
    if np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"Poisson rates of {name} must lie in [0, {1000.0 / dt:g}] Hz at dt = {dt} ms "
                         f"(one spike per step); got {schedule.batched(name).min():g} .. {schedule.batched(name).max():g}")
    return p
