"""Dynamic inversion (Podlaski & Machens 2020; docs/equations.md section 5) as a rate
circuit, for linear layers. The forward pass h_l = W_l h_{l-1} runs in instantaneous populations
(rates.Leaky with tau = dt); the output error delta_L = y - h_L. Each layer l = L .. 2
inverts its error delta_l through its own forward weights W_l in a fast loop

    tau_f dr_y/dt = -alpha r_y + W_l r_x - delta_l
    tau_f dr_x/dt = -r_x + B_l r_y

(shared W_l; B_l = -W_l^T, tied, or a fixed random matrix), whose steady state
r_x = B (W B - alpha I)^-1 delta (with B = -W^T: W^T (W W^T + alpha I)^-1 delta) is the
error of the layer below, delta_{l-1} = r_x. The delta rule learns at every step:

    dW_l/dt = eta delta_l h_{l-1}^T

`build` refuses a loop whose matrix [[-I, B], [W, -alpha I]] has an eigenvalue with
real part >= 0 (alpha = 0 and an expanding layer, n_l > n_{l-1}, is one) before anything runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosim.models.rate import Input, Leaky
from neurosim.network import Network, Population, Projection
from neurosim.rules import Hebbian

from .rate_models import check_config, feedforward, forward_weights, from_dict, one_pass

RULE = "dynamic_inversion"
FEEDBACK = ("transpose", "random")


@dataclass
class Config:
    """Times in ms, eta in 1/ms; the layers are linear."""

    layers: list = field(default_factory=lambda: [30, 20, 10])
    feedback: str = "transpose"
    alpha: float = 0.01
    tau_f: float = 0.1
    eta: float = 0.01
    init_w: float = 1.0
    t_pres: float = 5.0
    dt: float = 0.01

    def __post_init__(self):
        check_config(self, ("tau_f", "t_pres", "dt"), constants=("tau_f",))
        if self.feedback not in FEEDBACK:
            raise ValueError(f"feedback must be one of {FEEDBACK}, got {self.feedback!r}")
        for name in ("alpha", "eta"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    from_dict = classmethod(from_dict)

    @property
    def n_layers(self) -> int:
        return len(self.layers) - 1


def initial_weights(cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """W_l ~ N(0, init_w^2 / n_{l-1}); with random feedback also B_l ~ N(0, 1 / n_l), l >= 2."""
    weights = forward_weights(cfg.layers, seed, cfg.init_w)
    if cfg.feedback == "random":
        rng = np.random.default_rng(seed + 1)
        weights.update({f"B{l}": rng.normal(0.0, 1.0 / np.sqrt(cfg.layers[l]), (cfg.layers[l - 1], cfg.layers[l]))
                        for l in range(2, cfg.n_layers + 1)})
    return weights


def loop_matrix(w: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """d/dt (r_x, r_y) = [[-I, B], [W, -alpha I]] (r_x, r_y) (in units of 1/tau_f)."""
    n_out, n_in = w.shape
    return np.block([[-np.eye(n_in), b], [w, -alpha * np.eye(n_out)]])


def check_stable(cfg: Config, weights: dict[str, np.ndarray]) -> None:
    """Every loop's matrix has only eigenvalues with negative real part, or a ValueError
    names the layer."""
    for l in range(2, cfg.n_layers + 1):
        w = weights[f"W{l}"]
        b = -w.T if cfg.feedback == "transpose" else weights[f"B{l}"]
        largest = float(np.max(np.linalg.eigvals(loop_matrix(w, b, cfg.alpha)).real))
        if largest >= -1e-9:
            n_in, n_out = cfg.layers[l - 1], cfg.layers[l]
            hint = (f"; layer {l} expands ({n_in} -> {n_out}), so W B is singular and alpha = {cfg.alpha} leaves "
                    "its null space undamped: use alpha > 0" if n_out > n_in else "")
            raise ValueError(f"the inversion loop of layer {l} is unstable: an eigenvalue of [[-I, B], [W, -alpha I]] "
                             f"has real part {largest:+.3g} >= 0{hint}")


def build(cfg: Config, weights: dict[str, np.ndarray]) -> Network:
    """The circuit above; the clamps x0 and y reach their targets in the same step
    (delay 0), everything else one step later."""
    check_stable(cfg, weights)
    L, dt = cfg.n_layers, cfg.dt
    fast = Leaky(tau=dt)
    pops = [Population("x0", cfg.layers[0], Input()), Population("y", cfg.layers[-1], Input()),
            Population(f"delta{L}", cfg.layers[-1], fast)]
    pops += [Population(f"h{l}", cfg.layers[l], fast) for l in range(1, L + 1)]
    projs = [Projection("y_delta", "y", f"delta{L}", kind="one_to_one", signal="value", delay=0),
             Projection("h_delta", f"h{L}", f"delta{L}", kind="one_to_one", signal="value", scale=-1.0)]
    for l in range(1, L + 1):
        error = f"delta{L}" if l == L else f"rx{l + 1}"
        projs.append(Projection(f"W{l}", "x0" if l == 1 else f"h{l - 1}", f"h{l}", weight=weights[f"W{l}"],
                                signal="value", rule=Hebbian(cfg.eta, post=error), delay=int(l > 1)))
        if l == 1:
            continue
        pops += [Population(f"ry{l}", cfg.layers[l], Leaky(cfg.tau_f, leak=cfg.alpha)),
                 Population(f"rx{l}", cfg.layers[l - 1], Leaky(cfg.tau_f))]
        feedback = dict(tied=f"W{l}", scale=-1.0) if cfg.feedback == "transpose" else dict(weight=weights[f"B{l}"])
        projs += [Projection(f"W{l}_loop", f"rx{l}", f"ry{l}", shared=f"W{l}", signal="value"),
                  Projection(f"delta{l}_ry{l}", error, f"ry{l}", kind="one_to_one", signal="value", scale=-1.0),
                  Projection(f"B{l}", f"ry{l}", f"rx{l}", signal="value", **feedback)]
    return Network(pops, projs, dt=dt)


def schedule(cfg: Config, x, y, batch: int = 1):
    return one_pass(cfg.t_pres, x, y, "x0", "y", batch)


def forward(cfg: Config, weights: dict[str, np.ndarray], x) -> np.ndarray:
    return feedforward([weights[f"W{l}"] for l in range(1, cfg.n_layers + 1)], x, "linear", "linear")[-1]


def inverted_error(w: np.ndarray, b: np.ndarray, alpha: float, delta) -> np.ndarray:
    """r_x = B (W B - alpha I)^-1 delta, the loop's steady state."""
    return b @ np.linalg.solve(w @ b - alpha * np.eye(len(w)), delta)
