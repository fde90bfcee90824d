"""Checkpoints of torch runs (neurosim/backends/torch.py Checkpoint, the dendritic runner's
run.checkpoint_every, `neurosim run --resume`): a run killed after its second checkpoint
and resumed ends bit for bit as the uninterrupted run; SIGINT leaves a resumable
checkpoint; a damaged checkpoint and Brian2 are refused."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from microcircuits.cli import main
from neurosim.recording import read_results

ROOT = Path(__file__).resolve().parent.parent
RUN = [str(ROOT / "examples" / "pal_teacher_student.toml"), "--backend", "torch", "--no-compile",
       "--set", "task.epochs=12"]  # 1,320 ms simulated, OU noise and PAL: every kind of state


def _stopped_after_checkpoints(out: Path, n: int, sig: int) -> tuple[int, str]:
    """Start a checkpointed run into out, send `sig` once its checkpoint has been written
    n times; (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "microcircuits.cli", "run", *RUN, "--out", str(out),
                             "--checkpoint-every", "100"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    path, seen, last = out / "checkpoint.pt", 0, None
    while seen < n and proc.poll() is None:
        stamp = path.stat().st_mtime_ns if path.exists() else None
        if stamp is not None and stamp != last:
            seen, last = seen + 1, stamp
        time.sleep(0.01)
    assert seen == n, f"the run ended after {seen} checkpoints"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _same(a: Path, b: Path) -> None:
    ra, rb = read_results(a / "results.h5"), read_results(b / "results.h5")
    assert ra["status"] == rb["status"] == "complete"
    for name, w in ra["final_weights"].items():
        np.testing.assert_array_equal(w, rb["final_weights"][name], err_msg=name)
    for name, trace in ra["metrics"].items():
        np.testing.assert_array_equal(trace.values, rb["metrics"][name].values, err_msg=name)
    for name, trace in ra["traces"].items():
        np.testing.assert_array_equal(trace.values, rb["traces"][name].values, err_msg=name)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "whole"
    assert main(["run", *RUN, "--out", str(out)]) == 0
    return out


def test_a_killed_run_resumes_bit_for_bit(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    assert _stopped_after_checkpoints(out, 2, signal.SIGKILL)[0] == -signal.SIGKILL
    assert not (out / "results.h5").exists()
    assert main(["run", "--resume", str(out)]) == 0
    _same(uninterrupted, out)
    assert not (out / "checkpoint.pt").exists() and not (out / "run_config.json").exists()


def test_sigint_leaves_a_checkpoint_to_resume_from(uninterrupted, tmp_path, capsys):
    out = tmp_path / "stopped"
    code, err = _stopped_after_checkpoints(out, 1, signal.SIGINT)
    assert code == 130 and f"continue with: neurosim run --resume {out}" in err
    assert read_results(out / "results.h5")["status"] == "interrupted"
    assert main(["run", "--resume", str(out)]) == 0
    _same(uninterrupted, out)


def test_damaged_checkpoints_brian2_and_mixed_options_are_refused(tmp_path, capsys):
    out = tmp_path / "damaged"
    _stopped_after_checkpoints(out, 1, signal.SIGKILL)
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(["run", "--resume", str(out)]) == 2
    assert f"{out / 'checkpoint.pt'}: not a readable checkpoint" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--set", "task.epochs=3"]) == 2
    assert "--resume continues a run as it was started: drop --set" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no checkpointed run there" in capsys.readouterr().err
    assert main(["run", str(ROOT / "examples" / "teacher_student.toml"), "--checkpoint-every", "10",
                 "--out", str(tmp_path / "b2")]) == 2
    assert "checkpoints run on the torch backend only so far" in capsys.readouterr().err
