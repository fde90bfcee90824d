"""PyTorch backend, built on Norse: the same `Network` description as the Brian2
backend, the step of docs/equations.md as one tensor program.

Two batch axes: replicas R (independent networks: their own weights, parameters,
schedule and noise seed) and samples S (a minibatch through each replica's weights;
plasticity takes the mean of the per-sample updates). Every state tensor is
(R, S, n), every weight (R, post, pre), every parameter (R, 1, 1).

It follows Norse's conventions: `NetworkStep.forward(inputs, state) -> (rates, state)`,
NamedTuple states and parameters as data. Each soma is Norse's leaky integrator
without a current term (`li_box_feed_forward_step`): du/dt = g_sum (u_eff - u), with
tau_mem_inv = g_sum and the coupled compartments as its input u_eff.

Noise is counter-based (counter_rng.py): the draw for (replica seed, population, step,
sample, neuron) is a hash of those numbers, so a replica's noise does not depend on how
many replicas run beside it, on chunking, or on the device.
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
import torch
from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState, li_box_feed_forward_step

from ..network import Network, Population, Projection
from ..plasticity import DendriticPrediction, PhaselessAlignment, Silencing
from ..recording import Divergence, DivergenceError, Recording, RunResult, Trace, check_recording
from ..schedule import Schedule
from .counter_rng import counter_normals, stream_key

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device) -> torch.device:
    """torch.device(device), refused clearly when it names a GPU that is not here."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU here")
    return device


ACTIVATIONS = {
    "logistic": torch.sigmoid,
    "hard_sigmoid": lambda x: torch.clamp(x / 6.0 + 0.5, 0.0, 1.0),
    "relu": torch.relu,
    "soft_relu": lambda x: torch.nn.functional.softplus(x, threshold=40.0),
    "tanh": torch.tanh,
    "linear": lambda x: x,
}


class NetworkState(NamedTuple):
    """Everything that changes: per population (name ->) and per projection."""

    u: dict  # soma potential (R, S, n), dendritic populations
    r: dict  # stored rate, every population
    u_breve: dict  # stored prospective potential, dendritic populations
    v: dict  # "pop.compartment" -> dendritic potential of the last step (noise-free)
    xi: dict  # OU noise, noisy populations
    r_hp: dict  # projection -> high-passed presynaptic rate (PAL)
    w: dict  # projection -> weight (R, post, pre), all-to-all projections that own one
    m: dict  # projection -> low-pass buffer of the update (R, post, pre)


class StepInput(NamedTuple):
    """What the schedule gives a step: input rates and target potentials (R, S, n),
    target gates and the learn gate (R, 1, 1), normal draws for the noise (R, S, n)."""

    data: dict
    gates: dict
    learn: torch.Tensor
    noise: dict


