"""The independent references that the tests hold the backends to (microcircuit_loop.py)."""
