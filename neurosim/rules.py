"""Plasticity rules, one per projection (docs/equations.md, the step's rules). A rule
names the factors it reads and gives its Brian2 code and its torch update side by side.

Every rule is gated by the schedule's learn signal lambda and changes the weight after
all populations have advanced, from W(n-1). Its presynaptic factor is the signal its
projection delivered in this step (unless the rule names another); the postsynaptic one
is read at the start of the step (`reads = "start"`) or at its end, after the target's
update (`reads = "end"`). Learning rates are in 1/ms. A minibatch (torch) applies the
mean of the per-sample changes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from .models.base import check_number


@dataclass
class Brian2Rule:
    """A rule in Brian2: the Synapses' equations for w (clock-driven), code run on a
    presynaptic spike, and variables and end-of-step code of the presynaptic group."""

    equations: list[str]
    namespace: dict = field(default_factory=dict)
    on_pre: str = ""
    pre_variables: list[str] = field(default_factory=list)
    pre_store: str = ""


@dataclass
class TorchRule:
    """A rule in torch: update(w, pre, post, given, state) -> (w, state) with w (R, post,
    pre), the factors (R, S, n) and `given = prepare(learn)`, what the rule makes of the
    presentation's learn signal (R, 1, 1) once per block of steps (by default the signal
    itself); `end(state, pre_start, pre_now)` after the step (None: nothing); `initial`
    the rule's own state."""

    update: Callable
    initial: dict = field(default_factory=dict)
    end: Callable | None = None
    prepare: Callable = lambda learn: learn  # noqa: E731


class Rule:
    """Base of every plasticity rule: `reads` and `factors`; brian2(ctx), torch(ctx)."""

    reads = "end"

    def factors(self, proj) -> dict:
        """{"post": (population, quantity)} and, for a named presynaptic factor, "pre"."""
        raise NotImplementedError

    def check(self, proj, network) -> None:
        """Raise a ValueError naming what does not fit the projection."""

    def inert(self) -> bool:
        """True when the rule cannot change a weight, so that a description may leave it
        out and spare every step its work; here, for a rule whose every change is a
        multiple of its learning rate `eta`: eta = 0 (a rule without one: never)."""
        return getattr(self, "eta", None) == 0


def _hebbian_step(ctx, sign: float = 1.0):
    """prepare(learn) = +-dt lambda eta / S, the factor on the postsynaptic vector (one
    baddbmm per update)."""
    eta = sign * ctx.dt * ctx.param(lambda proj: proj.rule.eta) / ctx.samples
    return lambda learn: learn * eta


def _hebbian(ctx, sign: float = 1.0) -> TorchRule:
    """W(n) = W + (dt lambda eta / S) post^T pre: the mean change over the samples."""
    import torch

    return TorchRule(lambda w, pre, post, step, s: (torch.baddbmm(w, (step * post).mT, pre), s),
                     prepare=_hebbian_step(ctx, sign))


@dataclass(frozen=True)
class DendriticPrediction(Rule):
    """Urbanczik-Senn: dW/dt = lambda eta [phi(u_breve_post) - phi(vhat_c,post)] s_pre^T,
    the post's error read after its update. With tau_lo > 0 the change is low-pass
    filtered: dM/dt = (change - M)/tau_lo, dW/dt = M (both Euler from step n-1)."""

    eta: float
    tau_lo: float = 0.0

    def __post_init__(self):
        check_number("DendriticPrediction", "eta", self.eta)
        check_number("DendriticPrediction", "tau_lo", self.tau_lo)

    def factors(self, proj):
        return {"post": (proj.target, f"error_{proj.port}")}

    def structure(self) -> tuple:
        """The low-pass filter changes the code, not only its numbers."""
        return (self.tau_lo > 0,)

    def check(self, proj, network):
        if proj.port not in getattr(network.population(proj.target).model, "dendrites", ()):
            raise ValueError(f"projection {proj.name}: dendritic prediction needs a dendritic compartment, "
                             f"not {proj.port!r}")

    def brian2(self, ctx) -> Brian2Rule:
        change = f"{ctx.learn}*{ctx.const('eta', self.eta, '1/ms')}*{ctx.post}*{ctx.pre}"
        if self.tau_lo == 0:
            return Brian2Rule([f"dw/dt = {change} : 1 (clock-driven)"])
        tau = ctx.const("tau_lo", self.tau_lo, "ms")
        return Brian2Rule(["dw/dt = m : 1 (clock-driven)", f"dm/dt = ({change} - m)/{tau} : Hz (clock-driven)"])

    def torch(self, ctx) -> TorchRule:
        import torch

        if self.tau_lo == 0:
            return _hebbian(ctx)
        dt, tau = ctx.dt, ctx.param(lambda proj: proj.rule.tau_lo)
        step, keep = _hebbian_step(ctx), 1.0 - dt / tau

        def update(w, pre, post, change, s):  # W(n) = W + dt M(n-1); M(n) = M + dt (change - M) / tau_lo
            return w + dt * s["m"], {"m": torch.baddbmm(s["m"] * keep, (change * post).mT, pre)}

        return TorchRule(update, {"m": ctx.zeros_weight()}, prepare=lambda learn: step(learn) / tau)


