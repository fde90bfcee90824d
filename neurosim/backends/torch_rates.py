"""Torch backend for rate circuits (neurosim.rates): the forward-Euler step, every
population and rule reading the state at the start of the step, for a minibatch of S
samples per presentation (state (S, n); weight changes are the mean over samples)."""
from __future__ import annotations

import time

import numpy as np
import torch

from ..recording import Recording, RunResult, append_final
from ..rates import Hebbian, RateNetwork
from ..schedule import Schedule
from .torch import ACTIVATIONS, DTYPES, resolve_device

DERIVATIVES = {
    "linear": torch.ones_like,
    "tanh": lambda x: 1.0 - torch.tanh(x) ** 2,
    "relu": lambda x: (x > 0).to(x.dtype),
    "logistic": lambda x: torch.sigmoid(x) * (1.0 - torch.sigmoid(x)),
}


class TorchRateSimulator:
    """Runs a RateNetwork with torch (cpu or cuda, float32 or float64); seed fixes the noise."""

    def __init__(self, network: RateNetwork, device: str = "cpu", dtype: str = "float64", seed: int = 0):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.network, self.device, self.dtype = network, resolve_device(device), DTYPES[dtype]
        self.seed = int(seed)

    def _tensor(self, values) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(values), dtype=self.dtype, device=self.device)

    def run(self, schedule: Schedule, recording: Recording | None = None) -> RunResult:
        net, recording = self.network, recording or Recording()
        schedule.check_against(net)
        for pop_name, variables in recording.variables.items():
            net.population(pop_name)
            if set(variables) - {"z"}:
                raise ValueError(f"cannot record {sorted(set(variables) - {'z'})} of {pop_name}; choose from ['z']")
        t0 = time.perf_counter()
        spp, dt = schedule.steps_per_presentation(net.dt), net.dt
        n_steps = schedule.n_presentations * spp
        data = {k: self._tensor(schedule.batched(k)) for k in schedule.data}
        learn = [float(v) for v in schedule.learn]
        S = schedule.samples
        z = {p.name: torch.zeros(S, p.size, dtype=self.dtype, device=self.device) for p in net.populations}
        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        w = {p.name: self._tensor(p.weight) for p in net.projections if p.weight is not None}
        every = {k: max(1, round(recording.interval(k) / dt)) for k in recording.variables}
        w_every = max(1, round(recording.weights_dt / dt)) if recording.weights_dt else None
        traces = {k: [] for k in recording.variables}
        clamped = [p.name for p in net.populations if p.is_clamped]
        leaky = [(p.name, p.model) for p in net.populations if not p.is_clamped]
        phi = {p.name: ACTIVATIONS[p.model.activation] for p in net.populations}
        gain = {q.name: DERIVATIVES[net.population(q.target).model.activation] for q in net.projections
                if q.gain == "derivative"}
        learning = [(q, net.factor(q, "pre"), net.factor(q, "post")) for q in net.projections
                    if isinstance(q.rule, Hebbian)]
        noisy = {name: m.sigma * (dt / m.tau) ** 0.5 for name, m in leaky if m.sigma}
        w_traces = {k: [] for k in recording.weights}
        t_run = time.perf_counter()
        with torch.no_grad():
            for k in range(n_steps):
                presentation = k // spp
                for name in clamped:
                    z[name] = data[name][presentation]
                for name in traces:
                    if k % every[name] == 0:
                        traces[name].append(z[name].clone() if S > 1 else z[name][0].clone())
                if w_every and k % w_every == 0:
                    for name in w_traces:
                        w_traces[name].append(w[name].clone())
                rate = {name: f(z[name]) for name, f in phi.items()}
                drive = {name: torch.zeros_like(z[name]) for name, _ in leaky}
                for proj in net.projections:
                    s = z[proj.source] if proj.signal == "value" else rate[proj.source]
                    ws = s if proj.kind == "one_to_one" else s @ w[proj.tied] if proj.tied else \
                        s @ w[proj.shared or proj.name].T
                    if proj.name in gain:
                        ws = gain[proj.name](z[proj.target]) * ws
                    drive[proj.target] = drive[proj.target] + proj.scale * ws
                for proj, pre, post in learning if learn[presentation] else ():
                    p = z[pre] if proj.rule.pre or proj.signal == "value" else rate[pre]
                    change = proj.rule.eta * (z[post].T @ p) / S - proj.rule.decay * w[proj.name]
                    w[proj.name] = w[proj.name] + dt * learn[presentation] * change
                for name, m in leaky:
                    z[name] = z[name] + dt / m.tau * (-m.leak * z[name] + drive[name])
                    if name in noisy:
                        z[name] = z[name] + noisy[name] * torch.randn(
                            z[name].shape, generator=generator, dtype=self.dtype, device=self.device)
        run_time = time.perf_counter() - t_run
        result = {}
        for name, values in traces.items():
            result[f"{name}.z"] = append_final(np.arange(len(values)) * every[name] * dt,
                                               torch.stack(values).cpu().numpy(),
                                               (z[name] if S > 1 else z[name][0]).cpu().numpy(),
                                               every[name] * dt, n_steps * dt)
        for name, values in w_traces.items():
            result[f"w:{name}"] = append_final(np.arange(len(values)) * w_every * dt,
                                               torch.stack(values).cpu().numpy(), w[name].cpu().numpy(),
                                               w_every * dt, n_steps * dt)
        return RunResult(result, {k: v.cpu().numpy() for k, v in w.items()},
                         {f"{k}.z": (v if S > 1 else v[0]).cpu().numpy() for k, v in z.items()}, n_steps * dt, n_steps,
                         time.perf_counter() - t0, run_time)
