"""Map a spiking network onto a chip: quantise the weights, place populations on cores,
check every limit of the target, and report.

Quantisation is per connection (per layer): with q the largest weight magnitude the
target stores (2^(bits-1) - 1 signed, 2^bits - 1 when the sign comes from the synapse
type), scale = max|W| / q and W_q = scale round(W / scale); thresholds and biases stay
as they are (a chip folds the scale into them). Placement fills cores population by
population in the network's order with at most neurons_per_core neurons and
synapses_per_core incoming synapses each; input populations come from outside (input
channels) and take no core. Where the target says that populations do not share cores
(cores_shared = false), each population starts on a core of its own, and where it plans
separate synapse cores (split_below_dt, SpiNNaker 1 as sPyNNaker runs it), each slice of
a population that receives synapses gets that many synapse cores beside its neuron core
(see synapse_cores). A limit that is exceeded raises MappingError naming the limit, the
value, the allowed value and the population.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from neurosim.network import Network, Population, Projection

from .pynn import CELL, cell_parameters
from .targets import Target


class MappingError(ValueError):
    """The network does not fit the target."""

    def __init__(self, target: str, limit: str, value, allowed, population: str):
        self.target, self.limit, self.value, self.allowed, self.population = target, limit, value, allowed, population
        super().__init__(f"{population} does not fit {target}: {limit} is {value}, the chip allows {allowed}")


@dataclass
class Core:
    slices: list[tuple[str, int, int]]  # (population, first, last): neurons [first, last)
    synapses: int  # incoming synapses of those neurons (on their neuron core)
    role: str = "neurons"  # or "synapses": a separate synapse core serving the slice's neurons

    @property
    def neurons(self) -> int:
        """Neurons this core updates (a synapse core: none)."""
        return sum(last - first for _, first, last in self.slices) if self.role == "neurons" else 0


@dataclass
class MappingReport:
    target: str
    cores: list[Core]
    cores_available: int
    neurons_per_core: int
    quantisation: dict[str, dict]  # connection -> scale, bits, relative error, max error / scale
    accuracy: dict[str, float] = field(default_factory=dict)  # e.g. rate, spiking, quantised
    cores_per_chip: int | None = None  # the target's, for the chip count

    @property
    def cores_used(self) -> int:
        return len(self.cores)

    @property
    def chips(self) -> int | None:
        """Chips the cores fill, ceil(cores / cores_per_chip), when the target gives cores_per_chip."""
        return math.ceil(self.cores_used / self.cores_per_chip) if self.cores_per_chip else None

    def cores_of(self, population: str) -> dict[str, int]:
        """Cores holding neurons of `population`, by role ("neurons", "synapses")."""
        count = {"neurons": 0, "synapses": 0}
        for core in self.cores:
            if any(name == population for name, _, _ in core.slices):
                count[core.role] += 1
        return count

    @property
    def utilisation(self) -> dict[str, float]:
        """Cores used of those available; neurons placed of the neuron slots of the neuron cores used."""
        neurons = sum(c.neurons for c in self.cores)
        slots = self.neurons_per_core * sum(c.role == "neurons" for c in self.cores)
        return {"cores": self.cores_used / self.cores_available, "neurons": neurons / slots if slots else 0.0}

    def to_json(self) -> str:
        data = asdict(self)
        data.update(cores_used=self.cores_used, chips=self.chips, utilisation=self.utilisation)
        return json.dumps(data, indent=2)

    def to_text(self) -> str:
        util = self.utilisation
        lines = [f"target {self.target}: {self.cores_used} of {self.cores_available} cores "
                 f"({100 * util['cores']:.2f} %), neuron slots of the used cores {100 * util['neurons']:.1f} % filled"]
        if self.chips is not None:
            lines[0] += f", {self.chips} chip(s)"
        for k, core in enumerate(self.cores):
            where = ", ".join(f"{name}[{first}:{last}]" for name, first, last in core.slices)
            what = f"{core.synapses} synapses in" if core.role == "neurons" else "synapse core"
            lines.append(f"  core {k}: {where}, {what}")
        for name, q in self.quantisation.items():
            lines.append(f"  {name}: {q['bits']}-bit weights, scale {q['scale']:.4g}, relative error "
                         f"{q['relative_error']:.4f}, max error {q['max_error_steps']:.2f} steps")
        for name, value in self.accuracy.items():
            lines.append(f"  accuracy {name}: {value:.4f}")
        return "\n".join(lines)


def quantise(weight: np.ndarray, target: Target) -> tuple[np.ndarray, dict]:
    """W_q = scale round(W / scale), scale = max|W| / q (see the module docstring)."""
    q = 2 ** (target.weight_bits - 1) - 1 if target.weight_signed else 2 ** target.weight_bits - 1
    peak = float(np.max(np.abs(weight))) if weight.size else 0.0
    scale = peak / q if peak > 0 else 1.0
    wq = scale * np.round(weight / scale)
    norm = np.linalg.norm(weight)
    return wq, {"bits": target.weight_bits, "scale": scale,
                "relative_error": float(np.linalg.norm(wq - weight) / norm) if norm > 0 else 0.0,
                "max_error_steps": float(np.max(np.abs(wq - weight)) / scale) if weight.size else 0.0}


def quantised_network(network: Network, target: Target) -> tuple[Network, dict]:
    """The network with every projection's weight quantised for the target, and the errors."""
    projs, errors = [], {}
    for proj in network.projections:
        if proj.weight is None:
            raise ValueError(f"projection {proj.name}: a chip needs a weight of its own ({proj.kind}, shared or tied "
                             "projections are not mapped)")
        wq, errors[proj.name] = quantise(proj.weight, target)
        projs.append(replace(proj, weight=wq))
    pops = [Population(p.name, p.size, p.model, p.noise) for p in network.populations]
    return Network(pops, projs, dt=network.dt), errors


