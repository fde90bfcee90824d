"""Metrics of docs/equations.md section 7: angles between matrices, accuracy, errors, and
the backprop reference for the microcircuit's effective feed-forward network."""
from __future__ import annotations

import numpy as np

from neurosim import activations


def angle_deg(a, b) -> float:
    """angle(A, B) = arccos(tr(A^T B) / (||A|| ||B||)) in degrees (NaN if either is 0)."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm == 0:
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(a @ b / norm, -1.0, 1.0))))


def accuracy(outputs, labels) -> float:
    """Fraction of rows whose largest output is the label."""
    return float(np.mean(np.argmax(outputs, axis=1) == np.asarray(labels)))


def mse(outputs, targets) -> float:
    return float(np.mean((np.asarray(outputs) - np.asarray(targets)) ** 2))


def basal_factors(cfg) -> list[float]:
    """k_l with vhat_bas,l = k_l W_l r_{l-1}: g_bas/(g_l+g_bas+g_api) hidden, g_bas/(g_l+g_bas) output."""
    n = cfg.n_layers
    return [cfg.g_bas / (cfg.g_l + cfg.g_bas + (cfg.g_api if l < n else 0.0)) for l in range(1, n + 1)]


def feedforward(cfg, weights: list, x) -> list[np.ndarray]:
    """The effective network the microcircuit computes in the self-predicting state:
    vhat_l = k_l W_l r_{l-1}, r_l = phi(vhat_l). Returns [vhat_1 .. vhat_N] (rows = samples)."""
    phi = activations.numpy(cfg.activation)
    r, out = np.atleast_2d(x), []
    for k, w in zip(basal_factors(cfg), weights):
        v = k * r @ w.T
        out.append(v)
        r = phi(v)
    return out


def backprop_updates(cfg, weights: list, x, u_tgt) -> list[np.ndarray]:
    """Backprop's step on L = 1/2 ||u_tgt - vhat_N||^2 in the effective network, summed
    over the rows of x and u_tgt (one sample: 1-D arrays): delta_N = u_tgt - vhat_N,
    delta_l = phi'(vhat_l) * W_{l+1}^T delta_{l+1}, dW_l = delta_l r_{l-1}^T. This is
    -dL/dW_l divided by k_l k_{l+1} ... k_N, a positive factor per layer, so directions
    and angles are those of the gradient step."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    v = feedforward(cfg, weights, x)
    phi = activations.numpy(cfg.activation)
    rates = [x] + [phi(vl) for vl in v]
    delta = np.atleast_2d(np.asarray(u_tgt, dtype=float)) - v[-1]
    updates = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        updates[l] = delta.T @ rates[l]
        if l > 0:
            delta = activations.derivative(cfg.activation, v[l - 1]) * (delta @ weights[l])
    return updates


def alignment_target(cfg, weights: list, x, l: int) -> np.ndarray:
    """What PAL's noise correlation measures for B_l (l = 1..N-1): the sample mean of
    phi'_l W_{l+1}^T phi'_{l+1}, with phi' at the effective network's vhat for the rows of x."""
    v = feedforward(cfg, weights, x)
    d_l, d_up = (activations.derivative(cfg.activation, v[k]) for k in (l - 1, l))
    return weights[l].T * (d_l.T @ d_up) / len(v[0])


def mean_field_apical(cfg, weights: dict, x, iterations: int = 2000, tol: float = 1e-10,
                      damping: float = 0.5) -> list[np.ndarray]:
    """The apical potentials v_api,l (l = 1..N-1; rows = samples) of the rate circuit at
    its steady state without target or noise, with the given weights ({"W1": .., "B1":
    .., "WIP1": .., "BPI1": ..}; B_l = W_{l+1}^T in mode bp): the fixed point of

        r_0 = x,  u_l = (g_bas W_l r_{l-1} + g_api v_api,l) / (g_l + g_bas + g_api)  (output: no apical)
        u_I,l = (g_den W^IP_l r_l + g_nI u_{l+1}) / (g_l + g_den + g_nI)
        v_api,l = B_l r_{l+1} + B^PI_l phi(u_I,l),   r = phi(u)

    by iteration from v_api = 0, each step moving v_api by `damping` of the way to the
    value the others give (as the leaky somata relax); a ValueError when it does not
    settle (a circuit whose top-down loop has no steady state). For a spiking circuit, whose measured v_api carries the
    spike noise of the layers above and the interneurons, this is the mismatch that its
    learned weights leave in the mean (docs/equations.md section 7)."""
    phi = activations.numpy(cfg.activation)
    n = cfg.n_layers
    x = np.atleast_2d(np.asarray(x, dtype=float))
    top_down = {l: weights[f"W{l + 1}"].T if cfg.feedback == "bp" else weights[f"B{l}"] for l in range(1, n)}
    apical = [np.zeros((len(x), cfg.layers[l])) for l in range(1, n)]
    with np.errstate(over="ignore", invalid="ignore"):  # a loop without a steady state overflows
        for _ in range(iterations):
            r, u = [x], []
            for l in range(1, n + 1):
                hidden = l < n
                g_sum = cfg.g_l + cfg.g_bas + (cfg.g_api if hidden else 0.0)
                drive = cfg.g_bas * r[-1] @ weights[f"W{l}"].T + (cfg.g_api * apical[l - 1] if hidden else 0.0)
                u.append(drive / g_sum)
                r.append(phi(u[-1]))
            new = []
            for l in range(1, n):
                u_i = (cfg.g_den * r[l] @ weights[f"WIP{l}"].T + cfg.g_nI * u[l]) / (cfg.g_l + cfg.g_den + cfg.g_nI)
                new.append(r[l + 1] @ top_down[l].T + phi(u_i) @ weights[f"BPI{l}"].T)
            change = max(np.abs(a - b).max() for a, b in zip(new, apical)) if new else 0.0
            apical = [a + damping * (b - a) for a, b in zip(apical, new)]
            if change < tol:
                return apical
            if not np.isfinite(change):
                break
    raise ValueError(f"the rate circuit's steady state did not settle in {iterations} iterations "
                     f"(last change {change:.3g})")
