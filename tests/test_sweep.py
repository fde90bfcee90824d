"""`neurosim sweep` on Ray (microcircuits/sweep_spec.py, sweep_ray.py): a local 2-worker
sweep gives the runs `neurosim run` gives one by one; a diverging run is a row and the
others go on; a killed worker's run is retried; a rerun after an interrupted sweep runs
only the missing runs; bad specs are refused before anything runs."""
import csv
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
SPEC = f"""
seeds = 2
configs = {{ ts = "{ROOT / 'examples' / 'teacher_student.toml'}" }}
set = {{ "task.epochs" = 1, "task.n_train" = 20, "task.n_test" = 10, "run.target" = "numpy" }}
"""
VARIANTS = """
[[variants]]
name = "bp"
set = { "network.feedback" = "bp" }
[[variants]]
name = "fa"
set = { "network.feedback" = "fa" }
"""
RUNAWAY = """
[[variants]]
name = "runaway"
set = { "network.eta_fw" = [1e200, 1e200] }
"""


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "sweep.csv") as f:
        return {row["folder"]: row for row in csv.DictReader(f)}


def test_a_local_sweep_equals_the_runs_made_one_by_one(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC + VARIANTS + RUNAWAY)
    assert main(["sweep", str(spec), "--workers", "2", "--out", str(tmp_path / "sweep")]) == 1  # one variant diverges
    rows = _rows(tmp_path / "sweep")
    assert len(rows) == 6
    for seed in (0, 1):
        runaway = rows[f"ts/runaway/seed{seed}"]
        assert runaway["status"] == "diverged" and "dynamics diverged" in runaway["message"]
        for feedback in ("bp", "fa"):
            row = rows[f"ts/{feedback}/seed{seed}"]
            assert row["status"] == "complete" and row["attempt"] == "1"
            alone = tmp_path / f"alone_{feedback}{seed}"
            assert main(["run", str(ROOT / "examples" / "teacher_student.toml"), "--seed", str(seed), "--out",
                         str(alone), "--set", f'network.feedback="{feedback}"', "--set", "task.epochs=1",
                         "--set", "task.n_train=20", "--set", "task.n_test=10", "--set", 'run.target="numpy"']) == 0
            mine, theirs = read_results(tmp_path / "sweep" / row["folder"] / "results.h5"), \
                read_results(alone / "results.h5")
            assert float(row["mse"]) == theirs["summary"]["final"]["mse"]
            for name, w in theirs["final_weights"].items():
                np.testing.assert_array_equal(mine["final_weights"][name], w, err_msg=name)
    table = (tmp_path / "sweep" / "sweep.md").read_text()
    assert "| ts | bp | 2/2 |" in table and "| ts | runaway | 0/2 |" in table
    assert (tmp_path / "sweep" / "sweep_ts.png").stat().st_size > 0


