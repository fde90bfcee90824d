"""Noise sources of a population, one independent process per neuron, seeded by the
run's seed. The model says where the noise enters (neurosim/models); a noise source
gives its own process. w(n) ~ N(0, 1) per neuron and step: Brian2's own draws or given
draws on Brian2, counter-based draws on torch (neurosim/backends/counter_rng.py), or
given draws on both (the simulators' `noise=`), which is how backends are held equal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .models.base import check_number


@dataclass(frozen=True)
class OUNoise:
    """Ornstein-Uhlenbeck noise xi on the port (compartment) `port`:

        dxi = -xi/tau dt + sigma sqrt(1/tau) dW,  in steps:
        xi(n) = xi(n-1) - dt xi(n-1)/tau + sigma sqrt(dt/tau) w(n)

    stationary std sigma/sqrt(2 - dt/tau) (sigma/sqrt(2) for dt << tau); tau in ms."""

    port: str
    sigma: float
    tau: float

    variable = "ou"

    def __post_init__(self):
        check_number("OUNoise", "sigma", self.sigma)
        check_number("OUNoise", "tau", self.tau, strict=True)

    def brian2(self, ctx) -> tuple[list[str], dict]:
        """The equation of xi (variable `ou`); ctx.white is the unit white noise."""
        b2 = ctx.b2
        k = ctx.name
        ns = {f"tau_ou_{k}": self.tau * b2.ms, f"sigma_ou_{k}": self.sigma}
        return [f"dou/dt = -ou/tau_ou_{k} + sigma_ou_{k}*{ctx.white}/sqrt(tau_ou_{k}) : 1"], ns

    def torch(self, ctx):
        """xi(n) from xi(n-1) and w(n)."""
        keep = 1.0 - ctx.dt / ctx.param(lambda pop: pop.noise.tau)
        gain = ctx.param(lambda pop: pop.noise.sigma * math.sqrt(ctx.dt / pop.noise.tau))
        import torch

        return lambda xi, w: torch.addcmul(keep * xi, gain, w)


@dataclass(frozen=True)
class WhiteNoise:
    """White noise on a leaky rate unit's state (neurosim.models.rate.Leaky):
    tau dz/dt = ... + sigma sqrt(tau) xi(t), i.e. z += sigma sqrt(dt/tau) w(n) per step
    (variance sigma^2/2 at leak 1)."""

    sigma: float

    def __post_init__(self):
        check_number("WhiteNoise", "sigma", self.sigma)


def replay_key(population: str, stream: str) -> str:
    """The key of a population's random stream in a simulator's `noise=` (replayed
    draws): the population's name for its noise source, "<population>.<stream>" else."""
    return population if stream == "noise" else f"{population}.{stream}"


def check_replayed(network, keys) -> None:
    """Every key of `noise=` names a stream that a population draws from, or a
    ValueError naming it and the streams there are."""
    streams = {replay_key(p.name, s) for p in network.populations for s in p.model.draw_streams(p.noise)}
    for key in keys:
        if key not in streams:
            pop = key.partition(".")[0]
            reason = "which has no noise source" if key == pop else "which is not a stream it draws from"
            raise ValueError(f"noise given for {key}, {reason}; streams: {sorted(streams) or 'none'}")
