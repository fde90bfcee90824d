"""Brian2 backend: compiles a `Network` into NeuronGroups and Synapses and runs a
`Schedule`, on Brian2's runtime targets ("cython", "numpy") or as one `cpp_standalone`
C++ program. Each model gives its equations (model.brian2), each rule its synapse code
(rule.brian2); this module wires them and orders the step of docs/equations.md:

    start          monitors record the state at t; run(reset=True) resets the state
    before_groups  summed inputs read at the start of the step (delay 1; delay 0 from an
                   input, a function of t), then the rules that read the start
    groups         population by population in Network.order: the delay-0 inputs onto it
                   (summed values, spikes), its update, threshold, spike monitor, reset,
                   then per-neuron values that rules read after the update
    after_groups   the rules that read the end of the step, then each population stores
                   what it sends in the next step
    end            the divergence check (runtime targets)

A projection's input is a summed variable I_<proj> of its owner's Synapses (a shared or
tied projection is one more summed variable there; where its source or target is not the
owner's pre or post group, a linked variable carries it), a linked variable for a
one_to_one projection that can read its source directly, or spikes that on_pre adds to
E_<port>. A model or rule without `brian2` is refused when the simulator is built, and
so is a combination this schedule cannot run as the torch backend does.
"""
from __future__ import annotations

import ctypes
import functools
import gc
import itertools
import os
import re
import time
import warnings
from contextlib import contextmanager, nullcontext

import numpy as np

from .. import interrupt
from ..checkpoint import Checkpoint
from ..network import Network, implemented, structure
from ..noise import check_replayed, replay_key
from ..recording import (Divergence, DivergenceError, Recording, RunResult, SpikeTrain, Trace, append_final,
                         check_recording, within_bound)
from ..schedule import Schedule
from . import standalone_cache, standalone_make, standalone_stretches

TARGETS = ("cython", "numpy", "cpp_standalone")
SLOTS = 10  # orders per population's turn in the groups slot
INPUTS, UPDATE, THRESHOLD, SPIKES, RESET, AFTER = range(6)
UNIT_NAMES = {"": "1", "ms": "second", "1/ms": "Hz", "Hz": "Hz"}


@functools.cache
def _b2():
    """brian2, imported on first use (and its code order made stable, once); its import
    replaces the SIGINT handler, which interrupt.on_signals() then takes back."""
    import brian2

    _stable_code_order()
    interrupt.reclaim()
    return brian2


def _sorted_topsort(graph):
    """brian2.utils.topsort.topsort with ties broken by name rather than by the order of
    a set of strings, which changes with every process's hash seed."""
    from graphlib import TopologicalSorter

    return list(TopologicalSorter({node: sorted(graph[node]) for node in sorted(graph)}).static_order())


def _stable_code_order():
    """Brian2 orders the subexpressions it writes into generated code by a topological
    sort whose ties follow set iteration order, so every new process generated the same
    code objects in another order and a cached standalone project recompiled them
    (standalone_cache.py). Both places that sort use the sorted version instead."""
    from brian2.codegen import translation
    from brian2.equations import equations

    translation.topsort = equations.topsort = _sorted_topsort


def _unit(unit: str):
    b2 = _b2()
    return {"ms": b2.ms, "1/ms": 1 / b2.ms, "Hz": b2.Hz}.get(unit, 1.0)


class _Group:
    """What the compiler tells a model about its population (models/base.py): its
    summed input per port, where spikes arrive, its parameters and its data, the
    quantities rules read of it (`needs`), and whether anything reads what it sent at
    the start of the step (`read_at_start`)."""

    def __init__(self, sim: "Brian2Simulator", pop):
        net = sim.network
        self.b2, self.pop, self.name, self.fed = _b2(), pop, pop.name, net.fed(pop.name)
        self.needs = {q for p in net.projections if p.rule for name, q in p.rule.factors(p).values() if name == pop.name}
        self.read_at_start = any(p.source == pop.name and (p.delay == 1 or p.rule is not None) for p in net.projections)
        self.white = f"noise_{pop.name}(t, i)/sqrt(dt)" if pop.name in sim.noise else "xi"
        self.dt, self._replayed = net.dt, sim.noise
        self.namespace, self.lines, self.values, self.timed = {}, [], {}, {}
        self._summed = [p for p in net.onto(pop.name) if not sim.events(p)]
        self._events = {p.port for p in net.onto(pop.name) if sim.events(p)}

    def uniform(self, stream: str) -> str:
        """This step's U[0, 1) number per neuron of `stream`: Brian2's rand(), or the
        replayed draws (the simulator's `noise=`)."""
        key = replay_key(self.name, stream)
        return f"noise_{key.replace('.', '_')}(t, i)" if key in self._replayed else "rand()"

    def const(self, name: str, value, unit: str = "") -> str:
        """A parameter: a namespace constant when equal for all neurons (cheaper in
        Brian2's loops), a per-neuron variable otherwise."""
        values = np.broadcast_to(np.asarray(value, dtype=float), (self.pop.size,))
        if np.all(values == values[0]):
            self.namespace[f"{name}_{self.name}"] = float(values[0]) * _unit(unit)
            return f"{name}_{self.name}"
        self.lines.append(f"{name} : {UNIT_NAMES[unit]} (constant)")
        self.values[name] = values * _unit(unit)
        return name

    def input(self, port: str, gains: dict | None = None) -> str:
        """The summed continuous input onto `port`: the sum of scale g I_<proj>."""
        terms = [("" if p.scale == 1 else f"{p.scale!r}*") + (f"({gains[p.gain]})*" if p.gain else "") + f"I_{p.name}"
                 for p in self._summed if p.port == port]
        return " + ".join(terms) or "0"

    def events(self, port: str) -> str | None:
        """The variable that spikes onto `port` are added to (None: none arrive)."""
        return f"E_{port}" if port in self._events else None

    def data(self, key: str, unit: str = "") -> str:
        """The TimedArray (one row per presentation) of the schedule's values for `key`."""
        self.timed[f"data_{key.replace('.', '_')}"] = (key, unit, False)
        return f"data_{key.replace('.', '_')}"

    def gate(self, key: str) -> str:
        self.timed[f"gate_{key.replace('.', '_')}"] = (key, "", True)
        return f"gate_{key.replace('.', '_')}"