class NetworkStep(torch.nn.Module):
    """One step n-1 -> n of docs/equations.md for R replicas x S samples."""

    def __init__(self, networks: list[Network], samples: int, device, dtype):
        super().__init__()
        self.net = networks[0]
        self.dt = self.net.dt
        self.samples = samples
        per = lambda f: torch.tensor([f(n) for n in networks], device=device, dtype=dtype).view(-1, 1, 1)  # noqa: E731
        self.pops = [p for p in self.net.populations if not p.is_input]
        self.onto = {f"{p.name}.{c}": [q.name for q in self.net.projections_onto(p.name, c)]
                     for p in self.pops for c in p.model.compartments}  # looked up once, not every step
        self.phi = {p.name: ACTIVATIONS[p.model.activation] for p in self.pops}
        self.source = {q.name: q.source for q in self.net.projections}
        self.g = {}  # "pop.compartment" -> conductance (R, 1, 1)
        self.vhat = {}  # "pop.compartment" -> dendritic prediction factor
        self.g_fixed = {}  # pop -> g_l + sum of dendritic and ungated nudging conductances
        for pop in self.pops:
            m, name = pop.model, pop.name
            for c in m.compartments:
                self.g[f"{name}.{c}"] = per(lambda n, c=c: n.population(name).model.conductance(c))
            for c in m.dendrites:
                self.vhat[f"{name}.{c}"] = per(lambda n, c=c: n.population(name).model.prediction_factor(c))
            fixed = [c for c in m.compartments if c in m.dendrites or not self.data_driven(pop, c)]
            self.g_fixed[name] = per(lambda n: n.population(name).model.g_l) + sum(self.g[f"{name}.{c}"] for c in fixed)
        noisy = [p for p in self.pops if p.noise is not None]
        self.noise_decay = {p.name: 1.0 - self.dt / per(lambda n, q=p.name: n.population(q).noise.tau) for p in noisy}
        self.noise_gain = {p.name: per(lambda n, q=p.name: n.population(q).noise.sigma
                                       * math.sqrt(self.dt / n.population(q).noise.tau)) for p in noisy}
        self.eta_mean, self.decay, self.tau_lo, self.hp_decay = {}, {}, {}, {}
        for proj in self.net.projections:
            rule, k = proj.rule, proj.name
            if isinstance(rule, (DendriticPrediction, Silencing, PhaselessAlignment)):
                # the mean over samples of the summed per-sample updates
                self.eta_mean[k] = per(lambda n: n.projection(k).rule.eta) / samples
            if isinstance(rule, DendriticPrediction) and rule.tau_lo > 0:
                self.tau_lo[k] = per(lambda n: n.projection(k).rule.tau_lo)
            if isinstance(rule, PhaselessAlignment):
                self.decay[k] = per(lambda n: n.projection(k).rule.eta * n.projection(k).rule.alpha)
                self.hp_decay[k] = self.dt / per(lambda n: n.projection(k).rule.tau_hp)

    def data_driven(self, pop: Population, nudging: str) -> bool:
        return not self.net.projections_onto(pop.name, nudging)

    def _input(self, proj: Projection, state: NetworkState) -> torch.Tensor:
        """I = W s_pre(n-1), per replica and sample: (R, S, pre) @ (R, pre, post)."""
        s = state.r[proj.source] if proj.signal == "rate" else state.u_breve[proj.source]
        if proj.kind == "one_to_one":
            return s
        if proj.tied:
            return proj.rule.sign * torch.bmm(s, state.w[proj.rule.source])
        return torch.bmm(s, state.w[proj.name].mT)

    def forward(self, inputs: StepInput, state: NetworkState) -> tuple[dict, NetworkState]:
        """Inputs I = W s(n-1); v_c = sum of I onto c; u_eff = (sum_c g_c (v_c + xi) +
        sum_n gamma_n g_n v_n) / g_sum; u(n) = u + dt g_sum (u_eff(xi(n-1)) - u); r =
        phi(u_breve); plasticity from the new postsynaptic and the stored presynaptic
        values; then r~, r, u_breve are stored. Returns the new rates and state."""
        dt, net = self.dt, self.net
        current = {p.name: self._input(p, state) for p in net.projections}
        v, u, u_breve, r, xi, e = {}, {}, {}, {}, {}, {}
        for pop in self.pops:
            name, m = pop.name, pop.model
            drive, g_sum = 0.0, self.g_fixed[name]
            for c in m.compartments:
                key = f"{name}.{c}"
                onto = self.onto[key]
                if onto:
                    v[key] = sum(current[p] for p in onto)
                    drive = drive + self.g[key] * v[key]
                elif c in m.nudging:  # a target from the schedule, gated
                    gate = inputs.gates[key] * self.g[key]
                    g_sum = g_sum + gate
                    drive = drive + gate * inputs.data[key]
                else:
                    v[key] = torch.zeros_like(state.u[name])
            if pop.noise is not None:  # the soma sees xi(n-1); u_breve and plasticity see xi(n)
                g_noise = self.g[f"{name}.{pop.noise.compartment}"]
                xi[name] = self.noise_decay[name] * state.xi[name] + self.noise_gain[name] * inputs.noise[name]
                u[name], _ = li_box_feed_forward_step((drive + g_noise * state.xi[name]) / g_sum, LIBoxState(state.u[name]),
                                                      LIBoxParameters(g_sum, 0.0), dt)
                u_eff = (drive + g_noise * xi[name]) / g_sum
            else:
                u_eff = drive / g_sum
                u[name], _ = li_box_feed_forward_step(u_eff, LIBoxState(state.u[name]), LIBoxParameters(g_sum, 0.0), dt)
            u_breve[name] = u_eff if m.prospective else u[name]
            r[name] = self.phi[name](u_breve[name])
        for pop in net.populations:
            if pop.is_input:
                r[pop.name] = inputs.data[pop.name].clone()  # the state never aliases the schedule
        w, mbuf = dict(state.w), dict(state.m)
        for proj in net.projections:
            k, rule = proj.name, proj.rule
            if k not in self.eta_mean:
                continue
            s = state.r[proj.source] if proj.signal == "rate" else state.u_breve[proj.source]
            key = f"{proj.target}.{proj.compartment}"
            # the per-replica factor goes onto the small postsynaptic vector, so that each
            # weight update is one fused W + post^T pre (baddbmm): one pass over the weights
            step = dt * inputs.learn * self.eta_mean[k]
            if isinstance(rule, DendriticPrediction):
                if key not in e:  # phi(u_breve) - phi(vhat v_c), once per compartment
                    e[key] = r[proj.target] - self.phi[proj.target](self.vhat[key] * v[key])
                if k in self.tau_lo:  # W(n) = W + dt M(n-1); M(n) = M + dt (update - M) / tau_lo
                    w[k] = state.w[k] + dt * state.m[k]
                    mbuf[k] = torch.baddbmm(state.m[k] * (1.0 - dt / self.tau_lo[k]), (step / self.tau_lo[k] * e[key]).mT, s)
                else:
                    w[k] = torch.baddbmm(state.w[k], (step * e[key]).mT, s)
            elif isinstance(rule, Silencing):
                w[k] = torch.baddbmm(state.w[k], (-step * v[key]).mT, s)
            else:  # phaseless alignment: dB/dt = eta (xi r~^T - alpha B)
                kept = 1.0 - dt * inputs.learn * self.decay[k]
                w[k] = torch.baddbmm(state.w[k] * kept, (step * xi[proj.target]).mT, state.r_hp[k])
        r_hp = {k: hp + (r[self.source[k]] - state.r[self.source[k]]) - self.hp_decay[k] * hp
                for k, hp in state.r_hp.items()}
        return r, NetworkState(u, r, u_breve, v, xi, r_hp, w, mbuf)


