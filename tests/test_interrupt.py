"""SIGINT and SIGTERM stop a run honestly (neurosim/interrupt.py): what was recorded is
written with status `interrupted` and where it stopped, and `neurosim run` exits with
128 + the signal."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurosim.recording import read_results

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("model, backend, sig", [
    ("yinyang_bp", ["--backend", "torch", "--no-compile"], signal.SIGINT),
    ("yinyang_bp", ["--backend", "brian2", "--target", "numpy"], signal.SIGTERM),
    ("energy_yinyang", ["--backend", "torch", "--no-compile"], signal.SIGTERM),
])
def test_a_signal_stops_the_run_and_keeps_what_it_recorded(model, backend, sig, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "microcircuits.cli", "run", str(ROOT / "examples" / f"{model}.toml"),
               "--out", str(out), "--set", "task.epochs=200", *backend]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout.readline().startswith("running ")  # the run has started
    time.sleep(3.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert "interrupted by " + signal.Signals(sig).name in err
    results = read_results(out / "results.h5")
    assert results["status"] == "interrupted" and signal.Signals(sig).name in results["status_detail"]
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    assert results["summary"]["sim_time_ms"] > 0  # it ran, and says how far
