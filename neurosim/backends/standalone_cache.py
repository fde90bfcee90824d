"""Where Brian2's cpp_standalone projects are kept between runs: one folder per network
structure, so that a run of a structure built before recompiles only what changed.

Brian2 regenerates the project's code at every run but writes only the files whose text
changed, and `make` recompiles only those: values (weights, initial states, data) live in
data files and the seed is read when the program starts (backends/brian2.py), so they
need no compiling; a new parameter that is a constant of the code (a learning rate)
recompiles the code objects that use it.

    $NEUROSIM_CACHE/standalone/<key>/   (default ~/.cache/neurosim; delete it to clear)

Each folder holds one project, used by one process at a time (a lock file beside it). A
structure has up to SLOTS folders (<key>, <key>-1, ...), so that as many runs of it as the
machine has cores (a sweep's workers) each keep a built project; a run that finds every
slot busy builds in a temporary folder instead. A folder whose program does
not match the checksum written after its last good build (an interrupted or damaged
build) is emptied and built from scratch; a compile that fails in a kept folder (a
damaged object file) is retried from clean (backends/brian2.py).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

STAMP = "neurosim_built.sha256"
SLOTS = min(8, os.cpu_count() or 1)  # kept projects per structure (about 100 MB each)


def cache_root() -> Path:
    return Path(os.environ.get("NEUROSIM_CACHE") or Path.home() / ".cache" / "neurosim") / "standalone"


def key(*parts) -> str:
    """The folder name for what decides a project's code (reprs of the structure, the
    recording ...)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


@contextmanager
def project(name: str, slots: int = SLOTS):
    """(folder, cached): the first free of the cache folders `name`, `name`-1, ...
    (`slots` of them), locked, emptied if damaged; or a new temporary folder (cached
    False) when other processes hold them all."""
    from filelock import FileLock, Timeout

    cache_root().mkdir(parents=True, exist_ok=True)
    for slot in range(slots):
        folder = cache_root() / (name if slot == 0 else f"{name}-{slot}")
        lock = FileLock(f"{folder}.lock")
        try:
            lock.acquire(timeout=0)
            break
        except Timeout:
            continue
    else:
        tmp = tempfile.mkdtemp(prefix="neurosim_standalone_")
        try:
            yield tmp, False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        if folder.exists() and not _intact(folder):
            shutil.rmtree(folder)
        folder.mkdir(exist_ok=True)
        (folder / STAMP).unlink(missing_ok=True)  # written again after the build succeeds
        yield str(folder), True
    finally:
        lock.release()


def mark_built(folder) -> None:
    """Record the checksum of the program that has just been built."""
    (Path(folder) / STAMP).write_text(_checksum(Path(folder) / "main"))


def _intact(folder: Path) -> bool:
    stamp, program = folder / STAMP, folder / "main"
    return stamp.exists() and program.exists() and stamp.read_text() == _checksum(program)


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