class NetworkBlock(torch.nn.Module):
    """K steps in one call (what torch.compile fuses, and a CUDA graph replays): the
    presentation's inputs for every step, inputs.noise as (K, R, S, n) draws."""

    def __init__(self, step: NetworkStep, length: int):
        super().__init__()
        self.step, self.length = step, length

    def forward(self, inputs: StepInput, state: NetworkState) -> NetworkState:
        for j in range(self.length):
            _, state = self.step(inputs._replace(noise={k: d[j] for k, d in inputs.noise.items()}), state)
        return state


MAX_BLOCK = 10  # steps per call: longer blocks compile for longer (about 5 s per step on 2 cores)
NOISE_CHUNK = 2 ** 21  # numbers per noise chunk


def block_length(steps_per_presentation: int, intervals: list[int], longest: int) -> int:
    """The longest block <= longest that divides a presentation and every recording interval."""
    g = math.gcd(steps_per_presentation, *intervals)
    return max(d for d in range(1, min(g, longest) + 1) if g % d == 0)


# ----------------------------------------------------------------------------------
# the simulator
# ----------------------------------------------------------------------------------
def structure(net: Network) -> tuple:
    """What replicas must share (everything but numbers): populations, compartments,
    activations, noise sites, projections and their rule types."""
    pops = tuple((p.name, p.size, type(p.model).__name__,
                  None if p.is_input else (tuple(p.model.dendrites), tuple(p.model.nudging), p.model.activation,
                                           p.model.prospective),
                  None if p.noise is None else p.noise.compartment) for p in net.populations)
    projs = tuple((p.name, p.source, p.target, p.compartment, type(p.rule).__name__, p.kind, p.signal,
                   getattr(p.rule, "source", None), getattr(p.rule, "sign", None),
                   getattr(p.rule, "tau_lo", 0.0) > 0) for p in net.projections)
    return pops, projs, net.dt


