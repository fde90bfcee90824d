"""Dynamic inversion (Podlaski & Machens 2020; docs/equations.md section 5) as a rate
circuit. The forward pass a_l = W_l h_{l-1} + b_l, h_l = f(a_l) (f = activation; the
output layer is linear, h_L = a_L) runs in instantaneous populations (rates.Leaky with
tau = dt); the output error delta_L = y - h_L. Each layer l = L .. 2 inverts its error
delta_l through its own forward weights W_l in a fast loop

    tau_f dr_y/dt = -alpha r_y + W_l r_x - delta_l
    tau_f dr_x/dt = -r_x + B_l r_y

(shared W_l; B_l = -W_l^T tied ("transpose"), -W_l^T taken once at the start and then
fixed ("initial_transpose", the paper's code), or a fixed random matrix ("random"),
which `stabilize` makes stable as the paper's code does; see `stabilized_feedback`),
whose steady state r_x = B (W B - alpha I)^-1 delta (with B = -W^T:
W^T (W W^T + alpha I)^-1 delta) is passed through the derivative of the layer below, as
the paper's code linearises the nonlinearity:

    delta_{l-1} = f'(a_{l-1}) * r_x          (rates.Product, tau = dt; for linear
                                              layers delta_{l-1} = r_x itself)

feedback = "backprop" replaces the loop by r_x = W_l^T delta_l (the backprop baseline in
the same circuit, with the same biases, data and steps). The delta rule learns at every
step (with `settle`, only in the second presentation of each minibatch, once the loops
have settled):

    dW_l/dt = eta delta_l h_{l-1}^T,   db_l/dt = eta delta_l

`build` refuses a loop whose matrix [[-I, B], [W, -alpha I]] has an eigenvalue with
real part >= 0 (alpha = 0 and an expanding layer, n_l > n_{l-1}, is one) before anything
runs; `epoch_metrics` records the largest real part per loop (and for a fixed B its
angle to -W^T) as W learns.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import solve_continuous_lyapunov

from neurosim import activations
from neurosim.models.rate import Input, Leaky, Product
from neurosim.network import Network, Population, Projection
from neurosim.rules import Hebbian

from .dendritic import uniform_range
from .metrics import angle_deg
from .rate_models import check_config, feedforward, forward_weights, from_dict, one_pass

RULE = "dynamic_inversion"
FEEDBACK = ("transpose", "initial_transpose", "random", "backprop")


@dataclass
class Config:
    """Times in ms, eta in 1/ms. init_w: W_l ~ N(0, init_w^2 / n_{l-1}), or U[lo, hi] for a
    pair; with bias, b_l ~ U[-init_bias, init_bias] (or U[lo, hi])."""

    layers: list = field(default_factory=lambda: [30, 20, 10])
    feedback: str = "transpose"
    alpha: float = 0.01
    tau_f: float = 0.1
    eta: float = 0.01
    init_w: float | list = 1.0
    t_pres: float = 5.0
    dt: float = 0.01
    activation: str = "linear"  # of the hidden layers; the output layer is linear
    bias: bool = False
    init_bias: float | list = 0.0
    settle: bool = False
    stabilize: bool = False  # random B: lower each loop's spectral abscissa below STABLE_BELOW first

    def __post_init__(self):
        check_config(self, ("tau_f", "t_pres", "dt"), constants=("tau_f",))
        if self.feedback not in FEEDBACK:
            raise ValueError(f"feedback must be one of {FEEDBACK}, got {self.feedback!r}")
        for name in ("alpha", "eta"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("init_w", "init_bias"):
            uniform_range(name, getattr(self, name))  # a scale >= 0 or a pair [lo, hi]
        for name in ("bias", "settle", "stabilize"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.stabilize and self.feedback != "random":
            raise ValueError(f"stabilize applies to feedback = 'random' only, got feedback = {self.feedback!r}")

    from_dict = classmethod(from_dict)

    @property
    def n_layers(self) -> int:
        return len(self.layers) - 1

    @property
    def rule(self) -> str:
        return "backprop" if self.feedback == "backprop" else RULE


def initial_weights(cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """W_l as cfg.init_w says; random feedback: B_l ~ N(0, 1 / n_l), l >= 2 (generator
    seed + 1), with `stabilize` then made stable by `stabilized_feedback`; initial_transpose:
    B_l = -W_l^T; bias: bias_l (n_l x 1, generator seed + 2)."""
    if np.isscalar(cfg.init_w):
        weights = forward_weights(cfg.layers, seed, cfg.init_w)
    else:
        rng, (lo, hi) = np.random.default_rng(seed), uniform_range("init_w", cfg.init_w)
        weights = {f"W{l}": rng.uniform(lo, hi, (cfg.layers[l], cfg.layers[l - 1])) for l in range(1, cfg.n_layers + 1)}
    if cfg.feedback == "random":
        rng = np.random.default_rng(seed + 1)
        weights.update({f"B{l}": rng.normal(0.0, 1.0 / np.sqrt(cfg.layers[l]), (cfg.layers[l - 1], cfg.layers[l]))
                        for l in range(2, cfg.n_layers + 1)})
        if cfg.stabilize:
            for l in range(2, cfg.n_layers + 1):
                weights[f"B{l}"] = stabilized_feedback(weights[f"W{l}"], weights[f"B{l}"], cfg.alpha, layer=l)
    elif cfg.feedback == "initial_transpose":
        weights.update({f"B{l}": -weights[f"W{l}"].T.copy() for l in range(2, cfg.n_layers + 1)})
    if cfg.bias:
        lo, hi = uniform_range("init_bias", cfg.init_bias)
        rng = np.random.default_rng(seed + 2)
        weights.update({f"bias{l}": rng.uniform(lo, hi, (cfg.layers[l], 1)) for l in range(1, cfg.n_layers + 1)})
    return weights


def feedback_matrix(cfg: Config, weights: dict[str, np.ndarray], l: int) -> np.ndarray:
    """B_l of the loop of layer l."""
    return -weights[f"W{l}"].T if cfg.feedback == "transpose" else weights[f"B{l}"]


def loop_matrix(w: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """d/dt (r_x, r_y) = [[-I, B], [W, -alpha I]] (r_x, r_y) (in units of 1/tau_f)."""
    n_out, n_in = w.shape
    return np.block([[-np.eye(n_in), b], [w, -alpha * np.eye(n_out)]])


# Smoothed spectral abscissa descent on B (the paper's code: sim_tools.py SSA_opt at
# wpodlaski/dynamic-inversion 311a773, after Vanbiervliet et al. 2009 and Hennequin et al.
# 2014): its step, its stopping point and its step counts.
SSA_RATE, STABLE_BELOW, SSA_MIN_STEPS, SSA_MAX_STEPS = 0.05, -0.01, 10, 200
SSA_SHIFT = 1e-3  # s = spectral abscissa + SSA_SHIFT keeps both Lyapunov equations regular


def stabilized_feedback(w: np.ndarray, b: np.ndarray, alpha: float, layer: int = 2) -> np.ndarray:
    """B moved until the loop matrix M = [[-I, B], [W, -alpha I]] has every eigenvalue's real
    part below STABLE_BELOW, by gradient steps on the smoothed spectral abscissa of M,
    taken on B's block only (W stays as it is):

        (M - s I)^T Q + Q (M - s I) = -2 I,   (M - s I) P + P (M - s I)^T = -2 I
        B <- B - SSA_RATE [Q P / tr(Q P)]_(x rows, y columns),   s = max Re eig(M) + SSA_SHIFT

    at least SSA_MIN_STEPS steps, at most SSA_MAX_STEPS; a B still unstable then is
    refused with a ValueError naming the layer."""
    n_in = w.shape[1]
    b = b.copy()
    for step in range(SSA_MAX_STEPS + 1):
        m = loop_matrix(w, b, alpha)
        largest = spectral_abscissa(m)
        if step >= SSA_MIN_STEPS and largest < STABLE_BELOW:
            return b
        if step == SSA_MAX_STEPS:
            break
        shifted = m - (largest + SSA_SHIFT) * np.eye(len(m))
        two = 2.0 * np.eye(len(m))
        grad = solve_continuous_lyapunov(shifted.T, -two) @ solve_continuous_lyapunov(shifted, -two)
        b -= SSA_RATE * (grad / np.trace(grad))[:n_in, n_in:]
    raise ValueError(f"stabilize: the random feedback B{layer} of the inversion loop of layer {layer} is still unstable "
                     f"after {SSA_MAX_STEPS} steps (largest real part {largest:+.3g}; needs < {STABLE_BELOW})")


def spectral_abscissa(m: np.ndarray) -> float:
    """The largest real part of the eigenvalues of m (a loop is stable below 0)."""
    return float(np.max(np.linalg.eigvals(m).real))


def largest_real_eigenvalue(cfg: Config, weights: dict[str, np.ndarray], l: int) -> float:
    """The spectral abscissa of loop l's matrix."""
    return spectral_abscissa(loop_matrix(weights[f"W{l}"], feedback_matrix(cfg, weights, l), cfg.alpha))


