"""The dendritic cortical microcircuit (Sacramento et al. 2018) with prospective coding
(Latent Equilibrium, Haider et al. 2021): docs/equations.md section 1.

Populations: input `x`; pyramidal layers `P1`..`PN` (PN is the output); interneurons
`I1`..`I(N-1)`, one per pyramid of the layer above. Projections:

    W{l}:   P{l-1} -> P{l}  basal     dW/dt = eta_fw [phi(u_breve) - phi(vhat_bas)] r^T
    B{l}:   P{l+1} -> P{l}  apical    bp: W{l+1}^T (tied), fa: fixed random,
                                      pal: dB/dt = eta_bw [xi r~^T - alpha B] (section 2 there)
    WIP{l}: P{l}   -> I{l}  dendrite  dW/dt = eta_IP [phi(u_breve^I) - phi(vhat_den)] r^T
    BPI{l}: I{l}   -> P{l}  apical    dB/dt = -eta_PI v_api r_I^T
    N{l}:   P{l+1} -> I{l}  nudge     one-to-one, carries u_breve (g_nI nudging)

The output is nudged towards the schedule's `P{N}.target` with g_tgt while its gate is on.
With sigma > 0 (and always in mode `pal`) every hidden pyramid carries OU noise xi on its
apical compartment (std sigma/sqrt(2), correlation time tau_xi); in a spiking circuit
with pal_noise = "spikes", PAL correlates the neurons' own spike noise instead.

With neuron = "spiking" every pyramid and interneuron is a SpikingDendriticNeuron
(docs/equations.md, spiking dendritic neurons): it fires at r_max phi(u_breve) and sends
its PSP-filtered spike train where the rate circuit sends r, and every rule reads the
spike-based quantities; the structure, the weights and the settings are the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosim import activations, schema
from neurosim.models.dendritic import interneuron, output_pyramidal, pyramidal
from neurosim.models.rate import Input
from neurosim.network import Network, Population, Projection
from neurosim.noise import OUNoise
from neurosim.rules import DendriticPrediction, PhaselessAlignment, Silencing

FEEDBACK_MODES = ("bp", "fa", "pal")
NEURONS = ("rate", "spiking")
SPS_MODES = ("set", "random")


@dataclass
class MicrocircuitConfig:
    """Every setting of the circuit; defaults are the paper settings (docs/equations.md
    section 1)."""

    layers: list = field(default_factory=lambda: [4, 30, 3])
    g_l: float = 0.03
    g_bas: float = 0.1
    g_api: float = 0.06
    g_den: float = 0.1
    g_nI: float = 0.06
    g_tgt: float = 0.06
    activation: str = "logistic"
    prospective: bool = True
    feedback: str = "bp"
    dt: float = 0.01
    eta_fw: list | float = 0.0  # one per layer, or one for all (1/ms)
    eta_ip: list | float = 0.0  # one per hidden layer, or one for all
    eta_pi: list | float = 0.0
    tau_lo: float = 0.0
    sigma: float = 0.0  # OU noise on the hidden apical compartments
    tau_xi: float = 0.1  # its correlation time (ms)
    eta_bw: list | float = 0.0  # pal: one per hidden layer, or one for all (1/ms)
    alpha: list | float = 0.0  # pal: decay of B, one per hidden layer, or one for all
    tau_hp: float = 0.1  # pal: high-pass filter of the rates of the layer above (ms)
    init_w: float | list = 0.1  # forward weights U[-init_w, init_w], or U[lo, hi] for [lo, hi]
    init_b: float | list = 1.0  # top-down weights U[-init_b, init_b], or U[lo, hi]
    init_lateral: float = 1.0  # W^IP, B^PI U[-init_lateral, init_lateral] when sps = "random"
    sps: str = "set"
    neuron: str = "rate"  # "spiking": SpikingDendriticNeuron everywhere but the input
    r_max: float = 0.2  # spiking: the rate at phi = 1 (1/ms)
    tau_s: float = 10.0  # spiking: the PSP kernel's time constant (ms)
    pal_noise: str = "ou"  # pal: what B correlates, the OU noise or (spiking) the neurons' own spike noise

    def __post_init__(self):
        self.layers = schema.layer_sizes(self.layers)
        n_layers, n_hidden = len(self.layers) - 1, len(self.layers) - 2
        for name, n in (("eta_fw", n_layers), ("eta_ip", n_hidden), ("eta_pi", n_hidden),
                        ("eta_bw", n_hidden), ("alpha", n_hidden)):
            value = getattr(self, name)
            value = [float(value)] * n if np.isscalar(value) else [float(v) for v in value]
            if len(value) != n:
                raise ValueError(f"{name} needs {n} values (one per {'layer' if name == 'eta_fw' else 'hidden layer'}),"
                                 f" got {len(value)}")
            setattr(self, name, value)
        for name in ("g_l", "g_bas", "g_api", "g_den", "g_nI", "g_tgt", "tau_lo", "sigma"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("tau_xi", "tau_hp"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 ms, got {getattr(self, name)!r}")
        for name in ("init_w", "init_b"):
            uniform_range(name, getattr(self, name))
        activations.check(self.activation, "network.activation")
        if self.feedback not in FEEDBACK_MODES:
            raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, got {self.feedback!r}")
        if self.sps not in SPS_MODES:
            raise ValueError(f"sps must be one of {SPS_MODES}, got {self.sps!r}")
        if self.neuron not in NEURONS:
            raise ValueError(f"neuron must be one of {NEURONS}, got {self.neuron!r}")
        for name in ("r_max", "tau_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.pal_noise not in PhaselessAlignment.NOISES:
            raise ValueError(f"pal_noise must be one of {PhaselessAlignment.NOISES}, got {self.pal_noise!r}")
        if self.feedback == "pal" and self.pal_noise == "spikes" and self.neuron != "spiking":
            raise ValueError('pal_noise = "spikes" needs neuron = "spiking" (a rate neuron has no spike noise)')

    @classmethod
    def from_dict(cls, values: dict) -> "MicrocircuitConfig":
        """From a config's [network]: unknown keys and values of the wrong type are errors."""
        return schema.from_dict(cls, values)

    @property
    def n_layers(self) -> int:
        return len(self.layers) - 1

    @property
    def noisy(self) -> bool:
        """OU noise on the hidden apical compartments: sigma > 0, or PAL from OU noise."""
        return self.sigma > 0 or (self.feedback == "pal" and self.pal_noise == "ou")


