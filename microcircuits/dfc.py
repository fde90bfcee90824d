"""Deep feedback control with strong feedback (Meulemans et al. 2021, 2022;
docs/equations.md section 4) as a rate circuit. Layer l has a basal input W_l r_{l-1}, an apical one
a_l = Q_l u + n_l (n_l: low-passed noise, std sigma), a soma and the basal prediction b_l
(what the soma would be without the apical input), both filtered alike:

    tau_v dv_l/dt = -v_l + W_l r_{l-1} + a_l,  r_l = f(v_l)
    tau_v db_l/dt = -b_l + W_l r_{l-1}         (so v_l - b_l = a_l low-passed: the somatic
                                                relaxation after a new sample is not an error)
    e = r_L* - r_L,   r_L* = lam y + (1 - lam) r_L^ff    (lam = 1: strong feedback, r_L* = y)
    u = u_int + k_p e,   tau_u du_int/dt = e - alpha u_int

so that at the steady state e = alpha~ u, alpha~ = alpha / (1 + alpha k_p), and
u_ss = (J Q + alpha~ I)^-1 delta for delta = r_L* - r_L^ff and J = dr_L/dv. Plasticity,
both at once, always on (with cfg.settle: on once each minibatch has settled):

    dW_l/dt = eta_w (f(v_l) - f(b_l)) r_{l-1}^T                    (somatic minus basal)
    dQ_l/dt = -eta_q a_l u_hp^T - beta Q_l                         (u_hp = u - its low-pass)

a_l, e, u and u_hp are instantaneous (rate.Leaky with tau = dt: one step late); the
feed-forward r^ff for lam < 1 runs in populations ff_l that share W_l. With an
instantaneous b_l = W_l r_{l-1} instead, f(v_l) - f(b_l) after each switch of sample
carries the soma's lag (v_l(old) - b_l(new)), a term anti-Hebbian in consecutive inputs
that dominated the hidden layers' updates (docs/results.md section 5).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from neurosim.models.rate import Input, Leaky
from neurosim.network import Network, Population, Projection
from neurosim.noise import WhiteNoise
from neurosim.rules import Hebbian

from .rate_models import check_config, feedforward, forward_weights, from_dict, one_pass

RULE = "strong_dfc"
Q_STARTS = ("random", "transpose", "xavier")


@dataclass
class Config:
    """Times in ms, learning rates in 1/ms. The controller needs tau_u >= tau_v: a faster
    integral than the somata it drives rings (docs/results.md section 5). settle = true
    shows every minibatch twice, plasticity off then on (updates at the controlled steady
    state, DFC-SS of Meulemans et al. 2021)."""

    layers: list = field(default_factory=lambda: [4, 8, 2])
    activation: str = "tanh"
    output_activation: str = "linear"
    tau_v: float = 1.0
    tau_u: float = 1.0
    k_p: float = 2.0
    alpha: float = 0.01
    lam: float = 1.0
    sigma: float = 0.0
    tau_noise: float = 1.0
    tau_hp: float = 10.0
    eta_w: float = 0.01
    eta_q: float = 0.0
    beta: float = 0.0
    init_w: float = 1.0
    init_q: float = 0.1
    q_start: str = "random"
    settle: bool = False
    t_pres: float = 10.0
    dt: float = 0.05
    sleep_epochs: int = 0  # sleep phases (Q learns from noise, W frozen) before each epoch
    sleep_init_epochs: int = 0  # and before the first epoch only
    sleep_sigma: float = 0.1
    sleep_eta_q: float = 0.5

    def __post_init__(self):
        check_config(self, ("tau_v", "tau_u", "tau_noise", "tau_hp", "t_pres", "dt"),
                     constants=("tau_v", "tau_u", "tau_noise", "tau_hp"))
        if not isinstance(self.settle, bool):
            raise ValueError(f"settle must be true or false, got {self.settle!r}")
        if self.q_start not in Q_STARTS:
            raise ValueError(f"q_start must be one of {Q_STARTS}, got {self.q_start!r}")
        if not 0 < self.lam <= 1:
            raise ValueError(f"lam must lie in (0, 1] (1: strong feedback), got {self.lam!r}")
        for name in ("sleep_epochs", "sleep_init_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("k_p", "alpha", "sigma", "beta", "eta_w", "eta_q", "init_q", "sleep_sigma", "sleep_eta_q"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    from_dict = classmethod(from_dict)

    @property
    def n_layers(self) -> int:
        return len(self.layers) - 1

    @property
    def alpha_tilde(self) -> float:
        return self.alpha / (1.0 + self.alpha * self.k_p)

    def act(self, l: int) -> str:
        return self.output_activation if l == self.n_layers else self.activation


def initial_weights(cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """W_l ~ N(0, init_w^2 / n_{l-1}); Q_l ~ N(0, init_q^2 / n_L) ("random"); the paper
    code's start ("xavier": Q_l ~ N(0, 2 / (n_l + n_L)) below the output, Q_L = I, so J Q
    starts near J_L, stable for a linear or monotone output); or init_q (W_L .. W_{l+1})^T
    ("transpose": the linear part of J^T, so that J Q starts near J J^T, whose eigenvalues
    are positive and the controller stable)."""
    weights = forward_weights(cfg.layers, seed, cfg.init_w)
    L, n_out = cfg.n_layers, cfg.layers[-1]
    if cfg.q_start in ("random", "xavier"):
        rng = np.random.default_rng(seed + 1)
        scale = {l: cfg.init_q / np.sqrt(n_out) if cfg.q_start == "random" else np.sqrt(2.0 / (cfg.layers[l] + n_out))
                 for l in range(1, L + 1)}
        weights.update({f"Q{l}": rng.normal(0.0, scale[l], (cfg.layers[l], n_out)) for l in range(1, L + 1)})
        if cfg.q_start == "xavier":
            weights[f"Q{L}"] = np.eye(n_out)
        return weights
    back = np.eye(n_out)
    for l in range(L, 0, -1):
        weights[f"Q{l}"] = cfg.init_q * back.T
        back = back @ weights[f"W{l}"]
    return weights


def build(cfg: Config, weights: dict[str, np.ndarray]) -> Network:
    """The circuit above; the clamps x0 and y reach their targets in the same step
    (delay 0), everything else one step later."""
    L, dt = cfg.n_layers, cfg.dt
    fast = Leaky(tau=dt)
    pops = [Population("x0", cfg.layers[0], Input()), Population("y", cfg.layers[-1], Input())]
    projs = []
    for l in range(1, L + 1):
        n, f = cfg.layers[l], cfg.act(l)
        pops += [Population(f"b{l}", n, Leaky(cfg.tau_v, activation=f)), Population(f"a{l}", n, fast),
                 Population(f"v{l}", n, Leaky(cfg.tau_v, activation=f)), Population(f"d{l}", n, fast)]
        source, delay = ("x0", 0) if l == 1 else (f"v{l - 1}", 1)
        projs += [Projection(f"W{l}", source, f"b{l}", weight=weights[f"W{l}"], rule=Hebbian(cfg.eta_w, post=f"d{l}"),
                             delay=delay),
                  Projection(f"W{l}_v{l}", source, f"v{l}", shared=f"W{l}", delay=delay),
                  Projection(f"Q{l}", "u", f"a{l}", weight=weights[f"Q{l}"], signal="value",
                             rule=Hebbian(-cfg.eta_q, pre="u_hp", decay=cfg.beta)),
                  Projection(f"a{l}_v{l}", f"a{l}", f"v{l}", kind="one_to_one", signal="value"),
                  Projection(f"v{l}_d{l}", f"v{l}", f"d{l}", kind="one_to_one"),
                  Projection(f"b{l}_d{l}", f"b{l}", f"d{l}", kind="one_to_one", scale=-1.0)]
        if cfg.sigma:
            # n_l: tau_noise dn/dt = -n + sigma sqrt(2 tau_noise) xi has standard deviation sigma
            pops.append(Population(f"n{l}", n, Leaky(cfg.tau_noise), WhiteNoise(cfg.sigma * np.sqrt(2.0))))
            projs.append(Projection(f"n{l}_a{l}", f"n{l}", f"a{l}", kind="one_to_one", signal="value"))
        if cfg.lam < 1:
            pops.append(Population(f"ff{l}", n, Leaky(tau=dt, activation=f)))
            projs.append(Projection(f"W{l}_ff", "x0" if l == 1 else f"ff{l - 1}", f"ff{l}", shared=f"W{l}",
                                    delay=int(l > 1)))
    pops += [Population("e", cfg.layers[-1], fast), Population("u_int", cfg.layers[-1], Leaky(cfg.tau_u, leak=cfg.alpha)),
             Population("u", cfg.layers[-1], fast), Population("u_low", cfg.layers[-1], Leaky(cfg.tau_hp)),
             Population("u_hp", cfg.layers[-1], fast)]
    projs += [Projection("y_e", "y", "e", kind="one_to_one", signal="value", scale=cfg.lam, delay=0),
              Projection("r_e", f"v{L}", "e", kind="one_to_one", scale=-1.0),
              Projection("e_uint", "e", "u_int", kind="one_to_one", signal="value"),
              Projection("uint_u", "u_int", "u", kind="one_to_one", signal="value"),
              Projection("e_u", "e", "u", kind="one_to_one", signal="value", scale=cfg.k_p),
              Projection("u_u_low", "u", "u_low", kind="one_to_one", signal="value"),
              Projection("u_u_hp", "u", "u_hp", kind="one_to_one", signal="value"),
              Projection("low_u_hp", "u_low", "u_hp", kind="one_to_one", signal="value", scale=-1.0)]
    if cfg.lam < 1:
        projs.append(Projection("ff_e", f"ff{L}", "e", kind="one_to_one", scale=1.0 - cfg.lam))
    return Network(pops, projs, dt=dt)


def sleep_config(cfg: Config) -> Config:
    """The sleep phase (Meulemans et al. 2022, the feedback learned apart from W): W
    frozen, Q learning from the apical noise (sigma = sleep_sigma, eta_q = sleep_eta_q)
    once the controller has settled on each sample (settle: in the transient after a
    switch the rule shrank Q towards the edge of stability). The runner gives it the
    network's own feed-forward outputs as targets, so the output error carries no label."""
    return replace(cfg, eta_w=0.0, eta_q=cfg.sleep_eta_q, sigma=cfg.sleep_sigma, lam=1.0, settle=True,
                   sleep_epochs=0, sleep_init_epochs=0)


