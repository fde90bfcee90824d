"""How a cpp_standalone project is compiled: Brian2's makefile, unchanged, plus a
makefile of ours read after it, a dependency list written here, and as many make jobs
as cores; and one edit of Brian2's generated loop (fast_network_loop, at the end).

What a first build of the PAL microcircuit (5-20-10-20-5 with recording, 87 files) cost
on the 2-core machine, measured file by file (docs/performance.md, "First build"):

- every file parsed the same system and Brian2 headers again (0.5 s of a 0.6 s code
  object): they are precompiled once per project (`neurosim_pch.h.gch`, about 2 s and
  50 MB), and a code object then compiles in 0.15 s;
- `objects.cpp` (allocation, loading and writing of every array: 6,500 lines) took 7.7 s
  at -O3 and was the longest single file: it and `main.cpp` hold no per-step code and
  are compiled at -O0 (1.8 s); the step's code keeps Brian2's flags;
- Brian2 lists the dependencies with one serial `g++ -MM` over every file (5 s): the
  list is written here instead, conservatively (every object depends on every header
  of the project);
- Brian2 runs `make -j` without a limit, 87 compilers on 2 cores: `-j<cores>`.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

PCH = "neurosim_pch.h"
MAKEFILE = "neurosim.mk"

PCH_HEADER = """// The headers every code object of a Brian2 cpp_standalone project includes, compiled
// once per project (neurosim/backends/standalone_make.py).
#include "objects.h"
#include "brianlib/common_math.h"
#include "brianlib/stdint_compat.h"
#include <climits>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iostream>
"""

# Read by make after Brian2's makefile: $(CXXFLAGS), $(OBJS) and $(H_SRCS) are its.
EXTRA_MAKEFILE = f"""# neurosim's additions to Brian2's makefile (neurosim/backends/standalone_make.py)
PCH_FLAGS := $(CXXFLAGS)
CXXFLAGS += -include {PCH}

{PCH}.gch: {PCH} $(H_SRCS) makefile {MAKEFILE}
\t$(CXX) $(PCH_FLAGS) -x c++-header $< -o $@

$(OBJS): {MAKEFILE} | {PCH}.gch

# no per-step code in these two: set-up, loading and writing of arrays
objects.o main.o: CXXFLAGS += -O0
"""


def make_args() -> list[str]:
    """Brian2's `devices.cpp_standalone.extra_make_args_unix` for our makefile."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return [f"-j{cores}", "-f", "makefile", "-f", MAKEFILE]


def prepare(directory) -> None:
    """After Brian2 has written the project and before make: our header and makefile
    (rewritten only when their text changed, so that make keeps what it built) and the
    dependency list."""
    folder = Path(directory)
    _write_if_changed(folder / PCH, PCH_HEADER)
    _write_if_changed(folder / MAKEFILE, EXTRA_MAKEFILE)
    _write_dependencies(folder)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _write_dependencies(folder: Path) -> None:
    """make.deps, which Brian2's makefile includes and rebuilds with `g++ -MM` when a
    source is newer than it: every object depends on its source and on every header of
    the project. Rewritten when it is missing or older than a file it lists, as make
    would, so that an unchanged project does not relink."""
    makefile = (folder / "makefile").read_text()
    sources = re.search(r"^SRCS = (.*)$", makefile, re.M).group(1).split()
    headers = re.search(r"^H_SRCS = (.*)$", makefile, re.M).group(1).split()
    deps = folder / "make.deps"
    if deps.exists():
        written = deps.stat().st_mtime_ns
        if all((folder / f).stat().st_mtime_ns <= written for f in [*sources, *headers, PCH]):
            return
    listed = " ".join([PCH, *headers])
    deps.write_text("".join(f"{source.rsplit('.', 1)[0]}.o: {source} {listed}\n" for source in sources))


def clean(directory) -> None:
    """Remove what Brian2's `make clean` leaves of ours: the precompiled header."""
    (Path(directory) / f"{PCH}.gch").unlink(missing_ok=True)


# Brian2's Network::run (network.cpp) reads the process's CPU clock after every step, a
# system call: 9 % of the PAL microcircuit's step in `perf`, and the loop ran 14 % faster
# without it. It is read once, after the loop, for the run time Brian2 reports.
_CLOCK_EVERY_STEP = """        clock = next_clocks();

        current = std::clock();
        elapsed_realtime = (double)(current - start)/(1 * CLOCKS_PER_SEC);
"""
_LOOP_END = "    Network::_globally_running = false;\n"


def fast_network_loop(network_cpp: str) -> str:
    """network.cpp without the clock read in every step (see above). Brian2 renders that
    read only without a maximum run time, which neurosim never sets; text that does not
    match is kept as it is, with a warning."""
    if network_cpp.count(_CLOCK_EVERY_STEP) != 1 or network_cpp.count(_LOOP_END) != 1:
        warnings.warn("Brian2's network.cpp is not the text neurosim edits: its loop keeps reading the clock "
                      "every step")
        return network_cpp
    return network_cpp.replace(_CLOCK_EVERY_STEP, "        clock = next_clocks();\n").replace(
        _LOOP_END, _LOOP_END + "    elapsed_realtime = (double)(std::clock() - start)/(1 * CLOCKS_PER_SEC);\n")


class NetworkSourceWriter:
    """Brian2's project writer with network.cpp edited by fast_network_loop, for the
    device's generate_network_source (backends/brian2.py, _build_and_run)."""

    def __init__(self, writer):
        self.writer = writer

    def write(self, filename, contents):
        contents.cpp_file = fast_network_loop(contents.cpp_file)
        self.writer.write(filename, contents)