@pytest.mark.parametrize("spec, message", [
    ("seeds = 2\nconfigs = { ts = 'x.toml' }\ncolour = 3\n", "unknown key(s) ['colour']"),
    (SPEC + 'grid = { "network.feedback" = [] }\n', "grid key 'network.feedback' must be a non-empty list"),
    (SPEC + 'grid = { "network.colour" = [1, 2] }\n', "variant 'colour=1': unknown keys in [network]: ['colour']"),
    (SPEC + 'grid = { "feedback" = ["bp"] }\n', "key 'feedback' must be \"table.key\""),
    (SPEC.replace("seeds = 2", "seeds = 0"), "seeds must be a count >= 1"),
    (SPEC + "[[variants]]\nname = 'x'\nset = { \"task.epochs\" = -1 }\n", "task.epochs must be an integer >= 0"),
])
def test_a_bad_spec_is_refused_before_anything_runs(spec, message, tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_text(spec)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_an_address_without_a_cluster_is_refused_in_one_line(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC + VARIANTS)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--address", "127.0.0.1:1"]) == 2
    assert "--address 127.0.0.1:1: no Ray cluster answers there" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _sweep(spec: Path, out: Path, workers: int = 1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "microcircuits.cli", "sweep", str(spec), "--out", str(out),
                             "--workers", str(workers)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait_for(condition, timeout: float = 240.0) -> None:
    end = time.time() + timeout
    while not condition():
        assert time.time() < end, "timed out"
        time.sleep(0.05)


def test_a_killed_run_is_retried_and_an_interrupted_sweep_resumes_with_the_missing_runs(tmp_path, capsys):
    """Kill the first run's process (its PID from its folder): Ray runs it again (attempt
    2) and the sweep completes. Then a sweep stopped by SIGINT after its first run: a rerun
    runs only the runs that are missing."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace('"task.n_train" = 20', '"task.n_train" = 400') + VARIANTS)
    out = tmp_path / "killed"
    proc = _sweep(spec, out)
    pid_file = out / "ts" / "bp" / "seed0" / "sweep.pid"
    _wait_for(pid_file.exists)
    time.sleep(1.0)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    proc.communicate(timeout=600)
    assert proc.returncode == 0
    rows = _rows(out)
    assert rows["ts/bp/seed0"]["attempt"] == "2" and all(r["status"] == "complete" for r in rows.values())

    out = tmp_path / "interrupted"
    proc = _sweep(spec, out)
    _wait_for(lambda: (out / "sweep.csv").exists() and "complete" in (out / "sweep.csv").read_text())
    proc.send_signal(signal.SIGINT)
    printed, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "sweep stopped by SIGINT" in printed, printed
    assert "the same command again resumes it" in printed
    done = [r for r in _rows(out).values() if r["status"] == "complete"]
    assert 1 <= len(done) < 4
    capsys.readouterr()
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2"]) == 0
    log = capsys.readouterr().out
    assert f"sweep: 4 runs, {len(done)} complete already, {4 - len(done)} to run" in log
    assert log.count(": complete") == 4 - len(done)
    assert all(r["status"] == "complete" for r in _rows(out).values())


@pytest.mark.slow
def test_a_sweep_submitted_to_a_two_node_cluster_lands_on_both(tmp_path):
    """A Ray head and a second node started as separate processes on this machine
    (loopback), the sweep submitted with --address: its rows name both nodes. `ray stop`
    at the end stops every Ray process of this user: skipped where a cluster runs."""
    ray = [str(Path(sys.executable).parent / "ray")]
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    if subprocess.run([*ray, "status"], env=env, capture_output=True, timeout=120).returncode == 0:
        pytest.skip("a Ray cluster runs on this machine; this test would stop it")
    port = "6391"
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    try:
        subprocess.run([*ray, "start", "--head", f"--port={port}", "--include-dashboard=false", *common], env=env,
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*ray, "start", f"--address=127.0.0.1:{port}", *common], env=env, check=True,
                       capture_output=True, timeout=120)
        spec = tmp_path / "spec.toml"
        spec.write_text(SPEC + VARIANTS)
        subprocess.run([sys.executable, "-m", "microcircuits.cli", "sweep", str(spec), "--out", str(tmp_path / "out"),
                        "--address", f"127.0.0.1:{port}"], env=env, cwd=ROOT, check=True, timeout=600)
        rows = _rows(tmp_path / "out")
        assert all(r["status"] == "complete" for r in rows.values())
        assert len({r["node"] for r in rows.values()}) == 2
    finally:
        subprocess.run([*ray, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_the_example_specs_are_valid_and_run_what_the_scripts_run():
    from microcircuits.comparison import MODES
    from microcircuits.runners import make_config
    from microcircuits.sweep_spec import load_spec, variant_config
    from neurosim.config import load_config

    for spec in sorted((ROOT / "examples" / "sweeps").glob("*.toml")):
        runs, _ = load_spec(spec)
        assert runs, spec
    runs, _ = load_spec(ROOT / "examples" / "sweeps" / "pal_yinyang.toml")  # examples/pal_yinyang.py's runs
    base = load_config(ROOT / "examples" / "pal_yinyang.toml")
    assert sorted((r.variant, r.seed) for r in runs) == sorted((m, s) for m in MODES for s in range(5))
    for run in runs:
        assert run.config == make_config(variant_config(base, MODES[run.variant], run.seed)), run.folder