def sleep_phases(cfg: Config, epoch: int) -> int:
    """How many sleep phases precede wake epoch `epoch` (0-based)."""
    return cfg.sleep_epochs + (cfg.sleep_init_epochs if epoch == 0 else 0)


def schedule(cfg: Config, x, y, batch: int = 1):
    """Every minibatch once, learning on; with cfg.settle twice: plasticity off while the
    controller settles, then on at the controlled state."""
    return one_pass(cfg.t_pres, x, y, "x0", "y", batch, settle=cfg.settle)


def forward(cfg: Config, weights: dict[str, np.ndarray], x) -> np.ndarray:
    """The output without feedback (u = 0)."""
    return feedforward([weights[f"W{l}"] for l in range(1, cfg.n_layers + 1)], x, cfg.activation,
                       cfg.output_activation)[-1]


def jacobian(cfg: Config, weights: dict[str, np.ndarray], x) -> np.ndarray:
    """J = dr_L/dv at the feed-forward state of one sample x: (n_L, sum_l n_l), the
    blocks for v_1 .. v_L side by side."""
    from neurosim import activations

    ws = [weights[f"W{l}"] for l in range(1, cfg.n_layers + 1)]
    v, r = [], np.asarray(x, dtype=float)
    for l, w in enumerate(ws, start=1):
        v.append(w @ r)
        r = feedforward([w], r, cfg.act(l), cfg.act(l))[0][0]
    blocks, back = [], np.diag(activations.derivative(cfg.act(cfg.n_layers), v[-1]))
    for l in range(cfg.n_layers, 0, -1):
        blocks.insert(0, back)
        if l > 1:
            back = back @ ws[l - 1] @ np.diag(activations.derivative(cfg.act(l - 1), v[l - 2]))
    return np.hstack(blocks)


