"""Brian2 backend: compiles a `Network` into NeuronGroups and Synapses and runs a
`Schedule` (docs/equations.md gives the step that this reproduces).

- one NeuronGroup per population; each projection onto it adds a stored input
  `I_<proj>` that the projection fills as a summed variable; a compartment's potential
  is the sum of its inputs (plus OU noise); rates and u_breve are stored once per step
  (`after_groups`), so every projection reads the previous step's values;
- one Synapses per projection with clock-driven plasticity (Euler, after the neurons;
  the postsynaptic error of dendritic prediction is stored per neuron in between);
  a tied projection (mode `bp`) is a second summed variable onto the *presynaptic*
  group of the projection it is tied to, so B = W^T holds at every step by construction;
- samples, targets, gates and the learn signal are TimedArrays with dt = t_pres.

Codegen targets: "cython" (falls back to numpy if no compiler), "numpy", and
"cpp_standalone" (the whole run compiled to C++, for long runs).
"""
from __future__ import annotations

import tempfile
import time
import warnings
from contextlib import contextmanager

import numpy as np

from ..neurons import ACTIVATIONS, DendriticNeuron
from ..network import Network, Population, Projection
from ..plasticity import DendriticPrediction, PhaselessAlignment, Silencing
from ..recording import Divergence, DivergenceError, Recording, RunResult, Trace, append_final, check_recording
from ..schedule import Schedule

TARGETS = ("cython", "numpy", "cpp_standalone")


def _b2():
    import brian2

    return brian2


def _phi(name: str, x: str) -> str:
    return ACTIVATIONS[name][1].format(x=x)


def neuron_equations(net: Network, pop: Population, fed_noise: bool = False) -> tuple[str, dict]:
    """Brian2 equations of a population and the constants they name (conductances in
    1/ms). Constants carry the population's name (g_basal_P1), because synapses read
    the population's subexpressions in one shared namespace. OU noise enters the soma
    through its compartment's coupling, g_c (v_c + ou - u); v_c itself is noise-free.
    With fed_noise the noise's normal draws come from a TimedArray `noise_<pop>`."""
    b2 = _b2()
    if pop.is_input:
        return "r : 1\nu_breve : 1", {}
    m: DendriticNeuron = pop.model
    k = f"_{pop.name}"
    ns = {f"g_l{k}": m.g_l / b2.ms}
    lines, drive, weighted, total = [], [f"-g_l{k}*u"], [], [f"g_l{k}"]
    for c, g in m.dendrites.items():
        ns[f"g_{c}{k}"] = g / b2.ms
        inputs = [f"I_{p.name}" for p in net.projections_onto(pop.name, c)]
        lines.append(f"v_{c} = {' + '.join(inputs) or '0'} : 1")
        lines.append(f"vhat_{c} = {m.prediction_factor(c)!r}*v_{c} : 1")
        lines.append(f"rhat_{c} = {_phi(m.activation, f'vhat_{c}')} : 1")
        v = f"(v_{c} + ou)" if pop.noise is not None and pop.noise.compartment == c else f"v_{c}"
        drive.append(f"g_{c}{k}*({v} - u)")
        weighted.append(f"g_{c}{k}*{v}")
        total.append(f"g_{c}{k}")
    for n, g in m.nudging.items():
        ns[f"g_{n}{k}"] = g / b2.ms
        inputs = [f"I_{p.name}" for p in net.projections_onto(pop.name, n)]
        if inputs:
            lines.append(f"v_{n} = {' + '.join(inputs)} : 1")
            gate = f"g_{n}{k}"
        else:  # data-driven (a target): value and on/off gate from the schedule
            lines.append(f"v_{n} = data_{n}{k}(t, i) : 1")
            gate = f"gate_{n}{k}(t)*g_{n}{k}"
        drive.append(f"{gate}*(v_{n} - u)")
        weighted.append(f"{gate}*v_{n}")
        total.append(gate)
    lines.insert(0, f"du/dt = {' + '.join(drive)} : 1")
    lines.append(f"g_sum = {' + '.join(total)} : Hz")
    lines.append(f"u_eff = ({' + '.join(weighted)})/g_sum : 1")
    lines.append(f"u_breve_now = {'u_eff' if m.prospective else 'u'} : 1")
    lines.append(f"r_now = {_phi(m.activation, 'u_breve_now')} : 1")
    if pop.noise is not None:
        ns[f"tau_ou{k}"] = pop.noise.tau * b2.ms
        ns[f"sigma_ou{k}"] = pop.noise.sigma
        if fed_noise:  # w ~ N(0, 1) per step from the TimedArray noise_<pop>: the same Euler-Maruyama step
            ns[f"dt_ou{k}"] = net.dt * b2.ms
            lines.append(f"dou/dt = -ou/tau_ou{k} + sigma_ou{k}*noise{k}(t, i)/sqrt(tau_ou{k}*dt_ou{k}) : 1")
        else:
            lines.append(f"dou/dt = -ou/tau_ou{k} + sigma_ou{k}*sqrt(1/tau_ou{k})*xi : 1")
    lines += [f"I_{p.name} : 1" for p in net.projections if p.target == pop.name]
    lines += [f"{_highpass(p)} : 1" for p in highpassed_projections(net, pop)]
    lines += [f"e_{c} : 1" for c in predicted_compartments(net, pop)]
    lines += ["r : 1", "u_breve : 1"]
    return "\n".join(lines), ns