class _Rule:
    """What the compiler tells a rule about its projection (rules.py): the factors as
    seen from the Synapses, the presynaptic signal in its group at both times."""

    def __init__(self, proj, pre: str, post: str, signal, events: bool):
        self.name, self.learn, self.events, self.pre, self.post = proj.name, "learn(t)", events, pre, post
        self.pre_start, self.pre_now = (signal.start, signal.now) if signal else ("", "")
        self.namespace = {}

    def const(self, name: str, value, unit: str = "") -> str:
        self.namespace[f"{name}_{self.name}"] = float(value) * _unit(unit)
        return f"{name}_{self.name}"


class Brian2Simulator:
    """Runs a network description on Brian2.

    network: one `Network`, or a list of replicas that differ only in their weights
        (non-zero where the first's are), each run with its own seed and schedule by
        `run_replicas`: on cpp_standalone one program, built for the first and rerun for
        the others with their weights and data as run-time arguments.
    target: "cython" (default; numpy where nothing compiles), "numpy" or "cpp_standalone";
    seed: one per replica (an int for one replica); it fixes Brian2's random numbers;
    build_dir: the standalone project's folder (by default the cache folder of the
    network's structure, where a later run of the same structure recompiles only what
    changed: standalone_cache.py); check_every_ms: how often a runtime run looks for NaN
    or inf; noise: optional {population: (n_steps, size) N(0, 1) draws} replacing
    Brian2's own draws for that population's noise, and {"<population>.spikes":
    (n_steps, size) U[0, 1) draws} for a spiking dendritic population's escape noise
    (to replay a realisation; one replica; neurosim.noise.replay_key).
    """

    def __init__(self, network: Network | list[Network], *, target: str = "cython", seed: int | list[int] = 0,
                 build_dir: str | None = None, check_every_ms: float = 10.0, noise: dict | None = None):
        if target not in TARGETS:
            raise ValueError(f"brian2 target must be one of {TARGETS}, got {target!r}")
        self.networks = list(network) if isinstance(network, (list, tuple)) else [network]
        self.seeds = [int(x) for x in (seed if isinstance(seed, (list, tuple)) else [seed])]
        if not self.networks or len(self.seeds) != len(self.networks):
            raise ValueError(f"give one seed per network: {len(self.networks)} network(s), {len(self.seeds)} seed(s)")
        for i, other in enumerate(self.networks[1:], start=1):
            _check_replica(self.networks[0], other, i)
        self.network, self.target, self.seed = self.networks[0], target, self.seeds[0]
        network = self.network
        self.build_dir, self.check_every_ms = build_dir, check_every_ms
        self.noise = {name: np.asarray(w, dtype=float) for name, w in (noise or {}).items()}
        if self.noise and len(self.networks) > 1:
            raise ValueError("noise draws replay one realisation: give them for one replica only")
        check_replayed(network, self.noise)
        implemented(network, "brian2")
        self.contexts = {pop.name: _Group(self, pop) for pop in network.populations}
        self.specs = {pop.name: pop.model.brian2(self.contexts[pop.name]) for pop in network.populations}
        self._plan()

    def events(self, proj) -> bool:
        """The projection delivers spikes (on_pre), not a summed value."""
        return self.network.population(proj.source).model.events

    def _plan(self):
        """Decide where each input is read and refuse what this schedule cannot run as
        the step of docs/equations.md."""
        net, order = self.network, self.network.order
        self.early, self.linked = {}, set()
        for proj in net.projections:
            if self.events(proj):
                if proj.uses or net.users(proj.name)[1:] or proj.gain:
                    raise ValueError(f"projection {proj.name}: the brian2 backend delivers spikes by on_pre; a spiking "
                                     "projection cannot share or tie its weight or take a gain")
                continue
            sig = self.specs[proj.source].signals[proj.signal]
            self.early[proj.name] = proj.delay == 1 or sig.timeless
            readable = sig.kept if proj.delay else (sig.timeless or order.index(proj.source) < order.index(proj.target))
            if proj.kind == "one_to_one" and readable:
                self.linked.add(proj.name)
        for proj in (p for p in net.projections if p.rule is not None):
            rule, where = proj.rule, f"projection {proj.name} ({type(proj.rule).__name__})"
            factors = rule.factors(proj)
            for pop, quantity in factors.values():
                if quantity not in self.specs[pop].quantities:
                    raise ValueError(f"{where}: the rule reads {quantity!r} of {pop}, which its model "
                                     f"{type(net.population(pop).model).__name__} does not provide")
            if self.events(proj):
                if rule.reads == "end" or "pre" in factors or factors["post"][0] != proj.target:
                    raise ValueError(f"{where}: on a spiking projection the brian2 backend runs only rules that read "
                                     "the start of the step, from the target alone")
            elif rule.reads == "start":
                late = [p.name for p in net.users(proj.name) if not self.early[p.name]]
                if late:
                    raise ValueError(f"{where}: the rule changes W before the groups, but {late} read it during them "
                                     "(delay 0 from a population that updates); give them delay 1")
            elif proj.delay == 1 and not self.specs[proj.source].signals[proj.signal].kept:
                raise ValueError(f"{where}: the rule reads {proj.source}'s {proj.signal} of the previous step after "
                                 f"the update, which {type(net.population(proj.source).model).__name__} does not keep")

    # -- running ----------------------------------------------------------------------
    def run(self, schedule: Schedule, recording: Recording | None = None, progress: bool = False,
            reset: bool = False) -> RunResult:
        """Simulate the whole schedule (one replica); `reset` returns every population's
        state to its start at each presentation. Raises DivergenceError (with the partial
        result) when a population's state becomes NaN or inf."""
        if len(self.networks) > 1:
            raise ValueError(f"this simulator holds {len(self.networks)} replicas: use run_replicas")
        (result,) = self.run_replicas(schedule, recording, progress, reset)
        if result.divergence is not None:
            raise DivergenceError(result.divergence, result)
        return result

    def run_replicas(self, schedules: Schedule | list[Schedule], recording: Recording | None = None,
                     progress: bool = False, reset: bool = False,
                     checkpoint: Checkpoint | None = None) -> list[RunResult]:
        """Every replica with its schedule (or one schedule for all), one after another;
        on cpp_standalone with one program. One RunResult per replica; a replica whose
        state became NaN or inf has `divergence` set (the others run on). `checkpoint`
        (one replica): run in stretches of checkpoint.every ms with a checkpoint after
        each (and, at runtime, when a signal stops the run), or continue from its file;
        on cpp_standalone one program run per stretch (standalone_stretches.py)."""
        net, recording = self.network, recording or Recording()
        if checkpoint is not None:
            self._check_checkpoints()
        schedules = list(schedules) if isinstance(schedules, (list, tuple)) else [schedules] * len(self.networks)
        if len(schedules) != len(self.networks):
            raise ValueError(f"give one schedule, or one per replica ({len(self.networks)}); got {len(schedules)}")
        for i, (schedule, network) in enumerate(zip(schedules, self.networks)):
            check_one_sample(schedule, network)
            if i and _schedule_shape(schedule) != _schedule_shape(schedules[0]):
                raise ValueError(f"schedule {i} differs from schedule 0 in its presentations, t_pres or data keys and "
                                 "shapes; Brian2 replicas share one program")
        check_recording(net, recording, "brian2")
        if self.target != "cpp_standalone":
            return [Brian2Simulator(network, target=self.target, seed=seed, check_every_ms=self.check_every_ms,
                                    noise=self.noise)._run([schedule], recording, progress, reset, checkpoint)[0]
                    for network, seed, schedule in zip(self.networks, self.seeds, schedules)]
        return self._run(schedules, recording, progress, reset, checkpoint)

    def _check_checkpoints(self) -> None:
        """Checkpoints run one replica; on cpp_standalone, networks without spikes in
        flight between stretches (spiking projections with a delay)."""
        if len(self.networks) > 1:
            raise ValueError(f"checkpoints on brian2 run one replica; this run has {len(self.networks)}")
        delayed = [p.name for p in self.network.projections if self.events(p) and p.delay]
        if self.target == "cpp_standalone" and delayed:
            raise ValueError(f"checkpoints on cpp_standalone cannot keep the spikes in flight between two stretches "
                             f"of projections {delayed} (delay 1): run on cython, numpy or torch to checkpoint")

    def _run(self, schedules: list[Schedule], recording: Recording, progress: bool, reset: bool,
             checkpoint: Checkpoint | None = None) -> list[RunResult]:
        """Build and run the first replica with the first schedule; on cpp_standalone,
        rerun the program for the others with their weights, data (`schedules`) and
        seeds as run-time arguments."""
        b2, net, schedule = _b2(), self.network, schedules[0]
        n_steps = schedule.n_presentations * schedule.steps_per_presentation(net.dt)
        for name, draws in self.noise.items():
            size = net.population(name.partition(".")[0]).size
            if draws.ndim != 2 or draws.shape[0] < n_steps or draws.shape[1] != size:
                raise ValueError(f"noise for {name} must have shape (>= {n_steps} steps, {size}), got {draws.shape}")
        cache_key = standalone_cache.key(structure(net), recording, reset, sorted(self.noise), progress) \
            if self.target == "cpp_standalone" and not self.build_dir else None
        with _device(self.target, self.build_dir, cache_key) as (directory, cached):
            b2.start_scope()
            b2.defaultclock.dt = net.dt * b2.ms
            _seed(self.seed, directory is not None)
            groups, synapses, monitors, timed, objects = self._build(schedule, recording, reset)
            divergence, holder, steps = [], [], [0]
            if directory is None:
                objects.append(self._divergence_watch(groups, synapses, divergence, holder, steps))
            elif progress:
                objects.append(_standalone_progress(n_steps * net.dt))
            bnet = b2.Network(*objects)
            holder.append(bnet)
            report, close = _reporter(progress and directory is None, n_steps * net.dt)
            t0 = time.perf_counter()
            if directory is None:
                k = self._run_runtime(bnet, n_steps, report, checkpoint, divergence, steps)
                t_end, run_time = k * net.dt, float(b2.device._last_run_time)
                recorded = _read_monitors(monitors)
            else:
                bnet.run(n_steps * net.dt * b2.ms)
                if progress:
                    why = ("its program from an earlier run, recompiling only what changed"
                           if os.path.exists(os.path.join(directory, "main")) else
                           "a new program: the first run of this network structure compiles it (about 10 - 20 s)")
                    print(f"cpp_standalone project {directory}: {why}", flush=True)
                _standalone(lambda: _compile(directory, cached))
                if checkpoint is None:
                    _standalone(lambda: _run_program(directory, self.seed))
                    t_end, run_time = n_steps * net.dt, float(b2.device._last_run_time)
                    recorded = _read_monitors(monitors)
                else:
                    recorded, k, run_time = standalone_stretches.run(
                        directory, self.seed, net.dt, n_steps, [*groups.values(), *synapses.values()], monitors,
                        checkpoint, structure(net), lambda *a: _standalone(lambda: _run_program(*a)), _read_monitors)
                    t_end = k * net.dt
                if progress:
                    print(f"{100 * t_end / (n_steps * net.dt):.1f} % of {n_steps * net.dt / 1000:g} s simulated in "
                          f"{run_time:.1f} s")
            close()
            results = [self._collect(groups, synapses, recorded, recording, t_end, time.perf_counter() - t0,
                                     run_time)]
            results[0].divergence = divergence[0] if divergence else results[0].first_divergence()
            if t_end < n_steps * net.dt and interrupt.requested():
                results[0].interrupted = f"{interrupt.describe(interrupt.requested())} at t = {t_end:g} ms"
            for network, seed, other in list(zip(self.networks, self.seeds, schedules))[1:]:
                if interrupt.requested():  # a program runs whole: stop before the next replica
                    break
                t0 = time.perf_counter()
                args = {**{ta: values(other) for ta, values in timed}, **{
                    synapses[p.name].w: _synapse_values(synapses[p.name], p) for p in network.projections
                    if p.name in synapses and p.kind != "one_to_one"}}
                _standalone(lambda: _run_program(directory, seed, args))
                result = self._collect(groups, synapses, _read_monitors(monitors), recording,
                                       t_end, time.perf_counter() - t0, float(b2.device._last_run_time))
                result.divergence = result.first_divergence()
                results.append(result)
        return results

    def _build(self, schedule: Schedule, recording: Recording, reset: bool):
        b2, net, order = _b2(), self.network, self.network.order
        t_pres = schedule.t_pres * b2.ms
        # TimedArrays are named, or Brian2 numbers them per process and a cached project recompiles
        timed = []  # (TimedArray, its values for a schedule): what another replica's run sets

        def timed_array(name: str, values, dt):
            ta = b2.TimedArray(values(schedule), dt=dt, name=f"timed_{name}")
            timed.append((ta, values))
            return ta

        ns = {"learn": timed_array("learn", lambda sched: sched.learn, t_pres)}
        ns.update({f"noise_{k.replace('.', '_')}": b2.TimedArray(w, dt=net.dt * b2.ms,
                                                               name=f"timed_noise_{k.replace('.', '_')}")
                   for k, w in self.noise.items()})
        lines = {p.name: self.specs[p.name].equations + self.contexts[p.name].lines for p in net.populations}
        links = {}  # (group, variable) -> (population, its variable)

        def add(group: str, line: str):
            if line not in lines[group]:
                lines[group].append(line)

        def sent(pop: str, signal: str, delay: int) -> str:
            """The subexpression of `pop` holding `signal` as a delay-`delay` projection reads it."""
            time_ = "start" if delay else "now"
            add(pop, f"s_{signal}_{time_} = {getattr(self.specs[pop].signals[signal], time_)} : 1")
            return f"s_{signal}_{time_}"

        def read(group: str, side: str, pop: str, variable: str) -> str:
            """`pop`'s variable as Synapses see it from their `side`, whose group is `group`."""
            if pop == group:
                return f"{variable}_{side}"
            add(group, f"L_{pop}_{variable} : 1 (linked)")
            links[(group, f"L_{pop}_{variable}")] = (pop, variable)
            return f"L_{pop}_{variable}_{side}"

        owners, synapse_code = [], {}
        for proj in net.projections:
            if self.events(proj):
                add(proj.target, f"E_{proj.port} : 1")
            elif proj.name in self.linked:
                add(proj.target, f"I_{proj.name} : 1 (linked)")
                links[(proj.target, f"I_{proj.name}")] = (proj.source, sent(proj.source, proj.signal, proj.delay))
            if proj.owner in (proj.name, None) and proj.name not in self.linked:
                owners.append(proj)
        for o in owners:  # its users' inputs (summed) or spikes (on_pre), then its rule
            code, on_pre = [], []
            for q in net.users(o.name) or [o]:
                if self.events(q):
                    on_pre.append(f"E_{q.port}_post += {'' if q.scale == 1 else f'{q.scale!r}*'}w")
                    continue
                host, side = (o.source, "pre") if q.tied else (o.target, "post")
                add(host, f"I_{q.name} : 1")
                if host != q.target:
                    add(q.target, f"I_{q.name} : 1 (linked)")
                    links[(q.target, f"I_{q.name}")] = (host, f"I_{q.name}")
                s = read(o.target if q.tied else o.source, "post" if q.tied else "pre", q.source,
                         sent(q.source, q.signal, q.delay))
                code.append(f"I_{q.name}_{side} = w*{s} : 1 (summed)")
            rule = None
            if o.rule is not None:
                factors = o.rule.factors(o)
                post = read(o.target, "post", factors["post"][0], self.specs[factors["post"][0]].quantities[
                    factors["post"][1]])
                pre = read(o.source, "pre", factors["pre"][0], self.specs[factors["pre"][0]].quantities[
                    factors["pre"][1]]) if "pre" in factors else \
                    "1" if self.events(o) else f"{sent(o.source, o.signal, o.delay)}_pre"
                ctx = _Rule(o, pre, post, self.specs[o.source].signals.get(o.signal), self.events(o))
                rule = o.rule.brian2(ctx)
                ns.update({**ctx.namespace, **rule.namespace})
                for line in rule.pre_variables:
                    add(o.source, line)
                code += rule.equations
                on_pre += [rule.on_pre] if rule.on_pre else []
            else:
                code.append("w : 1")
            synapse_code[o.name] = (code, "\n".join(on_pre), rule)
        # the groups, in their turns
        groups = {}
        for pop in net.populations:
            spec, ctx, base = self.specs[pop.name], self.contexts[pop.name], SLOTS * order.index(pop.name)
            for name, (key, unit, gate) in ctx.timed.items():
                if gate:
                    ns[name] = timed_array(name, lambda sched, key=key: sched.gates.get(
                        key, np.ones(sched.n_presentations)), t_pres)
                else:
                    pop.model.check_data(key, schedule.batched(key), net.dt)
                    ns[name] = timed_array(name, lambda sched, key=key, unit=unit: sched.data[key] * _unit(unit), t_pres)
            ns.update({**ctx.namespace, **spec.namespace})
            rest = {v: spec.initial.get(v, 0.0) for v in pop.model.state} if reset else {}
            g = b2.NeuronGroup(pop.size, "\n".join(lines[pop.name] + [f"{v}_rest : 1 (constant)" for v in rest]),
                               method="euler", threshold=spec.threshold, reset=spec.reset, namespace=ns,
                               name=pop.name, order=base + UPDATE)
            if not g.equations.diff_eq_names:  # nothing to integrate, but its empty loop would run every step
                g.state_updater.active = False
            for var, values in {**ctx.values, **spec.initial, **{f"{v}_rest": x for v, x in rest.items()}}.items():
                setattr(g, var, values)
            if spec.update:
                g.run_regularly(spec.update, when="groups", order=base + UPDATE, name=f"{pop.name}_update")
            if spec.threshold:
                _place(g.thresholder["spike"], base + THRESHOLD)
            if spec.reset:
                _place(g.resetter["spike"], base + RESET)
            if spec.after:
                g.run_regularly(spec.after, when="groups", order=base + AFTER, name=f"{pop.name}_after")
            if rest:
                g.run_regularly("\n".join(f"{v} = {v}_rest" for v in rest), dt=t_pres, when="start", order=-1,
                                name=f"{pop.name}_reset")
            groups[pop.name] = g
        for (group, variable), (pop, source) in links.items():
            setattr(groups[group], variable, b2.linked_var(groups[pop], source))
        synapses, stores = {}, {p.name: [] for p in net.populations}
        for o in owners:
            code, on_pre, rule = synapse_code[o.name]
            syn = b2.Synapses(groups[o.source], groups[o.target], "\n".join(code), on_pre=on_pre or None,
                              method="euler", namespace=ns, name=o.name)
            _connect(syn, o, keep_zeros=o.rule is not None or len(net.users(o.name)) > 1)
            turn = SLOTS * order.index(o.target)
            for q in net.users(o.name) or [o]:
                if not self.events(q):
                    updater = syn.summed_updaters[f"I_{q.name}_{'pre' if q.tied else 'post'}"]
                    updater.when, updater.order = ("before_groups", 0) if self.early[q.name] else \
                        ("groups", SLOTS * order.index(q.target) + INPUTS)
            if on_pre:
                _place(syn.pre, turn + INPUTS)
                if o.delay == 1 and order.index(o.source) < order.index(o.target):
                    syn.delay = net.dt * b2.ms  # this step's spikes of an earlier population arrive in the next
            if rule is not None and syn.state_updater is not None:
                syn.state_updater.when, syn.state_updater.order = ("before_groups", 1) if o.rule.reads == "start" \
                    else ("after_groups", 0)
            if rule is not None and rule.pre_store:
                stores[o.source].append(rule.pre_store)
            synapses[o.name] = syn
        for pop in net.populations:  # what a rule filters from a signal first, then the signal itself
            code = "\n".join(stores[pop.name] + [self.specs[pop.name].store] * bool(self.specs[pop.name].store))
            if code:
                groups[pop.name].run_regularly(code, when="after_groups", order=1, name=f"{pop.name}_store")
        monitors = self._monitors(groups, synapses, recording)
        return groups, synapses, monitors, timed, [*groups.values(), *synapses.values(), *monitors.values()]

    def _monitors(self, groups, synapses, recording: Recording) -> dict:
        """The recording's monitors, on clocks named after them (a checkpoint restores a
        clock by its name, which Brian2 would otherwise number per process)."""
        b2, net = _b2(), self.network
        monitors = {}
        for name, variables in recording.variables.items():
            if variables:
                monitors[name] = b2.StateMonitor(groups[name], list(variables), record=True, when="start",
                                                 clock=b2.Clock(recording.interval(name) * b2.ms,
                                                                name=f"clock_rec_{name}"), name=f"rec_{name}")
        if recording.weights_dt is not None:
            for owner in sorted({net.projection(n).owner for n in recording.weights}):
                monitors[f"w:{owner}"] = b2.StateMonitor(synapses[owner], "w", record=True, when="start",
                                                         clock=b2.Clock(recording.weights_dt * b2.ms,
                                                                        name=f"clock_recw_{owner}"),
                                                         name=f"recw_{owner}")
        for name in recording.spikes:
            monitors[f"spikes:{name}"] = mon = b2.SpikeMonitor(groups[name], name=f"spikes_{name}")
            _place(mon, SLOTS * net.order.index(name) + SPIKES)
        return monitors

    def _run_runtime(self, bnet, n_steps: int, report, checkpoint: Checkpoint | None, divergence: list,
                     steps: list) -> int:
        """Run bnet (runtime) to step n_steps: at once, or with a checkpoint in stretches
        of checkpoint.every, storing Network.store's snapshot (every group, synapse,
        monitor, clock and the random generator with its buffers: what restore needs to
        go on bit for bit) and the divergences after each stretch and when a signal
        stopped the run; or continuing from the checkpoint's file. `steps` is the
        divergence watch's step counter, `divergence` what it found. Returns the step
        reached."""
        b2, dt = _b2(), self.network.dt
        k, fingerprint = 0, structure(self.network)
        if checkpoint is not None and checkpoint.resume:
            k, kept = checkpoint.load(fingerprint, n_steps)
            # Brian2 sets a new defaultclock.dt at the next run and refuses it when the clock's time
            # is no multiple of the old dt (a restored time need not be): a run of 0 ms sets it first
            bnet.run(0 * b2.ms, namespace={})
            bnet._stored_state["checkpoint"] = kept["network"]  # restore() reads snapshots from here
            bnet.restore("checkpoint")
            del bnet._stored_state["checkpoint"]
            _set_random_state(kept["random"])
            divergence[:], steps[0] = kept["diverged"], k
        every = checkpoint.every_steps(dt) if checkpoint is not None else None
        while k < n_steps:
            stretch = n_steps - k if every is None else min(every - k % every, n_steps - k)
            bnet.run(stretch * dt * b2.ms, report=report, report_period=1 * b2.second, namespace={})
            k = int(round(float(bnet.t / b2.ms) / dt))
            if divergence:
                break
            if checkpoint is not None and k < n_steps and (interrupt.requested() or k % every == 0):
                bnet.store("checkpoint")
                snapshot = bnet._stored_state.pop("checkpoint")
                del snapshot["_random_generator_state"]  # holds the addresses of the Cython buffers
                snapshot["0_t"] = np.asarray(snapshot["0_t"]).item()  # after Network.stop() a view of the clock's time
                checkpoint.save(k, fingerprint, {"network": snapshot, "random": _random_state(),
                                                 "diverged": list(divergence)})
            if interrupt.requested():
                break
        return k

    def _divergence_watch(self, groups, synapses, found: list, holder: list, steps: list):
        """Every check_every_ms, stop the run at the first state variable or plastic
        weight that is NaN, inf or past BOUND. It runs on the default clock, counts steps
        (in `steps`, which a resumed run sets) and takes no argument: an operation on a
        clock of its own slows Brian2's loop by a third, and one that takes the time
        builds a Quantity every step (both measured on CUBA)."""
        b2, net = _b2(), self.network
        watched = [(f"{p.name}.{v}", lambda p=p, v=v: getattr(groups[p.name], v)[:])
                   for p in net.populations for v in p.model.state]
        plastic = sorted({p.owner for p in net.projections if p.rule is not None and p.owner is not None})
        watched += [(f"w:{owner}", lambda owner=owner: synapses[owner].w[:]) for owner in plastic]
        every = max(1, round(self.check_every_ms / net.dt))

        @b2.network_operation(when="end")
        def watch():
            steps[0] += 1
            if interrupt.requested():
                holder[0].stop()
                return
            if steps[0] % every:
                return
            for key, read in watched:
                values = np.asarray(read())
                if not np.all(within_bound(values)):
                    found.append(Divergence.of(key, values[~within_bound(values)], steps[0] * net.dt))
                    holder[0].stop()
                    return

        return watch

    def _collect(self, groups, synapses, recorded: dict, recording, t_end, wall, run_time) -> RunResult:
        """The RunResult from the groups' and synapses' state and what the monitors
        recorded (_read_monitors)."""
        net = self.network
        weights = {}
        for proj in net.projections:
            if proj.owner is not None:
                w = _matrix(synapses[proj.owner], synapses[proj.owner].w[:])
                weights[proj.name] = w.T if proj.tied else w
        def value(pop: str, var: str) -> np.ndarray:  # a constant subexpression ("v = 0") reads as one number
            return np.array(np.broadcast_to(getattr(groups[pop], var)[:], (groups[pop].N,)))

        final = {f"{p.name}.{v}": value(p.name, v) for p in net.populations
                 for v in p.model.recordable(net.fed(p.name), p.noise)}
        traces = {}
        for name, variables in recording.variables.items():
            rec = recorded[name]
            for var in variables:
                traces[f"{name}.{var}"] = append_final(rec["t"], rec[var], value(name, var), recording.interval(name),
                                                       t_end)
        for proj_name in recording.weights:
            proj = net.projection(proj_name)
            rec, syn = recorded[f"w:{proj.owner}"], synapses[proj.owner]
            values = np.stack([_matrix(syn, row) for row in rec["w"]]) if len(rec["t"]) else \
                np.zeros((0, syn.target.N, syn.source.N))
            trace = append_final(rec["t"], values, _matrix(syn, syn.w[:]), recording.weights_dt, t_end)
            traces[f"w:{proj_name}"] = Trace(trace.times, np.swapaxes(trace.values, 1, 2) if proj.tied
                                             else trace.values)
        spikes = {}
        for name in recording.spikes:
            rec = recorded[f"spikes:{name}"]
            steps = np.round(rec["t"] / net.dt).astype(np.int64)
            spikes[name] = SpikeTrain(steps * net.dt, rec["i"].astype(np.int64),
                                      np.zeros(len(steps), dtype=np.int64))
        return RunResult(traces, weights, final, t_end, int(round(t_end / net.dt)), wall, run_time, spikes=spikes)


