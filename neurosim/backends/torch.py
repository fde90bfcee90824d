"""PyTorch backend, built on Norse: the same `Network` description as the Brian2
backend, the step of docs/equations.md as one tensor program. Each model gives its
torch step (model.torch, Norse's step functions where Norse has them), each rule its
update (rule.torch); this module wires them:

    for each population in Network.order:
        its ports' inputs  scale g(start) W s, s from this step (delay 0) or the start (delay 1)
        its step           state(n) from state(n-1), the inputs, the schedule, the draws
    then every rule        W(n) from W(n-1), the delivered pre signal and the post factor
                           at the start or the end of the step

Two batch axes: replicas R (independent networks with their own weights, parameters,
schedule and seed) and samples S (a minibatch through each replica's weights; rules
apply the mean of the per-sample changes). State tensors are (R, S, n), weights
(R, post, pre), parameters (R, 1, 1) or (R, 1, n). Norse's conventions: NamedTuple
states, `NetworkStep.forward(inputs, state) -> state`.

Random draws are counter-based (counter_rng.py): the draw for (replica seed, population,
step, sample, neuron) is a hash of those numbers, so a replica's noise does not depend on
the replicas beside it, on chunking, or on the device.
"""
from __future__ import annotations

import functools
import math
import time
from typing import NamedTuple

import numpy as np
import torch

from .. import interrupt
from ..checkpoint import Checkpoint
from ..network import Network, implemented, structure
from ..noise import check_replayed, replay_key
from ..recording import BOUND, Divergence, DivergenceError, Recording, RunResult, SpikeTrain, Trace, check_recording
from ..schedule import Schedule
from .counter_rng import counter_normals, counter_uniforms, stream_key

DTYPES = {"float32": torch.float32, "float64": torch.float64}
SPARSE = 0.1  # a fixed weight with fewer non-zeros than this fraction runs sparse (one replica, eager)
MAX_BLOCK = 10  # steps per call: longer blocks compile for longer (about 5 s per step on 2 cores)
NOISE_CHUNK = 2 ** 21  # numbers per chunk of draws


def resolve_device(device) -> torch.device:
    """torch.device(device), refused clearly when it names a GPU that is not here."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU here")
    return device


class NetworkState(NamedTuple):
    """Everything that changes: per population {variable: (R, S, n)}, the weights that
    projections own (R, post, pre), each rule's own state, and the inputs of the
    projections whose I_<proj> is recorded."""

    pops: dict
    w: dict
    rules: dict
    inputs: dict


class StepInput(NamedTuple):
    """What the schedule gives a step: data (R, S, n), gates and the learn signal
    (R, 1, 1), and this step's draws per population (R, S, n)."""

    data: dict
    gates: dict
    learn: torch.Tensor
    draws: dict


class _Context:
    """What the compiler tells a model (one population) or a rule (one projection): its
    numbers per replica, shapes, dt, and the schedule's first values."""

    def __init__(self, items: list, size: int, sim: "TorchSimulator", first=None, pre_size: int = 0):
        self.items, self.pop, self.size, self.dt = items, items[0], size, sim.network.dt
        self.name = getattr(items[0], "name", None)
        self.samples, self._sim, self._first, self._pre = sim.samples, sim, first, pre_size
        self.fed = sim.network.fed(self.name) if hasattr(items[0], "model") else set()

    def param(self, value) -> torch.Tensor:
        """value(item) for every replica: (R, 1, 1), or (R, 1, n) for one value per neuron."""
        values = [np.asarray(value(item), dtype=float) for item in self.items]
        shape = (1, self.size) if any(v.ndim for v in values) else (1, 1)
        return self.tensor(np.stack([np.broadcast_to(v, shape) for v in values]))

    def tensor(self, values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=float), dtype=self._sim.dtype, device=self._sim.device)

    def zeros(self, n: int | None = None) -> torch.Tensor:
        return torch.zeros((self._sim.replicas, self.samples, n or self.size), dtype=self._sim.dtype,
                           device=self._sim.device)

    def zeros_pre(self) -> torch.Tensor:
        return self.zeros(self._pre)

    def zeros_weight(self) -> torch.Tensor:
        return torch.zeros((self._sim.replicas, self.size, self._pre), dtype=self._sim.dtype, device=self._sim.device)

    def first(self, key: str) -> torch.Tensor:
        """The schedule's values of `key` at the first presentation (R, S, n); zeros
        while no schedule is given."""
        return self.zeros() if self._first is None else self._first[key][0].clone()


