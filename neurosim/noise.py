"""Noise sources as data."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class OUNoise:
    """Ornstein-Uhlenbeck noise on a compartment, one process per neuron:

        dxi = -xi/tau dt + sigma sqrt(1/tau) dW      (stationary std sigma/sqrt(2))

    Seeded through the run's seed; tau in ms.
    """

    compartment: str
    sigma: float
    tau: float

    def __post_init__(self):
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"OUNoise: sigma must be >= 0, got {self.sigma!r}")
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"OUNoise: tau must be > 0 ms, got {self.tau!r}")
