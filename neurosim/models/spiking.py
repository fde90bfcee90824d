"""Spiking neurons, the neuron models of NIR in ms and dimensionless potentials, and
Poisson inputs. One forward-Euler step per population and step, with x = bias + the
summed input of this step (docs/equations.md):

    LIF      v <- v + dt/tau (v_leak - v + r x)                    spike if v > v_threshold: v <- v_reset
    CubaLIF  I <- I + dt/tau_syn (w_in x - I);  v <- v + dt/tau_mem (v_leak - v + r I)   (then as LIF)
    IF       v <- v + dt r x                                        (then as LIF; r in 1/ms)
    LI       v <- v + dt/tau (v_leak - v + r x)                     no spikes: sends v ("value")
    Threshold  v <- x                                               spike if v > v_threshold (no memory)
    PoissonInput  a spike with probability rate dt per step (the schedule's rates, in Hz)
    EscapeNoise   m <- -phi^-1(w / c) if w < c, else -M              w ~ U[0, 1) per step; sends m

A Threshold unit at v_threshold = 0 that reads x + m fires with probability c phi(x) per
step: EscapeNoise carries an escape-noise neuron's randomness into a deterministic graph.

This is Norse's discretisation (lif_box, li_box and iaf feed-forward steps; CubaLIF's v
reads this step's I), which the torch steps call. Parameters are numbers or one value per
neuron. A spike is s = 1 in its step; the state starts at rest (v = v_leak, IF: v_reset;
I = 0).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .base import Brian2Group, Model, Signal, TorchGroup, check_number

TIME_CONSTANTS = ("tau", "tau_mem", "tau_syn")


def values(model, size: int) -> dict[str, np.ndarray]:
    """The model's parameters as float arrays of one value per neuron."""
    return {f.name: np.broadcast_to(np.asarray(getattr(model, f.name), dtype=float), (size,)).copy()
            for f in fields(model)}


class Neuron(Model):
    """What the spiking neurons share: parameters per neuron, x = bias + input, the Euler
    step `STEP` (Brian2 code) run once per step, threshold and reset."""

    ports = ("input",)
    signals = ("spikes",)
    events = True
    STEP = ""
    START: dict = {}  # variable -> its value at rest: a parameter's name or a number

    def check(self, size: int) -> None:
        for f in fields(self):
            try:
                v = np.broadcast_to(np.asarray(getattr(self, f.name), dtype=float), (size,))
            except (ValueError, TypeError):
                raise ValueError(f"{type(self).__name__}: {f.name} must be a number or {size} numbers, "
                                 f"got shape {np.shape(getattr(self, f.name))}") from None
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{type(self).__name__}: {f.name} contains NaN or inf")
            if f.name in TIME_CONSTANTS and np.any(v <= 0):
                raise ValueError(f"{type(self).__name__}: {f.name} must be > 0 ms, got {getattr(self, f.name)!r}")

    @property
    def state(self) -> tuple:
        return tuple(self.START)

    def initial(self, size: int) -> dict[str, np.ndarray]:
        """The state at rest, one value per neuron."""
        p = values(self, size)
        return {var: p[start].copy() if start in p else np.full(size, float(start)) for var, start in self.START.items()}

    def recordable(self, fed, noise):
        return self.state

    def brian2(self, ctx) -> Brian2Group:
        names = {f.name: ctx.const(f.name, getattr(self, f.name), "ms" if f.name in TIME_CONSTANTS else "")
                 for f in fields(self)}
        events, summed = ctx.events("input"), ctx.input("input")
        x = " + ".join([names["bias"], *([summed] if summed != "0" else []), *([events] if events else [])])
        step = self.STEP.format(**names) + (f"\n{events} = 0" if events else "")
        return Brian2Group([*(f"{v} : 1" for v in self.START), f"x = {x} : 1"], update=step,
                           threshold=f"v > {names['v_threshold']}" if self.events else None,
                           reset=f"v = {names['v_reset']}" if "v_reset" in names else ("" if self.events else None),
                           signals={} if self.events else {s: Signal("v", "v") for s in self.signals},
                           quantities={"value": "v"},
                           initial={v: self.initial(ctx.pop.size)[v] for v in self.START})

    def torch(self, ctx) -> TorchGroup:
        p = {f.name: ctx.param(lambda pop, n=f.name: getattr(pop.model, n)) for f in fields(self)}
        neuron_step = self.torch_step(p, ctx.dt)

        def step(s, ports, data, draws):
            return neuron_step(p["bias"] + ports["input"] if "input" in ports else p["bias"], s)

        zeros = ctx.zeros()
        initial = {var: zeros + (p[start] if start in p else float(start)) for var, start in self.START.items()}
        signals = {name: (lambda s: s["spikes"]) if self.events else (lambda s: s["v"]) for name in self.signals}
        if self.events:
            initial["spikes"] = ctx.zeros()
        return TorchGroup(initial, step, signals, {"value": lambda s: s["v"]})


