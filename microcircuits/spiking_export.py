"""The trained spiking microcircuit's forward pathway as it runs, for NIR and the chips:
its own spikes, PSP kernels and weights, with no rate-to-spike conversion
(microcircuits.conversion is that step, for rate circuits).

On the forward pathway (no top-down input, no target) layer l of SpikingDendriticNeurons
computes (neurosim/models/dendritic.py; k_l = metrics.basal_factors, psp_0 = x, c = r_max dt)

    u_breve_l = k_l W_l psp_{l-1}
    s_l       = 1 if w_l < c phi(u_breve_l), else 0          w_l ~ U[0, 1) per neuron and step
    psp_l     = (1 - dt/tau_s) psp_l + s_l / (r_max tau_s)

and in nodes that NIR and its readers know:

    x (Input) -> W1 (Linear: k_1 W_1) -> P1 (Threshold at 0) <- noise_P1 (Input: m_1)
    P1 -> psp_P1 (LI: tau_s, r = 1/(r_max dt), v_leak 0) -> W2 (Linear: k_2 W_2) -> P2 <- noise_P2

with m_l = -phi^-1(w_l / c) (neurosim.models.spiking.EscapeNoise): P_l reads
u_breve_l + m_l and fires exactly when w_l < c phi(u_breve_l). The graph is deterministic
given its noise inputs; its metadata name them and their law ("escape_noise",
"spike_chance", "activation"), so that a reader or a chip's host can draw them (on
neurosim the network of `simulated` draws them itself). The LI's r is per spike of 1 in a
step, as in the LIF export (hardware/nir.py): the graph's dt ("dt_ms") is part of it.

NIR has no delays, so each layer reads the one below in the same step; the circuit's
projections have delay 1, so layer l of the graph runs l - 1 steps ahead of the circuit's
(the same spikes, for noise shifted by as many steps).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from neurosim.models.rate import Input
from neurosim.models.spiking import LI, EscapeNoise, Threshold
from neurosim.network import Network, Population, Projection

from .metrics import basal_factors

NOISE, PSP = "noise_{}", "psp_{}"


def check_spiking(cfg) -> None:
    if cfg.neuron != "spiking":
        raise ValueError(f"the circuit's neurons are {cfg.neuron!r}, not spiking: its forward pathway converts to "
                         "spikes (microcircuits.conversion) instead")


def forward_graph(cfg, weights: list[np.ndarray]) -> Network:
    """The forward pathway x -> P1 -> ... -> PN of a trained spiking microcircuit (config
    `cfg`, forward weights W_1..W_N) with its escape noise as Input populations
    noise_P<l>: the network that NIR holds (see the module docstring)."""
    check_spiking(cfg)
    n, pops, projs, source = cfg.layers, [Population("x", cfg.layers[0], Input())], [], "x"
    for l, (k, w) in enumerate(zip(basal_factors(cfg), weights), start=1):
        name, noise = f"P{l}", NOISE.format(f"P{l}")
        pops += [Population(noise, n[l], Input()), Population(name, n[l], Threshold(v_threshold=0.0))]
        projs += [Projection(f"W{l}", source, name, weight=k * np.asarray(w, dtype=float), delay=0),
                  Projection(f"{noise}_to_{name}", noise, name, weight=np.eye(n[l]), delay=0)]
        if l < cfg.n_layers:
            source = PSP.format(name)
            pops.append(Population(source, n[l], LI(tau=cfg.tau_s, r=1.0 / (cfg.r_max * cfg.dt))))
            projs.append(Projection(f"{name}_to_{source}", name, source, weight=np.eye(n[l]), delay=0))
    return Network(pops, projs, dt=cfg.dt)


def metadata(cfg) -> dict:
    """What a reader of the graph needs to draw its noise inputs."""
    return {"escape_noise": ",".join(NOISE.format(f"P{l}") for l in range(1, cfg.n_layers + 1)),
            "escape_noise_law": "m = -phi^-1(w / c) for w < c, else -1e6; w ~ U[0, 1) per neuron and step",
            "spike_chance": float(cfg.r_max * cfg.dt), "activation": cfg.activation}


def simulated(graph: Network, cfg) -> Network:
    """The graph (or its quantised copy) with each noise Input replaced by an EscapeNoise
    population that draws m itself: what neurosim runs."""
    noise = EscapeNoise(cfg.activation, cfg.r_max * cfg.dt)
    names = {NOISE.format(f"P{l}") for l in range(1, cfg.n_layers + 1)}
    missing = sorted(names - {p.name for p in graph.populations})
    if missing:
        raise ValueError(f"the graph has no noise inputs {missing}; it is not a spiking microcircuit's forward graph")
    pops = [Population(p.name, p.size, noise) if p.name in names else p for p in graph.populations]
    projs = [replace(c, signal=None) if c.source in names else c for c in graph.projections]
    return Network(pops, projs, dt=graph.dt)