def _read_monitors(monitors: dict) -> dict:
    """What each monitor recorded: {key: {"t": times (ms), variable: (n_t, ...) values}}
    (SpikeMonitors: "t" and the neuron indices "i")."""
    ms = _b2().ms
    out = {}
    for key, mon in monitors.items():
        names = ["i"] if key.startswith("spikes:") else list(mon.record_variables)
        out[key] = {"t": np.asarray(mon.t / ms),
                    **{name: np.asarray(getattr(mon, name)[:]) if name == "i" else np.asarray(getattr(mon, name)).T
                       for name in names}}
    return out


def check_one_sample(schedule: Schedule, network) -> None:
    """The schedule fits the network and has one sample per presentation (Brian2 runs no minibatches)."""
    schedule.check_against(network)
    if schedule.samples != 1:
        raise ValueError(f"the brian2 backend presents one sample at a time; the schedule has {schedule.samples} "
                         "per presentation (use the torch backend for minibatches)")


def _connect(syn, proj, keep_zeros: bool) -> None:
    """Synapses from the weight matrix: every pair where the weight learns or is used
    by other projections, else its non-zeros; one_to_one: i -> i with w = 1.

    Synapses are numbered source-major (all of source 0's, then source 1's ...), as
    Brian2's own `connect` numbers them: a summed variable then adds into different
    targets in turn, and a spike's synapses lie side by side (numbered target-major,
    the standalone microcircuit step was 28 % slower)."""
    if proj.kind == "one_to_one":
        syn.connect(j="i")
        syn.w = 1.0
        return
    pre, post = np.nonzero((np.ones_like(proj.weight) if keep_zeros else proj.weight).T)
    if len(pre):  # an all-zero fixed weight makes no synapse at all
        syn.connect(i=pre, j=post)
        syn.w = proj.weight[post, pre]


