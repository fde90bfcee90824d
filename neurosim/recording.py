"""What to record, what a run returns, and the results file (HDF5) with summary.json.

Recorded values are the state at time t, i.e. after the steps covering [0, t); the
state at the end of the run is appended, so a record every t_pres gives the state at
the end of every presentation.
"""
from __future__ import annotations

import functools
import json
import math
import platform
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import h5py
import numpy as np

SUMMARY_KEYS = ("model", "rule", "backend", "seed", "sim_time_ms", "wall_time_s", "steps_per_s", "final")
# How a run ended: only "complete" has final weights and metrics; "diverged" names the
# population, variable and time in its detail, "failed" the error.
STATUSES = ("complete", "interrupted", "diverged", "failed")
VERSIONED = ("neurosim", "numpy", "brian2", "h5py", "scipy", "torch", "norse", "nir")


@dataclass
class Recording:
    """Record `variables` (population -> names) every `dt` ms (`every` sets another
    interval for some populations), and the weights of `weights` (projection names)
    every `weights_dt` ms (None: never), and every spike of the populations in `spikes`
    (spiking networks)."""

    variables: dict[str, list[str]] = field(default_factory=dict)
    dt: float = 1.0
    weights: list[str] = field(default_factory=list)
    weights_dt: float | None = None
    every: dict[str, float] = field(default_factory=dict)
    spikes: list[str] = field(default_factory=list)

    def __post_init__(self):
        intervals = [("dt", self.dt), ("weights_dt", self.weights_dt)]
        intervals += [(f"every[{k!r}]", v) for k, v in self.every.items()]
        for name, value in intervals:
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"recording {name} must be > 0 ms, got {value!r}")

    def interval(self, population: str) -> float:
        return self.every.get(population, self.dt)


# A state variable or weight whose magnitude passes BOUND (or is NaN or inf) has diverged.
BOUND = 1e12


def within_bound(values) -> np.ndarray:
    """True where |value| <= BOUND (False for NaN and inf)."""
    return np.abs(np.asarray(values, dtype=float)) <= BOUND


@dataclass
class Divergence:
    """Where and when a run diverged: a population's state variable, or a projection's
    weight ("w"); `beyond`: the value is finite but past BOUND (else NaN or inf)."""

    population: str
    time_ms: float
    variable: str = ""
    kind: str = "population"
    beyond: bool = False

    @classmethod
    def of(cls, key: str, values, time_ms: float) -> "Divergence":
        """From a trace or state key ("P1.u", or "w:W1" for a weight) and its bad values."""
        kind, name, variable = ("projection", key[2:], "w") if key.startswith("w:") else \
            ("population", *(key.split(".", 1) + [""])[:2])
        return cls(name, float(time_ms), variable, kind, bool(np.all(np.isfinite(values))))

    def __str__(self):
        what = f"|{self.variable or 'value'}| > {BOUND:g}" if self.beyond else "NaN or inf"
        where = f" in {self.variable}" if self.variable and not self.beyond else ""
        return f"dynamics diverged: {self.kind} {self.population} has {what}{where} at t = {self.time_ms:g} ms"


class DivergenceError(RuntimeError):
    """The dynamics produced NaN or inf, or a value past BOUND; `result` holds everything
    recorded until then (None where a runner has written it to its files already);
    `message`, when given, says more than the divergence itself."""

    def __init__(self, divergence: Divergence, result: "RunResult | None", message: str | None = None):
        super().__init__(message or str(divergence))
        self.divergence = divergence
        self.result = result


class RunFailed(RuntimeError):
    """A run stopped by an error of its own: neither its config (a ValueError, raised
    before anything runs), nor a signal (interrupt.Interrupted), nor its dynamics
    (DivergenceError). Its summary.json says `failed`, with the message."""


@dataclass
class Trace:
    times: np.ndarray  # (n_t,) ms
    values: np.ndarray  # (n_t, ...) one row per time


