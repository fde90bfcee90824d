"""Activation functions phi and their derivatives: one table for numpy, Brian2 and torch.

    logistic       phi = 1 / (1 + e^-x)            phi' = e^-x / (1 + e^-x)^2
    hard_sigmoid   phi = clip(x / 6 + 1/2, 0, 1)   phi' = 1/6 on (-3, 3), else 0
    relu           phi = max(x, 0)                 phi' = 1 for x > 0, else 0
    soft_relu      phi = log(1 + e^x)              phi' = 1 / (1 + e^-x)
    tanh           phi = tanh(x)                   phi' = 1 - tanh(x)^2
    linear         phi = x                         phi' = 1

Brian2 forms are expressions of `{x}`; torch forms are built on first use, so that a
Brian2 run does not import torch.
"""
from __future__ import annotations

import numpy as np

# name -> (phi, phi') as Brian2 expressions of {x}
BRIAN2 = {
    "logistic": ("1.0/(1.0 + exp(-({x})))", "exp(-({x}))/(1.0 + exp(-({x})))**2"),
    "hard_sigmoid": ("clip(({x})/6.0 + 0.5, 0.0, 1.0)", "int(abs({x}) < 3.0)/6.0"),
    "relu": ("clip({x}, 0.0, inf)", "int({x} > 0)"),
    "soft_relu": ("log(1.0 + exp({x}))", "1.0/(1.0 + exp(-({x})))"),
    "tanh": ("tanh({x})", "1.0 - tanh({x})**2"),
    "linear": ("({x})", "1.0"),
}
NAMES = tuple(BRIAN2)


def check(name, owner: str = "activation") -> str:
    """The name, or a ValueError naming the choices."""
    if name not in BRIAN2:
        raise ValueError(f"{owner}: unknown activation {name!r}; choose one of {sorted(BRIAN2)}")
    return name


def numpy(name: str):
    """phi as a numpy function."""
    return _NUMPY[check(name)][0]


def derivative(name: str, x) -> np.ndarray:
    """phi'(x) in numpy."""
    return _NUMPY[check(name)][1](np.asarray(x, dtype=float))


def brian2(name: str, x: str) -> str:
    """phi(x) as a Brian2 expression."""
    return BRIAN2[check(name)][0].format(x=x)


def brian2_derivative(name: str, x: str) -> str:
    """phi'(x) as a Brian2 expression."""
    return BRIAN2[check(name)][1].format(x=x)


def torch(name: str):
    """(phi, phi') as torch functions."""
    import torch as t

    table = {
        "logistic": (t.sigmoid, lambda x: t.sigmoid(x) * (1.0 - t.sigmoid(x))),
        "hard_sigmoid": (lambda x: t.clamp(x / 6.0 + 0.5, 0.0, 1.0), lambda x: (x.abs() < 3.0).to(x.dtype) / 6.0),
        "relu": (t.relu, lambda x: (x > 0).to(x.dtype)),
        "soft_relu": (lambda x: t.nn.functional.softplus(x, threshold=40.0), t.sigmoid),
        "tanh": (t.tanh, lambda x: 1.0 - t.tanh(x) ** 2),
        "linear": (lambda x: x, t.ones_like),
    }
    return table[check(name)]


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


_NUMPY = {
    "logistic": (_logistic, lambda x: _logistic(x) * (1.0 - _logistic(x))),
    "hard_sigmoid": (lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0), lambda x: np.where(np.abs(x) < 3.0, 1.0 / 6.0, 0.0)),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "soft_relu": (lambda x: np.logaddexp(0.0, x), _logistic),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "linear": (lambda x: np.asarray(x, dtype=float), np.ones_like),
}
