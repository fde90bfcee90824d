"""Spiking networks as data: the neuron models of NIR, in ms and dimensionless potentials.

Each step of dt advances every population once, in `SpikingNetwork.order` (sources
before targets), by one forward-Euler step with x = bias + sum over connections of
W s, where s is what the source sent in this same step (a connection against the order,
as in a recurrent loop, reads the source's previous step). docs/equations.md has the
step; both backends run it and tests hold them to each other and to Norse.

    LIF      v <- v + dt/tau (v_leak - v + r x)                 spike if v > v_threshold, v <- v_reset
    CubaLIF  I <- I + dt/tau_syn (w_in x - I);  v <- v + dt/tau_mem (v_leak - v + r I)   (then as LIF)
    IF       v <- v + dt r x                                     (then as LIF; r in 1/ms)
    LI       v <- v + dt/tau (v_leak - v + r x)                  no spikes (a read-out; sends nothing)

Sources: `CurrentInput` sends the schedule's values each step (NIR's Input of an analog
signal); `PoissonInput` spikes with probability rate dt per step (rates in Hz).
Parameters are numbers or one value per neuron. Weights are (target, source) arrays; a
zero is no synapse.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from .network import check_unique, find

@dataclass(frozen=True, eq=False)
class LIF:
    """Leaky integrate-and-fire: tau dv/dt = v_leak - v + r x (tau in ms)."""

    tau: object
    r: object = 1.0
    v_leak: object = 0.0
    v_threshold: object = 1.0
    v_reset: object = 0.0


@dataclass(frozen=True, eq=False)
class CubaLIF:
    """Current-based LIF: tau_syn dI/dt = w_in x - I, tau_mem dv/dt = v_leak - v + r I."""

    tau_mem: object
    tau_syn: object
    r: object = 1.0
    v_leak: object = 0.0
    v_threshold: object = 1.0
    v_reset: object = 0.0
    w_in: object = 1.0


@dataclass(frozen=True, eq=False)
class IF:
    """Integrate-and-fire: dv/dt = r x (r in 1/ms)."""

    r: object = 1.0
    v_threshold: object = 1.0
    v_reset: object = 0.0


@dataclass(frozen=True, eq=False)
class LI:
    """Leaky integrator (no spikes): tau dv/dt = v_leak - v + r x."""

    tau: object
    r: object = 1.0
    v_leak: object = 0.0


@dataclass(frozen=True)
class CurrentInput:
    """Sends the schedule's values x(t) as they are, every step."""


@dataclass(frozen=True)
class PoissonInput:
    """Spikes with probability rate * dt per step; the schedule gives the rates in Hz."""


NEURON_MODELS = (LIF, CubaLIF, IF, LI)
INPUT_MODELS = (CurrentInput, PoissonInput)
TIME_CONSTANTS = ("tau", "tau_mem", "tau_syn")


def parameters(model, size: int) -> dict[str, np.ndarray]:
    """The model's parameters as float arrays of one value per neuron."""
    return {f.name: np.broadcast_to(np.asarray(getattr(model, f.name), dtype=float), (size,)).copy()
            for f in fields(model)}


# the state at rest: each variable's start, a parameter's name or a number
START = {LIF: {"v": "v_leak"}, CubaLIF: {"I": "0", "v": "v_leak"}, IF: {"v": "v_reset"}, LI: {"v": "v_leak"}}


def state_variables(model) -> tuple[str, ...]:
    return tuple(START.get(type(model), ()))


def initial_state(model, size: int) -> dict[str, np.ndarray]:
    """The state at rest (START): v = v_leak (v_reset for IF), I = 0."""
    p = parameters(model, size)
    return {var: p[start].copy() if start in p else np.full(size, float(start))
            for var, start in START[type(model)].items()}


