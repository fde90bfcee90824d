"""Prospective configuration (Song et al. 2024; docs/equations.md section 3) as a rate
circuit: value neurons x_l and error neurons e_l of an energy-based (predictive coding)
network,

    E = sum_l 1/2 ||x_l - W_l f(x_{l-1})||^2,   x_0 = input and x_L = target clamped

    tau_e de_l/dt = -e_l + x_l - W_l f(x_{l-1})            (e_l -> x_l - mu_l)
    tau_x dx_l/dt = -e_l + f'(x_l) * (W_{l+1}^T e_{l+1})    (= -dE/dx_l at e = x - mu)
    dW_l/dt = lambda eta e_l f(x_{l-1})^T                   (= -lambda eta dE/dW_l)

Each sample is shown for two presentations of t_pres: the first with plasticity off,
while the activity relaxes to the minimum of E ("infer the activity that should result
from learning"), the second with plasticity on at the relaxed state (the schedule's
learn signal; nothing else changes). Input and target are clamped throughout.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosim import activations, schema
from neurosim.models.rate import Input, Leaky
from neurosim.network import Network, Population, Projection
from neurosim.rules import Hebbian
from neurosim.schedule import Schedule

from .rate_models import forward_weights, from_dict, one_pass

RULE = "prospective"


@dataclass
class EnergyConfig:
    """layers [n_0, ..., n_L]; tau_x, tau_e, t_pres and dt in ms; eta in 1/ms, so one
    learning presentation moves W by about eta t_pres e f(x)^T."""

    layers: list = field(default_factory=lambda: [1, 1, 2])
    activation: str = "linear"
    tau_x: float = 1.0
    tau_e: float = 0.1
    eta: float = 0.01
    t_pres: float = 20.0
    dt: float = 0.025

    def __post_init__(self):
        self.layers = schema.layer_sizes(self.layers)
        activations.check(self.activation, "network.activation")
        for name in ("tau_x", "tau_e", "t_pres", "dt"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 ms, got {getattr(self, name)!r}")
        if self.dt >= min(self.tau_x, self.tau_e):
            raise ValueError(f"dt = {self.dt} ms must be below tau_x and tau_e for the Euler step to be stable")

    from_dict = classmethod(from_dict)

    @property
    def n_layers(self) -> int:
        return len(self.layers) - 1


Config = EnergyConfig


def initial_weights(cfg: EnergyConfig, seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    """W_l ~ N(0, scale^2 / n_{l-1})."""
    return forward_weights(cfg.layers, seed, scale)


def forward(cfg: EnergyConfig, weights, x) -> np.ndarray:
    """The prediction with the output free: mu_l = W_l f(x_{l-1}) all the way up (E = 0);
    the output neurons x_L are value neurons, so the answer is x_L = mu_L (pre-activation)."""
    f = activations.numpy(cfg.activation)
    x_l = np.atleast_2d(np.asarray(x, dtype=float))
    for l, w in enumerate(_as_list(cfg, weights)):
        x_l = (x_l if l == 0 else f(x_l)) @ w.T
    return x_l


def _as_list(cfg: EnergyConfig, weights) -> list[np.ndarray]:
    return [weights[f"W{l}"] for l in range(1, cfg.n_layers + 1)] if isinstance(weights, dict) else list(weights)


def build(cfg: EnergyConfig, weights) -> Network:
    """x0 (input clamp) -> ... -> xL (target clamp), error neurons e1..eL, W1..WL
    (weights: a list or {"W1": ..}). The clamps' values reach their targets in the same
    step (delay 0), everything else one step later."""
    L, weights = cfg.n_layers, _as_list(cfg, weights)
    pops = [Population("x0", cfg.layers[0], Input())]
    for l in range(1, L):
        pops.append(Population(f"x{l}", cfg.layers[l], Leaky(cfg.tau_x, leak=0.0, activation=cfg.activation)))
    pops.append(Population(f"x{L}", cfg.layers[L], Input(cfg.activation)))
    pops += [Population(f"e{l}", cfg.layers[l], Leaky(cfg.tau_e)) for l in range(1, L + 1)]
    projs = []
    for l in range(1, L + 1):
        projs += [Projection(f"W{l}", f"x{l - 1}", f"e{l}", weight=weights[l - 1], scale=-1.0, rule=Hebbian(cfg.eta),
                             delay=int(l > 1)),
                  Projection(f"x{l}_e{l}", f"x{l}", f"e{l}", kind="one_to_one", signal="value", delay=int(l < L))]
        if l < L:
            projs += [Projection(f"e{l}_x{l}", f"e{l}", f"x{l}", kind="one_to_one", signal="value", scale=-1.0),
                      Projection(f"W{l + 1}T", f"e{l + 1}", f"x{l}", tied=f"W{l + 1}", signal="value",
                                 gain="derivative")]
    return Network(pops, projs, dt=cfg.dt)


def schedule(cfg: EnergyConfig, inputs, targets, batch: int = 1) -> Schedule:
    """Every sample (minibatch of `batch` samples, remainder dropped) twice: relax
    (learn 0), then learn at the relaxed state (learn 1)."""
    return one_pass(cfg.t_pres, inputs, targets, "x0", f"x{cfg.n_layers}", batch, settle=True)


def relaxed_linear(weights: list[np.ndarray], x, y) -> list[np.ndarray]:
    """The minimum of E over the hidden x_l of a linear network (a linear system):
    returns [x_1 .. x_{L-1}]."""
    L = len(weights)
    sizes = [w.shape[0] for w in weights[:-1]]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n = offsets[-1]
    # dE/dx_l = (x_l - W_l x_{l-1}) - W_{l+1}^T (x_{l+1} - W_{l+1} x_l) = 0 for l = 1..L-1
    a, b = np.zeros((n, n)), np.zeros(n)
    for l in range(1, L):
        i = slice(offsets[l - 1], offsets[l])
        w_in, w_out = weights[l - 1], weights[l]
        a[i, i] = np.eye(sizes[l - 1]) + w_out.T @ w_out
        if l > 1:
            a[i, slice(offsets[l - 2], offsets[l - 1])] = -w_in
        else:
            b[i] += w_in @ np.asarray(x, dtype=float)
        if l < L - 1:
            a[i, slice(offsets[l], offsets[l + 1])] = -w_out.T
        else:
            b[i] += w_out.T @ np.asarray(y, dtype=float)
    z = np.linalg.solve(a, b)
    return [z[offsets[l - 1]:offsets[l]] for l in range(1, L)]
