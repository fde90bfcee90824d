"""What a neuron model declares, and what it gives each backend.

A model is a small frozen dataclass (its parameters) with its equation in the docstring.
It declares

    ports     the input ports (compartments) that projections may target
    signals   what a population of it sends, the default first ("rate", "value",
              "voltage", "spikes"); () for a read-out that sends nothing
    events    True when its signal is spikes, delivered as events (Brian2: on_pre)
    fires     True when it spikes (what Recording.spikes records); by default `events`
    state     the state variables that run(reset=True) returns to their start
    noises    the noise classes (neurosim.noise) it accepts

and gives, side by side in its file:

    brian2(ctx) -> Brian2Group   its Brian2 equations, update, store and signals
    torch(ctx)  -> TorchGroup    its torch step over (replicas, samples, neurons) tensors

`ctx` is the backend's view of one population (neurosim/backends/brian2.py and
torch.py): its summed input per port, its parameters per replica, its data. A backend
refuses a model that lacks its method when the simulator is built.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


class Model:
    """Base of every neuron model (the declarations above; no backend code)."""

    ports: tuple = ()
    signals: tuple = ()
    events: bool = False
    state: tuple = ()
    noises: tuple = ()

    @property
    def fires(self) -> bool:
        return self.events

    def draw_streams(self, noise) -> tuple:
        """The random streams a population of it draws from, one number per neuron and
        step each: "noise" for its noise source. A simulator's `noise=` replays a stream
        under the key "<population>" ("noise") or "<population>.<stream>"."""
        return ("noise",) if noise is not None else ()

    def check(self, size: int) -> None:
        """Raise a ValueError naming a parameter that does not fit `size` neurons."""

    def check_noise(self, where: str, noise) -> None:
        """Raise a ValueError when the model cannot take this noise."""
        if not isinstance(noise, self.noises):
            kinds = [n.__name__ for n in self.noises] or "no noise"
            raise ValueError(f"{where}: {type(self).__name__} takes {kinds}, not {noise!r}")

    def data(self, name: str, size: int, fed: set) -> dict[str, int]:
        """Schedule keys the population reads, with their widths."""
        return {}

    def gated(self, name: str, fed: set) -> tuple:
        """Schedule keys of `data` that take a gate (Schedule.gates)."""
        return ()

    def recordable(self, fed: set, noise) -> tuple:
        """Variables a Recording may ask for."""
        return self.state

    def check_data(self, key: str, values: np.ndarray, dt: float) -> None:
        """Raise a ValueError when the schedule's values cannot drive the model."""


@dataclass
class Signal:
    """A signal in Brian2: its expression at the start of the step (what a delay-1
    projection reads) and after the population's update (delay 0). `kept`: the start
    expression stays valid until the end of the step; `timeless`: `now` is valid at
    any time of the step (a function of t only)."""

    start: str
    now: str
    kept: bool = False
    timeless: bool = False


@dataclass
class Brian2Group:
    """A population in Brian2: the NeuronGroup's equations and namespace; `update`: code
    run once per step at the population's turn (None: the equations' ODEs are
    integrated by Euler); `after`: code run right after the update (per-neuron values
    the rules read); `store`: code run at the end of the step, after the rules;
    `quantities`: expressions rules may read (name -> expression)."""

    equations: list[str]
    namespace: dict = field(default_factory=dict)
    signals: dict[str, Signal] = field(default_factory=dict)
    quantities: dict[str, str] = field(default_factory=dict)
    update: str | None = None
    after: str = ""
    store: str = ""
    threshold: str | None = None
    reset: str | None = None
    initial: dict = field(default_factory=dict)


@dataclass
class TorchGroup:
    """A population in torch. `initial`: the state at t = 0 ({variable: (R, S, n)});
    `step(state, ports, given, draws) -> state`: one step, from the state at its start,
    the summed input per port, what `prepare(data, gates)` made of the presentation's
    schedule values and gates (computed once per block of steps, not every step; by
    default the values themselves), and this step's random draws; `signals`/`quantities`:
    name -> function of a state; `draws`: "normal", "uniform" or None (what the step
    consumes per neuron and step: a tensor), or {stream: kind} for several streams (a
    dict of tensors; Model.draw_streams names them)."""

    initial: dict
    step: Callable
    signals: dict = field(default_factory=dict)
    quantities: dict = field(default_factory=dict)
    draws: str | None = None
    prepare: Callable = lambda data, gates: data  # noqa: E731


def check_number(owner: str, name: str, value, low: float = 0.0, strict: bool = False) -> None:
    """value is a finite number >= low (> low when strict), or a ValueError naming it."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        raise ValueError(f"{owner}: {name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