def predicted_compartments(net: Network, pop: Population) -> list[str]:
    """Compartments of `pop` whose inputs learn by dendritic prediction: each stores its
    error e_c = phi(u_breve) - phi(vhat_c) once per neuron and step, for all its synapses."""
    return sorted({p.compartment for p in net.projections
                   if p.target == pop.name and isinstance(p.rule, DendriticPrediction)})


def highpassed_projections(net: Network, pop: Population) -> list[Projection]:
    """Projections from `pop` whose rule reads its high-pass filtered rate."""
    return [p for p in net.projections if p.source == pop.name and isinstance(p.rule, PhaselessAlignment)]


def _highpass(proj: Projection) -> str:
    return f"rhp_{proj.name}"


def store_code(net: Network, pop: Population) -> tuple[str, dict]:
    """End of step: high-pass filters first (they need the old r), then r and u_breve.
    r~ <- r~ + (r(n) - r(n-1)) - dt/tau_hp r~."""
    b2 = _b2()
    r_new = f"data_{pop.name}(t, i)" if pop.is_input else "r_now"
    lines, ns = [], {}
    for proj in highpassed_projections(net, pop):
        ns[f"tau_hp_{proj.name}"] = proj.rule.tau_hp * b2.ms
        hp = _highpass(proj)
        lines.append(f"{hp} = {hp} + ({r_new} - r) - dt/tau_hp_{proj.name}*{hp}")
    lines.append(f"r = {r_new}")
    if not pop.is_input:
        lines.append("u_breve = u_breve_now")
    return "\n".join(lines), ns


def synapse_equations(net: Network, proj: Projection) -> tuple[str, dict]:
    """Brian2 synapse model of a projection, with the summed inputs it drives."""
    b2 = _b2()
    s_pre = "r_pre" if proj.signal == "rate" else "u_breve_pre"
    lines = [f"I_{proj.name}_post = w*{s_pre} : 1 (summed)"]
    for tied in (p for p in net.projections if p.tied and p.rule.source == proj.name):
        s_post = "r_post" if tied.signal == "rate" else "u_breve_post"
        lines.append(f"I_{tied.name}_pre = {tied.rule.sign!r}*w*{s_post} : 1 (summed)")
    rule, ns = proj.rule, {}
    if isinstance(rule, DendriticPrediction):
        ns[f"eta_{proj.name}"] = rule.eta / b2.ms
        update = f"learn(t)*eta_{proj.name}*e_{proj.compartment}_post*{s_pre}"
        if rule.tau_lo > 0:
            ns[f"tau_lo_{proj.name}"] = rule.tau_lo * b2.ms
            lines += ["dw/dt = m : 1 (clock-driven)",
                      f"dm/dt = ({update} - m)/tau_lo_{proj.name} : Hz (clock-driven)"]
        else:
            lines.append(f"dw/dt = {update} : 1 (clock-driven)")
    elif isinstance(rule, PhaselessAlignment):
        ns[f"eta_{proj.name}"] = rule.eta / b2.ms
        ns[f"alpha_{proj.name}"] = rule.alpha
        lines.append(f"dw/dt = learn(t)*eta_{proj.name}*(ou_post*{_highpass(proj)}_pre - alpha_{proj.name}*w)"
                     " : 1 (clock-driven)")
    elif isinstance(rule, Silencing):
        ns[f"eta_{proj.name}"] = rule.eta / b2.ms
        lines.append(f"dw/dt = -learn(t)*eta_{proj.name}*v_{proj.compartment}_post*{s_pre} : 1 (clock-driven)")
    else:
        lines.append("w : 1")
    return "\n".join(lines), ns


