"""A sweep's spec: which configs, which variants of them, which seeds (`neurosim sweep`).

    # pal_modes.toml
    seeds = 5                                  # seeds 0..4; or a list: seeds = [3, 7]
    configs = { yinyang = "pal_yinyang.toml" } # label -> config file (relative to the spec)
    set = { "task.epochs" = 20 }               # overrides for every run
    grid = { "network.feedback" = ["bp", "fa", "pal"] }  # every combination is a variant
    [[variants]]                               # and/or named override sets
    name = "pal-no-eta_bw"
    set = { "network.feedback" = "pal", "network.eta_bw" = 0.0 }

A run is (config label, variant, seed); it runs in out/<label>/<variant>/seed<k> exactly as
`neurosim run` would. Keys are `table.key` as in `--set`; every run's merged config is
checked (microcircuits.runners.make_config) before anything runs, so a variant that names a
key its config does not have is refused naming it. A run's identity for resuming is the
hash of its full config (`config_hash`).
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from neurosim.config import load_config, merge

from .runners import make_config

SPEC_KEYS = ("seeds", "configs", "set", "grid", "variants", "out")


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its config label, variant name, seed and full config."""

    label: str
    variant: str
    seed: int
    config: dict

    @property
    def folder(self) -> str:
        """<label>/<variant>/seed<k> (without the label where it is empty)."""
        return "/".join(part for part in (self.label, self.variant, f"seed{self.seed}") if part)

    @property
    def backend(self) -> str:
        return self.config["run"]["backend"]


def variant_config(config: dict, overrides: dict, seed: int) -> dict:
    """config with overrides ({section: {key: value}}) applied and run.seed = seed."""
    return merge(merge(copy.deepcopy(config), copy.deepcopy(overrides)), {"run": {"seed": seed}})


def config_hash(config: dict) -> str:
    """The identity of a full config: sha256 of its canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _dotted(where: str, overrides) -> dict:
    """{"table.key": value} -> {table: {key: value}}; anything else is refused naming `where`."""
    if not isinstance(overrides, dict):
        raise ValueError(f"{where} must be a table of \"table.key\" = value, got {overrides!r}")
    nested: dict = {}
    for key, value in overrides.items():
        table, dot, name = key.partition(".")
        if not dot or not table or not name or "." in name:
            raise ValueError(f"{where}: key {key!r} must be \"table.key\" (e.g. \"network.feedback\")")
        nested.setdefault(table, {})[name] = value
    return nested


def _name(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def variants(spec: dict, where: str) -> dict[str, dict]:
    """Variant name -> its overrides ({table: {key: value}}): the grid's combinations, then
    the named variants; none of either is the one variant "base"."""
    out: dict[str, dict] = {}
    grid = spec.get("grid", {})
    if not isinstance(grid, dict):
        raise ValueError(f"{where}: grid must be a table of \"table.key\" = [values], got {grid!r}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where}: grid key {key!r} must be a non-empty list of values, got {values!r}")
    _dotted(f"{where}: grid", {key: None for key in grid})  # the keys' form
    keys = list(grid)
    for combination in itertools.product(*(grid[k] for k in keys)):
        name = ",".join(f"{k.partition('.')[2]}={_name(v)}" for k, v in zip(keys, combination)) or "base"
        out[name] = _dotted(f"{where}: grid", dict(zip(keys, combination)))
    if keys and "variants" in spec:
        raise ValueError(f"{where}: give a grid or a list of [[variants]], not both")
    listed = spec.get("variants", [])
    if not isinstance(listed, list):
        raise ValueError(f"{where}: variants must be a list of tables ([[variants]] with name and set)")
    if "variants" in spec:
        out.pop("base", None)
        if not listed:
            raise ValueError(f"{where}: variants is empty")
    for i, entry in enumerate(listed):
        if not isinstance(entry, dict) or set(entry) - {"name", "set"} or not isinstance(entry.get("name"), str):
            raise ValueError(f"{where}: variants[{i}] must have a name (text) and a set table, got {entry!r}")
        if entry["name"] in out:
            raise ValueError(f"{where}: variant name {entry['name']!r} is used twice")
        out[entry["name"]] = _dotted(f"{where}: variants[{i}] ({entry['name']}) set", entry.get("set", {}))
    return out


def load_spec(path) -> tuple[list[Run], dict]:
    """The runs of the spec at `path` (every merged config checked) and the spec itself;
    a bad spec is one ValueError naming the key."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"sweep spec {path} does not exist") from None
    except (IsADirectoryError, UnicodeDecodeError) as err:
        raise ValueError(f"sweep spec {path} is not a TOML file ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from None
    where = str(path)
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; a sweep spec has {list(SPEC_KEYS)}")
    seeds = spec.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        seeds = list(range(seeds))
    elif not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                        for s in seeds) and len(set(seeds)) == len(seeds)):
        raise ValueError(f"{where}: seeds must be a count >= 1 or a list of distinct integers >= 0, got {seeds!r}")
    configs = spec.get("configs")
    if not isinstance(configs, dict) or not configs or not all(isinstance(v, str) for v in configs.values()):
        raise ValueError(f"{where}: configs must be a non-empty table of label = \"config.toml\", got {configs!r}")
    shared = _dotted(f"{where}: set", spec.get("set", {}))
    named = variants(spec, where)
    runs = []
    for label, file in configs.items():
        config = merge(load_config(path.parent / file), shared)
        for name, overrides in named.items():
            for seed in seeds:
                try:
                    full = make_config(variant_config(config, overrides, seed))
                except ValueError as err:
                    raise ValueError(f"{where}: config {label!r}, variant {name!r}: {err}") from None
                runs.append(Run(label, name, seed, full))
    return runs, spec