def incoming(network: Network, pop: Population) -> np.ndarray:
    """Synapses onto each neuron of pop (its fan-in)."""
    return sum((np.count_nonzero(c.weight, axis=1) for c in network.onto(pop.name)), np.zeros(pop.size, int))


def outgoing(network: Network, pop: Population) -> np.ndarray:
    """Synapses from each neuron of pop (its fan-out)."""
    return sum((np.count_nonzero(c.weight, axis=0) for c in network.projections if c.source == pop.name),
               np.zeros(pop.size, int))


def check_limits(network: Network, target: Target) -> None:
    """Neuron models, cell parameters (as the PyNN export writes them), input and output
    channels, fan-in and fan-out (after quantisation)."""
    sources = {c.source for c in network.projections}
    for pop in network.populations:
        model = type(pop.model).__name__
        if pop.is_input:
            _check(target, "input channels", pop.size, target.input_channels, pop.name)
            continue
        if model not in target.neuron_models:
            raise MappingError(target.name, "the neuron model", model, ", ".join(target.neuron_models), pop.name)
        if target.parameter_max is not None and type(pop.model) in CELL:  # the models with a PyNN cell
            for key, values in cell_parameters(pop).items():
                peak = float(np.max(np.abs(values)))
                if peak > target.parameter_max:
                    raise MappingError(target.name, f"the cell parameter {key} (PyNN)", peak,
                                       f"at most {target.parameter_max} in magnitude", pop.name)
        if pop.name not in sources:
            _check(target, "output neurons", pop.size, target.output_channels, pop.name)
        _check(target, "the fan-in (synapses onto one neuron)", int(incoming(network, pop).max()), target.fan_in,
               pop.name)
        _check(target, "the fan-out (targets of one neuron)", int(outgoing(network, pop).max()), target.fan_out,
               pop.name)


def synapse_cores(network: Network, pop: Population, target: Target) -> int:
    """Separate synapse cores per slice of `pop`, as sPyNNaker 7.4.1 plans them
    (population_vertex.py, __update_n_synapse_cores): none at dt >= split_below_dt, else

        n = ceil( sum over projections onto pop of m * planned_rate * N_source / synapse_events_per_core )

    with m the most synapses from one source neuron onto one core's slice of pop. Where the
    sign comes from the synapse type, the positive and the negative weights count as two
    projections (the PyNN export makes two). Projections from an input population carry no
    spikes: the PyNN export folds them into the target's i_offset."""
    if target.split_below_dt is None or network.dt >= target.split_below_dt:
        return 0
    per_core = target.neurons_per_core
    events = 0
    for proj in network.onto(pop.name):
        if network.population(proj.source).is_input:
            continue
        parts = [proj.weight != 0] if target.weight_signed else [proj.weight > 0, proj.weight < 0]
        for part in parts:
            most = max(int(part[k:k + per_core].sum(axis=0).max()) for k in range(0, pop.size, per_core))
            events += most * target.planned_rate * part.shape[1]
    return math.ceil(events / target.synapse_events_per_core)


def place(network: Network, target: Target) -> list[Core]:
    """Fill cores in the network's order, a population continuing on the last core while
    it has room: at most neurons_per_core neurons and synapses_per_core incoming synapses.
    Where cores_shared is false a population starts on a new core; each slice is followed
    by its synapse_cores(...) synapse cores."""
    cores: list[Core] = []
    for name in network.order:
        pop = network.population(name)
        if pop.is_input:
            continue
        synapses = incoming(network, pop)
        _check(target, "the synapses onto one neuron (a core's synapse memory)", int(synapses.max()),
               target.synapses_per_core, name)
        total = np.concatenate([[0], np.cumsum(synapses)])  # synapses onto neurons [0, k)
        n_synapse_cores = synapse_cores(network, pop, target)
        first = 0
        while first < pop.size:
            if not cores or cores[-1].role != "neurons" or (not target.cores_shared and first == 0):
                cores.append(Core([], 0))
            core = cores[-1]
            last = min(pop.size, first + target.neurons_per_core - core.neurons)
            if target.synapses_per_core is not None:
                budget = total[first] + target.synapses_per_core - core.synapses
                last = min(last, int(np.searchsorted(total, budget, side="right")) - 1)
            if last <= first:
                cores.append(Core([], 0))
                continue
            core.slices.append((name, first, last))
            core.synapses += int(total[last] - total[first])
            cores += [Core([(name, first, last)], 0, role="synapses") for _ in range(n_synapse_cores)]
            first = last
        _check(target, "the number of cores", len(cores), target.cores, name)
    return cores


def map_network(network: Network, target: Target, evaluate=None) -> tuple[MappingReport, Network]:
    """Quantise, check, place. `evaluate(network) -> accuracy`, if given, is run on the
    quantised network (reported as "quantised"). Returns the report and the quantised network."""
    quantised, errors = quantised_network(network, target)
    check_limits(quantised, target)
    cores = place(quantised, target)
    report = MappingReport(target.name, cores, target.cores, target.neurons_per_core, errors,
                           cores_per_chip=target.cores_per_chip)
    if evaluate is not None:
        report.accuracy["quantised"] = float(evaluate(quantised))
    return report, quantised


def _check(target: Target, limit: str, value: int, allowed: int | None, population: str) -> None:
    if allowed is not None and value > allowed:
        raise MappingError(target.name, limit, value, f"at most {allowed}", population)
