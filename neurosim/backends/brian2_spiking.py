"""Brian2 backend for spiking networks: one NeuronGroup (threshold, reset) per
neuron population, a PoissonGroup per Poisson source, one Synapses per connection from
a spiking source (on_pre: I_in_post += w).

The step of neurosim.spiking, in Brian2's terms: every object runs in the `groups` slot,
population by population in the network's order; for each population, first the
synapses into it deliver this step's spikes to I_in, then the step (which clears
I_in), the threshold and the reset. The step is a run_regularly of the Euler step as
written in neurosim.spiking (STEP), so that v sees this step's CubaLIF current and no
other object runs per neuron and step. Connections from a CurrentInput are a 2-D TimedArray
I_ext(t, i) = sum_c W_c x_c per presentation.
"""
from __future__ import annotations

import numpy as np

from ..recording import Recording, RunResult, SpikeTrain, append_final
from ..schedule import Schedule
from ..spiking import IF, LI, LIF, START, CubaLIF, CurrentInput, PoissonInput, SpikingNetwork
from .brian2 import TARGETS, _b2, _device, check_one_sample, run_objects
from .spiking_common import check_spiking_recording, poisson_probabilities

# the position of each object within a population's turn (10 per population)
SYNAPSES, UPDATE, THRESHOLD, MONITOR, RESET = range(5)

# one Euler step per population and step (the order of neurosim.spiking), then I_in cleared
STEP = {
    LIF: "v = v + dt*(v_leak - v + r*x)/tau",
    CubaLIF: "I = I + dt*(w_in*x - I)/tau_syn\nv = v + dt*(v_leak - v + r*I)/tau_mem",
    IF: "v = v + dt*r*x/ms",
    LI: "v = v + dt*(v_leak - v + r*x)/tau",
}


def neuron_equations(pop, external: bool) -> tuple[str, dict]:
    """Brian2 equations of a population (x: this step's input) and the namespace: a
    parameter equal for all neurons is a constant there, one that varies a per-neuron
    variable (constants make Brian2's generated loop cheaper)."""
    values = {**pop.parameters(), "bias": pop.bias}
    lines = ["v : 1", "I_in : 1", "x = bias + I_in" + (" + I_ext(t, i)" if external else "") + " : 1"]
    if isinstance(pop.model, CubaLIF):
        lines.append("I : 1")
    ns = {}
    for name, value in values.items():
        unit = "second" if name.startswith("tau") else "1"
        if np.all(value == value[0]):
            ns[name] = value[0] * _b2().ms if unit == "second" else value[0]
        else:
            lines.append(f"{name} : {unit} (constant)")
    return "\n".join(lines), ns