@dataclass(eq=False)
class SpikingPopulation:
    name: str
    size: int
    model: object
    bias: object = 0.0  # a constant input added to x, one value or one per neuron

    def __post_init__(self):
        where = f"population {self.name}"
        if not self.name.isidentifier():
            raise ValueError(f"population name {self.name!r} must be a Python identifier")
        if not (isinstance(self.size, (int, np.integer)) and self.size > 0):
            raise ValueError(f"{where}: size must be a positive integer, got {self.size!r}")
        if not isinstance(self.model, NEURON_MODELS + INPUT_MODELS):
            names = [m.__name__ for m in NEURON_MODELS + INPUT_MODELS]
            raise ValueError(f"{where}: unknown spiking model {self.model!r}; choose from {names}")
        self.bias = self._values("bias", self.bias)
        if self.is_input and np.any(self.bias != 0):
            raise ValueError(f"{where}: an input population takes no bias")
        if self.is_input:
            return
        p = {f.name: self._values(f.name, getattr(self.model, f.name)) for f in fields(self.model)}
        for name in TIME_CONSTANTS:
            if name in p and np.any(p[name] <= 0):
                raise ValueError(f"{where}: {name} must be > 0 ms, got {getattr(self.model, name)!r}")

    def _values(self, name, value) -> np.ndarray:
        try:
            values = np.broadcast_to(np.asarray(value, dtype=float), (self.size,)).copy()
        except (ValueError, TypeError):
            raise ValueError(f"population {self.name}: {name} must be a number or {self.size} numbers, "
                             f"got shape {np.shape(value)}") from None
        if not np.all(np.isfinite(values)):
            raise ValueError(f"population {self.name}: {name} contains NaN or inf")
        return values

    @property
    def is_input(self) -> bool:
        return isinstance(self.model, INPUT_MODELS)

    @property
    def spiking(self) -> bool:
        """Sends spikes (every model but LI and CurrentInput)."""
        return not isinstance(self.model, (LI, CurrentInput))

    def parameters(self) -> dict[str, np.ndarray]:
        return parameters(self.model, self.size)


@dataclass(eq=False)
class Connection:
    """source -> target: x_target += weight @ s_source, weight of shape (target, source)."""

    name: str
    source: str
    target: str
    weight: np.ndarray

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"connection name {self.name!r} must be a Python identifier")
        self.weight = np.array(self.weight, dtype=float)


@dataclass(eq=False)
class SpikingNetwork:
    populations: list[SpikingPopulation]
    connections: list[Connection]
    dt: float = 0.1

    def __post_init__(self):
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be > 0 ms, got {self.dt!r}")
        check_unique(self.populations + self.connections)
        for conn in self.connections:
            self._check(conn)
        self.order = self._order()

    def population(self, name: str) -> SpikingPopulation:
        return find(self.populations, name, "population")

    def connection(self, name: str) -> Connection:
        return find(self.connections, name, "connection")

    def onto(self, target: str) -> list[Connection]:
        return [c for c in self.connections if c.target == target]

    def delayed(self, conn: Connection) -> bool:
        """True when the source is advanced after the target, so the target reads the
        source's previous step (loops)."""
        return self.order.index(conn.source) >= self.order.index(conn.target)

    @property
    def data_keys(self) -> dict[str, int]:
        """What a schedule must provide: one column per neuron of every input population."""
        return {p.name: p.size for p in self.populations if p.is_input}

    def _check(self, conn: Connection):
        where = f"connection {conn.name}"
        pops = {p.name: p for p in self.populations}
        for end in (conn.source, conn.target):
            if end not in pops:
                raise ValueError(f"{where}: no population named {end!r}")
        src, tgt = pops[conn.source], pops[conn.target]
        if tgt.is_input:
            raise ValueError(f"{where}: target {tgt.name} is an input population")
        if isinstance(src.model, LI):
            raise ValueError(f"{where}: source {src.name} is a leaky integrator (LI), a read-out that sends nothing")
        shape = (tgt.size, src.size)
        if conn.weight.shape != shape:
            raise ValueError(f"{where}: weight has shape {conn.weight.shape}, but {src.name} -> {tgt.name} "
                             f"needs (target, source) = {shape}")
        if not np.all(np.isfinite(conn.weight)):
            raise ValueError(f"{where}: weight contains NaN or inf")

    def _order(self) -> list[str]:
        """Populations sources-first (Kahn's algorithm, ties in list order); the members
        of a loop follow in list order."""
        names = [p.name for p in self.populations]
        preds = {n: {c.source for c in self.connections if c.target == n and c.source != n} for n in names}
        order = []
        while len(order) < len(names):
            ready = [n for n in names if n not in order and preds[n] <= set(order)]
            order.append(ready[0] if ready else next(n for n in names if n not in order))
        return order
