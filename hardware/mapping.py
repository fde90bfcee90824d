"""Map a spiking network onto a chip: quantise the weights, place populations on cores,
check every limit of the target, and report.

Quantisation is per connection (per layer): with q the largest weight magnitude the
target stores (2^(bits-1) - 1 signed, 2^bits - 1 when the sign comes from the synapse
type), scale = max|W| / q and W_q = scale round(W / scale); thresholds and biases stay
as they are (a chip folds the scale into them). Placement fills cores population by
population in the network's order with at most neurons_per_core neurons and
synapses_per_core incoming synapses each; input populations come from outside (input
channels) and take no core. A limit that is exceeded raises MappingError naming the
limit, the value, the allowed value and the population.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from neurosim.network import Network, Population, Projection

from .targets import Target


class MappingError(ValueError):
    """The network does not fit the target."""

    def __init__(self, target: str, limit: str, value, allowed, population: str):
        self.target, self.limit, self.value, self.allowed, self.population = target, limit, value, allowed, population
        super().__init__(f"{population} does not fit {target}: {limit} is {value}, the chip allows {allowed}")


@dataclass
class Core:
    slices: list[tuple[str, int, int]]  # (population, first, last): neurons [first, last)
    synapses: int  # incoming synapses of those neurons

    @property
    def neurons(self) -> int:
        return sum(last - first for _, first, last in self.slices)


@dataclass
class MappingReport:
    target: str
    cores: list[Core]
    cores_available: int
    neurons_per_core: int
    quantisation: dict[str, dict]  # connection -> scale, bits, relative error, max error / scale
    accuracy: dict[str, float] = field(default_factory=dict)  # e.g. rate, spiking, quantised

    @property
    def cores_used(self) -> int:
        return len(self.cores)

    @property
    def utilisation(self) -> dict[str, float]:
        """Cores used of those available; neurons placed of the neuron slots of the cores used."""
        neurons = sum(c.neurons for c in self.cores)
        return {"cores": self.cores_used / self.cores_available,
                "neurons": neurons / (self.cores_used * self.neurons_per_core) if self.cores else 0.0}

    def to_json(self) -> str:
        data = asdict(self)
        data.update(cores_used=self.cores_used, utilisation=self.utilisation)
        return json.dumps(data, indent=2)

    def to_text(self) -> str:
        util = self.utilisation
        lines = [f"target {self.target}: {self.cores_used} of {self.cores_available} cores "
                 f"({100 * util['cores']:.2f} %), neuron slots of the used cores {100 * util['neurons']:.1f} % filled"]
        for k, core in enumerate(self.cores):
            where = ", ".join(f"{name}[{first}:{last}]" for name, first, last in core.slices)
            lines.append(f"  core {k}: {where}, {core.synapses} synapses in")
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
    """Neuron models, input and output channels, fan-in and fan-out (after quantisation)."""
    sources = {c.source for c in network.projections}
    for pop in network.populations:
        model = type(pop.model).__name__
        if pop.is_input:
            _check(target, "input channels", pop.size, target.input_channels, pop.name)
            continue
        if model not in target.neuron_models:
            raise MappingError(target.name, "the neuron model", model, ", ".join(target.neuron_models), pop.name)
        if pop.name not in sources:
            _check(target, "output neurons", pop.size, target.output_channels, pop.name)
        _check(target, "the fan-in (synapses onto one neuron)", int(incoming(network, pop).max()), target.fan_in,
               pop.name)
        _check(target, "the fan-out (targets of one neuron)", int(outgoing(network, pop).max()), target.fan_out,
               pop.name)


def place(network: Network, target: Target) -> list[Core]:
    """Fill cores in the network's order, a population continuing on the last core while
    it has room: at most neurons_per_core neurons and synapses_per_core incoming synapses."""
    cores = [Core([], 0)]
    for name in network.order:
        pop = network.population(name)
        if pop.is_input:
            continue
        synapses = incoming(network, pop)
        _check(target, "the synapses onto one neuron (a core's synapse memory)", int(synapses.max()),
               target.synapses_per_core, name)
        total = np.concatenate([[0], np.cumsum(synapses)])  # synapses onto neurons [0, k)
        first = 0
        while first < pop.size:
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
            first = last
        _check(target, "the number of cores", len(cores), target.cores, name)
    return cores if cores[0].slices else []


def map_network(network: Network, target: Target, evaluate=None) -> tuple[MappingReport, Network]:
    """Quantise, check, place. `evaluate(network) -> accuracy`, if given, is run on the
    quantised network (reported as "quantised"). Returns the report and the quantised network."""
    quantised, errors = quantised_network(network, target)
    check_limits(quantised, target)
    cores = place(quantised, target)
    report = MappingReport(target.name, cores, target.cores, target.neurons_per_core, errors)
    if evaluate is not None:
        report.accuracy["quantised"] = float(evaluate(quantised))
    return report, quantised


def _check(target: Target, limit: str, value: int, allowed: int | None, population: str) -> None:
    if allowed is not None and value > allowed:
        raise MappingError(target.name, limit, value, f"at most {allowed}", population)