def feedback_matrix(cfg: Config, weights: dict[str, np.ndarray]) -> np.ndarray:
    """Q = [Q_1; ..; Q_L] stacked: (sum_l n_l, n_L)."""
    return np.vstack([weights[f"Q{l}"] for l in range(1, cfg.n_layers + 1)])


def epoch_metrics(cfg: Config, weights: dict[str, np.ndarray], x_test) -> dict[str, float]:
    """How well Q suits the controller, over up to 50 test samples (Meulemans et al.
    2022): the condition ratio ||J^T (J J^T)^-1 J Q||_F / ||Q||_F (1: Q in the column
    space of J^T, the rule's fixed points), the smallest real part of the eigenvalues of
    J Q (the controller is stable above -alpha~) and ||Q||_F."""
    q = feedback_matrix(cfg, weights)
    ratios, eigs = [], []
    for x in np.atleast_2d(x_test)[:50]:
        j = jacobian(cfg, weights, x)
        ratios.append(np.linalg.norm(j.T @ np.linalg.solve(j @ j.T, j @ q)) / np.linalg.norm(q))
        eigs.append(np.min(np.linalg.eigvals(j @ q).real))
    return {"q_condition_ratio": float(np.mean(ratios)), "jq_min_real_eig": float(np.min(eigs)),
            "q_norm": float(np.linalg.norm(q))}


def steady_control(cfg: Config, weights: dict[str, np.ndarray], x, y) -> np.ndarray:
    """u_ss = (J Q + alpha~ I)^-1 delta, delta = r_L* - r_L^ff (linearised at the feed-forward state)."""
    delta = cfg.lam * (np.asarray(y, dtype=float) - forward(cfg, weights, x)[0])
    jq = jacobian(cfg, weights, x) @ feedback_matrix(cfg, weights)
    return np.linalg.solve(jq + cfg.alpha_tilde * np.eye(len(delta)), delta)