@contextmanager
def _device(target: str, build_dir: str | None):
    b2 = _b2()
    if target == "cpp_standalone":
        directory = build_dir or tempfile.mkdtemp(prefix="neurosim_standalone_")
        b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
        try:
            yield directory
        finally:
            b2.device.reinit()
            b2.device.activate()
            b2.set_device("runtime")
    else:
        b2.set_device("runtime")
        b2.prefs.codegen.target = "numpy" if target == "cython" and not _cython_available() else target
        yield None


def check_one_sample(schedule: Schedule, network) -> None:
    """The schedule fits the network and has one sample per presentation (Brian2 runs no minibatches)."""
    schedule.check_against(network)
    if schedule.samples != 1:
        raise ValueError(f"the brian2 backend presents one sample at a time; the schedule has {schedule.samples} "
                         "per presentation (use the torch backend for minibatches)")


def run_objects(objects, n_steps: int, dt: float, directory: str | None) -> float:
    """Run Brian2 objects for n_steps of dt ms (and build, compile and run the standalone
    project in `directory`); the wall time in seconds."""
    b2 = _b2()
    t0 = time.perf_counter()
    b2.Network(*objects).run(n_steps * dt * b2.ms)
    if directory is not None:
        b2.device.build(directory=directory, compile=True, run=True, clean=False)
    return time.perf_counter() - t0


def _cython_available() -> bool:
    from brian2.codegen.runtime.cython_rt import CythonCodeObject

    if CythonCodeObject.is_available():
        return True
    warnings.warn("Cython cannot compile here; Brian2 falls back to the numpy target")
    return False


