"""What the rate-circuit principles (energy, dfc, inversion) share: their config's
checks and loading, the feed-forward pass their trained weights compute, initial
weights, and the training schedule. Each principle module gives

    RULE, Config, initial_weights(cfg, seed), build(cfg, weights), schedule(cfg, x, y),
    forward(cfg, weights, x)

so that the experiment runner treats them alike (microcircuits.rate_runner)."""
from __future__ import annotations

import math

import numpy as np

from neurosim import activations, schema
from neurosim.schedule import Schedule


def check_config(cfg, times=("dt", "t_pres"), constants: tuple = ()) -> None:
    """layers, activations and times (ms) of a principle's config; dt below the fastest
    of the time constants named in `constants` and t_pres a whole number of steps."""
    cfg.layers = schema.layer_sizes(cfg.layers)
    for name in ("activation", "output_activation"):
        value = getattr(cfg, name, "linear")
        if value not in activations.NAMES:
            raise ValueError(f"{name} must be one of {sorted(activations.NAMES)}, got {value!r}")
    for name in times:
        value = getattr(cfg, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be > 0 ms, got {value!r}")
    fastest = min(constants, key=lambda name: getattr(cfg, name), default=None)
    if fastest is not None and cfg.dt >= getattr(cfg, fastest):
        raise ValueError(f"dt = {cfg.dt} ms must be below the fastest time constant, {fastest} = "
                         f"{getattr(cfg, fastest)} ms")
    steps = cfg.t_pres / cfg.dt
    if abs(steps - round(steps)) > 1e-9 * steps:
        raise ValueError(f"t_pres = {cfg.t_pres} ms is not a whole number of steps of dt = {cfg.dt} ms")


def from_dict(cls, values: dict):
    """cls(**values), naming unknown keys and values of the wrong type (neurosim.schema)."""
    return schema.from_dict(cls, values)


def feedforward(weights: list[np.ndarray], x, hidden: str, output: str, biases=None) -> list[np.ndarray]:
    """r_l = f(W_l r_{l-1} + b_l) with f = hidden for l < L and output for l = L (biases:
    one vector per layer, or None for none); returns [r_1 .. r_L] (rows = samples)."""
    r, out = np.atleast_2d(np.asarray(x, dtype=float)), []
    for l, w in enumerate(weights):
        a = r @ w.T + (0.0 if biases is None else np.ravel(biases[l]))
        r = activations.numpy(output if l == len(weights) - 1 else hidden)(a)
        out.append(r)
    return out


def forward_weights(layers: list[int], seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    """W_l ~ N(0, scale^2 / n_{l-1}) (target, source), l = 1..L."""
    rng = np.random.default_rng(seed)
    return {f"W{l}": rng.normal(0.0, scale / np.sqrt(layers[l - 1]), (layers[l], layers[l - 1]))
            for l in range(1, len(layers))}


def one_pass(t_pres: float, x, y, x_key: str, y_key: str, batch: int = 1, settle: bool = False) -> Schedule:
    """Every sample once, learning on; batch > 1 groups consecutive samples into
    minibatches (torch), dropping the remainder. settle: every minibatch twice, first with
    learning off (the circuit settles), then on."""
    x, y = np.atleast_2d(x), np.atleast_2d(y)
    if batch > 1:
        n = len(x) // batch * batch
        x, y = x[:n].reshape(-1, batch, x.shape[1]), y[:n].reshape(-1, batch, y.shape[1])
    if not settle:
        return Schedule(t_pres, {x_key: x, y_key: y})
    twice = np.repeat(np.arange(len(x)), 2)
    return Schedule(t_pres, {x_key: x[twice], y_key: y[twice]}, learn=np.tile([0.0, 1.0], len(x)))