class Brian2SpikingSimulator:
    """Runs a SpikingNetwork on Brian2: target "cython", "numpy" or "cpp_standalone"."""

    def __init__(self, network: SpikingNetwork, target: str = "cython", seed: int = 0, build_dir: str | None = None):
        if target not in TARGETS:
            raise ValueError(f"brian2 target must be one of {TARGETS}, got {target!r}")
        self.network, self.target, self.seed, self.build_dir = network, target, int(seed), build_dir

    def run(self, schedule: Schedule, recording: Recording | None = None, reset: bool = False) -> RunResult:
        """Simulate the schedule; `reset` returns every state to its start at each presentation."""
        b2 = _b2()
        net, recording = self.network, recording or Recording()
        check_one_sample(schedule, net)
        check_spiking_recording(net, recording, "brian2")
        n_steps = schedule.n_presentations * schedule.steps_per_presentation(net.dt)
        with _device(self.target, self.build_dir) as directory:
            b2.start_scope()
            b2.defaultclock.dt = net.dt * b2.ms
            b2.seed(self.seed)
            groups, monitors, objects = self._build(schedule, recording, reset)
            wall = run_objects(objects, n_steps, net.dt, directory)
            result = self._collect(groups, monitors, recording, n_steps, wall, float(b2.device._last_run_time))
        return result

    def _build(self, schedule: Schedule, recording: Recording, reset: bool):
        b2, net = _b2(), self.network
        t_pres = schedule.t_pres * b2.ms
        groups, objects = {}, []
        for turn, name in enumerate(net.order):
            pop, base = net.population(name), 10 * turn
            if isinstance(pop.model, CurrentInput):
                continue
            if isinstance(pop.model, PoissonInput):
                rates = b2.TimedArray(poisson_probabilities(schedule, name, net.dt)[:, 0, :] / (net.dt * b2.ms),
                                      dt=t_pres)
                group = b2.PoissonGroup(pop.size, rates="given(t, i)", namespace={"given": rates}, name=name)
            else:
                group = self._neuron_group(pop, schedule, base, reset)
            groups[name] = group
            objects.append(group)
            if pop.spiking:
                _place(group.thresholder["spike"], base + THRESHOLD)
                if isinstance(group, b2.NeuronGroup):
                    _place(group.resetter["spike"], base + RESET)
        for turn, name in enumerate(net.order):
            for conn in net.onto(name):
                if not isinstance(net.population(conn.source).model, CurrentInput):
                    objects.append(self._synapses(conn, groups, 10 * turn + SYNAPSES))
        monitors = {}
        for name, variables in recording.variables.items():
            monitors[f"state:{name}"] = b2.StateMonitor(groups[name], variables, record=True,
                                                        dt=recording.interval(name) * b2.ms)
        for name in recording.spikes:
            monitors[f"spikes:{name}"] = mon = b2.SpikeMonitor(groups[name])
            _place(mon, 10 * net.order.index(name) + MONITOR)
        objects += monitors.values()
        return groups, monitors, objects

    def _neuron_group(self, pop, schedule: Schedule, base: int, reset: bool):
        b2, net = _b2(), self.network
        model = pop.model
        external = [c for c in net.onto(pop.name) if isinstance(net.population(c.source).model, CurrentInput)]
        equations, ns = neuron_equations(pop, bool(external))
        if external:
            current = sum(schedule.data[c.source] @ c.weight.T for c in external)
            ns["I_ext"] = b2.TimedArray(current, dt=schedule.t_pres * b2.ms)
        spiking = not isinstance(model, LI)
        group = b2.NeuronGroup(pop.size, equations, threshold="v > v_threshold" if spiking else None,
                               reset="v = v_reset" if spiking else None, namespace=ns, name=pop.name)
        for key, values in {**pop.parameters(), "bias": pop.bias}.items():
            if key not in ns:
                setattr(group, key, values * b2.ms if key.startswith("tau") else values)
        start = START[type(model)]
        for var, value in start.items():
            setattr(group, var, value)
        if reset:
            group.run_regularly("\n".join(f"{var} = {value}" for var, value in start.items()),
                                dt=schedule.t_pres * b2.ms, when="start")
        group.run_regularly(STEP[type(model)] + "\nI_in = 0", when="groups", order=base + UPDATE)
        return group

    def _synapses(self, conn, groups, order: int):
        b2 = _b2()
        syn = b2.Synapses(groups[conn.source], groups[conn.target], "w : 1 (constant)", on_pre="I_in_post += w",
                          name=conn.name)
        post, pre = np.nonzero(conn.weight)
        syn.connect(i=pre, j=post)
        syn.w = conn.weight[post, pre]
        _place(syn.pre, order)
        return syn

    def _collect(self, groups, monitors, recording: Recording, n_steps: int, wall: float, run_time: float):
        b2, net = _b2(), self.network
        t_end = n_steps * net.dt
        final_state = {f"{name}.{var}": np.asarray(getattr(group, var)[:]).copy()
                       for name, group in groups.items() if not net.population(name).is_input
                       for var in ("I", "v") if var in group.variables}
        traces = {}
        for name, variables in recording.variables.items():
            mon = monitors[f"state:{name}"]
            times = np.asarray(mon.t / b2.ms)
            for var in variables:
                traces[f"{name}.{var}"] = append_final(times, np.asarray(getattr(mon, var)).T,
                                                        final_state[f"{name}.{var}"], recording.interval(name), t_end)
        spikes = {}
        for name in recording.spikes:
            mon = monitors[f"spikes:{name}"]
            steps = np.round(np.asarray(mon.t / b2.ms) / net.dt).astype(np.int64)
            spikes[name] = SpikeTrain(steps * net.dt, np.asarray(mon.i[:], dtype=np.int64),
                                      np.zeros(len(steps), dtype=np.int64))
        return RunResult(traces, {c.name: c.weight.copy() for c in net.connections}, final_state, t_end, n_steps,
                         wall, run_time, spikes=spikes)


def _place(obj, order: int) -> None:
    """Schedule a Brian2 object in the groups slot at `order`."""
    obj.when, obj.order = "groups", order
