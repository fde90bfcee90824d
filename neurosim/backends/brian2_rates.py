"""Brian2 backend for rate circuits (neurosim.rates): a NeuronGroup per population
(`dz/dt = (-leak z + x)/tau + sigma xi / sqrt(tau)`, Euler-Maruyama; a clamped one reads
a TimedArray), a Synapses per projection that owns a weight, with the summed input it
drives. A shared (W) or tied (W^T) projection is another summed variable of the owner's
Synapses; where its source, target or a rule's factor is not the owner's pre or post
group, that group reads it through a linked variable. Summed inputs and synaptic
updates run before the neuron groups, so that every one reads the state at the start of
the step.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..rates import Hebbian, RateNetwork, activation_expression, derivative_expression
from ..recording import Recording, RunResult, append_final
from ..schedule import Schedule
from .brian2 import TARGETS, _b2, _device, _matrix, check_one_sample, run_objects


class _Wiring:
    """Which Synapses computes each projection, and the variables the groups need for it:
    summed inputs hosted by the owner's groups and linked copies of other groups' state."""

    def __init__(self, net: RateNetwork):
        self.net = net
        self.plain = defaultdict(list)  # group -> variables set by summed updaters
        self.links = defaultdict(dict)  # group -> {variable: (group, variable) it reads}
        for proj in net.projections:
            self.plain[self.host(proj)].append(f"I_{proj.name}")
            if self.host(proj) != proj.target:
                self.links[proj.target][f"I_{proj.name}"] = (self.host(proj), f"I_{proj.name}")

    def owner(self, proj):
        return self.net.projection(proj.uses) if proj.uses else proj

    def host(self, proj) -> str:
        """The group into which the owner's Synapses sums this projection's input."""
        owner = self.owner(proj)
        return owner.source if proj.tied else owner.target

    def read(self, group: str, side: str, population: str, activation: str | None) -> str:
        """Expression for `population`'s z (or its rate, given an activation) seen from
        the Synapses side ("pre"/"post") whose group is `group`."""
        if population == group:
            z = f"z_{side}"
        else:
            name = f"L_{population}"
            self.links[group][name] = (population, "z")
            z = f"{name}_{side}"
        return z if activation is None else activation_expression(activation, z)

    def signal(self, proj, group: str, side: str) -> str:
        pop = self.net.population(proj.source)
        return self.read(group, side, proj.source, pop.model.activation if proj.signal == "rate" else None)


def population_equations(net: RateNetwork, pop, wiring: _Wiring) -> str:
    """z, its rate s = f(z), the summed input of every projection onto it, and the
    variables the wiring puts here."""
    noise = " + sigma*xi*tau**-0.5" if not pop.is_clamped and pop.model.sigma else ""
    lines = [("z = clamp_" + pop.name + "(t, i) : 1") if pop.is_clamped else f"dz/dt = (-leak*z + x)/tau{noise} : 1",
             f"s = {activation_expression(pop.model.activation, 'z')} : 1"]
    lines += [f"{v} : 1" for v in wiring.plain[pop.name]]
    lines += [f"{v} : 1 (linked)" for v in wiring.links[pop.name]]
    terms = []
    for proj in net.onto(pop.name):
        gain = f"({derivative_expression(pop.model.activation, 'z')})*" if proj.gain == "derivative" else ""
        terms.append(f"{proj.scale!r}*{gain}I_{proj.name}")
    if not pop.is_clamped:
        lines += [f"x = {' + '.join(terms) or '0'} : 1", "leak : 1 (constant)", "tau : second (constant)",
                  "sigma : 1 (constant)"]
    return "\n".join(lines)


class Brian2RateSimulator:
    """Runs a RateNetwork on Brian2: target "cython", "numpy" or "cpp_standalone"; seed
    fixes the noise."""

    def __init__(self, network: RateNetwork, target: str = "numpy", build_dir: str | None = None, seed: int = 0):
        if target not in TARGETS:
            raise ValueError(f"brian2 target must be one of {TARGETS}, got {target!r}")
        self.network, self.target, self.build_dir, self.seed = network, target, build_dir, int(seed)

    def run(self, schedule: Schedule, recording: Recording | None = None) -> RunResult:
        b2, net, recording = _b2(), self.network, recording or Recording()
        check_one_sample(schedule, net)
        n_steps = schedule.n_presentations * schedule.steps_per_presentation(net.dt)
        with _device(self.target, self.build_dir) as directory:
            b2.start_scope()
            b2.defaultclock.dt = net.dt * b2.ms
            b2.seed(self.seed)
            groups, synapses, monitors, objects = self._build(schedule, recording)
            wall = run_objects(objects, n_steps, net.dt, directory)
            t_end = n_steps * net.dt
            final = {f"{k}.z": np.asarray(g.z[:]).copy() for k, g in groups.items()}
            weights = {k: _matrix(s, s.w[:]) for k, s in synapses.items() if net.projection(k).weight is not None}
            traces = {}
            for name in recording.variables:
                mon = monitors[name]
                traces[f"{name}.z"] = append_final(np.asarray(mon.t / b2.ms), np.asarray(mon.z).T, final[f"{name}.z"],
                                                   recording.interval(name), t_end)
            for name in recording.weights:
                mon = monitors[f"w:{name}"]
                values = np.stack([_matrix(synapses[name], col) for col in np.asarray(mon.w).T])
                traces[f"w:{name}"] = append_final(np.asarray(mon.t / b2.ms), values, weights[name],
                                                   recording.weights_dt, t_end)
        return RunResult(traces, weights, final, t_end, n_steps, wall, float(b2.device._last_run_time))

    def _synapse_equations(self, proj, wiring: _Wiring, ns: dict) -> str:
        """The owner's summed input, those of the projections that use its weight, and its rule."""
        net = self.network
        lines = [f"I_{proj.name}_post = w*{wiring.signal(proj, proj.source, 'pre')} : 1 (summed)"]
        for other in (p for p in net.projections if p.uses == proj.name):
            if other.shared:
                lines.append(f"I_{other.name}_post = w*{wiring.signal(other, proj.source, 'pre')} : 1 (summed)")
            else:
                lines.append(f"I_{other.name}_pre = w*{wiring.signal(other, proj.target, 'post')} : 1 (summed)")
        if isinstance(proj.rule, Hebbian):
            rule = proj.rule
            pre = wiring.read(proj.source, "pre", rule.pre, None) if rule.pre else wiring.signal(proj, proj.source,
                                                                                                 "pre")
            post = wiring.read(proj.target, "post", rule.post or proj.target, None)
            ns[f"eta_{proj.name}"], ns[f"decay_{proj.name}"] = rule.eta / _b2().ms, rule.decay / _b2().ms
            lines.append(f"dw/dt = learn(t)*(eta_{proj.name}*({post})*({pre}) - decay_{proj.name}*w) : 1 "
                         "(clock-driven)")
        else:
            lines.append("w : 1")
        return "\n".join(lines)

    def _build(self, schedule: Schedule, recording: Recording):
        b2, net = _b2(), self.network
        ns = {"learn": b2.TimedArray(schedule.learn, dt=schedule.t_pres * b2.ms)}
        ns.update({f"clamp_{k}": b2.TimedArray(v, dt=schedule.t_pres * b2.ms) for k, v in schedule.data.items()})
        wiring = _Wiring(net)
        owners = [p for p in net.projections if not p.uses]
        local = {p.name: {} for p in owners}
        equations = {p.name: self._synapse_equations(p, wiring, local[p.name]) for p in owners}
        groups = {}
        for pop in net.populations:
            group = b2.NeuronGroup(pop.size, population_equations(net, pop, wiring), method="euler", namespace=ns,
                                   name=pop.name)
            if not pop.is_clamped:
                group.tau, group.leak, group.sigma = pop.model.tau * b2.ms, pop.model.leak, pop.model.sigma
            groups[pop.name] = group
        for name, links in wiring.links.items():
            for variable, (other, source) in links.items():
                setattr(groups[name], variable, b2.linked_var(groups[other], source))
        synapses = {}
        for proj in owners:
            syn = b2.Synapses(groups[proj.source], groups[proj.target], equations[proj.name], method="euler",
                              namespace={**ns, **local[proj.name]}, name=proj.name)
            if proj.kind == "one_to_one":
                syn.connect(j="i")
                syn.w = 1.0
            else:
                syn.connect()
                syn.w = proj.weight[syn.j[:], syn.i[:]]
            for updater in syn.summed_updaters.values():
                updater.when, updater.order = "before_groups", 0
            if isinstance(proj.rule, Hebbian):
                syn.state_updater.when, syn.state_updater.order = "before_groups", 1
            synapses[proj.name] = syn
        monitors = {name: b2.StateMonitor(groups[name], "z", record=True, dt=recording.interval(name) * b2.ms)
                    for name in recording.variables}
        for name in recording.weights:
            monitors[f"w:{name}"] = b2.StateMonitor(synapses[name], "w", record=True,
                                                    dt=recording.weights_dt * b2.ms)
        return groups, synapses, monitors, [*groups.values(), *synapses.values(), *monitors.values()]
