"""Rate circuits as data: leaky rate populations joined by signed, gated projections,
with clamped populations and Hebbian-product plasticity. The energy-based network
(microcircuits.energy) is built from these parts; docs/equations.md has the step.

    tau dz/dt = -leak z + sum over projections p onto it of scale_p g_p(z) (W_p s_p)
                + sigma sqrt(tau) xi(t)                   (xi: white noise)

where s_p is the source's value z ("value") or its rate f(z) ("rate"), g_p(z) is 1 or
f'(z) of the target ("derivative"), and W_p is a weight matrix, the identity
(one_to_one), another projection's weight (shared) or its transpose (tied). A `Clamp`
population holds the schedule's values. A `Hebbian(eta)` projection learns

    dW/dt = lambda (eta q_post p_pre^T - decay W)   (lambda: the schedule's learn signal)

with q_post = z of the target (or of the population `post`) and p_pre = s of the source
(or z of the population `pre`); the mean over the samples of a minibatch (torch).

Every population and rule reads the state at the start of the step (forward Euler,
Euler-Maruyama for the noise). A Leaky population with tau = dt and leak 1 is
instantaneous: z(n+1) = its input at step n (one step late).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .network import check_unique, find
from .neurons import ACTIVATIONS

SIGNALS = ("value", "rate")
GAINS = ("none", "derivative")
DERIVATIVES = {"linear": "1.0", "tanh": "1.0 - tanh({x})**2", "relu": "int({x} > 0)",
               "logistic": "exp(-({x}))/(1.0 + exp(-({x})))**2"}


@dataclass(frozen=True)
class Leaky:
    """tau dz/dt = -leak z + input + sigma sqrt(tau) xi; f = activation (tau in ms)."""

    tau: float = 1.0
    leak: float = 1.0
    activation: str = "linear"
    sigma: float = 0.0

    def __post_init__(self):
        if not (isinstance(self.tau, (int, float)) and math.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"Leaky: tau must be > 0 ms, got {self.tau!r}")
        if not (isinstance(self.leak, (int, float)) and math.isfinite(self.leak) and self.leak >= 0):
            raise ValueError(f"Leaky: leak must be >= 0, got {self.leak!r}")
        if self.activation not in DERIVATIVES:
            raise ValueError(f"Leaky: activation must be one of {sorted(DERIVATIVES)}, got {self.activation!r}")
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"Leaky: sigma must be >= 0, got {self.sigma!r}")


@dataclass(frozen=True)
class Clamp:
    """z = the schedule's values (inputs and targets); f = activation."""

    activation: str = "linear"

    def __post_init__(self):
        if self.activation not in DERIVATIVES:
            raise ValueError(f"Clamp: activation must be one of {sorted(DERIVATIVES)}, got {self.activation!r}")


@dataclass(frozen=True)
class Hebbian:
    """dW/dt = lambda (eta q_post p_pre^T - decay W) (eta, decay in 1/ms; eta < 0: anti-Hebbian).
    q_post: z of `post` (default: the target); p_pre: z of `pre` (default: the source's signal)."""

    eta: float
    pre: str | None = None
    post: str | None = None
    decay: float = 0.0

    def __post_init__(self):
        if not (isinstance(self.eta, (int, float)) and math.isfinite(self.eta)):
            raise ValueError(f"Hebbian: eta must be a finite number, got {self.eta!r}")
        if not (isinstance(self.decay, (int, float)) and math.isfinite(self.decay) and self.decay >= 0):
            raise ValueError(f"Hebbian: decay must be a finite number >= 0, got {self.decay!r}")


@dataclass(eq=False)
class RatePopulation:
    name: str
    size: int
    model: Leaky | Clamp

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"population name {self.name!r} must be a Python identifier")
        if not (isinstance(self.size, (int, np.integer)) and self.size > 0):
            raise ValueError(f"population {self.name}: size must be a positive integer, got {self.size!r}")
        if not isinstance(self.model, (Leaky, Clamp)):
            raise ValueError(f"population {self.name}: model must be Leaky or Clamp, got {self.model!r}")

    @property
    def is_clamped(self) -> bool:
        return isinstance(self.model, Clamp)


