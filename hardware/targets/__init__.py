"""Neuromorphic chips as mapping targets: the facts that constrain placing a trained SNN on each.

One TOML file per chip in this folder, flat keys named like the fields of `Target`
(``name`` is the file stem, not a key) and a ``[sources]`` table that gives, for every
field but ``notes``, where the value comes from. TOML has no null: a limit that does
not exist separately is written ``"none"`` and loads as ``None``.
"""

from __future__ import annotations

import tomllib
import typing
from dataclasses import dataclass, fields
from pathlib import Path

NEURON_MODELS = ("LIF", "CubaLIF", "IF", "LI", "Threshold")
"""Neuron models a target may list, by their NIR node names."""

_FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class Target:
    """One chip (or the default system its file describes) as a mapping target."""

    name: str  # file stem, e.g. "loihi2"
    title: str  # "Intel Loihi 2"
    neuron_models: tuple[str, ...]  # subset of NEURON_MODELS the chip runs natively
    weight_bits: int  # bits of a synaptic weight (incl. the sign bit if signed)
    # True: [-(2**(bits-1)), 2**(bits-1)-1]; False: [0, 2**bits-1], the sign from the synapse type
    weight_signed: bool
    neurons_per_core: int  # max neurons on one core (or the chip's smallest placement unit)
    cores: int  # cores in the default system the file describes
    fan_in: int | None  # max incoming synapses per neuron (None: limited only by synapses_per_core)
    fan_out: int | None  # max outgoing connections per neuron (None: no separate limit)
    synapses_per_core: int | None  # synaptic memory per core in synapses (None: no separate limit)
    input_channels: int | None  # max input channels the chip takes (None: no separate limit)
    output_channels: int | None  # max readout neurons (None: no separate limit)
    time_step: str  # the time-step semantics in one or two sentences
    sources: dict[str, str]  # field name -> source, for every field but name, notes and sources
    notes: str = ""  # what the numbers simplify


_KINDS = typing.get_type_hints(Target)
_KEYS = tuple(f.name for f in fields(Target) if f.name != "name")
_SOURCED = tuple(k for k in _KEYS if k not in ("notes", "sources"))


def _names(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in folder.glob("*.toml")))


TARGETS: tuple[str, ...] = _names(_FOLDER)
"""The known target names, sorted."""


def _checked(path: Path, key: str, value, kind):
    """`value` of field `key` as the field's type; a ValueError naming file and field if not."""

    def refuse(expected: str) -> ValueError:
        return ValueError(f"{path}: field {key!r} must be {expected}, got {value!r}")

    if kind == int | None and value == "none":
        return None
    if kind in (int, int | None):
        if type(value) is not int or value <= 0:
            raise refuse("a positive integer" + (' or "none"' if kind != int else ""))
        return value
    if kind is bool:
        if type(value) is not bool:
            raise refuse("true or false")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise refuse("a string")
        return value
    if kind == tuple[str, ...]:
        names = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not names or not value or len(set(value)) != len(value):
            raise refuse(f"a non-empty list of distinct names from {NEURON_MODELS}")
        unknown = [v for v in value if v not in NEURON_MODELS]
        if unknown:
            raise refuse(f"names from {NEURON_MODELS} (unknown: {unknown})")
        return tuple(value)
    # kind is dict[str, str]: the sources table
    if not isinstance(value, dict):
        raise refuse("a table")
    extra = sorted(set(value) - set(_SOURCED))
    missing = [k for k in _SOURCED if k not in value]
    if extra:
        raise ValueError(f"{path}: field 'sources' has an entry for unknown field(s) {extra}")
    if missing:
        raise ValueError(f"{path}: field(s) {missing} have no entry in 'sources'")
    empty = [k for k, v in value.items() if not isinstance(v, str) or not v.strip()]
    if empty:
        raise ValueError(f"{path}: field(s) {empty} have an empty or non-string source")
    return dict(value)


def load_target(name: str, *, folder: str | Path | None = None) -> Target:
    """Read and check ``<folder>/<name>.toml`` (folder: this package's by default)."""
    folder = _FOLDER if folder is None else Path(folder)
    known = _names(folder)
    if name not in known:
        raise ValueError(f"unknown target {name!r}; known targets: {', '.join(known)}")
    path = folder / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from err
    extra = sorted(set(data) - set(_KEYS))
    if extra:
        raise ValueError(f"{path}: unknown field(s) {extra}; the fields are {list(_KEYS)}")
    missing = [k for k in _KEYS if k != "notes" and k not in data]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}")
    values = {k: _checked(path, k, v, _KINDS[k]) for k, v in data.items()}
    return Target(name=name, **values)


def all_targets() -> list[Target]:
    """Every known target, in the order of `TARGETS`."""
    return [load_target(name) for name in TARGETS]