def check_stable(cfg: Config, weights: dict[str, np.ndarray]) -> None:
    """Every loop's matrix has only eigenvalues with negative real part, or a ValueError
    names the layer."""
    for l in range(2, cfg.n_layers + 1 if cfg.feedback != "backprop" else 2):
        largest = largest_real_eigenvalue(cfg, weights, l)
        if largest >= -1e-9:
            n_in, n_out = cfg.layers[l - 1], cfg.layers[l]
            hint = (f"; layer {l} expands ({n_in} -> {n_out}), so W B is singular and alpha = {cfg.alpha} leaves "
                    "its null space undamped: use alpha > 0" if n_out > n_in else "")
            raise ValueError(f"the inversion loop of layer {l} is unstable: an eigenvalue of [[-I, B], [W, -alpha I]] "
                             f"has real part {largest:+.3g} >= 0{hint}")


def build(cfg: Config, weights: dict[str, np.ndarray]) -> Network:
    """The circuit above; the clamps x0, y (and the bias unit "one") reach their targets in
    the same step (delay 0), everything else one step later."""
    check_stable(cfg, weights)
    L, dt, linear = cfg.n_layers, cfg.dt, cfg.activation == "linear"
    fast = Leaky(tau=dt)
    pops = [Population("x0", cfg.layers[0], Input()), Population("y", cfg.layers[-1], Input()),
            Population(f"delta{L}", cfg.layers[-1], fast)]
    pops += [Population(f"h{l}", cfg.layers[l], Leaky(tau=dt, activation=cfg.activation if l < L else "linear"))
             for l in range(1, L + 1)]
    projs = [Projection("y_delta", "y", f"delta{L}", kind="one_to_one", signal="value", delay=0),
             Projection("h_delta", f"h{L}", f"delta{L}", kind="one_to_one", signal="value", scale=-1.0)]
    if cfg.bias:
        pops.append(Population("one", 1, Input()))

    def error(l):  # the population that holds delta_l
        return f"delta{l}" if l == L or not linear else f"rx{l + 1}"

    for l in range(1, L + 1):
        rule = Hebbian(cfg.eta, post=error(l))
        projs.append(Projection(f"W{l}", "x0" if l == 1 else f"h{l - 1}", f"h{l}", weight=weights[f"W{l}"],
                                signal="value" if l == 1 else "rate", rule=rule, delay=int(l > 1)))
        if cfg.bias:
            projs.append(Projection(f"bias{l}", "one", f"h{l}", weight=weights[f"bias{l}"], signal="value",
                                    rule=rule, delay=0))
        if l == 1:
            continue
        pops.append(Population(f"rx{l}", cfg.layers[l - 1], fast if cfg.feedback == "backprop" else
                               Leaky(cfg.tau_f)))
        if cfg.feedback == "backprop":
            projs.append(Projection(f"B{l}", error(l), f"rx{l}", tied=f"W{l}", signal="value"))
        else:
            pops.append(Population(f"ry{l}", cfg.layers[l], Leaky(cfg.tau_f, leak=cfg.alpha)))
            feedback = dict(tied=f"W{l}", scale=-1.0) if cfg.feedback == "transpose" else \
                dict(weight=weights[f"B{l}"])
            projs += [Projection(f"W{l}_loop", f"rx{l}", f"ry{l}", shared=f"W{l}", signal="value"),
                      Projection(f"delta{l}_ry{l}", error(l), f"ry{l}", kind="one_to_one", signal="value",
                                 scale=-1.0),
                      Projection(f"B{l}", f"ry{l}", f"rx{l}", signal="value", **feedback)]
        if not linear:  # delta_{l-1} = f'(a_{l-1}) r_x
            pops.append(Population(f"delta{l - 1}", cfg.layers[l - 1], Product(tau=dt)))
            projs += [Projection(f"rx{l}_delta{l - 1}", f"rx{l}", f"delta{l - 1}", kind="one_to_one",
                                 signal="value", port="input"),
                      Projection(f"h{l - 1}_delta{l - 1}", f"h{l - 1}", f"delta{l - 1}", kind="one_to_one",
                                 signal="derivative", port="gain")]
    return Network(pops, projs, dt=dt)