def _synapse_values(syn, proj) -> np.ndarray:
    """proj's weight in the order of syn's synapses (built by _connect from a replica
    with the same non-zeros)."""
    return proj.weight[np.asarray(syn.j[:]), np.asarray(syn.i[:])]


def _check_replica(first: Network, other: Network, i: int) -> None:
    """Brian2 replicas share one program: the same description but for the weights,
    which may differ where they are not zero."""
    if structure(first, values=True) != structure(other, values=True):
        raise ValueError(f"replica {i} differs from replica 0 in more than its weights; Brian2 replicas share one "
                         "program (give each setting a simulator of its own)")
    for p, q in zip(first.projections, other.projections):
        if p.weight is not None and not np.array_equal(p.weight != 0, q.weight != 0):
            raise ValueError(f"replica {i}: weight {q.name} has zeros where replica 0's has none or the other way "
                             "round; Brian2 replicas share one program, whose synapses are replica 0's non-zeros")


def _schedule_shape(schedule: Schedule):
    return (schedule.t_pres, schedule.n_presentations, sorted((k, np.shape(v)) for k, v in schedule.data.items()),
            sorted(schedule.gates))


def _standalone(run) -> None:
    """Run a standalone program (`run()`); a program killed by the signal that also
    reached us (Ctrl-C goes to the whole process group) is an Interrupted run."""
    try:
        run()
    except RuntimeError:
        if interrupt.requested():
            raise interrupt.Interrupted(interrupt.requested(), "the cpp_standalone program was stopped by "
                                        f"{interrupt.describe(interrupt.requested())} before it wrote its "
                                        "results; nothing of this run is kept") from None
        raise


