"""Counter-based random draws for the torch backend: the number for (key, counter) is
a hash of the two (splitmix64); a uniform takes one hash, a normal two through
Box-Muller. A replica's draws are then a function of its seed, its population, the
step, the sample and the neuron only: the same whatever the chunking, the other
replicas or the device.
"""
from __future__ import annotations

import math

import torch

_MASK64 = (1 << 64) - 1


def _signed(x: int) -> int:
    x &= _MASK64
    return x - (1 << 64) if x >= 1 << 63 else x


_GOLDEN, _MIX1, _MIX2 = (_signed(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


def _shr(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """The splitmix64 finaliser on int64 tensors (arithmetic mod 2^64)."""
    x = (x ^ _shr(x, 30)) * _MIX1
    x = (x ^ _shr(x, 27)) * _MIX2
    return x ^ _shr(x, 31)


def stream_key(seed: int, stream: int) -> int:
    """The key of one replica's noise stream `stream` (one per noisy population)."""
    key = splitmix64(torch.tensor([_signed(seed * _GOLDEN + stream + 1)], dtype=torch.int64))
    return int(key.item())


def _uniform(x: torch.Tensor) -> torch.Tensor:
    """U[0, 1) from the 53 high bits of the hash of x."""
    return _shr(splitmix64(x), 11).double() * 2.0 ** -53


def counter_normals(keys: torch.Tensor, first_step: int, n_steps: int, width: int) -> torch.Tensor:
    """N(0, 1) draws (R, n_steps, width) for steps first_step.. of streams `keys` (R,):
    Box-Muller on two hashed counters per number, z = sqrt(-2 ln(1 - u1)) cos(2 pi u2)."""
    counter = torch.arange(first_step * width, (first_step + n_steps) * width, device=keys.device, dtype=torch.int64)
    base = keys.view(-1, 1) + 2 * counter
    z = torch.sqrt(-2.0 * torch.log1p(-_uniform(base))) * torch.cos(2.0 * math.pi * _uniform(base + 1))
    return z.view(len(keys), n_steps, width)


def counter_uniforms(keys: torch.Tensor, first_step: int, n_steps: int, width: int) -> torch.Tensor:
    """U[0, 1) draws (R, n_steps, width) for steps first_step.. of streams `keys` (R,)."""
    counter = torch.arange(first_step * width, (first_step + n_steps) * width, device=keys.device, dtype=torch.int64)
    return _uniform(keys.view(-1, 1) + counter).view(len(keys), n_steps, width)
