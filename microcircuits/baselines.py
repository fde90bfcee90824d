"""The baselines every principle is compared with: the same feed-forward network
(r_l = f(W_l r_{l-1}), microcircuits.rate_models.feedforward) trained by per-sample (or
minibatch) gradient steps on L = 1/2 ||y - r_L||^2, with the error sent back through
W_{l+1}^T (backprop, "bp") or through fixed random matrices B_{l+1} of the same shape
(feedback alignment, "fa"):

    delta_L = f'(v_L) (y - r_L),   delta_l = f'(v_l) (M_{l+1} delta_{l+1}),   dW_l = eta delta_l r_{l-1}^T
"""
from __future__ import annotations

import numpy as np

from neurosim import activations

RULES = ("bp", "fa")


def train(weights: list[np.ndarray], x, y, hidden: str, output: str, rule: str, eta: float, seed: int,
          batch: int = 1) -> list[np.ndarray]:
    """One pass over (x, y) in the given order; returns the new weights (mean step per
    minibatch; eta per sample)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    ws = [w.copy() for w in weights]
    rng = np.random.default_rng(seed + 7)
    feedback = [w.T for w in ws] if rule == "bp" else \
        [rng.normal(0.0, np.std(w) or 1.0 / np.sqrt(w.shape[0]), w.T.shape) for w in ws]
    acts = [hidden] * (len(ws) - 1) + [output]
    for start in range(0, len(x) - batch + 1, batch):
        r, v = [np.atleast_2d(x[start:start + batch])], []
        for w, a in zip(ws, acts):
            v.append(r[-1] @ w.T)
            r.append(activations.numpy(a)(v[-1]))
        delta = activations.derivative(output, v[-1]) * (y[start:start + batch] - r[-1])
        for l in range(len(ws) - 1, -1, -1):
            step = eta * delta.T @ r[l] / batch
            if l:
                back = delta @ (ws[l] if rule == "bp" else feedback[l].T)
                delta = activations.derivative(acts[l - 1], v[l - 1]) * back
            ws[l] = ws[l] + step
            if rule == "bp":
                feedback[l] = ws[l].T
    return ws