class _Projection(NamedTuple):
    name: str
    source: str
    port: str
    signal: str
    owner: str | None
    tied: bool
    delay: int
    scale: torch.Tensor | None
    gain: str | None


class NetworkStep(torch.nn.Module):
    """One step n-1 -> n of docs/equations.md for R replicas x S samples."""

    def __init__(self, sim: "TorchSimulator", first: dict, record_inputs: set):
        super().__init__()
        nets, net = sim.networks, sim.network
        self.order, self.record_inputs, self.sparse = net.order, record_inputs, sim.sparse
        self.groups = {}
        for i, pop in enumerate(net.populations):
            ctx = _Context([n.populations[i] for n in nets], pop.size, sim, first)
            self.groups[pop.name] = pop.model.torch(ctx)
        self.streams = {name: draw_streams(name, group) for name, group in self.groups.items()}
        self.drawn = {name: _drawn(streams) for name, streams in self.streams.items()}
        self.onto = {name: [] for name in self.order}
        self.rules = {}
        for i, proj in enumerate(net.projections):
            per = [n.projections[i] for n in nets]
            scales = [p.scale for p in per]
            scale = None if all(s == 1 for s in scales) else \
                torch.tensor(scales, dtype=sim.dtype, device=sim.device).view(-1, 1, 1)
            self.onto[proj.target].append(_Projection(proj.name, proj.source, proj.port, proj.signal, proj.owner,
                                                      bool(proj.tied), proj.delay, scale, proj.gain))
            if proj.rule is not None:
                ctx = _Context(per, proj_size(net, proj.target), sim, pre_size=proj_size(net, proj.source))
                self.rules[proj.name] = (proj, proj.rule.factors(proj), proj.rule.torch(ctx))
        for name, (proj, factors, _) in self.rules.items():
            for pop, quantity in factors.values():
                if quantity not in self.groups[pop].quantities:
                    raise ValueError(f"projection {name} ({type(proj.rule).__name__}): the rule reads {quantity!r} "
                                     f"of {pop}, which its model {type(net.population(pop).model).__name__} "
                                     "does not provide")

    def initial(self) -> dict:
        return {name: _unaliased(group.initial) for name, group in self.groups.items()}

    def _project(self, q: _Projection, s: torch.Tensor, w: dict) -> torch.Tensor:
        """W s per replica and sample: (R, S, pre) -> (R, S, post)."""
        if q.owner is None:
            return s
        if q.tied:
            return torch.bmm(s, w[q.owner])
        if q.owner in self.sparse:  # one replica: CSR (post, pre)
            return torch.mv(w[q.owner], s[0, 0])[None, None] if s.shape[1] == 1 else (w[q.owner] @ s[0].T).T[None]
        return torch.bmm(s, w[q.owner].mT)

    def prepare(self, inputs: StepInput) -> tuple[dict, dict]:
        """What every population and rule computes from the presentation's values, gates
        and learn signal: once per block of steps, not once per step."""
        return ({name: group.prepare(inputs.data, inputs.gates) for name, group in self.groups.items()},
                {name: rule.prepare(inputs.learn) for name, (_, _, rule) in self.rules.items()})

    def forward(self, inputs: StepInput, state: NetworkState) -> NetworkState:
        return self.advance(self.prepare(inputs), inputs.draws, state)

    def advance(self, given: tuple[dict, dict], draws: dict, state: NetworkState) -> NetworkState:
        """The step with the presentation's prepared values `given` (NetworkStep.prepare)."""
        start, now, delivered, recorded = state.pops, dict(state.pops), {}, {}
        for name in self.order:
            ports = {}
            for q in self.onto[name]:
                s = self.groups[q.source].signals[q.signal](now[q.source] if q.delay == 0 else start[q.source])
                delivered[q.name] = s
                x = self._project(q, s, state.w)
                if q.name in self.record_inputs:
                    recorded[q.name] = x
                if q.gain is not None:
                    x = self.groups[name].quantities[q.gain](start[name]) * x
                if q.scale is not None:
                    x = q.scale * x
                ports[q.port] = ports[q.port] + x if q.port in ports else x
            now[name] = self.groups[name].step(start[name], ports, given[0][name], self.drawn[name](draws))
        w, rules = dict(state.w), dict(state.rules)
        for name, (proj, factors, rule) in self.rules.items():
            when = start if proj.rule.reads == "start" else now
            post = self.groups[factors["post"][0]].quantities[factors["post"][1]](when[factors["post"][0]])
            pre = self.groups[factors["pre"][0]].quantities[factors["pre"][1]](start[factors["pre"][0]]) \
                if "pre" in factors else delivered[name]
            w[name], rules[name] = rule.update(state.w[name], pre, post, given[1][name], state.rules[name])
            if rule.end is not None:
                signal = self.groups[proj.source].signals[proj.signal]
                rules[name] = rule.end(rules[name], signal(start[proj.source]), signal(now[proj.source]))
        return NetworkState(now, w, rules, recorded)