@dataclass(frozen=True)
class LIF(Neuron):
    """Leaky integrate-and-fire: tau dv/dt = v_leak - v + r x (tau in ms)."""

    tau: object
    r: object = 1.0
    v_leak: object = 0.0
    v_threshold: object = 1.0
    v_reset: object = 0.0
    bias: object = 0.0

    STEP = "v = v + dt*({v_leak} - v + {r}*x)/{tau}"
    START = {"v": "v_leak"}

    def torch_step(self, p, dt):
        from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step

        params = LIFBoxParameters(1 / p["tau"], p["v_leak"], p["v_threshold"], p["v_reset"], method="heaviside")

        def step(x, s):
            z, new = lif_box_feed_forward_step(p["r"] * x, LIFBoxFeedForwardState(s["v"]), params, dt)
            return {"v": new.v, "spikes": z}

        return step


@dataclass(frozen=True)
class CubaLIF(Neuron):
    """Current-based LIF: tau_syn dI/dt = w_in x - I, tau_mem dv/dt = v_leak - v + r I."""

    tau_mem: object
    tau_syn: object
    r: object = 1.0
    v_leak: object = 0.0
    v_threshold: object = 1.0
    v_reset: object = 0.0
    w_in: object = 1.0
    bias: object = 0.0

    STEP = "I = I + dt*({w_in}*x - I)/{tau_syn}\nv = v + dt*({v_leak} - v + {r}*I)/{tau_mem}"
    START = {"I": "0", "v": "v_leak"}

    def torch_step(self, p, dt):
        from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState, li_box_feed_forward_step
        from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step

        syn = LIBoxParameters(1 / p["tau_syn"], 0.0 * p["tau_syn"])
        params = LIFBoxParameters(1 / p["tau_mem"], p["v_leak"], p["v_threshold"], p["v_reset"], method="heaviside")

        def step(x, s):
            i, _ = li_box_feed_forward_step(p["w_in"] * x, LIBoxState(s["I"]), syn, dt)
            z, new = lif_box_feed_forward_step(p["r"] * i, LIFBoxFeedForwardState(s["v"]), params, dt)
            return {"I": i, "v": new.v, "spikes": z}

        return step


@dataclass(frozen=True)
class IF(Neuron):
    """Integrate-and-fire: dv/dt = r x (r in 1/ms)."""

    r: object = 1.0
    v_threshold: object = 1.0
    v_reset: object = 0.0
    bias: object = 0.0

    STEP = "v = v + dt*{r}*x/ms"
    START = {"v": "v_reset"}

    def torch_step(self, p, dt):
        from norse.torch.functional.iaf import IAFFeedForwardState, IAFParameters, iaf_feed_forward_step

        params = IAFParameters(p["v_threshold"], p["v_reset"], method="heaviside")

        def step(x, s):
            z, new = iaf_feed_forward_step(dt * p["r"] * x, IAFFeedForwardState(s["v"]), params, dt)
            return {"v": new.v, "spikes": z}

        return step


@dataclass(frozen=True)
class LI(Neuron):
    """Leaky integrator (no spikes; a read-out, or a synaptic trace that sends v):
    tau dv/dt = v_leak - v + r x."""

    tau: object
    r: object = 1.0
    v_leak: object = 0.0
    bias: object = 0.0

    signals = ("value",)
    events = False
    STEP = "v = v + dt*({v_leak} - v + {r}*x)/{tau}"
    START = {"v": "v_leak"}

    def torch_step(self, p, dt):
        from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState, li_box_feed_forward_step

        params = LIBoxParameters(1 / p["tau"], p["v_leak"])

        def step(x, s):
            v, _ = li_box_feed_forward_step(p["r"] * x, LIBoxState(s["v"]), params, dt)
            return {"v": v}

        return step