@dataclass
class SpikeTrain:
    """Every spike of a population: its time (ms: k dt for a spike in step k), the
    neuron, and the sample (minibatches on torch; 0 otherwise)."""

    times: np.ndarray
    indices: np.ndarray
    samples: np.ndarray

    def counts(self, size: int, edges, samples: int = 1) -> np.ndarray:
        """Spikes per window [edges[k], edges[k+1]) (ms; a spike within 1 ns before an
        edge counts after it, against rounding), sample and neuron: (windows, samples, size)."""
        edges = np.asarray(edges, dtype=float)
        window = np.searchsorted(edges, self.times + 1e-6, side="right") - 1
        keep = (window >= 0) & (window < len(edges) - 1)
        out = np.zeros((len(edges) - 1, samples, size), dtype=np.int64)
        np.add.at(out, (window[keep], self.samples[keep], self.indices[keep]), 1)
        return out


@dataclass
class RunResult:
    traces: dict[str, Trace]  # "pop.var" -> values (n_t, size); "w:proj" -> (n_t, post, pre)
    final_weights: dict[str, np.ndarray]
    final_state: dict[str, np.ndarray]  # "pop.var" -> (size,)
    sim_time_ms: float
    steps: int
    wall_time_s: float  # everything: code generation, compilation, the run
    run_time_s: float  # the simulation loop alone
    divergence: Divergence | None = None
    spikes: dict[str, SpikeTrain] = field(default_factory=dict)
    interrupted: str | None = None  # "SIGINT at t = 12.3 ms": stopped there by a signal (neurosim.interrupt)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.run_time_s if self.run_time_s > 0 else float("nan")

    def first_divergence(self) -> Divergence | None:
        """Earliest recorded state variable or weight that is NaN, inf or past BOUND, or
        else a final state or weight that is."""
        first = None
        for key, trace in self.traces.items():
            rows = np.flatnonzero(~np.all(within_bound(trace.values.reshape(len(trace.times), -1)), axis=1))
            if len(rows) and (first is None or trace.times[rows[0]] < first.time_ms):
                first = Divergence.of(key, trace.values[rows[0]], trace.times[rows[0]])
        if first is None:
            finals = [*self.final_state.items(), *((f"w:{k}", w) for k, w in self.final_weights.items())]
            for key, value in finals:
                if not np.all(within_bound(value)):
                    return Divergence.of(key, value, self.sim_time_ms)
        return first


def append_final(times, values, final, dt, t_end) -> Trace:
    """Add the end-of-run state when it falls on the recording grid."""
    if len(times) == 0:
        return Trace(times, values)
    k = t_end / dt
    if abs(k - round(k)) < 1e-6 and t_end > times[-1] + 1e-9:
        times = np.append(times, t_end)
        values = np.concatenate([values, np.asarray(final)[None]], axis=0)
    return Trace(times, values)


def check_recording(network, recording: Recording, backend: str) -> None:
    """Every recorded variable exists: what the population's model offers
    (model.recordable) and I_<proj>, the summed input of a projection onto it that is
    not spiking; spikes of populations that send them; weights of projections that have
    one."""
    for pop_name, variables in recording.variables.items():
        pop = network.population(pop_name)
        allowed = set(pop.model.recordable(network.fed(pop_name), pop.noise))
        allowed |= {f"I_{p.name}" for p in network.onto(pop_name) if not network.population(p.source).model.events}
        for var in variables:
            if var not in allowed:
                raise ValueError(f"cannot record {var!r} of {pop_name} on the {backend} backend; "
                                 f"choose from {sorted(allowed)}")
    for pop_name in recording.spikes:
        if not network.population(pop_name).model.fires:
            raise ValueError(f"{pop_name} sends no spikes to record")
    for name in recording.weights:
        if network.projection(name).owner is None:
            raise ValueError(f"projection {name} is one_to_one: it has no weight to record")


