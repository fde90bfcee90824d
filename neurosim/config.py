"""Run configs as nested dicts: reading a TOML file (`load_config`), overlaying one
config on another (`merge`) and turning `--set key=value` options into such an overlay
(`parse_set`)."""
from __future__ import annotations

import tomllib
from pathlib import Path


def parse_set(items: list[str]) -> dict:
    """["network.feedback=fa", "task.epochs=3"] -> nested dict; values parsed as TOML."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set needs key=value, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def merge(base: dict, extra: dict) -> dict:
    """Overlay extra on base, table by table (base is changed and returned)."""
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def load_config(path) -> dict:
    """A TOML file as a dict; a missing file or bad TOML is a ValueError naming the file."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from None