def draw_streams(name: str, group) -> list[tuple[str, str | None, str]]:
    """(key, stream, kind) of each random stream of a population: a group that draws one
    kind (TorchGroup.draws a string) gets its tensor, stream None, under the key of its
    noise source; one that names its streams ({stream: kind}) gets {stream: tensor}."""
    if group.draws is None:
        return []
    if isinstance(group.draws, str):
        return [(name, None, group.draws)]
    return [(replay_key(name, stream), stream, kind) for stream, kind in group.draws.items()]


def _drawn(streams: list):
    """draws -> what a population's step reads of them: None, a tensor, or {stream: tensor}."""
    if not streams:
        return lambda draws: None
    if streams[0][1] is None:
        return lambda draws, key=streams[0][0]: draws[key]
    return lambda draws: {stream: draws[key] for key, stream, _ in streams}


def _unaliased(values: dict) -> dict:
    """A copy with every tensor in storage of its own. Models start several variables
    from one zeros tensor; torch.compile specialises the step on which of its inputs
    alias each other, and after the first step none do: the compiled step was compiled
    a second time inside the loop (40 s on the CPU for the PAL microcircuit)."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in values.items()}


def proj_size(net: Network, name: str) -> int:
    return net.population(name).size


class NetworkBlock(torch.nn.Module):
    """K steps in one call (what torch.compile fuses and a CUDA graph replays): the
    presentation's inputs for every step, draws as (K, R, S, n); returns the state and
    the spikes of each step of the populations in `spikes` (K, R, S, n)."""

    def __init__(self, step: NetworkStep, length: int, spikes: list[str]):
        super().__init__()
        self.step, self.length, self.spikes = step, length, spikes

    def forward(self, inputs: StepInput, state: NetworkState):
        fired, given = {name: [] for name in self.spikes}, self.step.prepare(inputs)
        for j in range(self.length):
            state = self.step.advance(given, {k: d[j] for k, d in inputs.draws.items()}, state)
            for name in self.spikes:
                fired[name].append(state.pops[name]["spikes"] > 0)
        return state, {name: torch.stack(f) for name, f in fired.items()}


def block_length(steps_per_presentation: int, intervals: list[int], longest: int) -> int:
    """The longest block <= longest that divides a presentation and every recording interval."""
    g = math.gcd(steps_per_presentation, *intervals)
    return max(d for d in range(1, min(g, longest) + 1) if g % d == 0)


class TorchSimulator:
    """Runs a network description on PyTorch (CPU or CUDA).

    network: one `Network`, or a list of them with the same structure (one per replica;
        weights and numbers may differ).
    seed: one per replica (an int for one replica); it fixes the replica's draws.
    samples: the minibatch size S (schedules then give (presentations, S, n) data).
    dtype: "float32" or "float64"; device: "cpu", "cuda" or a torch.device.
    compile: torch.compile the step (on CUDA with CUDA graphs); default: on CUDA only.
    noise: optional {population: (R, n_steps, S, size) or, for R = S = 1, (n_steps, size)
        N(0, 1) draws} replacing the counter-based draws of its noise source, and
        {"<population>.spikes": U[0, 1) draws} of a spiking dendritic population's escape
        noise (to replay a realisation; neurosim.noise.replay_key).
    check_every_ms: how often the run looks for NaN or inf.
    """

    def __init__(self, network: Network | list[Network], *, device="cpu", dtype: str = "float64",
                 seed: int | list[int] = 0, samples: int = 1, compile: bool | None = None,
                 noise: dict | None = None, check_every_ms: float = 10.0):
        self.networks = list(network) if isinstance(network, (list, tuple)) else [network]
        if not self.networks:
            raise ValueError("give at least one network")
        first = structure(self.networks[0])
        for i, net in enumerate(self.networks[1:], start=1):
            if structure(net) != first:
                raise ValueError(f"replica {i} differs in structure from replica 0 (populations, models, ports, "
                                 "rules or dt); replicas may differ only in weights and numbers")
        implemented(self.network, "torch")
        self.seeds = [int(s) for s in (seed if isinstance(seed, (list, tuple, np.ndarray)) else [seed])]
        if len(self.seeds) != self.replicas:
            raise ValueError(f"give one seed per replica: {self.replicas} replicas, {len(self.seeds)} seeds")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if isinstance(samples, bool) or not (isinstance(samples, (int, np.integer)) and samples >= 1):
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        self.device = resolve_device(device)
        self.dtype, self.samples = DTYPES[dtype], int(samples)
        self.compile = self.device.type == "cuda" if compile is None else bool(compile)
        self.check_every_ms = check_every_ms
        net = self.network
        self.sparse = set() if self.replicas > 1 or self.compile else {
            p.name for p in net.projections if p.kind == "all_to_all" and not p.uses and p.rule is None
            and not net.users(p.name)[1:] and np.count_nonzero(p.weight) < SPARSE * p.weight.size}
        self.noise = {name: self._fed_noise(name, w) for name, w in (noise or {}).items()}
        NetworkStep(self, None, set())  # refuses a rule whose factors a model does not provide

    @property
    def replicas(self) -> int:
        return len(self.networks)

    @property
    def network(self) -> Network:
        return self.networks[0]

    def _fed_noise(self, name: str, w) -> torch.Tensor:
        check_replayed(self.network, [name])
        pop = self.network.population(name.partition(".")[0])
        w = torch.as_tensor(np.asarray(w, dtype=float), dtype=self.dtype)
        if w.ndim == 2 and self.replicas == self.samples == 1:
            w = w[None, :, None, :]
        if w.ndim != 4 or w.shape[0] != self.replicas or w.shape[2] != self.samples or w.shape[3] != pop.size:
            raise ValueError(f"noise for {name} must have shape (replicas {self.replicas}, steps, samples "
                             f"{self.samples}, {pop.size}), got {tuple(w.shape)}")
        return w

    # -- running -------------------------------------------------------------------
    def run(self, schedule: Schedule, recording: Recording | None = None, progress: bool = False,
            reset: bool = False) -> RunResult:
        """One replica, as Brian2Simulator.run: raises DivergenceError (with the partial
        result) when the state becomes NaN or inf."""
        if self.replicas != 1:
            raise ValueError(f"run() simulates one replica; this simulator has {self.replicas}: use run_replicas()")
        result = self.run_replicas(schedule, recording, progress, reset)[0]
        if result.divergence is not None:
            raise DivergenceError(result.divergence, result)
        return result

    def run_replicas(self, schedules: Schedule | list[Schedule], recording: Recording | None = None,
                     progress: bool = False, reset: bool = False,
                     checkpoint: Checkpoint | None = None) -> list[RunResult]:
        """All replicas at once, each with its own schedule (or one schedule for all);
        `reset` returns every population's state to its start at each presentation.
        Returns one RunResult per replica; a replica whose state became NaN or inf has
        `divergence` set (the others run on). `checkpoint`: write one every
        checkpoint.every and when a signal stops the run, or continue from its file."""
        t_start = time.perf_counter()
        net, recording = self.network, recording or Recording()
        schedules = self._check_schedules(schedules)
        self._check_recording(recording)
        spp = schedules[0].steps_per_presentation(net.dt)
        n_steps = schedules[0].n_presentations * spp
        for name, w in self.noise.items():
            if w.shape[1] < n_steps:
                raise ValueError(f"noise for {name} covers {w.shape[1]} steps; the schedule needs {n_steps}")
        with torch.inference_mode():  # no autograd bookkeeping at all: the eager PAL step 1.17x no_grad
            inputs, first = self._presentations(schedules)
            record_inputs = {v[2:] for vs in recording.variables.values() for v in vs if v.startswith("I_")}
            step = NetworkStep(self, first, record_inputs)
            state = self._initial_state(step, record_inputs)
            monitor = _Monitor(net, recording, self.replicas, self.samples)
            block = block_length(spp, monitor.intervals(), MAX_BLOCK)
            forward = NetworkBlock(step, block, list(recording.spikes))
            if self.compile:  # CUDA: CUDA graphs; CPU: a C++ wrapper around the kernels (1.5x the Python one)
                forward = torch.compile(forward, fullgraph=True, dynamic=False,
                                        **({"mode": "reduce-overhead"} if self.device.type == "cuda"
                                           else {"options": {"cpp_wrapper": True}}))
            drawing = [(key, p.name, kind) for p in net.populations for key, _, kind in step.streams[p.name]]
            keys = torch.tensor([[stream_key(s, q) for q in range(len(drawing))] for s in self.seeds],
                                dtype=torch.int64, device=self.device).view(self.replicas, len(drawing))
            width = self.replicas * self.samples * sum(net.population(p).size for _, p, _ in drawing)
            chunk = block * max(1, NOISE_CHUNK // max(1, block * width))
            check = max(1, round(self.check_every_ms / net.dt / block)) * block
            rest = {p.name: {v: state.pops[p.name][v] for v in p.model.state} for p in net.populations} if reset else {}
            diverged: list[Divergence | None] = [None] * self.replicas
            t_loop, k = None, 0
            fingerprint = structure(net) if checkpoint is not None else None
            if checkpoint is not None and checkpoint.resume:
                k, kept = checkpoint.load(fingerprint, n_steps)
                state, diverged = kept["state"], kept["diverged"]
                for name in _Monitor.KEPT:
                    setattr(monitor, name, kept["monitor"][name])
                first_chunk = k - k % chunk
                draws = self._draws(drawing, keys, first_chunk, min(chunk, n_steps - first_chunk))
            every = checkpoint.every_steps(net.dt, block) if checkpoint is not None else None
            bar = _progress(progress, n_steps)
            while k < n_steps:
                if k == block:  # the first block compiles; the loop's rate counts from the second
                    _sync(self.device)
                    t_loop = time.perf_counter()
                if reset and k % spp == 0:
                    state = state._replace(pops={n: {**s, **rest[n]} for n, s in state.pops.items()})
                monitor.take(k, state)
                if k % chunk == 0:
                    draws = self._draws(drawing, keys, k, min(chunk, n_steps - k))
                j = k % chunk
                block_in = inputs[k // spp]._replace(draws={name: d[j:j + block] for name, d in draws.items()})
                if self.compile and self.device.type == "cuda":
                    torch.compiler.cudagraph_mark_step_begin()
                state, fired = forward(block_in, state)
                monitor.spikes(k, fired)
                k += block
                if bar is not None:
                    bar.update(block)
                if (k % check == 0 or k == n_steps) and self._check_finite(state, diverged, k * net.dt):
                    break
                stop = interrupt.requested() and k < n_steps
                if checkpoint is not None and k < n_steps and (stop or (every is not None and k % every == 0)):
                    checkpoint.save(k, fingerprint, {"state": state, "diverged": diverged, "monitor": {
                        name: getattr(monitor, name) for name in _Monitor.KEPT}})
                if stop:
                    break
            _sync(self.device)
            run_time = time.perf_counter() - (t_loop or t_start)
            if bar is not None:
                bar.close()
            monitor.take(k, state)  # the end of the run, when it falls on the grid
            results = self._collect(state, monitor, k * net.dt, k, time.perf_counter() - t_start, run_time)
        for result, div in zip(results, diverged):
            result.divergence = div or result.first_divergence()
            if k < n_steps and interrupt.requested():
                result.interrupted = f"{interrupt.describe(interrupt.requested())} at t = {k * net.dt:g} ms"
        return results

    def _draws(self, drawing: list, keys: torch.Tensor, first: int, n: int) -> dict:
        """Draws (n, R, S, size) for steps first..first+n-1 of every stream (key, its
        population, kind)."""
        out = {}
        for q, (key, name, kind) in enumerate(drawing):
            if key in self.noise:
                out[key] = self.noise[key][:, first:first + n].transpose(0, 1).to(self.device).contiguous()
                continue
            size = self.network.population(name).size
            draw = counter_normals if kind == "normal" else counter_uniforms
            z = draw(keys[:, q], first, n, self.samples * size)
            out[key] = z.view(self.replicas, n, self.samples, size).transpose(0, 1).to(self.dtype).contiguous()
        return out

    @functools.cached_property
    def _plastic(self) -> list[str]:
        """The projections that own a plastic weight (frozen ones cannot diverge)."""
        return sorted({p.owner for p in self.network.projections if p.rule is not None and p.owner is not None})

    def _check_finite(self, state: NetworkState, diverged: list, t: float) -> bool:
        """Mark replicas where a state variable or plastic weight became NaN, inf or passed
        BOUND; True when all have."""
        watched = [(f"{p.name}.{v}", state.pops[p.name][v]) for p in self.network.populations for v in p.model.state]
        watched += [(f"w:{owner}", state.w[owner]) for owner in self._plastic]
        if not watched:
            return False
        keys, values = zip(*watched)
        ok = torch.stack([(v.abs() <= BOUND).flatten(1).all(1) for v in values]).cpu().numpy()  # (keys, R)
        for i in np.flatnonzero(~ok.all(0)):
            if diverged[i] is None:
                k = int(np.argmin(ok[:, i]))
                diverged[i] = Divergence.of(keys[k], values[k][i].detach().cpu().numpy(), t)
        return all(d is not None for d in diverged)

    def _check_schedules(self, schedules) -> list[Schedule]:
        schedules = list(schedules) if isinstance(schedules, (list, tuple)) else [schedules] * self.replicas
        if len(schedules) != self.replicas:
            raise ValueError(f"give one schedule, or one per replica ({self.replicas}); got {len(schedules)}")
        first = schedules[0]
        for i, (sched, net) in enumerate(zip(schedules, self.networks)):
            sched.check_against(net)
            if (sched.t_pres, sched.n_presentations) != (first.t_pres, first.n_presentations):
                raise ValueError(f"schedule {i} has {sched.n_presentations} presentations of {sched.t_pres} ms, "
                                 f"schedule 0 {first.n_presentations} of {first.t_pres} ms; replicas run in lockstep")
            if sched.samples != self.samples:
                raise ValueError(f"schedule {i} gives {sched.samples} samples per presentation; "
                                 f"the simulator runs {self.samples}")
            for pop in net.populations:
                for key in pop.model.data(pop.name, pop.size, net.fed(pop.name)):
                    pop.model.check_data(key, sched.batched(key), net.dt)
        return schedules

    def _check_recording(self, recording: Recording):
        """Known variables, intervals on the step grid."""
        net = self.network
        check_recording(net, recording, "torch")
        for name, interval in [(p, recording.interval(p)) for p in recording.variables] + \
                [("weights", recording.weights_dt)] * (recording.weights_dt is not None):
            if abs(interval / net.dt - round(interval / net.dt)) > 1e-9 * interval / net.dt:
                raise ValueError(f"recording interval of {name} ({interval} ms) is not a whole number of "
                                 f"steps of dt = {net.dt} ms")

    def _tensor(self, values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=float), dtype=self.dtype, device=self.device)

    def _presentations(self, schedules: list[Schedule]) -> tuple[list[StepInput], dict]:
        """One StepInput per presentation (contiguous (R, S, n) views into (P, R, S, n)
        tensors on the device), and those tensors."""
        def stack(f):
            return self._tensor(np.stack([f(s) for s in schedules], axis=1))

        data = {key: stack(lambda s, key=key: s.batched(key)) for key in self.network.data_keys}
        gates = {key: stack(lambda s, key=key: s.gates.get(key, np.ones(s.n_presentations)))[..., None, None]
                 for key in self.network.gated_keys}
        learn = stack(lambda s: s.learn)[..., None, None]
        return [StepInput({k: d[p] for k, d in data.items()}, {k: g[p] for k, g in gates.items()}, learn[p], {})
                for p in range(schedules[0].n_presentations)], data

    def _initial_state(self, step: NetworkStep, record_inputs: set) -> NetworkState:
        w = {}
        for proj in self.network.projections:
            if proj.owner == proj.name:
                if proj.name in self.sparse:
                    w[proj.name] = _sparse(self._tensor(proj.weight))
                else:
                    w[proj.name] = self._tensor(np.stack([n.projection(proj.name).weight for n in self.networks]))
        rules = {name: _unaliased(rule.initial) for name, (_, _, rule) in step.rules.items()}
        inputs = {q: torch.zeros((self.replicas, self.samples, self.network.population(self.network.projection(q).target).size),
                                 dtype=self.dtype, device=self.device) for q in record_inputs}
        return NetworkState(step.initial(), w, rules, inputs)

    def _collect(self, state: NetworkState, monitor: "_Monitor", t_end: float, steps: int, wall: float,
                 run_time: float) -> list[RunResult]:
        net, squeeze = self.network, self.samples == 1
        fin = lambda x, i: (x[i, 0] if squeeze else x[i]).cpu().numpy()  # noqa: E731
        traces, spikes = monitor.traces(t_end, squeeze), monitor.trains(net.dt)
        weights = {p.name: _dense(state.w[p.owner]).cpu().numpy() for p in net.projections if p.owner}
        results = []
        for i in range(self.replicas):
            final_weights = {name: (w[i].T if net.projection(name).tied else w[i]).copy() for name, w in weights.items()}
            final = {f"{p.name}.{v}": fin(state.pops[p.name][v], i) for p in net.populations
                     for v in p.model.recordable(net.fed(p.name), p.noise)}
            results.append(RunResult(traces[i], final_weights, final, t_end, steps, wall, run_time, spikes=spikes[i]))
        return results


def _sparse(w: torch.Tensor) -> torch.Tensor:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return w.to_sparse_csr()


def _dense(w: torch.Tensor) -> torch.Tensor:
    """(R, post, pre), also from one replica's sparse weight."""
    return w.to_dense()[None] if w.layout == torch.sparse_csr else w


