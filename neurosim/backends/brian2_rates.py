"""Brian2 backend for rate circuits (neurosim.rates): a NeuronGroup per population
(`dz/dt = (-leak z + x)/tau`, Euler; a clamped one reads a TimedArray), a Synapses per
projection with the summed input it drives (a tied projection is a second summed
variable, onto the presynaptic group, of the projection it is tied to), Hebbian
plasticity as a clock-driven synaptic equation. Summed inputs and synaptic updates run
before the neuron groups, so that every one reads the state at the start of the step.
"""
from __future__ import annotations

import numpy as np

from ..rates import Hebbian, RateNetwork, activation_expression, derivative_expression
from ..recording import Recording, RunResult, append_final
from ..schedule import Schedule
from .brian2 import TARGETS, _b2, _device, _matrix, check_one_sample, run_objects


def population_equations(net: RateNetwork, pop) -> str:
    """z, its rate s = f(z), and the summed input of every projection onto it."""
    lines = [("z = clamp_" + pop.name + "(t, i) : 1") if pop.is_clamped else "dz/dt = (-leak*z + x)/tau : 1",
             f"s = {activation_expression(pop.model.activation, 'z')} : 1"]
    terms = []
    for proj in net.onto(pop.name):
        lines.append(f"I_{proj.name} : 1")
        gain = f"({derivative_expression(pop.model.activation, 'z')})*" if proj.gain == "derivative" else ""
        terms.append(f"{proj.scale!r}*{gain}I_{proj.name}")
    if not pop.is_clamped:
        lines += [f"x = {' + '.join(terms) or '0'} : 1", "leak : 1 (constant)", "tau : second (constant)"]
    return "\n".join(lines)


class Brian2RateSimulator:
    """Runs a RateNetwork on Brian2: target "cython", "numpy" or "cpp_standalone"."""

    def __init__(self, network: RateNetwork, target: str = "numpy", build_dir: str | None = None):
        if target not in TARGETS:
            raise ValueError(f"brian2 target must be one of {TARGETS}, got {target!r}")
        self.network, self.target, self.build_dir = network, target, build_dir

    def run(self, schedule: Schedule, recording: Recording | None = None) -> RunResult:
        b2, net, recording = _b2(), self.network, recording or Recording()
        check_one_sample(schedule, net)
        n_steps = schedule.n_presentations * schedule.steps_per_presentation(net.dt)
        with _device(self.target, self.build_dir) as directory:
            b2.start_scope()
            b2.defaultclock.dt = net.dt * b2.ms
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

    def _build(self, schedule: Schedule, recording: Recording):
        b2, net = _b2(), self.network
        ns = {"learn": b2.TimedArray(schedule.learn, dt=schedule.t_pres * b2.ms)}
        ns.update({f"clamp_{k}": b2.TimedArray(v, dt=schedule.t_pres * b2.ms) for k, v in schedule.data.items()})
        groups = {}
        for pop in net.populations:
            group = b2.NeuronGroup(pop.size, population_equations(net, pop), method="euler", namespace=ns,
                                   name=pop.name)
            if not pop.is_clamped:
                group.tau, group.leak = pop.model.tau * b2.ms, pop.model.leak
            groups[pop.name] = group
        synapses = {}
        for proj in net.projections:
            if proj.tied:
                continue
            src, tgt = groups[proj.source], groups[proj.target]
            s_pre = "z_pre" if proj.signal == "value" else "s_pre"
            lines = [f"I_{proj.name}_post = w*{s_pre} : 1 (summed)"]
            for tied in (p for p in net.projections if p.tied == proj.name):
                lines.append(f"I_{tied.name}_pre = w*{'z_post' if tied.signal == 'value' else 's_post'} : 1 (summed)")
            local = {}
            if isinstance(proj.rule, Hebbian):
                local[f"eta_{proj.name}"] = proj.rule.eta / b2.ms
                lines.append(f"dw/dt = learn(t)*eta_{proj.name}*z_post*{s_pre} : 1 (clock-driven)")
            else:
                lines.append("w : 1")
            syn = b2.Synapses(src, tgt, "\n".join(lines), method="euler", namespace={**ns, **local},
                              name=proj.name)
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

