"""The network description: populations, projections onto compartments, noise.

A circuit is built once as this plain data; backends compile it. Weights are numpy
arrays of shape (target.size, source.size). Times in ms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .neurons import DendriticNeuron, RateInput
from .noise import OUNoise
from .plasticity import RULES, DendriticPrediction, Fixed, PhaselessAlignment, Silencing, Tied

SIGNALS = ("rate", "voltage")


def find(items, name: str, kind: str):
    """The item called `name` (KeyError naming the kind if there is none)."""
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {kind} named {name!r}")


def check_unique(items) -> None:
    """Names of populations and projections must be unique within a network."""
    names = [item.name for item in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"names must be unique; repeated: {dup}")


@dataclass
class Population:
    name: str
    size: int
    model: DendriticNeuron | RateInput
    noise: OUNoise | None = None

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"population name {self.name!r} must be a Python identifier")
        if not (isinstance(self.size, (int, np.integer)) and self.size > 0):
            raise ValueError(f"population {self.name}: size must be a positive integer, got {self.size!r}")
        if not isinstance(self.model, (DendriticNeuron, RateInput)):
            raise ValueError(f"population {self.name}: unknown neuron model {self.model!r}")
        if self.noise is not None:
            if isinstance(self.model, RateInput) or self.noise.compartment not in self.model.dendrites:
                raise ValueError(f"population {self.name}: noise on {self.noise.compartment!r}, "
                                 f"which is not one of its dendrites")

    @property
    def is_input(self) -> bool:
        return isinstance(self.model, RateInput)


@dataclass
class Projection:
    """source -> target, summed into one compartment of the target.

    `kind` is "all_to_all" (weight matrix) or "one_to_one" (identity, fixed);
    `signal` is what the source sends: its rate r or its prospective voltage u_breve.
    """

    name: str
    source: str
    target: str
    compartment: str
    weight: np.ndarray | None = None
    rule: object = field(default_factory=Fixed)
    kind: str = "all_to_all"
    signal: str = "rate"

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"projection name {self.name!r} must be a Python identifier")
        if self.kind not in ("all_to_all", "one_to_one"):
            raise ValueError(f"projection {self.name}: kind must be all_to_all or one_to_one, got {self.kind!r}")
        if self.signal not in SIGNALS:
            raise ValueError(f"projection {self.name}: signal must be one of {SIGNALS}, got {self.signal!r}")
        if not isinstance(self.rule, RULES):
            raise ValueError(f"projection {self.name}: unknown plasticity rule {self.rule!r}")
        if self.weight is not None:
            self.weight = np.array(self.weight, dtype=float)

    @property
    def tied(self) -> bool:
        return isinstance(self.rule, Tied)


@dataclass
class Network:
    populations: list[Population]
    projections: list[Projection]
    dt: float = 0.01

    def __post_init__(self):
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be > 0 ms, got {self.dt!r}")
        check_unique(self.populations + self.projections)
        for proj in self.projections:
            self._check_projection(proj)

    def population(self, name: str) -> Population:
        return find(self.populations, name, "population")

    def projection(self, name: str) -> Projection:
        return find(self.projections, name, "projection")

    def projections_onto(self, target: str, compartment: str) -> list[Projection]:
        return [p for p in self.projections if p.target == target and p.compartment == compartment]

    @property
    def data_keys(self) -> dict[str, int]:
        """What a schedule must provide: input populations and data-driven nudging inputs."""
        keys = {}
        for pop in self.populations:
            if pop.is_input:
                keys[pop.name] = pop.size
                continue
            for n in pop.model.nudging:
                if not self.projections_onto(pop.name, n):
                    keys[f"{pop.name}.{n}"] = pop.size
        return keys

    def _check_projection(self, proj: Projection):
        where = f"projection {proj.name}"
        pops = {p.name: p for p in self.populations}
        for end in (proj.source, proj.target):
            if end not in pops:
                raise ValueError(f"{where}: no population named {end!r}")
        src, tgt = pops[proj.source], pops[proj.target]
        if tgt.is_input:
            raise ValueError(f"{where}: target {tgt.name} is an input population")
        if proj.compartment not in tgt.model.compartments:
            raise ValueError(f"{where}: {tgt.name} has no compartment {proj.compartment!r} "
                             f"(it has {list(tgt.model.compartments)})")
        if proj.signal == "voltage" and src.is_input:
            raise ValueError(f"{where}: input population {src.name} has no voltage to send")
        if isinstance(proj.rule, DendriticPrediction) and proj.compartment not in tgt.model.dendrites:
            raise ValueError(f"{where}: dendritic prediction needs a dendritic compartment, "
                             f"not {proj.compartment!r}")
        if isinstance(proj.rule, Silencing) and proj.compartment not in tgt.model.dendrites:
            raise ValueError(f"{where}: silencing needs a dendritic compartment, not {proj.compartment!r}")
        if isinstance(proj.rule, PhaselessAlignment) and (tgt.noise is None or tgt.noise.compartment != proj.compartment):
            raise ValueError(f"{where}: phaseless alignment correlates the noise of {tgt.name}.{proj.compartment}; "
                             f"give {tgt.name} OUNoise on {proj.compartment!r}")
        if proj.kind == "one_to_one":
            if src.size != tgt.size:
                raise ValueError(f"{where}: one_to_one needs equal sizes, got {src.size} -> {tgt.size}")
            if not isinstance(proj.rule, Fixed):
                raise ValueError(f"{where}: one_to_one projections are fixed")
            return
        if proj.tied:
            self._check_tied(proj)
            return
        shape = (tgt.size, src.size)
        if proj.weight is None:
            raise ValueError(f"{where}: weight is missing (expected shape {shape})")
        if proj.weight.shape != shape:
            raise ValueError(f"{where}: weight has shape {proj.weight.shape}, but {src.name} -> {tgt.name} "
                             f"needs (target, source) = {shape}")
        if not np.all(np.isfinite(proj.weight)):
            raise ValueError(f"{where}: weight contains NaN or inf")

    def _check_tied(self, proj: Projection):
        where = f"projection {proj.name}"
        try:
            src = self.projection(proj.rule.source)
        except KeyError:
            raise ValueError(f"{where}: tied to unknown projection {proj.rule.source!r}") from None
        if (src.source, src.target) != (proj.target, proj.source) or src.kind != "all_to_all" or src.tied:
            raise ValueError(f"{where}: tied to {src.name} ({src.source} -> {src.target}), "
                             f"which must run the opposite way ({proj.target} -> {proj.source})")
        if proj.weight is not None:
            raise ValueError(f"{where}: a tied projection takes its weight from {src.name}; do not give one")
