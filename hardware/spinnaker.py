"""SpiNNaker's own toolchain on an exported network: the PyNN script (hardware.pynn) run on
sPyNNaker's virtual board, and what sPyNNaker decided, read from its reports.

A virtual board (``virtual_board = True``) is a SpiNN-5 board of 48 chips that sPyNNaker
builds in memory: it partitions every population into machine vertices (slices of at most
256 neurons, split into neuron and synapse cores where it plans to), places them on cores,
generates routing tables and the data each core would load, and stops before loading a
machine. Nothing runs, so no spikes come back. The board is pinned to one SpiNN-5 board
(``width = height = 8``); without that sPyNNaker sizes a virtual machine to whatever the
network needs.

The script runs in a folder of its own, with HOME, XDG_CONFIG_HOME and XDG_CONFIG_DIRS
pointing into it (sPyNNaker looks for .spynnaker.cfg in all three, and for spynnaker.cfg
in the folder it runs in), so that it reads the configuration written here (CONFIG) and
never the user's. Read back
(sPyNNaker 7.4.1 report formats):
- placement_by_vertex_using_graph.rpt: per population, each machine vertex's slice and core
  (x, y, p); a vertex labelled ``<pop>_Synapses:<i>(<k>)`` is a synapse core;
- chip_sdram_usage_by_core.rpt: SDRAM planned per core, in bytes;
- routing_summary.rpt: routing-table entries in all and on the fullest chip.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .mapping import MappingReport

CONFIG = """[Machine]
virtual_board = True
version = 5
width = 8
height = 8

[Reports]
write_partitioner_reports = True
write_application_graph_placer_report = True
write_router_summary_report = True
write_sdram_usage_report_per_chip = True
"""
TIMEOUT = 900  # s: a board's worth of mapping takes a few seconds, plus data generation per sample

_VERTEX = re.compile(r"^\*\*\*\* Vertex: '(.*)'$")
_SLICE = re.compile(r"^\s+Slice \((\d+):(\d+)\) on core \((\d+), (\d+), (\d+)\) (.*)$")
_SDRAM = re.compile(r"^SDRAM reqs for core \((\d+),(\d+),(\d+)\) is .* \((\d+) bytes\)")
_ROUTING = re.compile(r"^Total entries (\d+), max per chip (\d+)")
_ERROR = re.compile(r"^(?:\w+\.)*\w+(?:Exception|Error): .*")


class ToolchainError(ValueError):
    """sPyNNaker refused the network (or wrote no reports); the message is sPyNNaker's own
    last error line."""


@dataclass
class Vertex:
    population: str
    first: int  # neurons [first, last]: sPyNNaker's slices include their last neuron
    last: int
    core: tuple[int, int, int]  # (x, y, p)
    role: str  # "neurons" (a neuron or combined core) or "synapses"
    sdram: int  # bytes planned


@dataclass
class ToolchainReport:
    vertices: list[Vertex]
    routing_entries: int  # in all chips' tables
    routing_entries_max: int  # on the fullest chip
    reports: Path  # the run's report folder

    def cores_of(self, population: str) -> dict[str, int]:
        """Cores sPyNNaker gave `population`, by role ("neurons", "synapses")."""
        count = {"neurons": 0, "synapses": 0}
        for v in self.vertices:
            if v.population == population:
                count[v.role] += 1
        return count

    @property
    def populations(self) -> list[str]:
        return list(dict.fromkeys(v.population for v in self.vertices))

    @property
    def chips(self) -> int:
        return len({v.core[:2] for v in self.vertices})


def run_virtual_board(script: str | Path, folder: str | Path, timeout: float = TIMEOUT) -> ToolchainReport:
    """Run the exported PyNN `script` with the spiNNaker back end on a virtual board in
    `folder` (created; sPyNNaker's home, configuration and reports go there) and read its
    reports. ToolchainError with sPyNNaker's reason when it refuses the network."""
    folder = Path(folder).resolve()
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / ".spynnaker.cfg").write_text(CONFIG)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CONFIG_DIRS": str(home / "site")}
    run = subprocess.run([sys.executable, str(Path(script).resolve()), "spiNNaker", "--out", str(folder / "counts.npz")],
                         cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
    (folder / "spynnaker.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        errors = [line for line in (run.stdout + run.stderr).splitlines() if _ERROR.match(line)]
        reason = errors[-1] if errors else f"exit status {run.returncode}"
        raise ToolchainError(f"sPyNNaker refused {Path(script).name}: {reason} (log: {folder / 'spynnaker.log'})")
    runs = sorted((folder / "reports").glob("*/run_1"))
    if not runs:
        raise ToolchainError(f"sPyNNaker wrote no reports under {folder / 'reports'}")
    return read_reports(runs[-1])


def read_reports(run: Path) -> ToolchainReport:
    """The placements, SDRAM and routing entries of one sPyNNaker run folder (run_1)."""
    sdram = {}
    for line in (run / "chip_sdram_usage_by_core.rpt").read_text().splitlines():
        if m := _SDRAM.match(line):
            sdram[tuple(int(v) for v in m.groups()[:3])] = int(m.group(4))
    vertices, population = [], None
    for line in (run / "placement_by_vertex_using_graph.rpt").read_text().splitlines():
        if m := _VERTEX.match(line):
            population = m.group(1)
        elif (m := _SLICE.match(line)) and population is not None:
            core = tuple(int(v) for v in m.groups()[2:5])
            role = "synapses" if re.search(r"_Synapses:\d+\(\d+\)$", m.group(6)) else "neurons"
            vertices.append(Vertex(population, int(m.group(1)), int(m.group(2)), core, role, sdram.get(core, 0)))
    routing = next(m for line in (run / "routing_summary.rpt").read_text().splitlines() if (m := _ROUTING.match(line)))
    return ToolchainReport(vertices, int(routing.group(1)), int(routing.group(2)), run)


def compare(ours: MappingReport, theirs: ToolchainReport) -> tuple[str, list[str]]:
    """A table of sPyNNaker's decisions beside our mapper's prediction, and the differences
    (population: what differs), empty when the core counts per population agree."""
    rows = [f"{'population':<12} {'sPyNNaker':>10} {'our mapper':>11}   SDRAM per core (kB)",
            f"{'':<12} {'cores, neuron + synapse':>23}"]
    differences = []
    for name in theirs.populations:
        t, o = theirs.cores_of(name), ours.cores_of(name)
        kb = [v.sdram / 1024 for v in theirs.vertices if v.population == name]
        rows.append(f"{name:<12} {t['neurons']:>6} + {t['synapses']:<3} {o['neurons']:>7} + {o['synapses']:<3}   "
                    f"{min(kb):.1f} - {max(kb):.1f}")
        if t != o:
            differences.append(f"{name}: sPyNNaker {t['neurons']} + {t['synapses']} cores, our mapper "
                               f"{o['neurons']} + {o['synapses']}")
    missing = sorted({name for core in ours.cores for name, _, _ in core.slices} - set(theirs.populations))
    differences += [f"{name}: placed by our mapper, absent from sPyNNaker's placements" for name in missing]
    rows += [f"{'all cores':<12} {len(theirs.vertices):>10} {ours.cores_used:>11}",
             f"chips: sPyNNaker {theirs.chips}, ours {ours.chips}; routing entries: {theirs.routing_entries} "
             f"(at most {theirs.routing_entries_max} on a chip); reports: {theirs.reports}"]
    return "\n".join(rows), differences
