"""Rate units: leaky integrators and inputs that hold the schedule's values.

    Leaky   tau dz/dt = -leak z + x + sigma sqrt(tau) xi     (x: the summed input; forward
            Euler, z += dt/tau (-leak z + x) + sigma sqrt(dt/tau) w with WhiteNoise)
    Product tau dz/dt = -z + x_input x_gain   (the product of what its two ports receive)
    Input   z = the schedule's value of the current presentation (inputs, targets,
            clamped populations); a delay-1 projection reads the previous step's value

Leaky and Input send z ("value") or f(z) ("rate", the default); Leaky also sends f'(z)
("derivative", e.g. onto a Product's gain) and offers the gain f'(z) to the projections
onto it. Product sends z ("value"). A Leaky unit with tau = dt and leak 1 is
instantaneous, one step late: z(n+1) = x(n). Times in ms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import activations
from ..noise import WhiteNoise
from .base import Brian2Group, Model, Signal, TorchGroup, check_number


@dataclass(frozen=True)
class Leaky(Model):
    """tau dz/dt = -leak z + x (+ WhiteNoise); f = activation (tau in ms)."""

    tau: float = 1.0
    leak: float = 1.0
    activation: str = "linear"

    ports = ("input",)
    signals = ("rate", "value", "derivative")
    state = ("z",)
    noises = (WhiteNoise,)
    gains = ("derivative",)

    def __post_init__(self):
        check_number("Leaky", "tau", self.tau, strict=True)
        check_number("Leaky", "leak", self.leak)
        activations.check(self.activation, "Leaky")

    def brian2(self, ctx) -> Brian2Group:
        f, k = self.activation, ctx.name
        tau, leak = ctx.const("tau", self.tau, "ms"), ctx.const("leak", self.leak)
        noise = ""
        if ctx.pop.noise:
            noise = f" + {ctx.const('sigma', ctx.pop.noise.sigma)}*{ctx.white}/sqrt({tau})"
        x = ctx.input("input", {"derivative": activations.brian2_derivative(f, "z")})
        lines = [f"dz/dt = (-{leak}*z + x)/{tau}{noise} : 1", f"x = {x} : 1"]
        rate, derivative = activations.brian2(f, "z"), activations.brian2_derivative(f, "z")
        return Brian2Group(lines, signals={"rate": Signal(rate, rate), "value": Signal("z", "z"),
                                           "derivative": Signal(derivative, derivative)},
                           quantities={"value": "z"})

    def torch(self, ctx) -> TorchGroup:
        f, df = activations.torch(self.activation)
        per_step = ctx.dt / ctx.param(lambda pop: pop.model.tau)
        leak = ctx.param(lambda pop: pop.model.leak)
        noise = ctx.param(lambda pop: pop.noise.sigma * math.sqrt(ctx.dt / pop.model.tau)) if ctx.pop.noise else None

        def step(s, ports, data, draws):
            z = s["z"] + per_step * (-leak * s["z"] + ports.get("input", 0.0))
            return {"z": z if noise is None else z + noise * draws}

        value, derivative = (lambda s: s["z"]), (lambda s: df(s["z"]))  # noqa: E731
        return TorchGroup({"z": ctx.zeros()}, step, {"rate": lambda s: f(s["z"]), "value": value,
                                                     "derivative": derivative},
                          {"value": value, "derivative": derivative}, draws="normal" if ctx.pop.noise else None)


@dataclass(frozen=True)
class Product(Model):
    """tau dz/dt = -z + x_input x_gain, each x the summed input onto its port (forward
    Euler; tau = dt: z(n+1) = x_input(n) x_gain(n), one step late). Times in ms."""

    tau: float = 1.0

    ports = ("input", "gain")
    signals = ("value",)
    state = ("z",)

    def __post_init__(self):
        check_number("Product", "tau", self.tau, strict=True)

    def brian2(self, ctx) -> Brian2Group:
        tau = ctx.const("tau", self.tau, "ms")
        lines = [f"dz/dt = (-z + x_input*x_gain)/{tau} : 1", f"x_input = {ctx.input('input')} : 1",
                 f"x_gain = {ctx.input('gain')} : 1"]
        return Brian2Group(lines, signals={"value": Signal("z", "z")}, quantities={"value": "z"})

    def torch(self, ctx) -> TorchGroup:
        per_step = ctx.dt / ctx.param(lambda pop: pop.model.tau)

        def step(s, ports, data, draws):
            return {"z": s["z"] + per_step * (-s["z"] + ports.get("input", 0.0) * ports.get("gain", 0.0))}

        value = lambda s: s["z"]  # noqa: E731
        return TorchGroup({"z": ctx.zeros()}, step, {"value": value}, {"value": value})


@dataclass(frozen=True)
class Input(Model):
    """z = the schedule's values (inputs, targets, clamped populations); f = activation."""

    activation: str = "linear"

    signals = ("rate", "value")

    def __post_init__(self):
        activations.check(self.activation, "Input")

    def data(self, name, size, fed):
        return {name: size}

    def recordable(self, fed, noise):
        return ("z",)

    def brian2(self, ctx) -> Brian2Group:
        """z_now = the schedule's value at t; z = what the population sent at the start of
        the step (recorded, read by delay-1 projections): a variable stored at the end of
        each step when some projection reads it, else z_now of t - dt."""
        data, f = ctx.data(ctx.name), self.activation
        lines, store, initial = [f"z_now = {data}(t, i) : 1", f"z = {data}(t - dt, i) : 1"], "", {}
        if ctx.read_at_start:  # one store per neuron instead of a lookup per synapse and step
            lines[1], store, initial = "z : 1", "z = z_now", {"z": f"{data}(0*second, i)"}  # not t: a clock keeps its time
        return Brian2Group(lines, signals={
            "value": Signal("z", "z_now", kept=True, timeless=True),
            "rate": Signal(activations.brian2(f, "z"), activations.brian2(f, "z_now"), kept=True, timeless=True)},
            store=store, initial=initial)

    def torch(self, ctx) -> TorchGroup:
        f = activations.torch(self.activation)[0]
        # a copy: the state never aliases the schedule's tensors (CUDA graphs reuse their buffers)
        return TorchGroup({"z": ctx.first(ctx.name)}, lambda s, ports, data, draws: {"z": data[ctx.name].clone()},
                          {"rate": lambda s: f(s["z"]), "value": lambda s: s["z"]})