def _run_program(directory: str, seed: int, args: dict | None = None, env: dict | None = None) -> None:
    """Run the program built in `directory` with `seed` (in $NEUROSIM_SEED, which it
    reads when it starts: _seed), the run-time values `args` ({VariableView or
    TimedArray: values}; Brian2 writes those into the project's static_arrays, removed
    again afterwards) and the environment variables `env` (a stretch of the run:
    standalone_stretches.py)."""
    device = _b2().get_device()
    env = {"NEUROSIM_SEED": str(seed), **(env or {})}
    os.environ.update(env)
    try:
        device.run(directory, with_output=True, run_args=args)
    finally:
        for name in env:
            del os.environ[name]
        for name in device.run_args_arrays:
            for path in (os.path.join(directory, "static_arrays", name + suffix) for suffix in ("", ".lock")):
                if os.path.exists(path):
                    os.remove(path)


_RANDOM_BUFFERS = ("rand_buffer", "randn_buffer")  # Brian2 device attributes: the address of a C array


def _random_state() -> dict:
    """Brian2's random state (numpy's generator, and the buffers of numbers drawn ahead
    for Cython's rand() and randn() with their positions) as values that mean the same
    in another process: the buffers' contents instead of their addresses."""
    from brian2.codegen.generators.cython_generator import _BUFFER_SIZE

    state = _b2().get_device().get_random_state()
    for name in _RANDOM_BUFFERS:
        address = int(state[name][0])
        state[name] = np.ctypeslib.as_array((ctypes.c_double * _BUFFER_SIZE).from_address(address)).copy() \
            if address else None
    return state


