"""Checkpoints (neurosim/checkpoint.py; run.checkpoint_every, `neurosim run --resume`) of
the dendritic microcircuit on torch, on Brian2's runtime and on cpp_standalone (one
program run per stretch), and of a rate runner (DFC, per epoch): a run killed after its
second checkpoint and resumed ends bit for bit as the uninterrupted run (for the torch,
runtime and DFC runs: one with its default checkpoints; cpp_standalone: one program run
over the whole run); SIGINT (torch) and SIGTERM (Brian2) leave a resumable checkpoint; a
damaged checkpoint, Brian2 replicas, an unfinished run's folder and mixed options are
refused."""
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
# the dendritic microcircuit: 760 ms simulated (cpp_standalone 1,500), OU noise and PAL:
# every kind of state, a checkpoint every 100 ms (cpp_standalone: every 10 ms, or the run is
# over before a signal reaches it); DFC: 4 epochs, a checkpoint after each
RUNS = {backend: [str(ROOT / "examples" / "pal_teacher_student.toml"), *options, "--set", f"task.epochs={epochs}"]
        for backend, (epochs, options) in {
            "torch": (6, ["--backend", "torch", "--no-compile"]),
            "brian2": (6, ["--backend", "brian2", "--target", "cython"]),
            "standalone": (12, ["--backend", "brian2", "--target", "cpp_standalone"])}.items()}
RUNS["dfc"] = [str(ROOT / "examples" / "dfc_digits.toml"), "--set", "task.epochs=4", "--set", "task.n_train=200"]
EVERY = {"torch": "100", "brian2": "100", "standalone": "10", "dfc": "1"}


def _stopped_after_checkpoints(run: str, out: Path, n: int, sig: int) -> tuple[int, str]:
    """Start a checkpointed run into out, send `sig` once its checkpoint has been written
    n times; (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "microcircuits.cli", "run", *RUNS[run], "--out", str(out),
                             "--checkpoint-every", EVERY[run]], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    path, seen, last = out / "checkpoint.pkl", 0, None
    while seen < n and proc.poll() is None:
        stamp = path.stat().st_mtime_ns if path.exists() else None
        if stamp is not None and stamp != last:
            seen, last = seen + 1, stamp
        time.sleep(0.01)
    assert seen == n, f"the run ended after {seen} checkpoints"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
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
    assert not (b / "checkpoint.pkl").exists() and not (b / "run_config.json").exists()


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """run -> the run made whole, with its default checkpoints (made once per module)."""
    made = {}

    def get(run: str) -> Path:
        if run not in made:
            made[run] = tmp_path_factory.mktemp("ck") / "whole"
            assert main(["run", *RUNS[run], "--out", str(made[run])]) == 0
        return made[run]

    return get


@pytest.mark.parametrize("run", list(RUNS))
def test_a_killed_run_resumes_bit_for_bit(run, whole, tmp_path):
    out = tmp_path / "killed"
    assert _stopped_after_checkpoints(run, out, 2, signal.SIGKILL)[0] == -signal.SIGKILL
    assert not (out / "results.h5").exists()
    assert main(["run", "--resume", str(out)]) == 0
    _same(whole(run), out)


@pytest.mark.parametrize("run, sig", [("torch", signal.SIGINT), ("brian2", signal.SIGTERM)])
def test_a_signal_leaves_a_checkpoint_to_resume_from(run, sig, whole, tmp_path):
    out = tmp_path / "stopped"
    code, err = _stopped_after_checkpoints(run, out, 1, sig)
    assert code == 128 + sig and f"continue with: neurosim run --resume {out}" in err
    assert read_results(out / "results.h5")["status"] == "interrupted"
    assert main(["run", "--resume", str(out)]) == 0
    _same(whole(run), out)


def test_damaged_checkpoints_standalone_and_mixed_options_are_refused(tmp_path, capsys):
    out = tmp_path / "damaged"
    _stopped_after_checkpoints("torch", out, 1, signal.SIGKILL)
    (out / "checkpoint.pkl").write_bytes(b"not a checkpoint")
    assert main(["run", "--resume", str(out)]) == 2
    assert f"{out / 'checkpoint.pkl'}: not a readable checkpoint" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--set", "task.epochs=3"]) == 2
    assert "--resume continues a run as it was started: drop --set" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no checkpointed run there" in capsys.readouterr().err
    assert main(["run", *RUNS["torch"], "--out", str(out)]) == 2
    assert f"--out {out} holds an unfinished run with a checkpoint; continue it with neurosim run --resume {out}, " \
           "or pass --overwrite" in capsys.readouterr().err
    assert main(["run", str(ROOT / "examples" / "teacher_student.toml"), "--checkpoint-every", "10",
                 "--replicas", "2", "--out", str(tmp_path / "b2")]) == 2
    assert "on brian2, checkpoints run one replica; this run has 2" in capsys.readouterr().err


def test_a_checkpoint_from_other_code_warns_on_resume(tmp_path, monkeypatch):
    """The checkpoint keeps the source revision that wrote it; resuming with another one
    goes on, with a warning that the run need not equal an uninterrupted one."""
    import warnings

    from neurosim import checkpoint

    ckpt = checkpoint.Checkpoint(tmp_path / "c.pkl")
    monkeypatch.setattr(checkpoint, "source_revision", lambda: "aaaa")
    ckpt.save(3, "net", {"w": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ckpt.load("net", 10) == (3, {"w": 1})  # same revision: silent
    monkeypatch.setattr(checkpoint, "source_revision", lambda: "bbbb")
    with pytest.warns(UserWarning, match="written by source revision aaaa and is resumed by bbbb"):
        assert ckpt.load("net", 10) == (3, {"w": 1})