@dataclass(eq=False)
class RateProjection:
    """source -> target: scale g(z_target) (W s_source). Give `weight` (target, source),
    or kind="one_to_one", or shared="<projection>" for that projection's W (the same
    matrix, learning included), or tied="<projection>" for its W^T."""

    name: str
    source: str
    target: str
    weight: np.ndarray | None = None
    signal: str = "rate"
    scale: float = 1.0
    gain: str = "none"
    kind: str = "all_to_all"
    shared: str | None = None
    tied: str | None = None
    rule: Hebbian | None = None

    def __post_init__(self):
        where = f"projection {self.name}"
        if not self.name.isidentifier():
            raise ValueError(f"projection name {self.name!r} must be a Python identifier")
        if self.signal not in SIGNALS:
            raise ValueError(f"{where}: signal must be one of {SIGNALS}, got {self.signal!r}")
        if self.gain not in GAINS:
            raise ValueError(f"{where}: gain must be one of {GAINS}, got {self.gain!r}")
        if self.kind not in ("all_to_all", "one_to_one"):
            raise ValueError(f"{where}: kind must be all_to_all or one_to_one, got {self.kind!r}")
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale)):
            raise ValueError(f"{where}: scale must be a finite number, got {self.scale!r}")
        if self.weight is not None:
            self.weight = np.array(self.weight, dtype=float)
        if self.shared and self.tied:
            raise ValueError(f"{where}: give shared or tied, not both")
        if (self.kind == "one_to_one" or self.uses) and (self.weight is not None or self.rule is not None):
            raise ValueError(f"{where}: a one_to_one, shared or tied projection has no weight or rule of its own")

    @property
    def uses(self) -> str | None:
        """The projection whose weight this one uses (shared or tied), if any."""
        return self.shared or self.tied


@dataclass(eq=False)
class RateNetwork:
    populations: list[RatePopulation]
    projections: list[RateProjection] = field(default_factory=list)
    dt: float = 0.1

    def __post_init__(self):
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be > 0 ms, got {self.dt!r}")
        check_unique(self.populations + self.projections)
        for proj in self.projections:
            self._check(proj)

    def population(self, name: str) -> RatePopulation:
        return find(self.populations, name, "population")

    def projection(self, name: str) -> RateProjection:
        return find(self.projections, name, "projection")

    def onto(self, target: str) -> list[RateProjection]:
        return [p for p in self.projections if p.target == target]

    @property
    def data_keys(self) -> dict[str, int]:
        return {p.name: p.size for p in self.populations if p.is_clamped}

    def _check(self, proj: RateProjection):
        where = f"projection {proj.name}"
        pops = {p.name: p for p in self.populations}
        for end in (proj.source, proj.target):
            if end not in pops:
                raise ValueError(f"{where}: no population named {end!r}")
        src, tgt = pops[proj.source], pops[proj.target]
        if tgt.is_clamped:
            raise ValueError(f"{where}: target {tgt.name} is clamped")
        shape = (tgt.size, src.size)
        if proj.kind == "one_to_one":
            if src.size != tgt.size:
                raise ValueError(f"{where}: one_to_one needs equal sizes, got {src.size} -> {tgt.size}")
            return
        if proj.uses:
            how = "shared with" if proj.shared else "tied to"
            try:
                other = self.projection(proj.uses)
            except KeyError:
                raise ValueError(f"{where}: {how} unknown projection {proj.uses!r}") from None
            needed = shape if proj.shared else shape[::-1]
            if other.weight is None or other.weight.shape != needed:
                raise ValueError(f"{where}: {how} {other.name}, whose weight must have shape {needed}"
                                 f"{'' if proj.shared else f' (the transpose of {shape})'}")
            return
        if proj.weight is None or proj.weight.shape != shape:
            got = None if proj.weight is None else proj.weight.shape
            raise ValueError(f"{where}: weight has shape {got}, but {src.name} -> {tgt.name} needs "
                             f"(target, source) = {shape}")
        if not np.all(np.isfinite(proj.weight)):
            raise ValueError(f"{where}: weight contains NaN or inf")
        if proj.rule is not None:
            for side, name, size in (("pre", proj.rule.pre, src.size), ("post", proj.rule.post, tgt.size)):
                if name is not None and (name not in pops or pops[name].size != size):
                    raise ValueError(f"{where}: the rule's {side} factor must be a population of {size} neurons, "
                                     f"got {name!r}")

    def factor(self, proj: RateProjection, side: str) -> str:
        """The population whose state is the rule's pre or post factor."""
        return getattr(proj.rule, side) or (proj.source if side == "pre" else proj.target)


def activation_expression(name: str, x: str) -> str:
    """f(x) as a Brian2 expression."""
    return ACTIVATIONS[name][1].format(x=x)


def derivative_expression(name: str, x: str) -> str:
    """f'(x) as a Brian2 expression."""
    return DERIVATIVES[name].format(x=x)