def uniform_range(name, value) -> tuple[float, float]:
    """init_w / init_b: a >= 0 means U[-a, a]; a pair [lo, hi] with lo <= hi means U[lo, hi]."""
    if np.isscalar(value):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0 or a pair [lo, hi], got {value!r}")
        return -float(value), float(value)
    if len(value) != 2 or not value[0] <= value[1]:
        raise ValueError(f"{name} must be >= 0 or a pair [lo, hi] with lo <= hi, got {value!r}")
    return float(value[0]), float(value[1])


def initial_weights(cfg: MicrocircuitConfig, seed: int) -> dict[str, np.ndarray]:
    """Forward U[-init_w, init_w], top-down U[-init_b, init_b] (or the [lo, hi] given);
    lateral weights in the self-predicting state (sps="set") or random (sps="random")."""
    rng = np.random.default_rng(seed)
    n = cfg.layers
    lo, hi = uniform_range("init_w", cfg.init_w)
    w = {f"W{l}": rng.uniform(lo, hi, (n[l], n[l - 1])) for l in range(1, cfg.n_layers + 1)}
    lo, hi = uniform_range("init_b", cfg.init_b)
    for l in range(1, cfg.n_layers):
        w[f"B{l}"] = rng.uniform(lo, hi, (n[l], n[l + 1]))
    if cfg.sps == "set":
        w.update(self_predicting_weights(cfg, w))
    else:
        for l in range(1, cfg.n_layers):
            a = cfg.init_lateral
            w[f"WIP{l}"] = rng.uniform(-a, a, (n[l + 1], n[l]))
            w[f"BPI{l}"] = rng.uniform(-a, a, (n[l], n[l + 1]))
    return w


