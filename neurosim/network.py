"""The network description, one kind for every circuit: populations of neuron models
(neurosim/models) joined by projections onto their ports, each with an optional
plasticity rule (neurosim/rules.py). Backends compile it; it holds no simulator code.

    Population(name, size, model, noise=None)
    Projection(name, source, target, port=None, weight=None, rule=None, signal=None,
               scale=1.0, gain=None, kind="all_to_all", shared=None, tied=None, delay=1)
    Network(populations, projections, dt)

A projection adds scale * g(target) * W s to its target's port: s is what the source
sends (`signal`, the source model's default if None) in this step (delay 0) or in the
previous one (delay 1); g is 1 or a gain the target's model offers ("derivative": f'(z));
W is the projection's weight (target, source), the identity (one_to_one), another
projection's weight (shared: the same matrix, learning included) or its transpose
(tied). Every step the populations advance in `Network.order`, sources before targets
along delay-0 projections and otherwise in list order; then the rules change the
weights (docs/equations.md). Times in ms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass

import numpy as np

from .models.base import Model
from .rules import Rule

KINDS = ("all_to_all", "one_to_one")


def find(items, name: str, kind: str):
    """The item called `name` (KeyError naming the kind if there is none)."""
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {kind} named {name!r}")


def implemented(network: "Network", backend: str) -> None:
    """Every model and rule of the network has `backend` ("brian2", "torch"), or a
    ValueError names the first that has not."""
    for item, where in [(p.model, f"population {p.name}") for p in network.populations] + \
            [(p.rule, f"projection {p.name}") for p in network.projections if p.rule is not None]:
        if not callable(getattr(item, backend, None)):
            raise ValueError(f"the {backend} backend has no {type(item).__name__} ({where})")


def structure(item, values: bool = False):
    """What replicas of a network must share (the torch backend runs them as one
    program): names, sizes, models, ports, signals, delays and rules, with the numbers of
    models, noises and rules left out (arrays: their shape), plus what a model or rule
    says its code depends on (its `structure()`). With values=True the numbers and arrays
    too, all but the weights of projections: what Brian2 replicas, one compiled program,
    must share."""
    if isinstance(item, Network):
        return item.dt, tuple(structure(p, values) for p in item.populations), \
            tuple(structure(p, values) for p in item.projections)
    if isinstance(item, Population):
        return item.name, item.size, structure(item.model, values), structure(item.noise, values)
    if isinstance(item, Projection):
        return (item.name, item.source, item.target, item.port, item.signal, item.gain, item.kind, item.shared,
                item.tied, item.delay, structure(item.rule, values), None if item.weight is None else item.weight.shape,
                *([item.scale] if values else []))
    if is_dataclass(item):
        extra = item.structure() if callable(getattr(item, "structure", None)) else ()
        return type(item).__name__, tuple((f.name, structure(getattr(item, f.name), values)) for f in fields(item)), \
            extra
    if isinstance(item, dict):
        return tuple((k, structure(v, values)) for k, v in item.items())
    if isinstance(item, (list, tuple)):
        return tuple(structure(v, values) for v in item)
    if isinstance(item, np.ndarray):
        return ("array", item.shape, item.tobytes()) if values else ("array", item.shape)
    if isinstance(item, (int, float, np.number)) and not isinstance(item, bool):
        return item if values else "number"
    return item


def _check_name(kind: str, name) -> None:
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"{kind} name {name!r} must be a Python identifier")


@dataclass(eq=False)
class Population:
    name: str
    size: int
    model: Model
    noise: object = None

    def __post_init__(self):
        _check_name("population", self.name)
        where = f"population {self.name}"
        if isinstance(self.size, bool) or not (isinstance(self.size, (int, np.integer)) and self.size > 0):
            raise ValueError(f"{where}: size must be a positive integer, got {self.size!r}")
        if not isinstance(self.model, Model):
            raise ValueError(f"{where}: unknown neuron model {self.model!r}; give one of neurosim.models")
        self.model.check(self.size)
        if self.noise is not None:
            self.model.check_noise(where, self.noise)

    @property
    def is_input(self) -> bool:
        """Driven by the schedule alone: no port for a projection."""
        return not self.model.ports


@dataclass(eq=False)
class Projection:
    """source -> target's `port`: scale g(target) W s_source (see the module docstring)."""

    name: str
    source: str
    target: str
    port: str | None = None
    weight: np.ndarray | None = None
    rule: Rule | None = None
    signal: str | None = None
    scale: float = 1.0
    gain: str | None = None
    kind: str = "all_to_all"
    shared: str | None = None
    tied: str | None = None
    delay: int = 1

    def __post_init__(self):
        _check_name("projection", self.name)
        where = f"projection {self.name}"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale):
            raise ValueError(f"{where}: scale must be a finite number, got {self.scale!r}")
        if self.delay not in (0, 1) or isinstance(self.delay, bool):
            raise ValueError(f"{where}: delay must be 0 or 1 steps, got {self.delay!r}")
        if self.rule is not None and not isinstance(self.rule, Rule):
            raise ValueError(f"{where}: unknown plasticity rule {self.rule!r}; give one of neurosim.rules")
        if self.weight is not None:
            self.weight = np.array(self.weight, dtype=float)
        if self.shared and self.tied:
            raise ValueError(f"{where}: give shared or tied, not both")
        if (self.kind == "one_to_one" or self.uses) and (self.weight is not None or self.rule is not None):
            raise ValueError(f"{where}: a one_to_one, shared or tied projection has no weight or rule of its own")

    @property
    def uses(self) -> str | None:
        """The projection whose weight this one uses (shared or tied), if any."""
        return self.shared or self.tied

    @property
    def owner(self) -> str | None:
        """The projection that holds this one's weight (None: one_to_one)."""
        return None if self.kind == "one_to_one" else self.uses or self.name