def _set_random_state(state: dict) -> None:
    """Set Brian2's random state from _random_state(): each buffer copied into memory
    from malloc, which Brian2's Cython code frees when it draws the next buffer."""
    device, libc = _b2().get_device(), ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    state = dict(state)
    for name in _RANDOM_BUFFERS:
        old, contents, address = int(getattr(device, name)[0]), state[name], 0
        if old:
            libc.free(old)
        if contents is not None:
            address = libc.malloc(contents.nbytes)
            ctypes.memmove(address, contents.ctypes.data, contents.nbytes)
        state[name] = np.array([address], dtype=np.intp)
    device.set_random_state(state)


def _matrix(syn, flat) -> np.ndarray:
    """Synapse values in Brian2's order -> (post, pre) matrix."""
    w = np.zeros((syn.target.N, syn.source.N))
    w[np.asarray(syn.j[:]), np.asarray(syn.i[:])] = np.asarray(flat)
    return w


def _place(obj, order: int) -> None:
    """Schedule a Brian2 object in the groups slot at `order`."""
    obj.when, obj.order = "groups", order


@contextmanager
def _device(target: str, build_dir: str | None, cache_key: str | None):
    """(standalone project folder or None, whether it is a cache folder): build_dir when
    given, else the cache folder `cache_key` of this structure (standalone_cache.py)."""
    b2 = _b2()
    if target == "cpp_standalone":
        # Brian2 names an object after the live ones ("P1_stateupdater_codeobject_1" while an
        # earlier run's P1 awaits the cycle collector): collect them first, or the code of an
        # unchanged structure differs and recompiles (every run in a Ray worker did)
        gc.collect()
        folder = nullcontext((build_dir, False)) if build_dir else standalone_cache.project(cache_key)
        with folder as (directory, cached):
            b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
            make_args = b2.prefs.devices.cpp_standalone.extra_make_args_unix
            b2.prefs.devices.cpp_standalone.extra_make_args_unix = standalone_make.make_args()
            try:
                yield directory, cached
            finally:
                b2.prefs.devices.cpp_standalone.extra_make_args_unix = make_args
                b2.device.reinit()
                b2.device.activate()
                b2.set_device("runtime")
    else:
        b2.set_device("runtime")
        b2.prefs.codegen.target = "numpy" if target == "cython" and not _cython_available() else target
        yield None, False


