"""What the network sees over time: one sample per presentation of t_pres ms.

`data[key]` has one row per presentation (keys from `Network.data_keys`: input
population names, and "pop.target" for target nudging), or (presentations, samples, n)
for a minibatch of samples per presentation (torch backend); `gates[key]` switches a
data-driven nudging input on (1) or off (0) per presentation; `learn` gates all
plasticity per presentation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Schedule:
    t_pres: float
    data: dict[str, np.ndarray]
    gates: dict[str, np.ndarray] = field(default_factory=dict)
    learn: np.ndarray | None = None

    def __post_init__(self):
        if not (math.isfinite(self.t_pres) and self.t_pres > 0):
            raise ValueError(f"t_pres must be > 0 ms, got {self.t_pres!r}")
        self.data = {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in self.data.items()}
        if not self.data:
            raise ValueError("a schedule needs data for at least one input")
        lengths = {k: len(v) for k, v in self.data.items()}
        n = next(iter(lengths.values()))
        if any(m != n for m in lengths.values()):
            raise ValueError(f"all data need one row per presentation; got lengths {lengths}")
        batches = {k: v.shape[1] if v.ndim == 3 else 1 for k, v in self.data.items()}
        if any(v.ndim > 3 for v in self.data.values()) or len(set(batches.values())) > 1:
            raise ValueError("data need shape (presentations, n) or (presentations, samples, n), with the same "
                             f"samples for all; got {({k: v.shape for k, v in self.data.items()})}")
        for key, values in self.data.items():
            bad = np.argwhere(~np.isfinite(values))
            if len(bad):
                where = f"sample {bad[0][1]}, neuron {bad[0][2]}" if values.ndim == 3 else f"neuron {bad[0][1]}"
                raise ValueError(f"data {key!r} contains NaN or inf at presentation {bad[0][0]}, {where}")
        self.gates = {k: self._gate(f"gate {k!r}", v, n) for k, v in self.gates.items()}
        self.learn = self._gate("learn", np.ones(n) if self.learn is None else self.learn, n)

    @staticmethod
    def _gate(name, values, n):
        values = np.asarray(values, dtype=float)
        if values.shape != (n,):
            raise ValueError(f"{name} needs shape ({n},), got {values.shape}")
        if not np.all(np.isfinite(values)) or np.any((values < 0) | (values > 1)):
            raise ValueError(f"{name} must lie in [0, 1]")
        return values

    @property
    def n_presentations(self) -> int:
        return len(next(iter(self.data.values())))

    @property
    def samples(self) -> int:
        """Samples per presentation (1 unless the data carry a samples axis)."""
        first = next(iter(self.data.values()))
        return first.shape[1] if first.ndim == 3 else 1

    def batched(self, key: str) -> np.ndarray:
        """data[key] as (presentations, samples, n)."""
        values = self.data[key]
        return values if values.ndim == 3 else values[:, None, :]

    @property
    def duration(self) -> float:
        return self.n_presentations * self.t_pres

    def check_against(self, network) -> None:
        """Every data key the network needs is here, with the right width."""
        needed = network.data_keys
        for key, size in needed.items():
            if key not in self.data:
                raise ValueError(f"schedule has no data for {key!r} (it has {sorted(self.data)})")
            if self.data[key].shape[-1] != size:
                raise ValueError(f"data {key!r} has {self.data[key].shape[-1]} columns, "
                                 f"but {key.split('.')[0]} has {size} neurons")
        unknown = set(self.data) - set(needed)
        if unknown:
            raise ValueError(f"schedule data {sorted(unknown)} match nothing in the network "
                             f"(expected {sorted(needed)})")
        steps = self.t_pres / network.dt
        if abs(steps - round(steps)) > 1e-9 * steps:
            raise ValueError(f"t_pres = {self.t_pres} ms is not a whole number of steps of dt = {network.dt} ms")

    def steps_per_presentation(self, dt: float) -> int:
        return int(round(self.t_pres / dt))
