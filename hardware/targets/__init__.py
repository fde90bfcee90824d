"""Neuromorphic chips as mapping targets: the facts that constrain placing a trained SNN on each.

One TOML file per chip in this folder, flat keys named like the fields of `Target`
(``name`` is the file stem, not a key) and a ``[sources]`` table that gives, for every
field in the file but ``notes``, where the value comes from. TOML has no null: a limit
that does not exist separately is written ``"none"`` and loads as ``None``. The fields
from ``cores_shared`` on describe how a chip's toolchain lays populations onto cores;
a file may leave them out, and then the mapper packs populations as described in
hardware.mapping (an assumption that no toolchain has confirmed).
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
    # How the toolchain lays populations onto cores (optional; sourced when given):
    cores_shared: bool = True  # may two populations share a core (sPyNNaker: no, one slice per core)
    # sPyNNaker's split cores: below dt split_below_dt (ms) a population that receives synapses
    # gets, beside each neuron core, ceil(planned events / synapse_events_per_core) synapse cores,
    # planned events = sum over projections of (most synapses from one source neuron onto one
    # core's neurons) x planned_rate x source neurons, per second (see hardware.mapping)
    split_below_dt: float | None = None
    synapse_events_per_core: int | None = None  # synaptic events per second one synapse core takes
    planned_rate: int | None = None  # spikes per second per neuron that the plan assumes
    cores_per_chip: int | None = None  # application cores per chip (for the chip count)
    parameter_max: float | None = None  # largest |value| of a cell parameter as the PyNN export writes it (LIF, CubaLIF)


_KINDS = typing.get_type_hints(Target)
_KEYS = tuple(f.name for f in fields(Target) if f.name != "name")
_SOURCED = tuple(k for k in _KEYS if k not in ("notes", "sources"))
_SPLIT = ("split_below_dt", "synapse_events_per_core", "planned_rate")
_OPTIONAL = ("notes", "cores_shared", "split_below_dt", "synapse_events_per_core", "planned_rate", "cores_per_chip",
             "parameter_max")


def _names(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in folder.glob("*.toml")))


TARGETS: tuple[str, ...] = _names(_FOLDER)
"""The known target names, sorted."""


def _checked(path: Path, key: str, value, kind, given=()):
    """`value` of field `key` as the field's type; a ValueError naming file and field if not."""

    def refuse(expected: str) -> ValueError:
        return ValueError(f"{path}: field {key!r} must be {expected}, got {value!r}")

    if kind in (int | None, float | None) and value == "none":
        return None
    if kind == float | None:
        if type(value) not in (int, float) or not value > 0:
            raise refuse('a positive number or "none"')
        return float(value)
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
    extra = sorted(set(value) - {k for k in _SOURCED if k in given})
    missing = [k for k in _SOURCED if k in given and k not in value]
    if extra:
        raise ValueError(f"{path}: field 'sources' has an entry for field(s) the file does not set {extra}")
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
    missing = [k for k in _KEYS if k not in _OPTIONAL and k not in data]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}")
    values = {k: _checked(path, k, v, _KINDS[k], given=data) for k, v in data.items()}
    split = [k for k in _SPLIT if values.get(k) is not None]
    if split and len(split) != len(_SPLIT):
        raise ValueError(f"{path}: fields {list(_SPLIT)} go together (separate synapse cores), the file sets {split}")
    return Target(name=name, **values)


def all_targets() -> list[Target]:
    """Every known target, in the order of `TARGETS`."""
    return [load_target(name) for name in TARGETS]
