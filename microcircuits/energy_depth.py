"""Target alignment of one learning step in a deep linear network (Song et al. 2024, the
depth experiment): prospective configuration, simulated as the rate circuit of
microcircuits.energy, against backprop's gradient step on 1/2 ||y - W_L ... W_1 x||^2.

    alignment = cos(out(W + dW) - out(W), y - out(W)),   out(W) = W_L ... W_1 x

Both steps have the same learning rate lr: backprop's is dW_l = lr delta_l h_{l-1}^T, the
circuit's is eta t_pres = lr, so that at the relaxed state dW_l = lr e_l x_{l-1}^T.
"""
from __future__ import annotations

import math

import numpy as np

from neurosim.backends.torch import TorchSimulator
from neurosim.recording import Recording

from .energy import EnergyConfig, build, relaxed_linear, schedule

LR = 1e-4  # alignment within 1e-4 of its lr -> 0 limit at depth 15
TAU_X, TAU_E, DT = 0.5, 0.1, 0.05  # ms; Euler stable while DT lambda_max(d2E/dx2) / TAU_X < 1 (lambda_max ~ 7)
RELAX = 8.0  # relaxation time in slowest time constants: residual ~ exp(-8) of the slowest mode's share
T_MIN = 20.0  # ms, for shallow nets (and depth 1, where only the error neurons relax)


def random_problem(depth: int, width: int, seed: int):
    """weights W_l ~ N(0, 1/width) (||W x|| ~ ||x||, so the output stays O(1) with depth, while
    the singular values of the product spread), input x ~ N(0, 1/width) and target
    y = out + d with d ~ N(0, 1/width): an error as large as the output itself."""
    rng = np.random.default_rng([seed, depth])
    x = rng.normal(0.0, width ** -0.5, width)
    weights = [rng.normal(0.0, width ** -0.5, (width, width)) for _ in range(depth)]
    y = output(weights, x) + rng.normal(0.0, width ** -0.5, width)
    return weights, x, y


def forward(weights, x) -> list[np.ndarray]:
    """h_0 = x, h_l = W_l h_{l-1}."""
    h = [np.asarray(x, dtype=float)]
    for w in weights:
        h.append(w @ h[-1])
    return h


def output(weights, x) -> np.ndarray:
    return forward(weights, x)[-1]


def target_alignment(before, after, x, y) -> float:
    """cos(change of the output from weights `before` to `after`, y - output before)."""
    out = output(before, x)
    change, wanted = output(after, x) - out, y - out
    return float(change @ wanted / np.linalg.norm(change) / np.linalg.norm(wanted))


def backprop_step(weights, x, y, lr: float = LR) -> list[np.ndarray]:
    """W_l + lr delta_l h_{l-1}^T with delta_L = y - out, delta_{l-1} = W_l^T delta_l."""
    h = forward(weights, x)
    delta, new = y - h[-1], [None] * len(weights)
    for l in reversed(range(len(weights))):
        new[l] = weights[l] + lr * np.outer(delta, h[l])
        delta = weights[l].T @ delta
    return new


def slowest_rate(weights) -> float:
    """The smallest eigenvalue of d2E/dx2 over the hidden layers, sigma_min(D)^2 with
    E = 1/2 ||D z - c||^2 (z = [x_1 .. x_{L-1}]): the hidden activity relaxes as
    exp(-lambda t / tau_x) along its slowest direction; inf without hidden layers."""
    L, n = len(weights), [w.shape[1] for w in weights]
    if L == 1:
        return math.inf
    rows, cols = np.cumsum([0] + [w.shape[0] for w in weights]), np.cumsum([0] + n[1:])
    d = np.zeros((rows[-1], cols[-1]))
    for l in range(1, L + 1):  # e_l = x_l - W_l x_{l-1}
        if l < L:
            d[rows[l - 1]:rows[l], cols[l - 1]:cols[l]] = np.eye(n[l])
        if l > 1:
            d[rows[l - 1]:rows[l], cols[l - 2]:cols[l - 1]] = -weights[l - 1]
    return float(np.linalg.svd(d, compute_uv=False)[-1] ** 2)


def presentation_time(weights) -> float:
    """RELAX slowest time constants TAU_X / lambda_min, in whole 5 ms (an exact number of DT
    steps), at least T_MIN."""
    return max(T_MIN, 5.0 * math.ceil(RELAX * TAU_X / slowest_rate(weights) / 5.0))


def prospective_step(weights, x, y, lr: float = LR, t_pres: float | None = None):
    """One sample through the simulated circuit (torch, float64): relax for t_pres, then learn
    for t_pres with eta = lr / t_pres. Returns the weights after the step, the relative
    residual ||x_sim - x*|| / ||x*|| of the hidden activity at the end of the relaxation
    against the minimum of E (relaxed_linear; 0 without hidden layers) and t_pres."""
    L = len(weights)
    t_pres = presentation_time(weights) if t_pres is None else t_pres
    cfg = EnergyConfig(layers=[weights[0].shape[1]] + [w.shape[0] for w in weights], tau_x=TAU_X, tau_e=TAU_E,
                       eta=lr / t_pres, t_pres=t_pres, dt=DT)
    hidden = [f"x{l}" for l in range(1, L)]
    run = TorchSimulator(build(cfg, weights), dtype="float64").run(
        schedule(cfg, [x], [y]), Recording({name: ["z"] for name in hidden}, dt=t_pres))
    residual = 0.0
    if hidden:
        relaxed = np.concatenate([run.traces[f"{name}.z"].values[1] for name in hidden])
        exact = np.concatenate(relaxed_linear(weights, x, y))
        residual = float(np.linalg.norm(relaxed - exact) / np.linalg.norm(exact))
    return [run.final_weights[f"W{l}"] for l in range(1, L + 1)], residual, t_pres