@dataclass(frozen=True)
class Silencing(Rule):
    """Drives the target compartment to rest: dW/dt = -lambda eta v_c,post s_pre^T."""

    eta: float

    def __post_init__(self):
        check_number("Silencing", "eta", self.eta)

    def factors(self, proj):
        return {"post": (proj.target, f"v_{proj.port}")}

    def check(self, proj, network):
        if proj.port not in getattr(network.population(proj.target).model, "dendrites", ()):
            raise ValueError(f"projection {proj.name}: silencing needs a dendritic compartment, not {proj.port!r}")

    def brian2(self, ctx) -> Brian2Rule:
        eta = ctx.const("eta", self.eta, "1/ms")
        return Brian2Rule([f"dw/dt = -{ctx.learn}*{eta}*{ctx.post}*{ctx.pre} : 1 (clock-driven)"])

    def torch(self, ctx) -> TorchRule:
        return _hebbian(ctx, sign=-1.0)


@dataclass(frozen=True)
class PhaselessAlignment(Rule):
    """Phaseless alignment learning (Max et al. 2024) of top-down weights:

        dB/dt = lambda eta [xi_post r~_pre^T - alpha B]

    xi_post: the target's OU noise on the projection's port (noise = "ou"), or, for a
    spiking target, its own spike noise through its PSP kernel, psp - phi(u_breve)
    (noise = "spikes"); r~_pre: the presynaptic signal high-pass filtered with tau_hp
    (ms), r~(n) = r~ + (r(n) - r(n-1)) - dt/tau_hp r~, read from step n-1."""

    eta: float
    alpha: float = 0.0
    tau_hp: float = 0.1
    noise: str = "ou"

    NOISES = ("ou", "spikes")

    def __post_init__(self):
        check_number("PhaselessAlignment", "eta", self.eta)
        check_number("PhaselessAlignment", "alpha", self.alpha)
        check_number("PhaselessAlignment", "tau_hp", self.tau_hp, strict=True)
        if self.noise not in self.NOISES:
            raise ValueError(f"PhaselessAlignment: noise must be one of {self.NOISES}, got {self.noise!r}")

    def factors(self, proj):
        return {"post": (proj.target, f"noise_{proj.port}" if self.noise == "ou" else "psp_noise")}

    def check(self, proj, network):
        if self.noise == "spikes":
            if not network.population(proj.target).model.fires:
                raise ValueError(f"projection {proj.name}: phaseless alignment from spike noise needs a spiking "
                                 f"target; {proj.target} does not fire")
            return
        noise = network.population(proj.target).noise
        if getattr(noise, "port", None) != proj.port:
            raise ValueError(f"projection {proj.name}: phaseless alignment correlates the noise of "
                             f"{proj.target}.{proj.port}; give {proj.target} OUNoise on {proj.port!r}")

    def brian2(self, ctx) -> Brian2Rule:
        hp, tau = f"rhp_{ctx.name}", ctx.const("tau_hp", self.tau_hp, "ms")
        eta, alpha = ctx.const("eta", self.eta, "1/ms"), ctx.const("alpha", self.alpha)
        return Brian2Rule([f"dw/dt = {ctx.learn}*{eta}*({ctx.post}*{hp}_pre - {alpha}*w) : 1 (clock-driven)"],
                          pre_variables=[f"{hp} : 1"],
                          pre_store=f"{hp} = {hp} + ({ctx.pre_now} - {ctx.pre_start}) - dt/{tau}*{hp}")

    def torch(self, ctx) -> TorchRule:
        import torch

        step, dt = _hebbian_step(ctx), ctx.dt
        decay = ctx.param(lambda proj: proj.rule.eta * proj.rule.alpha)
        hp_keep = 1.0 - dt / ctx.param(lambda proj: proj.rule.tau_hp)

        def update(w, pre, post, given, s):  # given: (dt lambda eta / S, 1 - dt lambda eta alpha)
            step, keep = given
            return torch.baddbmm(w * keep, (step * post).mT, s["r_hp"]), s

        def end(s, pre_start, pre_now):  # r~(n) = (1 - dt/tau_hp) r~ + r(n) - r(n-1)
            return {"r_hp": torch.addcmul(pre_now - pre_start, hp_keep, s["r_hp"])}

        return TorchRule(update, {"r_hp": ctx.zeros_pre()}, end,
                         prepare=lambda learn: (step(learn), 1.0 - dt * learn * decay))