class _Monitor:
    """Records the state at the start of every k-th step (the state at t = k dt) and,
    when the end of the run falls on the grid, the final state; and every spike of the
    populations in recording.spikes. Copies stay on the device until the end."""

    KEPT = ("rows", "times", "w_rows", "w_times", "fired")  # what a checkpoint holds

    def __init__(self, net: Network, recording: Recording, replicas: int, samples: int):
        self.net, self.recording, self.replicas, self.samples = net, recording, replicas, samples
        self.every = {p: int(round(recording.interval(p) / net.dt)) for p, v in recording.variables.items() if v}
        self.w_every = None if recording.weights_dt is None or not recording.weights else \
            int(round(recording.weights_dt / net.dt))
        self.rows, self.times = {p: [] for p in self.every}, {p: [] for p in self.every}
        self.w_rows, self.w_times = [], []
        self.fired = {name: [] for name in recording.spikes}

    def intervals(self) -> list[int]:
        """Recording intervals in steps."""
        return list(self.every.values()) + ([self.w_every] if self.w_every is not None else [])

    def take(self, k: int, state: NetworkState):
        """Record what falls on the grid at t = k dt (once)."""
        t = k * self.net.dt
        for pop, every in self.every.items():
            if k % every == 0 and not (self.times[pop] and self.times[pop][-1] >= t - 1e-9):
                self.rows[pop].append([(state.inputs[v[2:]] if v.startswith("I_") else state.pops[pop][v]).clone()
                                       for v in self.recording.variables[pop]])
                self.times[pop].append(t)
        if self.w_every is not None and k % self.w_every == 0 and not (self.w_times and self.w_times[-1] >= t - 1e-9):
            rows = []
            for name in self.recording.weights:
                proj = self.net.projection(name)
                w = _dense(state.w[proj.owner])
                rows.append((w.mT if proj.tied else w).clone())
            self.w_rows.append(rows)
            self.w_times.append(t)

    def spikes(self, k: int, fired: dict):
        for name, f in fired.items():
            self.fired[name].append((k, f))

    def traces(self, t_end: float, squeeze: bool) -> list[dict]:
        out = [{} for _ in range(self.replicas)]
        for pop, rows in self.rows.items():
            times = np.array(self.times[pop])
            for j, var in enumerate(self.recording.variables[pop]):
                values = torch.stack([row[j] for row in rows], dim=1).cpu().numpy()  # (R, n_t, S, n)
                for i in range(self.replicas):
                    out[i][f"{pop}.{var}"] = Trace(times, values[i, :, 0] if squeeze else values[i])
        if self.w_rows:
            times = np.array(self.w_times)
            for j, name in enumerate(self.recording.weights):
                values = torch.stack([row[j] for row in self.w_rows], dim=1).cpu().numpy()
                for i in range(self.replicas):
                    out[i][f"w:{name}"] = Trace(times, values[i])
        return out

    def trains(self, dt: float) -> list[dict]:
        """{population: SpikeTrain} per replica (a spike in step k at time k dt)."""
        out = [{} for _ in range(self.replicas)]
        for name, blocks in self.fired.items():
            fired = torch.cat([f for _, f in blocks])
            for i in range(self.replicas):
                step, sample, index = (a.cpu().numpy() for a in torch.nonzero(fired[:, i], as_tuple=True))
                out[i][name] = SpikeTrain(step * dt, index, sample)
        return out


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _progress(progress: bool, n_steps: int):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=n_steps, unit="step", desc="simulated")
