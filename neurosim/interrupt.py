"""Stopping a run on SIGINT (Ctrl-C) or SIGTERM without losing it: inside `on_signals()`
the first such signal is only recorded; the simulation loops poll `requested()` (torch
between blocks, Brian2's runtime targets every step) and stop there, returning what they
recorded with `RunResult.interrupted` set, and the runner writes it with status
`interrupted`. A second signal interrupts at once, as Python would. A cpp_standalone
program cannot stop half way: the signal is honoured when it returns (before the next
replica, or the next stretch of a checkpointed run)."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []
_handlers: list = []  # on_signals()'s handler while it is active


class Interrupted(RuntimeError):
    """A run stopped by a signal; `signum` is the signal (the exit code is 128 + signum)."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


def requested() -> int | None:
    """The signal received inside on_signals(), or None."""
    return _received[0] if _received else None


def describe(signum: int) -> str:
    return signal.Signals(signum).name


@contextmanager
def on_signals():
    """Record SIGINT and SIGTERM instead of dying of them (main thread only; elsewhere a
    no-op); on exit the handlers before are restored and the record is cleared, so read
    `requested()` inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()

    def handler(signum, frame):
        if _received:  # the second signal: stop now
            raise KeyboardInterrupt
        _received.append(signum)

    before = {s: signal.signal(s, handler) for s in SIGNALS}
    _handlers.append(handler)
    try:
        yield
    finally:
        _handlers.pop()
        for s, h in before.items():
            signal.signal(s, h)
        _received.clear()


def reclaim() -> None:
    """Inside on_signals(), put its handler back where a library imported since replaced
    it (Brian2 installs a SIGINT handler of its own when first imported)."""
    if _handlers and threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, _handlers[-1])