def _seed(seed: int, standalone: bool) -> None:
    """Seed Brian2's random numbers. A standalone program reads its seed when it starts
    (from $NEUROSIM_SEED, set by _run_program), so that another seed is not another
    program; the generators get seed + i as with Brian2's own `seed`. A stretch of a
    checkpointed run then takes the random state the last one left
    (standalone_stretches.py)."""
    b2 = _b2()
    if not standalone:
        b2.seed(seed)
        return
    threads = max(1, b2.prefs.devices.cpp_standalone.openmp_threads)
    b2.device.insert_code("main", f"""{{
        const char* _seed = std::getenv("NEUROSIM_SEED");
        for (int _i = 0; _i < {threads}; _i++)
            brian::_random_generators[_i].seed((_seed ? std::strtoul(_seed, nullptr, 10) : 0UL) + _i);
        {standalone_stretches.STRETCH_START.format(threads=threads)}
    }}""")
    b2.device.insert_code("before_end", f"{{{standalone_stretches.STRETCH_END.format(threads=threads)}\n}}")


def _compile(directory: str, cached: bool) -> None:
    """Generate (network.cpp and objects.h edited) and compile (only what changed since
    the folder's last build, with our additions to the makefile; both
    standalone_make.py). In a cache folder a failed compile is retried once from clean
    (a damaged object file), and a good build records its program's checksum."""
    from brian2.codegen.cpp_prefs import get_compiler_and_args

    device = _b2().get_device()  # the device itself: brian2.device is a proxy that only reads
    _stable_clock_starts(device.main_queue)
    network_source, objects_source = device.generate_network_source, device.generate_objects_source
    device.generate_network_source = lambda writer, *args: network_source(standalone_make.SourceWriter(writer), *args)
    device.generate_objects_source = lambda writer, *args: objects_source(standalone_make.SourceWriter(writer), *args)
    try:
        device.build(directory=directory, compile=False, run=False, clean=False)
    finally:
        del device.generate_network_source, device.generate_objects_source  # the class's methods again
    standalone_make.prepare(directory)
    compiler = get_compiler_and_args()[0]
    try:
        device.compile_source(directory, compiler, debug=False, clean=False)
    except RuntimeError as error:
        if not cached or "compilation failed" not in str(error):
            raise
        warnings.warn(f"the cached standalone project in {directory} did not compile; building it again from clean")
        standalone_make.clean(directory)
        device.compile_source(directory, compiler, debug=False, clean=True)
    if cached:
        standalone_cache.mark_built(directory)