def schedule(cfg: Config, x, y, batch: int = 1):
    """Every minibatch once (with cfg.settle twice, learning off then on); the bias unit
    holds 1."""
    sched = one_pass(cfg.t_pres, x, y, "x0", "y", batch, settle=cfg.settle)
    if cfg.bias:
        sched.data["one"] = np.ones(sched.data["x0"].shape[:-1] + (1,))
    return sched


def forward(cfg: Config, weights: dict[str, np.ndarray], x) -> np.ndarray:
    L = cfg.n_layers
    biases = [weights[f"bias{l}"] for l in range(1, L + 1)] if cfg.bias else None
    return feedforward([weights[f"W{l}"] for l in range(1, L + 1)], x, cfg.activation, "linear", biases)[-1]


def inverted_error(w: np.ndarray, b: np.ndarray, alpha: float, delta) -> np.ndarray:
    """r_x = B (W B - alpha I)^-1 delta, the loop's steady state."""
    return b @ np.linalg.solve(w @ b - alpha * np.eye(len(w)), delta)


def steady_errors(cfg: Config, weights: dict[str, np.ndarray], x, y) -> list[np.ndarray]:
    """[delta_1 .. delta_L] of one sample at the loops' steady states: delta_L = y - h_L,
    delta_{l-1} = f'(a_{l-1}) * r_x with r_x = inverted_error(W_l, B_l, alpha, delta_l)
    (backprop: r_x = W_l^T delta_l)."""
    L = cfg.n_layers
    h, a = [np.ravel(x)], []
    for l in range(1, L + 1):
        a.append(weights[f"W{l}"] @ h[-1] + (np.ravel(weights[f"bias{l}"]) if cfg.bias else 0.0))
        h.append(activations.numpy(cfg.activation if l < L else "linear")(a[-1]))
    deltas = [np.ravel(y) - h[-1]]
    for l in range(L, 1, -1):
        w = weights[f"W{l}"]
        r_x = w.T @ deltas[0] if cfg.feedback == "backprop" else \
            inverted_error(w, feedback_matrix(cfg, weights, l), cfg.alpha, deltas[0])
        deltas.insert(0, activations.derivative(cfg.activation, a[l - 2]) * r_x)
    return deltas


def epoch_metrics(cfg: Config, weights: dict[str, np.ndarray], x_test) -> dict[str, float]:
    """Per loop l: the largest real part of its matrix's eigenvalues (the stability check
    as W learns) and, for a fixed B, the angle between B_l and -W_l^T (degrees)."""
    out = {}
    for l in range(2, cfg.n_layers + 1 if cfg.feedback != "backprop" else 2):
        out[f"loop{l}_max_real_eig"] = largest_real_eigenvalue(cfg, weights, l)
        if cfg.feedback != "transpose":
            out[f"angle_B{l}_minus_W{l}T_deg"] = angle_deg(weights[f"B{l}"], -weights[f"W{l}"].T)
    return out
