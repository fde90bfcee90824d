import os
import sys

# make the repository root importable (e.g. `from benchmarks.numpy_loop import ...`)
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