class TorchSimulator:
    """Runs a network description on PyTorch (CPU or CUDA).

    network: one `Network`, or a list of them with the same structure (one per replica;
        weights and parameters may differ).
    seed: one per replica (an int for one replica); it fixes the replica's noise.
    samples: the minibatch size S (schedules then give (presentations, S, n) data).
    dtype: "float32" or "float64"; device: "cpu", "cuda" or a torch.device.
    compile: torch.compile the step (on CUDA with CUDA graphs); default: on CUDA only.
    noise: optional {population: (R, n_steps, S, size) or, for R = S = 1, (n_steps, size)
        N(0, 1) draws} replacing the counter-based draws (to replay a realisation).
    """

    def __init__(self, network: Network | list[Network], device="cpu", dtype: str = "float64",
                 seed: int | list[int] = 0, samples: int = 1, compile: bool | None = None,
                 noise: dict | None = None, check_every_ms: float = 10.0):
        self.networks = list(network) if isinstance(network, (list, tuple)) else [network]
        if not self.networks:
            raise ValueError("give at least one network")
        first = structure(self.networks[0])
        for i, net in enumerate(self.networks[1:], start=1):
            if structure(net) != first:
                raise ValueError(f"replica {i} differs in structure from replica 0 (populations, compartments, "
                                 "rules or dt); replicas may differ only in weights and parameters")
        self.seeds = [int(s) for s in (seed if isinstance(seed, (list, tuple, np.ndarray)) else [seed])]
        if len(self.seeds) != self.replicas:
            raise ValueError(f"give one seed per replica: {self.replicas} replicas, {len(self.seeds)} seeds")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if not (isinstance(samples, (int, np.integer)) and samples >= 1):
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        self.device = resolve_device(device)
        self.dtype, self.samples = DTYPES[dtype], int(samples)
        self.compile = self.device.type == "cuda" if compile is None else bool(compile)
        self.check_every_ms = check_every_ms
        self.noise = {name: self._fed_noise(name, w) for name, w in (noise or {}).items()}

    @property
    def replicas(self) -> int:
        return len(self.networks)

    @property
    def network(self) -> Network:
        return self.networks[0]

    def _fed_noise(self, name: str, w) -> torch.Tensor:
        pop = self.network.population(name)
        if pop.noise is None:
            raise ValueError(f"noise given for {name}, which has no OUNoise")
        w = torch.as_tensor(np.asarray(w, dtype=float), dtype=self.dtype)
        if w.ndim == 2 and self.replicas == self.samples == 1:
            w = w[None, :, None, :]
        if w.ndim != 4 or w.shape[0] != self.replicas or w.shape[2] != self.samples or w.shape[3] != pop.size:
            raise ValueError(f"noise for {name} must have shape (replicas {self.replicas}, steps, samples "
                             f"{self.samples}, {pop.size}), got {tuple(w.shape)}")
        return w

    # -- running -------------------------------------------------------------------
    def run(self, schedule: Schedule, recording: Recording | None = None, progress: bool = False) -> RunResult:
        """One replica, as Brian2Simulator.run: raises DivergenceError (with the partial
        result) when the state becomes NaN or inf."""
        if self.replicas != 1:
            raise ValueError(f"run() simulates one replica; this simulator has {self.replicas}: use run_replicas()")
        result = self.run_replicas(schedule, recording, progress)[0]
        if result.divergence is not None:
            raise DivergenceError(result.divergence, result)
        return result

    def run_replicas(self, schedules: Schedule | list[Schedule], recording: Recording | None = None,
                     progress: bool = False) -> list[RunResult]:
        """All replicas at once, each with its own schedule (or one schedule for all).
        Returns one RunResult per replica; a replica whose state became NaN or inf has
        `divergence` set (the others run on)."""
        t_start = time.perf_counter()
        net, recording = self.network, recording or Recording()
        schedules = self._check_schedules(schedules)
        self._check_recording(recording)
        spp = schedules[0].steps_per_presentation(net.dt)
        n_steps = schedules[0].n_presentations * spp
        for name, w in self.noise.items():
            if w.shape[1] < n_steps:
                raise ValueError(f"noise for {name} covers {w.shape[1]} steps; the schedule needs {n_steps}")
        with torch.no_grad():
            step = NetworkStep(self.networks, self.samples, self.device, self.dtype)
            inputs = self._presentations(schedules)
            state = self._initial_state(schedules)
            monitor = _Monitor(net, recording, self.replicas)
            block = block_length(spp, monitor.intervals(), MAX_BLOCK)
            forward = NetworkBlock(step, block)
            if self.compile:  # CUDA: CUDA graphs; CPU: a C++ wrapper around the kernels (1.5x the Python one)
                forward = torch.compile(forward, fullgraph=True, dynamic=False,
                                        **({"mode": "reduce-overhead"} if self.device.type == "cuda"
                                           else {"options": {"cpp_wrapper": True}}))
            noisy = [p.name for p in net.populations if p.noise is not None]
            keys = torch.tensor([[stream_key(s, q) for q, _ in enumerate(noisy)] for s in self.seeds],
                                dtype=torch.int64, device=self.device)
            width = self.replicas * self.samples * sum(net.population(p).size for p in noisy)
            chunk = block * max(1, NOISE_CHUNK // max(1, block * width))
            check = max(1, round(self.check_every_ms / net.dt / block)) * block
            diverged: list[Divergence | None] = [None] * self.replicas
            bar = _progress(progress, n_steps)
            t_loop, k = None, 0
            while k < n_steps:
                if k == block:  # the first block compiles; the loop's rate counts from the second
                    _sync(self.device)
                    t_loop = time.perf_counter()
                monitor.take(k, state)
                if k % chunk == 0:
                    draws = self._draws(noisy, keys, k, min(chunk, n_steps - k))
                j = k % chunk
                block_in = inputs[k // spp]._replace(noise={name: d[j:j + block] for name, d in draws.items()})
                if self.compile and self.device.type == "cuda":
                    torch.compiler.cudagraph_mark_step_begin()
                state = forward(block_in, state)
                k += block
                if bar is not None:
                    bar.update(block)
                if (k % check == 0 or k == n_steps) and self._check_finite(state, diverged, k * net.dt):
                    break
            _sync(self.device)
            run_time = time.perf_counter() - (t_loop or t_start)
            if bar is not None:
                bar.close()
            t_end = k * net.dt
            monitor.take(k, state)  # the end of the run, when it falls on the grid
            results = self._collect(state, monitor, t_end, k, time.perf_counter() - t_start, run_time)
        for result, div in zip(results, diverged):
            result.divergence = div or result.first_divergence()
        return results

    def _draws(self, noisy: list[str], keys: torch.Tensor, first: int, n: int) -> dict:
        """Normal draws (n, R, S, size) for steps first..first+n-1 of every noisy population."""
        out = {}
        for q, name in enumerate(noisy):
            if name in self.noise:
                out[name] = self.noise[name][:, first:first + n].transpose(0, 1).to(self.device).contiguous()
            else:
                size = self.network.population(name).size
                z = counter_normals(keys[:, q], first, n, self.samples * size)
                out[name] = z.view(self.replicas, n, self.samples, size).transpose(0, 1).to(self.dtype).contiguous()
        return out

    def _check_finite(self, state: NetworkState, diverged: list, t: float) -> bool:
        """Mark replicas whose potentials or rates became NaN or inf; True when all have."""
        names = list(state.u)
        finite = torch.stack([torch.isfinite(state.u[n]).flatten(1).all(1) & torch.isfinite(state.r[n]).flatten(1).all(1)
                              for n in names]).cpu().numpy()  # (populations, R)
        for i in range(self.replicas):
            if diverged[i] is None and not finite[:, i].all():
                diverged[i] = Divergence(names[int(np.argmin(finite[:, i]))], t)
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
        return schedules

    def _check_recording(self, recording: Recording):
        """Known variables (no per-projection inputs here), intervals on the step grid."""
        net = self.network
        check_recording(net, recording, "torch")
        for name, interval in [(p, recording.interval(p)) for p in recording.variables] + \
                [("weights", recording.weights_dt)] * (recording.weights_dt is not None):
            if abs(interval / net.dt - round(interval / net.dt)) > 1e-9 * interval / net.dt:
                raise ValueError(f"recording interval of {name} ({interval} ms) is not a whole number of "
                                 f"steps of dt = {net.dt} ms")

    def _tensor(self, values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=float), dtype=self.dtype, device=self.device)

    def _presentations(self, schedules: list[Schedule]) -> list[StepInput]:
        """One StepInput per presentation: contiguous (R, S, n) views into (P, R, S, n)
        tensors on the device."""
        def stack(f):
            return self._tensor(np.stack([f(s) for s in schedules], axis=1))

        data = {key: stack(lambda s, key=key: s.batched(key)) for key in self.network.data_keys}
        gates = {key: stack(lambda s, key=key: s.gates.get(key, np.ones(s.n_presentations)))[..., None, None]
                 for key in self.network.data_keys if "." in key}
        learn = stack(lambda s: s.learn)[..., None, None]
        return [StepInput({k: d[p] for k, d in data.items()}, {k: g[p] for k, g in gates.items()},
                          learn[p], {}) for p in range(schedules[0].n_presentations)]

    def _initial_state(self, schedules: list[Schedule]) -> NetworkState:
        """u = u_breve = 0, r = phi(0) (inputs: their first sample), xi = r~ = M = 0."""
        net, R, S = self.network, self.replicas, self.samples
        zeros = lambda n: torch.zeros((R, S, n), dtype=self.dtype, device=self.device)  # noqa: E731
        u, r, u_breve, v, xi, r_hp, w, m = {}, {}, {}, {}, {}, {}, {}, {}
        for pop in net.populations:
            if pop.is_input:
                r[pop.name] = self._tensor(np.stack([s.batched(pop.name)[0] for s in schedules]))
                continue
            u[pop.name], u_breve[pop.name] = zeros(pop.size), zeros(pop.size)
            r[pop.name] = ACTIVATIONS[pop.model.activation](zeros(pop.size))
            for c in pop.model.dendrites:
                v[f"{pop.name}.{c}"] = zeros(pop.size)
            if pop.noise is not None:
                xi[pop.name] = zeros(pop.size)
        for proj in net.projections:
            if proj.kind == "all_to_all" and not proj.tied:
                w[proj.name] = self._tensor(np.stack([n.projection(proj.name).weight for n in self.networks]))
            if isinstance(proj.rule, DendriticPrediction) and proj.rule.tau_lo > 0:
                m[proj.name] = torch.zeros_like(w[proj.name])
            if isinstance(proj.rule, PhaselessAlignment):
                r_hp[proj.name] = zeros(net.population(proj.source).size)
        return NetworkState(u, r, u_breve, v, xi, r_hp, w, m)

    def _collect(self, state: NetworkState, monitor: "_Monitor", t_end: float, steps: int, wall: float,
                 run_time: float) -> list[RunResult]:
        net, squeeze = self.network, self.samples == 1
        fin = lambda x, i: (x[i, 0] if squeeze else x[i]).cpu().numpy()  # noqa: E731
        traces = monitor.traces(t_end, squeeze)
        results = []
        for i in range(self.replicas):
            weights = {}
            for proj in net.projections:
                if proj.kind == "one_to_one":
                    continue
                if proj.tied:
                    weights[proj.name] = proj.rule.sign * state.w[proj.rule.source][i].cpu().numpy().T
                else:
                    weights[proj.name] = state.w[proj.name][i].cpu().numpy()
            final = {}
            for pop in net.populations:
                final[f"{pop.name}.r"] = fin(state.r[pop.name], i)
                if pop.is_input:
                    final[f"{pop.name}.u_breve"] = np.zeros_like(final[f"{pop.name}.r"])
                else:
                    final[f"{pop.name}.u"] = fin(state.u[pop.name], i)
                    final[f"{pop.name}.u_breve"] = fin(state.u_breve[pop.name], i)
            results.append(RunResult(traces[i], weights, final, t_end, steps, wall, run_time))
        return results


class _Monitor:
    """Records the state at the start of every k-th step (the state at t = k dt) and,
    when the end of the run falls on the grid, the final state; copies stay on the device
    until the end."""

    def __init__(self, net: Network, recording: Recording, replicas: int):
        self.net, self.recording, self.replicas = net, recording, replicas
        self.every = {p: int(round(recording.interval(p) / net.dt)) for p, v in recording.variables.items() if v}
        self.w_every = None if recording.weights_dt is None or not recording.weights else \
            int(round(recording.weights_dt / net.dt))
        self.rows = {p: [] for p in self.every}
        self.w_rows = []
        self.times = {p: [] for p in self.every}
        self.w_times = []

    def intervals(self) -> list[int]:
        """Recording intervals in steps."""
        return list(self.every.values()) + ([self.w_every] if self.w_every is not None else [])

    def _values(self, pop: str, var: str, state: NetworkState) -> torch.Tensor:
        if var == "ou":
            return state.xi[pop]
        if var.startswith("v_"):
            return state.v[f"{pop}.{var[2:]}"]
        return getattr(state, var)[pop]

    def _weights(self, state: NetworkState) -> list[torch.Tensor]:
        out = []
        for name in self.recording.weights:
            proj = self.net.projection(name)
            out.append(proj.rule.sign * state.w[proj.rule.source].mT if proj.tied else state.w[name])
        return [w.clone() for w in out]

    def take(self, k: int, state: NetworkState):
        """Record what falls on the grid at t = k dt (once)."""
        t = k * self.net.dt
        for pop, every in self.every.items():
            if k % every == 0 and not (self.times[pop] and self.times[pop][-1] >= t - 1e-9):
                self.rows[pop].append([self._values(pop, v, state).clone() for v in self.recording.variables[pop]])
                self.times[pop].append(t)
        if self.w_every is not None and k % self.w_every == 0 and not (self.w_times and self.w_times[-1] >= t - 1e-9):
            self.w_rows.append(self._weights(state))
            self.w_times.append(t)

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


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _progress(progress: bool, n_steps: int):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=n_steps, unit="step", desc="simulated")
