"""Config values checked before anything runs: each error is one line naming the key, the
value and what is allowed. Nothing is converted: a bool is not an int, a float is not an
int (4.7 layers are refused, not truncated), a string is not a bool.

Two kinds of section: a table of `Setting`s (the runners' [task] and [run],
microcircuits/defaults.py) and a model's [network] dataclass, whose field annotations
(float, int, bool, str, list, dict, joined by |) and defaults are its schema
(`from_dict`)."""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Setting:
    """kind: "int", "float", "bool", "str", "ints" (a list of integers), "floats" (a
    number or a list of numbers) or "strs" (a string or a list of strings); low/high:
    bounds (low excluded when `above`); choices: the allowed values; none: None allowed."""

    kind: str
    low: float | None = None
    high: float | None = None
    above: bool = False
    choices: tuple = ()
    none: bool = False

    def allowed(self) -> str:
        what = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                "ints": "a list of integers", "floats": "a number or a list of numbers",
                "strs": "a string or a list of strings"}[self.kind]
        if self.choices:
            what = f"one of {list(self.choices)}"
        if self.low is not None:
            what += f" {'>' if self.above else '>='} {self.low:g}"
        if self.high is not None:
            what += f" <= {self.high:g}"
        return what + (" (or unset)" if self.none else "")

    def accepts(self, value) -> bool:
        if value is None:
            return self.none
        if self.kind in ("ints", "floats", "strs"):
            one = {"ints": _is_int, "floats": _is_number, "strs": lambda v: isinstance(v, str)}[self.kind]
            values = value if isinstance(value, list) else [value] if self.kind != "ints" else None
            return values is not None and all(one(v) and (self.kind == "strs" or self._in_range(v)) for v in values)
        ok = {"int": _is_int, "float": _is_number, "bool": lambda v: isinstance(v, bool),
              "str": lambda v: isinstance(v, str)}[self.kind](value)
        return ok and (not self.choices or value in self.choices) and self._in_range(value)

    def _in_range(self, value) -> bool:
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return False
        return self.high is None or value <= self.high


def check_section(section: str, values: dict, schema: dict[str, Setting]) -> None:
    """Every key of values that the schema names, checked (unknown keys are the caller's)."""
    for key, setting in schema.items():
        if key in values and not setting.accepts(values[key]):
            raise ValueError(f"{section}.{key} must be {setting.allowed()}, got {values[key]!r}")


def from_dict(cls, values: dict, section: str = "network"):
    """cls(**values) for a config dataclass, after naming unknown keys and values whose
    type its field annotations do not allow (see the module docstring)."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown keys in [{section}]: {unknown}; known: {sorted(known)}")
    for key, value in values.items():
        f = known[key]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        kinds = [k.strip() for k in annotation.split("|")]
        if not (value is None and default is None) and not any(_fits(k, value, default) for k in kinds):
            raise ValueError(f"{section}.{key} must be {' or '.join(_describe(k, default) for k in kinds)}, "
                             f"got {value!r}")
    return cls(**values)


def _fits(kind: str, value, default) -> bool:
    if kind == "list":
        element = _is_int if isinstance(default, list) and default and all(_is_int(v) for v in default) \
            else _is_number
        return isinstance(value, list) and all(element(v) for v in value)
    return {"float": _is_number, "int": _is_int, "bool": lambda v: isinstance(v, bool),
            "str": lambda v: isinstance(v, str), "dict": lambda v: isinstance(v, dict)}.get(kind, lambda v: True)(value)


def _describe(kind: str, default) -> str:
    if kind == "list":
        ints = isinstance(default, list) and default and all(_is_int(v) for v in default)
        return f"a list of {'integers' if ints else 'numbers'}"
    return {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string",
            "dict": "a table"}.get(kind, kind)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(value)


def check_memory(what: str, need: int) -> None:
    """Refuse, before it is allocated, what needs more than half this machine's memory:
    `what` names the settings that make it (e.g. "network.layers [4, 30, 3]"), `need` is in bytes."""
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > have / 2:
        raise ValueError(f"{what} need about {need / 2**30:,.1f} GiB; this machine has {have / 2**30:.1f} GiB")


def layer_sizes(layers, key: str = "network.layers") -> list[int]:
    """layers as a list of ints: at least two, each a positive integer (not a float or a bool)."""
    if not isinstance(layers, (list, tuple)) or len(layers) < 2 or not all(_is_int(n) and n >= 1 for n in layers):
        raise ValueError(f"{key} must list at least two positive integer sizes, got {layers!r}")
    return [int(n) for n in layers]