CLOCK_ARRAY = re.compile(r"_array_(defaultclock|clock\w*)_(timestep|t)$")


def _stable_clock_starts(queue: list) -> None:
    """Brian2 queues each clock's start (its timestep, then t) in the order of a set of
    clocks, which changes from run to run; sorted by clock, main.cpp is the same text in
    every run of a structure and a cached project does not recompile it (4 s)."""
    def clock_start(entry) -> bool:  # defaultclock's and the monitors' clocks (clock_rec_*)
        return entry[0] == "set_by_single_value" and CLOCK_ARRAY.match(entry[1][0]) is not None

    def by_clock(entry):  # ("_array_<clock>", timestep before t)
        return entry[1][0].rsplit("_", 1)[0], entry[1][0].endswith("_t")

    queue[:] = [entry for starts, run in itertools.groupby(queue, clock_start)
                for entry in (sorted(run, key=by_clock) if starts else run)]


def _cython_available() -> bool:
    from brian2.codegen.runtime.cython_rt import CythonCodeObject

    if CythonCodeObject.is_available():
        return True
    warnings.warn("Cython cannot compile here; Brian2 falls back to the numpy target")
    return False


def _reporter(progress: bool, total_ms: float):
    """Brian2 `report` in runtime mode: a tqdm bar over the simulated time of the whole
    run (total_ms), whichever stretch of it a `run` call simulates."""
    if not progress:
        return None, lambda: None
    from tqdm import tqdm

    b2 = _b2()
    bar = tqdm(total=100, unit="%", desc="simulated", bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def report(elapsed, completed, start, duration):
        bar.n = round(100 * (float(start / b2.ms) + float(completed) * float(duration / b2.ms)) / total_ms, 1)
        bar.refresh()

    return report, bar.close


PROGRESS_CPP = r"""
double neurosim_progress(double t, double duration)
{
    static const auto start = std::chrono::steady_clock::now();
    static int k = 1;  // prints at 5 %, 10 % ... 95 %
    if (k > 19 || t < 0.05 * k * duration)
        return 0.0;
    k++;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%5.1f %% of %g s simulated in %.1f s\n", 100.0 * t / duration, duration, wall);
    std::fflush(stdout);
    return 0.0;
}
"""


def _standalone_progress(duration_ms: float):
    """Progress of a cpp_standalone run: a one-neuron group whose C++ function, called
    at the end of every step, prints the simulated fraction every 5 % of the run (the
    run's end is printed by run()). Brian2's own `report` reads the clock before every
    code object of every step: the 45-object microcircuit ran 5x slower with it. On a
    clock of its own, printing cost 12 % of that step (Brian2 then sorts out the clocks
    due in every step)."""
    b2 = _b2()

    @b2.implementation("cpp", PROGRESS_CPP, headers=["<chrono>", "<cstdio>"])
    @b2.check_units(t=b2.second, duration=b2.second, result=1)
    def neurosim_progress(t, duration):
        raise NotImplementedError("cpp_standalone only")

    group = b2.NeuronGroup(1, "progress_done : 1", name="neurosim_progress_group",
                           namespace={"neurosim_progress": neurosim_progress, "run_duration": duration_ms * b2.ms})
    group.state_updater.active = False
    group.run_regularly("progress_done = neurosim_progress(t + dt, run_duration)", when="end",
                        name="neurosim_progress_print")
    return group