@dataclass(eq=False)
class Network:
    populations: list[Population]
    projections: list[Projection] = field(default_factory=list)
    dt: float = 0.1

    def __post_init__(self):
        if isinstance(self.dt, bool) or not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt)
                                             and self.dt > 0):
            raise ValueError(f"dt must be > 0 ms, got {self.dt!r}")
        names = [item.name for item in self.populations + self.projections]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"names must be unique; repeated: {repeated}")
        for proj in self.projections:
            self._check(proj)
        self.order = self._order()

    def population(self, name: str) -> Population:
        return find(self.populations, name, "population")

    def projection(self, name: str) -> Projection:
        return find(self.projections, name, "projection")

    def onto(self, target: str, port: str | None = None) -> list[Projection]:
        """The projections onto `target` (onto its `port` only, if given)."""
        return [p for p in self.projections if p.target == target and port in (None, p.port)]

    def fed(self, target: str) -> set:
        """The ports of `target` that some projection feeds."""
        return {p.port for p in self.onto(target)}

    def users(self, owner: str) -> list[Projection]:
        """The projections whose weight is `owner`'s (itself first, if it has one)."""
        return [p for p in self.projections if p.owner == owner]

    @property
    def data_keys(self) -> dict[str, int]:
        """What a schedule must provide: {key: width}."""
        keys = {}
        for pop in self.populations:
            keys.update(pop.model.data(pop.name, pop.size, self.fed(pop.name)))
        return keys

    @property
    def gated_keys(self) -> set:
        """Data keys that take a gate."""
        return {k for pop in self.populations for k in pop.model.gated(pop.name, self.fed(pop.name))}

    def _check(self, proj: Projection):
        where = f"projection {proj.name}"
        pops = {p.name: p for p in self.populations}
        for end in (proj.source, proj.target):
            if end not in pops:
                raise ValueError(f"{where}: no population named {end!r}")
        src, tgt = pops[proj.source], pops[proj.target]
        if tgt.is_input:
            raise ValueError(f"{where}: target {tgt.name} is an input population")
        if proj.port is None:
            if len(tgt.model.ports) != 1:
                raise ValueError(f"{where}: give the port of {tgt.name}, one of {list(tgt.model.ports)}")
            proj.port = tgt.model.ports[0]
        if proj.port not in tgt.model.ports:
            raise ValueError(f"{where}: {tgt.name} has no compartment {proj.port!r} (it has {list(tgt.model.ports)})")
        if not src.model.signals:
            raise ValueError(f"{where}: source {src.name} ({type(src.model).__name__}) is a read-out that sends nothing")
        proj.signal = proj.signal or src.model.signals[0]
        if proj.signal not in src.model.signals:
            raise ValueError(f"{where}: {src.name} sends {list(src.model.signals)}, not {proj.signal!r}")
        if proj.gain is not None and proj.gain not in getattr(tgt.model, "gains", ()):
            raise ValueError(f"{where}: {tgt.name} offers the gains {list(getattr(tgt.model, 'gains', ()))}, "
                             f"not {proj.gain!r}")
        shape = (tgt.size, src.size)
        if proj.kind == "one_to_one":
            if src.size != tgt.size:
                raise ValueError(f"{where}: one_to_one needs equal sizes, got {src.size} -> {tgt.size}")
        elif proj.uses:
            how = "shared with" if proj.shared else "tied to"
            try:
                other = self.projection(proj.uses)
            except KeyError:
                raise ValueError(f"{where}: {how} unknown projection {proj.uses!r}") from None
            needed = shape if proj.shared else shape[::-1]
            if other.weight is None or other.weight.shape != needed:
                raise ValueError(f"{where}: {how} {other.name}, whose weight must have shape {needed}"
                                 f"{'' if proj.shared else f' (the transpose of {shape})'}")
        else:
            if proj.weight is None or proj.weight.shape != shape:
                got = None if proj.weight is None else proj.weight.shape
                raise ValueError(f"{where}: weight has shape {got}, but {src.name} -> {tgt.name} needs "
                                 f"(target, source) = {shape}")
            if not np.all(np.isfinite(proj.weight)):
                raise ValueError(f"{where}: weight contains NaN or inf")
        if proj.rule is not None:
            proj.rule.check(proj, self)

    def _order(self) -> list[str]:
        """Populations sources-first along delay-0 projections (Kahn's algorithm, ties in
        list order); a loop of delay-0 projections is refused."""
        names = [p.name for p in self.populations]
        preds = {n: {p.source for p in self.onto(n) if p.delay == 0} for n in names}
        order = []
        while len(order) < len(names):
            ready = [n for n in names if n not in order and preds[n] <= set(order)]
            if not ready:
                loop = sorted(p.name for p in self.projections if p.delay == 0 and p.target not in order)
                raise ValueError(f"projections {loop} form a loop with delay 0; give one of them delay = 1")
            order.append(ready[0])
        return order
