"""How a cpp_standalone project is compiled: Brian2's makefile, unchanged, plus a
makefile of ours read after it, a dependency list written here, and as many make jobs
as cores; and edits of Brian2's generated sources (at the end): its loop without a clock
read per step (fast_network_loop), a run of one stretch of the run (windowed_network_loop)
and a random generator whose state can be written and read (portable_random_state).

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
#include <csignal>
#include <fstream>
#include <iostream>
#ifdef __linux__
#include <sys/prctl.h>
#endif
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


_RUN_START = "void Network::run("
_RUN_INTERVAL = """    const double t_start = t;
    const double t_end = t + duration;
"""
_CLOCK_INTERVALS = """    for(std::set<Clock*>::iterator i=clocks.begin(); i!=clocks.end(); i++)
        (*i)->set_interval(t, t_end);
"""
WINDOW = """// neurosim (standalone_make.py): $NEUROSIM_WINDOW = "start end" in seconds runs that
// stretch of the run, its clocks starting at `start`
#include <cstdlib>
static void neurosim_window(double& t_start, double& t_end)
{
    const char* window = std::getenv("NEUROSIM_WINDOW");
    if (window)
    {
        char* rest;
        t_start = std::strtod(window, &rest);
        t_end = std::strtod(rest, nullptr);
    }
}

"""


def windowed_network_loop(network_cpp: str) -> str:
    """network.cpp whose run simulates only the stretch [start, end) of the run that
    $NEUROSIM_WINDOW names (its clocks set to start; without it, the whole run): a
    checkpointed run runs its program once per stretch, each from the last one's state
    (standalone_stretches.py). Text that does not match is an error: checkpoints need it."""
    if any(network_cpp.count(text) != 1 for text in (_RUN_START, _RUN_INTERVAL, _CLOCK_INTERVALS)):
        raise RuntimeError("Brian2's network.cpp is not the text neurosim edits to run a stretch of a run: "
                           "cpp_standalone runs cannot checkpoint with this Brian2")
    interval = """    double t_start = t, t_end = t + duration;
    neurosim_window(t_start, t_end);
    t = t_start;
"""
    clock_intervals = """    for(std::set<Clock*>::iterator i=clocks.begin(); i!=clocks.end(); i++)
    {
        (*i)->set_interval(t, t_end);
        (*i)->t[0] = (*i)->timestep[0] * (*i)->dt[0];
    }
"""
    return network_cpp.replace(_RUN_START, WINDOW + _RUN_START).replace(_RUN_INTERVAL, interval).replace(
        _CLOCK_INTERVALS, clock_intervals)


_GENERATOR_PUBLIC = """    public:
        RandomGenerator() {
"""
RANDOM_STATE = """    public:
        // neurosim (standalone_make.py): the state, to go on in another run of the program
        void neurosim_save(std::ostream& out) const {
            out << gen << ' ' << has_stored_gauss << ' ' << std::setprecision(17) << stored_gauss << '\\n';
        }
        void neurosim_load(std::istream& in) {
            in >> gen >> has_stored_gauss >> stored_gauss;
        }
        RandomGenerator() {
"""


def portable_random_state(objects_h: str) -> str:
    """objects.h whose RandomGenerator (a Mersenne Twister and a stored normal draw) can
    write its state as text and read it back: a program run of one stretch of a run
    continues the last one's random numbers exactly."""
    if objects_h.count(_GENERATOR_PUBLIC) != 1:
        raise RuntimeError("Brian2's objects.h is not the text neurosim edits to keep the random generator's state: "
                           "cpp_standalone runs cannot checkpoint with this Brian2")
    return objects_h.replace("#include<random>\n", "#include<random>\n#include<iomanip>\n#include<iostream>\n", 1) \
        .replace(_GENERATOR_PUBLIC, RANDOM_STATE)


class SourceWriter:
    """Brian2's project writer with network.cpp edited by fast_network_loop and
    windowed_network_loop and objects.h by portable_random_state, for the device's
    generate_network_source and generate_objects_source (backends/brian2.py, _compile)."""

    def __init__(self, writer):
        self.writer = writer

    def write(self, filename, contents):
        if filename == "network.*":
            contents.cpp_file = windowed_network_loop(fast_network_loop(contents.cpp_file))
        elif filename == "objects.*":
            contents.h_file = portable_random_state(contents.h_file)
        self.writer.write(filename, contents)
