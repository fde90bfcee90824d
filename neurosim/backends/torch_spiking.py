"""Torch backend for spiking networks: each population is advanced by Norse's step
functions (lif_box, li_box, iaf), in the order and with the inputs of neurosim.spiking,
batched over the samples of a minibatch schedule.

    LIF      lif_box_feed_forward_step(r x)         tau_mem_inv = 1/tau
    CubaLIF  li_box_feed_forward_step(w_in x) -> I, then lif_box_feed_forward_step(r I)
    IF       iaf_feed_forward_step(dt r x)
    LI       li_box_feed_forward_step(r x)
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from norse.torch.functional.iaf import IAFFeedForwardState, IAFParameters, iaf_feed_forward_step
from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState, li_box_feed_forward_step
from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step

from ..recording import Recording, RunResult, SpikeTrain, append_final
from ..schedule import Schedule
from ..spiking import IF, LI, LIF, CubaLIF, CurrentInput, PoissonInput, SpikingNetwork, initial_state
from .spiking_common import check_spiking_recording, poisson_probabilities
from .torch import DTYPES, resolve_device


SPARSE = 0.1  # weights with fewer non-zeros than this fraction are stored sparse


def _project(weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """W s for every sample: (S, source) -> (S, target)."""
    if weight.layout != torch.sparse_csr:
        return s @ weight.T
    return torch.mv(weight, s[0])[None] if len(s) == 1 else (weight @ s.T).T


class TorchSpikingSimulator:
    """Runs a SpikingNetwork with torch and Norse; `seed` fixes the Poisson spikes."""

    def __init__(self, network: SpikingNetwork, device: str = "cpu", dtype: str = "float64", seed: int = 0):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.network, self.seed = network, int(seed)
        self.device, self.dtype = resolve_device(device), DTYPES[dtype]

    def _tensor(self, values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values), dtype=self.dtype, device=self.device)

    def run(self, schedule: Schedule, recording: Recording | None = None, reset: bool = False) -> RunResult:
        """Simulate the schedule; `reset` returns every state to its start at each presentation."""
        net, recording = self.network, recording or Recording()
        schedule.check_against(net)
        check_spiking_recording(net, recording, "torch")
        t0 = time.perf_counter()
        spp, S, dt = schedule.steps_per_presentation(net.dt), schedule.samples, net.dt
        n_steps = schedule.n_presentations * spp
        inputs = {k: self._tensor(schedule.batched(k)) for k in net.data_keys}
        for pop in net.populations:
            if isinstance(pop.model, PoissonInput):
                inputs[pop.name] = self._tensor(poisson_probabilities(schedule, pop.name, dt))
        weights = {c.name: self._weight(c.weight) for c in net.connections}
        # each population's turn, looked up once: (name, model, step, [(weight, source) onto it])
        turns = [(name, net.population(name).model, self._stepper(net.population(name)),
                  [(weights[c.name], c.source) for c in net.onto(name)]) for name in net.order]
        out = {p.name: torch.zeros(S, p.size, dtype=self.dtype, device=self.device) for p in net.populations}
        state = self._initial(S)
        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        rec_every = {p: max(1, round(recording.interval(p) / dt)) for p in recording.variables}
        traces = {f"{p}.{v}": [] for p, vs in recording.variables.items() for v in vs}
        fired = {p: [] for p in recording.spikes}
        t_run = time.perf_counter()
        with torch.no_grad():
            for k in range(n_steps):
                presentation = k // spp
                if reset and k % spp == 0:
                    state = self._initial(S)
                for pop_name, every in rec_every.items():
                    if k % every == 0:
                        for var in recording.variables[pop_name]:
                            traces[f"{pop_name}.{var}"].append(state[pop_name][var].clone())
                for name, model, step, onto in turns:
                    if isinstance(model, CurrentInput):
                        out[name] = inputs[name][presentation]
                    elif isinstance(model, PoissonInput):
                        p = inputs[name][presentation]
                        out[name] = (torch.rand(p.shape, generator=generator, dtype=self.dtype,
                                                device=self.device) < p).to(self.dtype)
                    else:
                        x = step.bias
                        for weight, source in onto:
                            x = x + _project(weight, out[source])
                        out[name], state[name] = step(x, state[name])
                for name in fired:
                    fired[name].append(out[name] > 0)
        run_time = time.perf_counter() - t_run
        result_traces = {}
        for key, values in traces.items():
            pop_name, var = key.split(".")
            every = rec_every[pop_name] * dt
            result_traces[key] = append_final(np.arange(len(values)) * every, self._numpy(torch.stack(values)),
                                              self._numpy(state[pop_name][var]), every, n_steps * dt)
        spikes = {}
        for name, per_step in fired.items():
            step, sample, index = (a.cpu().numpy() for a in torch.nonzero(torch.stack(per_step), as_tuple=True))
            spikes[name] = SpikeTrain(step * dt, index, sample)
        final_state = {f"{p}.{v}": self._numpy(value) for p, s in state.items() for v, value in s.items()}
        return RunResult(result_traces, {c.name: c.weight.copy() for c in net.connections}, final_state,
                         n_steps * dt, n_steps, time.perf_counter() - t0, run_time, spikes=spikes)

    def _weight(self, weight: np.ndarray) -> torch.Tensor:
        """The weight as a tensor; sparse (CSR) below SPARSE density."""
        w = self._tensor(weight)
        if np.count_nonzero(weight) >= SPARSE * weight.size:
            return w
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return w.to_sparse_csr()

    def _numpy(self, value: torch.Tensor) -> np.ndarray:
        """(..., S, n) -> numpy, without the samples axis when S = 1."""
        value = value.cpu().numpy()
        return value[..., 0, :] if value.shape[-2] == 1 else value

    def _initial(self, samples: int) -> dict[str, dict[str, torch.Tensor]]:
        return {p.name: {k: self._tensor(v).expand(samples, -1).clone() for k, v in initial_state(p.model, p.size).items()}
                for p in self.network.populations if not p.is_input}

    def _stepper(self, pop):
        """step(x, state) -> (output, state) for one population, its parameters bound."""
        if pop.is_input:
            return None
        p = {k: self._tensor(v) for k, v in pop.parameters().items()}
        dt, model = self.network.dt, pop.model
        method = dict(method="heaviside")
        if isinstance(model, LIF):
            params = LIFBoxParameters(1 / p["tau"], p["v_leak"], p["v_threshold"], p["v_reset"], **method)

            def step(x, s):
                z, new = lif_box_feed_forward_step(p["r"] * x, LIFBoxFeedForwardState(s["v"]), params, dt)
                return z, {"v": new.v}
        elif isinstance(model, CubaLIF):
            syn = LIBoxParameters(1 / p["tau_syn"], torch.zeros_like(p["tau_syn"]))
            params = LIFBoxParameters(1 / p["tau_mem"], p["v_leak"], p["v_threshold"], p["v_reset"], **method)

            def step(x, s):
                i, _ = li_box_feed_forward_step(p["w_in"] * x, LIBoxState(s["I"]), syn, dt)
                z, new = lif_box_feed_forward_step(p["r"] * i, LIFBoxFeedForwardState(s["v"]), params, dt)
                return z, {"I": i, "v": new.v}
        elif isinstance(model, IF):
            params = IAFParameters(p["v_threshold"], p["v_reset"], **method)

            def step(x, s):
                z, new = iaf_feed_forward_step(dt * p["r"] * x, IAFFeedForwardState(s["v"]), params, dt)
                return z, {"v": new.v}
        elif isinstance(model, LI):
            params = LIBoxParameters(1 / p["tau"], p["v_leak"])

            def step(x, s):
                v, _ = li_box_feed_forward_step(p["r"] * x, LIBoxState(s["v"]), params, dt)
                return torch.zeros_like(v), {"v": v}
        step.bias = self._tensor(pop.bias)
        return step