def self_predicting_weights(cfg: MicrocircuitConfig, weights: dict) -> dict[str, np.ndarray]:
    """The self-predicting state: B^PI_l = -B_l (B_l = W_{l+1}^T in mode bp) and

        W^IP_l = g_bas (g_l + g_den) / (g_den (g_l + g_bas + g_api)) W_{l+1}   (l < N-1)
        W^IP_l = g_bas (g_l + g_den) / (g_den (g_l + g_bas)) W_N              (l = N-1)
    """
    out = {}
    for l in range(1, cfg.n_layers):
        g_api = cfg.g_api if l + 1 < cfg.n_layers else 0.0
        scale = cfg.g_bas * (cfg.g_l + cfg.g_den) / (cfg.g_den * (cfg.g_l + cfg.g_bas + g_api))
        w_up = weights[f"W{l + 1}"]
        out[f"WIP{l}"] = scale * w_up
        b = w_up.T if cfg.feedback == "bp" else weights[f"B{l}"]
        out[f"BPI{l}"] = -b
    return out


def build(cfg: MicrocircuitConfig, weights: dict[str, np.ndarray]) -> Network:
    """The microcircuit as a network description, with the given weights."""
    n, N = cfg.layers, cfg.n_layers
    g = dict(g_l=cfg.g_l, activation=cfg.activation, prospective=cfg.prospective,
             spiking=dict(r_max=cfg.r_max, tau_s=cfg.tau_s) if cfg.neuron == "spiking" else None)
    pops = [Population("x", n[0], Input())]
    noise = OUNoise("apical", cfg.sigma, cfg.tau_xi) if cfg.noisy else None
    for l in range(1, N + 1):
        if l == N:
            pops.append(Population(f"P{l}", n[l], output_pyramidal(g_bas=cfg.g_bas, g_tgt=cfg.g_tgt, **g)))
        else:
            pops.append(Population(f"P{l}", n[l], pyramidal(g_bas=cfg.g_bas, g_api=cfg.g_api, **g), noise))
    for l in range(1, N):
        pops.append(Population(f"I{l}", n[l + 1], interneuron(g_den=cfg.g_den, g_nI=cfg.g_nI, **g)))
    projs = []
    for l in range(1, N + 1):
        src = "x" if l == 1 else f"P{l - 1}"
        projs.append(Projection(f"W{l}", src, f"P{l}", "basal", weights[f"W{l}"],
                                _learning(DendriticPrediction(cfg.eta_fw[l - 1], cfg.tau_lo))))
    for l in range(1, N):
        if cfg.feedback == "bp":
            projs.append(Projection(f"B{l}", f"P{l + 1}", f"P{l}", "apical", tied=f"W{l + 1}"))
        else:
            rule = None if cfg.feedback == "fa" else \
                _learning(PhaselessAlignment(cfg.eta_bw[l - 1], cfg.alpha[l - 1], cfg.tau_hp, cfg.pal_noise))
            projs.append(Projection(f"B{l}", f"P{l + 1}", f"P{l}", "apical", weights[f"B{l}"], rule))
        projs.append(Projection(f"WIP{l}", f"P{l}", f"I{l}", "dendrite", weights[f"WIP{l}"],
                                _learning(DendriticPrediction(cfg.eta_ip[l - 1]))))
        projs.append(Projection(f"BPI{l}", f"I{l}", f"P{l}", "apical", weights[f"BPI{l}"],
                                _learning(Silencing(cfg.eta_pi[l - 1]))))
        projs.append(Projection(f"N{l}", f"P{l + 1}", f"I{l}", "nudge", kind="one_to_one", signal="voltage"))
    return Network(pops, projs, dt=cfg.dt)


def _learning(rule):
    """The rule, or None where its learning rate is 0 (Rule.inert): a frozen projection
    costs no plasticity code in the step (the PAL "Fig 3a-c" setting freezes W and W^IP,
    14 of the 48 code objects of its cpp_standalone step)."""
    return None if rule.inert() else rule


def output_key(cfg: MicrocircuitConfig) -> str:
    return f"P{cfg.n_layers}"


def hidden_layers(cfg: MicrocircuitConfig) -> list[str]:
    return [f"P{l}" for l in range(1, cfg.n_layers)]