def library_versions() -> dict[str, str]:
    """The versions of Python and the libraries in VERSIONED, and the source revision."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    if source_revision():
        versions["neurosim_revision"] = source_revision()
    return versions


@functools.lru_cache(maxsize=1)
def source_revision() -> str | None:
    """The git commit of the package's source tree ("+changes" when tracked files differ
    from it), or None outside a git checkout: what a resumed run compares with the
    revision that wrote its checkpoint."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+changes" if changed else "")


def write_results(path, *, config: dict, result: RunResult, metrics: dict[str, Trace],
                  summary: dict, status: str = "complete", detail: str = "") -> None:
    """One HDF5 file: /config (JSON), /metrics/<name>/{times,values}, /traces/<key>/...,
    /final_weights/<proj>, /final_state/<pop.var>, /spikes/<pop>/{times,indices,samples},
    /versions; attributes status (one of STATUSES), status_detail, summary (strict JSON)."""
    _check_status(status)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["status"] = status
        f.attrs["status_detail"] = detail
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["summary"] = json.dumps(strict_json(summary), allow_nan=False)
        f.create_dataset("config", data=json.dumps(config, default=_jsonable))
        for group_name, traces in (("metrics", metrics), ("traces", result.traces)):
            group = f.create_group(group_name)
            for key, trace in traces.items():
                g = group.create_group(key)
                g.create_dataset("times", data=np.asarray(trace.times, dtype=float))
                g.create_dataset("values", data=np.asarray(trace.values, dtype=float), compression="gzip")
        for group_name, arrays in (("final_weights", result.final_weights), ("final_state", result.final_state)):
            group = f.create_group(group_name)
            for key, value in arrays.items():
                group.create_dataset(key, data=np.asarray(value, dtype=float))
        spikes = f.create_group("spikes")
        for key, train in result.spikes.items():
            g = spikes.create_group(key)
            for name in ("times", "indices", "samples"):
                g.create_dataset(name, data=getattr(train, name), compression="gzip")
        versions = f.create_group("versions")
        for name, version in library_versions().items():
            versions.attrs[name] = version
    tmp.replace(path)


def read_results(path) -> dict:
    """The results file as plain Python: config, metrics, traces, final weights/state."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable results file ({err})") from None
    with f:
        try:
            return _read_open(f)
        except KeyError as err:
            raise ValueError(f"{path}: not a complete results file (missing {err})") from None


def _read_open(f) -> dict:
    out = {
        "status": str(f.attrs["status"]),
        "status_detail": str(f.attrs.get("status_detail", "")),
        "summary": json.loads(f.attrs["summary"]),
        "config": json.loads(f["config"][()]),
        "versions": dict(f["versions"].attrs),
    }
    for group_name in ("metrics", "traces"):
        out[group_name] = {k: Trace(g["times"][()], g["values"][()]) for k, g in f[group_name].items()}
    for group_name in ("final_weights", "final_state"):
        out[group_name] = {k: d[()] for k, d in f[group_name].items()}
    out["spikes"] = {k: SpikeTrain(g["times"][()], g["indices"][()], g["samples"][()])
                     for k, g in f.get("spikes", {}).items()}
    return out


def write_summary(path, summary: dict, status: str = "complete", detail: str = "") -> None:
    """summary.json: the summary with its status (and detail), as strict JSON (a NaN or
    infinite number becomes null), written whole or not at all."""
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    if missing:
        raise ValueError(f"summary lacks keys {missing}")
    _check_status(status)
    data = {"status": status, **({"status_detail": detail} if detail else {}), **summary}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(strict_json(data), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def strict_json(value):
    """value with numpy arrays and numbers as lists and numbers, and every NaN or
    infinite float as None: what strict JSON can hold."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [strict_json(v) for v in value]
    if isinstance(value, (np.generic, float, int, bool, str)) or value is None:
        value = value.item() if isinstance(value, np.generic) else value
        return None if isinstance(value, float) and not math.isfinite(value) else value
    return _jsonable(value)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")