class Brian2Simulator:
    """Runs a network description on Brian2.

    target: "cython" (default), "numpy" or "cpp_standalone"; seed fixes the noise.
    noise: optional {population: (n_steps, size) array of N(0, 1) draws} that replaces
    Brian2's own draws for that population's OU noise (to replay a realisation).
    """

    def __init__(self, network: Network, target: str = "cython", seed: int = 0,
                 build_dir: str | None = None, check_every_ms: float = 10.0, noise: dict | None = None):
        if target not in TARGETS:
            raise ValueError(f"brian2 target must be one of {TARGETS}, got {target!r}")
        self.network, self.target, self.seed = network, target, int(seed)
        self.build_dir, self.check_every_ms = build_dir, check_every_ms
        self.noise = {name: np.asarray(w, dtype=float) for name, w in (noise or {}).items()}
        for name in self.noise:
            if network.population(name).noise is None:
                raise ValueError(f"noise given for {name}, which has no OUNoise")

    def run(self, schedule: Schedule, recording: Recording | None = None, progress: bool = False) -> RunResult:
        """Simulate the whole schedule. Raises DivergenceError (with the partial result)
        when a population's state becomes NaN or inf."""
        b2 = _b2()
        net, recording = self.network, recording or Recording()
        check_one_sample(schedule, net)
        check_recording(net, recording, "brian2", inputs=True)
        spp = schedule.steps_per_presentation(net.dt)
        n_steps = schedule.n_presentations * spp
        for name, draws in self.noise.items():
            if draws.ndim != 2 or draws.shape[0] < n_steps or draws.shape[1] != net.population(name).size:
                raise ValueError(f"noise for {name} must have shape (>= {n_steps} steps, "
                                 f"{net.population(name).size}), got {draws.shape}")
        with _device(self.target, self.build_dir) as directory:
            b2.start_scope()
            b2.defaultclock.dt = net.dt * b2.ms
            b2.seed(self.seed)
            groups, synapses, monitors, objects = self._build(schedule, recording)
            divergence, holder = [], []
            if self.target != "cpp_standalone":
                objects.append(self._divergence_watch(groups, divergence, holder))
            bnet = b2.Network(*objects)
            holder.append(bnet)
            report, close = _reporter(progress, self.target)
            t0 = time.perf_counter()
            bnet.run(n_steps * net.dt * b2.ms, report=report, report_period=1 * b2.second)
            if directory is not None:
                b2.device.build(directory=directory, compile=True, run=True, clean=False)
            wall = time.perf_counter() - t0
            close()
            t_end = float(bnet.t / b2.ms) if directory is None else n_steps * net.dt
            seconds = (wall, float(b2.device._last_run_time))
            result = self._collect(groups, synapses, monitors, recording, t_end, seconds)
        result.divergence = divergence[0] if divergence else result.first_divergence()
        if result.divergence is not None:
            raise DivergenceError(result.divergence, result)
        return result

    def _build(self, schedule: Schedule, recording: Recording):
        b2, net = _b2(), self.network
        t_pres = schedule.t_pres * b2.ms
        ns = {"learn": b2.TimedArray(schedule.learn, dt=t_pres)}
        neuron_eqs = {}
        for pop in net.populations:
            neuron_eqs[pop.name], constants = neuron_equations(net, pop, fed_noise=pop.name in self.noise)
            ns.update(constants)
            if pop.name in self.noise:
                ns[f"noise_{pop.name}"] = b2.TimedArray(self.noise[pop.name], dt=net.dt * b2.ms)
            if pop.is_input:
                ns[f"data_{pop.name}"] = b2.TimedArray(schedule.data[pop.name], dt=t_pres)
                continue
            for n in pop.model.nudging:
                key = f"{pop.name}.{n}"
                if key in schedule.data:
                    ns[f"data_{n}_{pop.name}"] = b2.TimedArray(schedule.data[key], dt=t_pres)
                    gate = schedule.gates.get(key, np.ones(schedule.n_presentations))
                    ns[f"gate_{n}_{pop.name}"] = b2.TimedArray(gate, dt=t_pres)
        synapse_eqs = {}
        for proj in net.projections:
            if not proj.tied:
                synapse_eqs[proj.name], constants = synapse_equations(net, proj)
                ns.update(constants)
        groups, synapses, monitors, objects = {}, {}, {}, []
        for pop in net.populations:
            g = b2.NeuronGroup(pop.size, neuron_eqs[pop.name], method="euler", namespace=ns,
                               name=pop.name, order=0)
            if pop.is_input:
                g.r = schedule.data[pop.name][0]
            else:
                g.r = float(ACTIVATIONS[pop.model.activation][0](0.0))
            store, constants = store_code(net, pop)
            ns.update(constants)
            g.run_regularly(store, when="after_groups", name=f"{pop.name}_store")
            errors = [f"e_{c} = r_now - rhat_{c}" for c in predicted_compartments(net, pop)]
            if errors:  # after the soma's Euler step (order 0), before plasticity (order 2)
                g.run_regularly("\n".join(errors), when="groups", order=1, name=f"{pop.name}_errors")
            groups[pop.name] = g
            objects.append(g)
        for proj in net.projections:
            if proj.tied:
                continue
            src, tgt = groups[proj.source], groups[proj.target]
            s = b2.Synapses(src, tgt, synapse_eqs[proj.name], method="euler", namespace=ns,
                            name=proj.name, order=2)
            if proj.kind == "one_to_one":
                s.connect(j="i")
                s.w = 1.0
            else:
                pre = np.repeat(np.arange(src.N), tgt.N)
                post = np.tile(np.arange(tgt.N), src.N)
                s.connect(i=pre, j=post)
                s.w = proj.weight[post, pre]
            synapses[proj.name] = s
            objects.append(s)
        for pop_name, variables in recording.variables.items():
            if variables:
                mon = b2.StateMonitor(groups[pop_name], list(variables), record=True,
                                      dt=recording.interval(pop_name) * b2.ms, when="start",
                                      name=f"rec_{pop_name}")
                monitors[pop_name] = mon
                objects.append(mon)
        if recording.weights_dt is not None:
            for name in {self._weight_owner(n) for n in recording.weights}:
                mon = b2.StateMonitor(synapses[name], "w", record=True, dt=recording.weights_dt * b2.ms,
                                      when="start", name=f"recw_{name}")
                monitors[f"w:{name}"] = mon
                objects.append(mon)
        return groups, synapses, monitors, objects

    def _weight_owner(self, name: str) -> str:
        proj = self.network.projection(name)
        return proj.rule.source if proj.tied else name

    def _divergence_watch(self, groups, found: list, holder: list):
        """Every check_every_ms, stop the run at the first population with NaN or inf."""
        b2, net = _b2(), self.network
        watched = [p.name for p in net.populations if not p.is_input]

        @b2.network_operation(dt=self.check_every_ms * b2.ms, when="end")
        def watch(t):
            for name in watched:
                g = groups[name]
                if not (np.all(np.isfinite(g.u[:])) and np.all(np.isfinite(g.r[:]))):
                    found.append(Divergence(name, float(t / b2.ms) + self.network.dt))
                    holder[0].stop()
                    return

        return watch

    def _collect(self, groups, synapses, monitors, recording, t_end, seconds) -> RunResult:
        b2, net = _b2(), self.network
        final_weights, final_state, traces = {}, {}, {}
        for proj in net.projections:
            if proj.kind == "one_to_one":
                continue
            owner = synapses[self._weight_owner(proj.name)]
            w = _matrix(owner, owner.w[:])
            final_weights[proj.name] = proj.rule.sign * w.T if proj.tied else w
        for pop in net.populations:
            g = groups[pop.name]
            for var in ("r", "u_breve") if pop.is_input else ("u", "r", "u_breve"):
                final_state[f"{pop.name}.{var}"] = np.array(getattr(g, var)[:])
        for pop_name, variables in recording.variables.items():
            mon = monitors.get(pop_name)
            if mon is None:
                continue
            times = np.asarray(mon.t / b2.ms)
            final = self._final_values(groups[pop_name], pop_name, variables)
            for var in variables:
                values = np.asarray(getattr(mon, var)).T
                traces[f"{pop_name}.{var}"] = append_final(times, values, final[var],
                                                            recording.interval(pop_name), t_end)
        for key, mon in monitors.items():
            if not key.startswith("w:"):
                continue
            name = key[2:]
            s = synapses[name]
            times = np.asarray(mon.t / b2.ms)
            values = np.stack([_matrix(s, row) for row in np.asarray(mon.w).T]) if len(times) else \
                np.zeros((0, s.target.N, s.source.N))
            trace = append_final(times, values, final_weights[name], recording.weights_dt, t_end)
            for proj in net.projections:
                if proj.name in recording.weights and self._weight_owner(proj.name) == name:
                    vals = proj.rule.sign * np.swapaxes(trace.values, 1, 2) if proj.tied else trace.values
                    traces[f"w:{proj.name}"] = Trace(trace.times, vals)
        return RunResult(traces, final_weights, final_state, t_end, int(round(t_end / net.dt)), *seconds)

    def _final_values(self, group, pop_name, variables) -> dict:
        """Recorded variables at the end of the run, from the stored state."""
        out = {}
        for var in variables:
            if var.startswith("v_"):
                parts = [np.asarray(getattr(group, f"I_{p.name}")[:])
                         for p in self.network.projections_onto(pop_name, var[2:])]
                out[var] = np.sum(parts, axis=0) if parts else np.zeros(group.N)
            else:
                out[var] = np.array(getattr(group, var)[:])
        return out


def _matrix(syn, flat) -> np.ndarray:
    """Synapse values in Brian2's order -> (post, pre) matrix."""
    w = np.zeros((syn.target.N, syn.source.N))
    w[np.asarray(syn.j[:]), np.asarray(syn.i[:])] = np.asarray(flat)
    return w


def _reporter(progress: bool, target: str):
    """Brian2 `report`: a tqdm bar over simulated time in runtime mode, Brian2's own
    text report in standalone mode (the loop runs in C++)."""
    if not progress:
        return None, lambda: None
    if target == "cpp_standalone":
        return "text", lambda: None
    from tqdm import tqdm

    bar = tqdm(total=100, unit="%", desc="simulated", bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def report(elapsed, completed, start, duration):
        bar.n = round(100 * float(completed), 1)
        bar.refresh()

    return report, bar.close