@dataclass(frozen=True)
class Threshold(Neuron):
    """Threshold unit, NIR's Threshold: v = x (no memory), a spike when v > v_threshold."""

    v_threshold: object = 0.0
    bias: object = 0.0

    STEP = "v = x"
    START = {"v": 0.0}

    def torch_step(self, p, dt):
        def step(x, s):
            return {"v": x, "spikes": (x > p["v_threshold"]).to(x.dtype)}

        return step


@dataclass(frozen=True)
class EscapeNoise(Model):
    """An escape-noise neuron's randomness as a shift of a threshold at 0: with
    w ~ U[0, 1) per neuron and step (stream "spikes") and c the chance of a spike per
    step at phi = 1,

        m = -phi^-1(q),  q = clip(w / c, EPS, 1 - EPS),   if w < c
        m = -M                                            otherwise

    so x + m > 0 exactly when w < c phi(x) (phi increasing: logistic or hard_sigmoid;
    the clip changes the answer only where phi(x) < EPS or > 1 - EPS). Sends m ("value")."""

    activation: str = "logistic"
    chance: float = 1.0

    signals = ("value",)
    EPS, M = 1e-12, 1e6
    INVERSE = {"logistic": "log(({q})/(1.0 - ({q})))", "hard_sigmoid": "6.0*(({q}) - 0.5)"}

    def __post_init__(self):
        if self.activation not in self.INVERSE:
            raise ValueError(f"EscapeNoise: activation must be one of {sorted(self.INVERSE)} (a rate in [0, 1] "
                             f"with an inverse), got {self.activation!r}")
        check_number("EscapeNoise", "chance", self.chance, strict=True)
        if self.chance > 1:
            raise ValueError(f"EscapeNoise: chance is a probability per step, at most 1, got {self.chance!r}")

    def draw_streams(self, noise) -> tuple:
        return ("spikes",)

    def recordable(self, fed, noise):
        return ("m",)

    def brian2(self, ctx) -> Brian2Group:
        c = ctx.const("chance", self.chance)
        q = f"clip(w_draw/{c}, {self.EPS!r}, {1 - self.EPS!r})"
        update = (f"w_draw = {ctx.uniform('spikes')}\n"
                  f"m = -({self.INVERSE[self.activation].format(q=q)}) - {self.M!r}*int(w_draw >= {c})")
        return Brian2Group(["w_draw : 1", "m : 1"], update=update, signals={"value": Signal("m", "m")},
                           quantities={"value": "m"})

    def torch(self, ctx) -> TorchGroup:
        import torch

        c = self.chance
        inverse = {"logistic": lambda q: torch.log(q / (1.0 - q)), "hard_sigmoid": lambda q: 6.0 * (q - 0.5)}
        inv = inverse[self.activation]

        def step(s, ports, data, draws):
            w = draws["spikes"]
            return {"m": -inv((w / c).clamp(self.EPS, 1 - self.EPS)) - self.M * (w >= c).to(w.dtype)}

        value = lambda s: s["m"]  # noqa: E731
        return TorchGroup({"m": ctx.zeros()}, step, {"value": value}, {"value": value}, draws={"spikes": "uniform"})


@dataclass(frozen=True)
class PoissonInput(Model):
    """Spikes with probability rate * dt per step; the schedule gives the rates in Hz."""

    signals = ("spikes",)
    events = True

    def data(self, name, size, fed):
        return {name: size}

    def check_data(self, key, values, dt):
        p = values * dt / 1000.0
        if np.any(p < 0) or np.any(p > 1):
            raise ValueError(f"Poisson rates of {key} must lie in [0, {1000.0 / dt:g}] Hz at dt = {dt} ms "
                             f"(one spike per step); got {values.min():g} .. {values.max():g}")

    def brian2(self, ctx) -> Brian2Group:
        return Brian2Group([], threshold=f"rand() < {ctx.data(ctx.name, 'Hz')}(t, i)*dt")

    def torch(self, ctx) -> TorchGroup:
        per_step = ctx.dt / 1000.0  # p = rate dt, the chance of a spike in a step
        return TorchGroup({"spikes": ctx.zeros()},
                          lambda s, ports, p, draws: {"spikes": (draws < p).to(draws.dtype)},
                          {"spikes": lambda s: s["spikes"]}, draws="uniform",
                          prepare=lambda data, gates: data[ctx.name] * per_step)