@dataclass(frozen=True)
class Hebbian(Rule):
    """dW/dt = lambda (eta q_post p_pre^T - decay W), read at the start of the step (eta,
    decay in 1/ms; eta < 0: anti-Hebbian). q_post: the value of `post` (default: the
    target); p_pre: the value of `pre`, default the signal the projection delivered (on a
    spiking projection its spikes, s = 1 in the step of a spike)."""

    eta: float
    pre: str | None = None
    post: str | None = None
    decay: float = 0.0

    reads = "start"

    def __post_init__(self):
        if isinstance(self.eta, bool) or not isinstance(self.eta, (int, float)) or not math.isfinite(self.eta):
            raise ValueError(f"Hebbian: eta must be a finite number, got {self.eta!r}")
        check_number("Hebbian", "decay", self.decay)

    def inert(self) -> bool:
        return self.eta == 0 and self.decay == 0

    def factors(self, proj):
        out = {"post": (self.post or proj.target, "value")}
        if self.pre:
            out["pre"] = (self.pre, "value")
        return out

    def check(self, proj, network):
        sizes = {p.name: p.size for p in network.populations}
        for side, name, end in (("pre", self.pre, proj.source), ("post", self.post, proj.target)):
            if name is not None and sizes.get(name) != sizes[end]:
                raise ValueError(f"projection {proj.name}: the rule's {side} factor must be a population of "
                                 f"{sizes[end]} neurons, got {name!r}")

    def brian2(self, ctx) -> Brian2Rule:
        eta, decay = ctx.const("eta", self.eta, "1/ms"), ctx.const("decay", self.decay, "1/ms")
        if not ctx.events:
            return Brian2Rule([f"dw/dt = {ctx.learn}*({eta}*({ctx.post})*({ctx.pre}) - {decay}*w) : 1 (clock-driven)"])
        lines = [f"dw/dt = -{ctx.learn}*{decay}*w : 1 (clock-driven)"] if self.decay else ["w : 1"]
        return Brian2Rule(lines, on_pre=f"w = w + dt*{ctx.learn}*{eta}*({ctx.post})")

    def torch(self, ctx) -> TorchRule:
        import torch

        step, dt = _hebbian_step(ctx), ctx.dt
        decay = ctx.param(lambda proj: proj.rule.decay)
        if not decay.any():  # no decay in any replica: one fused update
            return _hebbian(ctx)

        def update(w, pre, post, given, s):  # given: (dt lambda eta / S, 1 - dt lambda decay)
            return torch.baddbmm(w * given[1], (given[0] * post).mT, pre), s

        return TorchRule(update, prepare=lambda learn: (step(learn), 1.0 - dt * learn * decay))
