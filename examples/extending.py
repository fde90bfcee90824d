"""Extending the package: a new neuron model and a new plasticity rule, each one small
class with its Brian2 code and its torch step side by side (docs/guide.md, "Extending
the package"; tests/test_extending.py runs this file on both backends).

    AdaptiveLIF  tau dv/dt = v_leak - v + r x - w_a,  tau_a dw_a/dt = -w_a,
                 spike if v > v_threshold: v <- v_reset, w_a <- w_a + b
    Oja          dW/dt = lambda eta (y x^T - y^2 W)      (Oja 1982: W -> the first
                 principal component of x, |W| -> 1)

    python examples/extending.py      # both on both backends, printed
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from neurosim.models.base import Brian2Group, TorchGroup, check_number
from neurosim.models.spiking import Neuron
from neurosim.rules import Brian2Rule, Rule, TorchRule


@dataclass(frozen=True)
class AdaptiveLIF(Neuron):
    """LIF with a spike-triggered adaptation current w_a (Euler steps, times in ms):

        v   <- v + dt/tau (v_leak - v + r x - w_a)
        w_a <- w_a - dt/tau_a w_a
        spike if v > v_threshold: v <- v_reset, w_a <- w_a + b
    """

    tau: float
    tau_a: float = 50.0
    b: float = 0.2
    r: float = 1.0
    v_leak: float = 0.0
    v_threshold: float = 1.0
    v_reset: float = 0.0
    bias: float = 0.0

    START = {"v": "v_leak", "w_a": "0"}

    def brian2(self, ctx) -> Brian2Group:
        p = {f.name: ctx.const(f.name, getattr(self, f.name), "ms" if f.name.startswith("tau") else "")
             for f in fields(self)}
        events, summed = ctx.events("input"), ctx.input("input")
        x = " + ".join([p["bias"], *([summed] if summed != "0" else []), *([events] if events else [])])
        update = (f"v = v + dt*({p['v_leak']} - v + {p['r']}*x - w_a)/{p['tau']}\n"
                  f"w_a = w_a - dt*w_a/{p['tau_a']}" + (f"\n{events} = 0" if events else ""))
        return Brian2Group(["v : 1", "w_a : 1", f"x = {x} : 1"], update=update, threshold=f"v > {p['v_threshold']}",
                           reset=f"v = {p['v_reset']}\nw_a = w_a + {p['b']}", quantities={"value": "v"},
                           initial={"v": self.v_leak, "w_a": 0.0})

    def torch(self, ctx) -> TorchGroup:
        p = {f.name: ctx.param(lambda pop, n=f.name: getattr(pop.model, n)) for f in fields(self)}
        dt = ctx.dt

        def step(s, ports, data, draws):
            x = p["bias"] + ports["input"] if "input" in ports else p["bias"]
            v = s["v"] + dt / p["tau"] * (p["v_leak"] - s["v"] + p["r"] * x - s["w_a"])
            w_a = s["w_a"] - dt / p["tau_a"] * s["w_a"]
            spikes = (v > p["v_threshold"]).to(v.dtype)
            return {"v": v + spikes * (p["v_reset"] - v), "w_a": w_a + spikes * p["b"], "spikes": spikes}

        zeros = ctx.zeros()
        return TorchGroup({"v": zeros + p["v_leak"], "w_a": zeros, "spikes": zeros}, step,
                          {"spikes": lambda s: s["spikes"]}, {"value": lambda s: s["v"]})


@dataclass(frozen=True)
class Oja(Rule):
    """Oja's rule, read at the start of the step: dW/dt = lambda eta (y x^T - y^2 W), y
    the target's value, x the signal the projection delivered (eta in 1/ms)."""

    eta: float

    reads = "start"

    def __post_init__(self):
        check_number("Oja", "eta", self.eta)

    def factors(self, proj):
        return {"post": (proj.target, "value")}

    def brian2(self, ctx) -> Brian2Rule:
        eta = ctx.const("eta", self.eta, "1/ms")
        return Brian2Rule([f"dw/dt = {ctx.learn}*{eta}*({ctx.post}*{ctx.pre} - {ctx.post}**2*w) : 1 (clock-driven)"])

    def torch(self, ctx) -> TorchRule:
        import torch

        eta, dt = ctx.param(lambda proj: proj.rule.eta), ctx.dt

        def update(w, pre, post, learn, s):  # the mean over the samples of a minibatch
            step = dt * learn * eta
            decay = (post ** 2).mean(1).unsqueeze(-1)  # (R, post, 1)
            return torch.baddbmm(w * (1.0 - step * decay), (step / post.shape[1] * post).mT, pre), s

        return TorchRule(update)


def main():
    from neurosim.backends.brian2 import Brian2Simulator
    from neurosim.backends.torch import TorchSimulator
    from neurosim.models.rate import Input, Leaky
    from neurosim.network import Network, Population, Projection
    from neurosim.recording import Recording
    from neurosim.schedule import Schedule

    neuron = Network([Population("x", 1, Input()), Population("n", 1, AdaptiveLIF(tau=10.0, b=0.3))],
                     [Projection("drive", "x", "n", weight=[[1.5]], delay=0)], dt=0.1)
    for sim in (Brian2Simulator(neuron, target="numpy"), TorchSimulator(neuron)):
        spikes = sim.run(Schedule(200.0, {"x": [[1.0]]}), Recording(spikes=["n"])).spikes["n"].times
        print(f"AdaptiveLIF on {type(sim).__name__}: inter-spike intervals (ms) {np.round(np.diff(spikes), 1)}")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) @ np.diag([2.0, 1.0, 0.5])
    pca = Network([Population("x", 3, Input()), Population("y", 1, Leaky(tau=0.1))],
                  [Projection("W", "x", "y", weight=rng.normal(0, 0.3, (1, 3)), rule=Oja(0.005), delay=0)], dt=0.1)
    for sim in (Brian2Simulator(pca, target="numpy"), TorchSimulator(pca)):
        w = sim.run(Schedule(5.0, {"x": x})).final_weights["W"][0]
        print(f"Oja on {type(sim).__name__}: W = {np.round(w, 3)} (the first principal component is the x axis)")


if __name__ == "__main__":
    main()
