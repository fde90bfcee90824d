"""Neuron models as data.

A `DendriticNeuron` is a rate neuron with a leaky soma coupled to dendritic compartments
and to somatic nudging inputs (docs/equations.md):

    du/dt = -g_l u + sum_c g_c (v_c - u) + sum_n gamma_n g_n (v_n - u)
    u_breve = u_eff = (sum_c g_c v_c + sum_n gamma_n g_n v_n) / g_sum   (prospective)
    r = phi(u_breve)

Conductances are in 1/ms. Backends read these fields; they hold no simulator code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# phi(x) as a numpy function and as a Brian2 expression of `x`.
ACTIVATIONS = {
    "logistic": (lambda x: 1.0 / (1.0 + np.exp(-x)), "1.0/(1.0 + exp(-({x})))"),
    "hard_sigmoid": (lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0), "clip(({x})/6.0 + 0.5, 0.0, 1.0)"),
    "relu": (lambda x: np.maximum(x, 0.0), "clip({x}, 0.0, inf)"),
    "soft_relu": (lambda x: np.logaddexp(0.0, x), "log(1.0 + exp({x}))"),
    "tanh": (np.tanh, "tanh({x})"),
    "linear": (lambda x: np.asarray(x, dtype=float), "({x})"),
}

DENDRITES = ("basal", "apical", "dendrite")
NUDGING = ("target", "nudge")


def activation(name: str):
    """The numpy function phi for an activation name."""
    return ACTIVATIONS[_check_activation(name)][0]


def activation_derivative(name: str, x):
    """phi'(x), for the backprop reference and the metrics."""
    x = np.asarray(x, dtype=float)
    if name == "logistic":
        s = 1.0 / (1.0 + np.exp(-x))
        return s * (1.0 - s)
    if name == "hard_sigmoid":
        return np.where((x > -3.0) & (x < 3.0), 1.0 / 6.0, 0.0)
    if name == "relu":
        return (x > 0).astype(float)
    if name == "soft_relu":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "tanh":
        return 1.0 - np.tanh(x) ** 2
    if name == "linear":
        return np.ones_like(x)
    raise ValueError(_unknown_activation(name))


def _unknown_activation(name):
    return f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"


def _check_activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(_unknown_activation(name))
    return name


def _check_conductance(owner: str, key: str, value: float):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{owner}: conductance {key} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class DendriticNeuron:
    """Leaky soma, conductance-coupled dendrites, optional somatic nudging inputs."""

    g_l: float
    dendrites: dict = field(default_factory=dict)  # compartment name -> g_c
    nudging: dict = field(default_factory=dict)  # nudging input name -> g_n
    activation: str = "logistic"
    prospective: bool = True

    def __post_init__(self):
        _check_conductance("neuron", "g_l", self.g_l)
        for name, g in {**self.dendrites, **self.nudging}.items():
            _check_conductance("neuron", f"g_{name}", g)
        for name in self.dendrites:
            if name not in DENDRITES:
                raise ValueError(f"unknown dendritic compartment {name!r}; choose from {DENDRITES}")
        for name in self.nudging:
            if name not in NUDGING:
                raise ValueError(f"unknown nudging input {name!r}; choose from {NUDGING}")
        _check_activation(self.activation)

    @property
    def compartments(self):
        return (*self.dendrites, *self.nudging)

    def prediction_factor(self, compartment: str) -> float:
        """vhat_c = g_c / (g_l + sum of dendritic g) * v_c: the soma without nudging."""
        return self.dendrites[compartment] / (self.g_l + sum(self.dendrites.values()))

    def conductance(self, compartment: str) -> float:
        return {**self.dendrites, **self.nudging}[compartment]


@dataclass(frozen=True)
class RateInput:
    """A population whose rates are the schedule's values: r = x(t)."""


def pyramidal(g_l=0.03, g_bas=0.1, g_api=0.06, activation="logistic", prospective=True):
    """Hidden pyramidal neuron: soma, basal and apical dendrites."""
    return DendriticNeuron(g_l, {"basal": g_bas, "apical": g_api}, {}, activation, prospective)


def output_pyramidal(g_l=0.03, g_bas=0.1, g_tgt=0.06, activation="logistic", prospective=True):
    """Output pyramidal neuron: soma, basal dendrite, and target nudging g_tgt (u_tgt - u)."""
    return DendriticNeuron(g_l, {"basal": g_bas}, {"target": g_tgt}, activation, prospective)


def interneuron(g_l=0.03, g_den=0.1, g_nI=0.06, activation="logistic", prospective=True):
    """Interneuron: soma, dendrite, and nudging g_nI (u_breve of the pyramid above - u)."""
    return DendriticNeuron(g_l, {"dendrite": g_den}, {"nudge": g_nI}, activation, prospective)
