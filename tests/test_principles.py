"""The comparison of all principles (microcircuits.principles): the teacher that every
model shares, the spec's checks, and a small comparison whose table and curves are the
runs' own numbers on the same seeds, with a failing method reported, not fatal."""
import json
from pathlib import Path

import numpy as np
import pytest

from microcircuits import dendritic, rate_models
from microcircuits.defaults import DEFAULTS
from microcircuits.principles import compare_principles, curve, failed_runs, load_spec
from microcircuits.rate_runner import load_rate_task, network_config
from microcircuits.tasks import load_task

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TEACHER = {**DEFAULTS["task"], "name": "teacher_student", "n_train": 30, "n_test": 10, "teacher_init": 1.0}


@pytest.mark.parametrize("activations", [["linear", "linear"], ["tanh", "linear"]])
def test_network_teacher_is_the_same_for_the_microcircuit_and_the_rate_circuits(activations):
    task = {**TEACHER, "teacher_activation": activations}
    mc = load_task(task, dendritic.MicrocircuitConfig(layers=[5, 4, 3]), seed=2)
    dfc = load_rate_task(task, network_config("dfc", {"layers": [5, 4, 3]}), seed=2)
    inv = load_rate_task(task, network_config("inversion", {"layers": [5, 4, 3]}), seed=2)
    for a in (dfc, inv):
        np.testing.assert_array_equal(a.train_x, mc.train_x)
        np.testing.assert_array_equal(a.train_y, mc.train_y)
        np.testing.assert_array_equal(a.test_y, mc.test_y)
    # y = W2 f(W1 x), W ~ N(0, 1/n_in) drawn with seed + 10000, written out here
    w = rate_models.forward_weights([5, 4, 3], 10_002)
    f = np.tanh if activations[0] == "tanh" else (lambda h: h)
    np.testing.assert_allclose(mc.train_y, f(mc.train_x @ w["W1"].T) @ w["W2"].T, rtol=1e-12)
    # without teacher_activation, the microcircuit keeps its own (logistic microcircuit) teacher
    assert not np.allclose(load_task(TEACHER, dendritic.MicrocircuitConfig(layers=[5, 4, 3]), 2).train_y, mc.train_y)


def test_bad_teacher_activation_is_named():
    with pytest.raises(ValueError, match="teacher_activation"):
        load_task({**TEACHER, "teacher_activation": ["tanh"]}, dendritic.MicrocircuitConfig(layers=[5, 4, 3]), 0)
    with pytest.raises(ValueError, match="teacher_activation"):
        load_rate_task({**TEACHER, "teacher_activation": ["tanh", "sine"]}, network_config("dfc", {}), 0)


def test_the_example_spec_loads_every_method():
    spec = load_spec(EXAMPLES / "principles.toml")
    assert set(spec["tasks"]) == {"teacher_student", "yinyang", "digits"}
    for task, entry in spec["tasks"].items():
        assert {"mlp-bp", "mlp-bp-online", "mlp-fa", "energy", "dfc", "inversion", "dendritic-bp", "dendritic-fa",
                "dendritic-pal"} == set(entry["methods"])
        layers = {tuple(c["network"]["layers"]) for c in entry["methods"].values()}
        epochs = {c["task"]["epochs"] for c in entry["methods"].values()}
        assert len(layers) == 1 and len(epochs) == 1, task  # the same network and training for all


@pytest.mark.parametrize("text, message", [
    ("seeds = 0\n", "seeds"),
    ("colour = 1\n[tasks.a.methods.m]\nconfig = 'mlp_bp_digits.toml'\n", "unknown keys"),
    ("[tasks.a]\nshared = {}\n", "lists no methods"),
    ("[tasks.a.methods.m]\nconfig = 'no_such.toml'\n", r"\[tasks.a\].methods.'m'.*does not exist"),
    ("[tasks.a.methods.m]\nconfig = 'mlp_bp_digits.toml'\nset = { network = { eta = -1.0 } }\n", "'m'.*eta"),
    ("[tasks.a.methods.m]\nconfig = 'mlp_bp_digits.toml'\nset = { colour = {} }\n", "among"),
    ("[tasks.a.methods.'m/1']\nconfig = 'mlp_bp_digits.toml'\n", "folder name"),
])
def test_bad_spec_is_named(tmp_path, text, message):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    (tmp_path / "mlp_bp_digits.toml").write_text((EXAMPLES / "mlp_bp_digits.toml").read_text())
    with pytest.raises(ValueError, match=message):
        load_spec(path)


SPEC = """seeds = 2
[tasks.ts.shared]
task = { name = "teacher_student", epochs = 2, n_train = 40, n_test = 20, teacher_init = 1.0, teacher_activation = ["linear", "linear"] }
network = { layers = [5, 4, 2] }
[tasks.ts.methods.mlp-bp]
config = "mlp.toml"
[tasks.ts.methods.inversion]
config = "inversion.toml"
[tasks.ts.methods.blows-up]
config = "mlp.toml"
set = { network = { eta = 1e6 } }
"""


def test_compare_runs_every_method_on_the_same_seeds_and_tabulates_their_numbers(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC)
    (tmp_path / "mlp.toml").write_text('model = "mlp"\n[network]\nactivation = "linear"\neta = 0.1\n[run]\nbatch = 4\n')
    (tmp_path / "inversion.toml").write_text('model = "inversion"\n[network]\neta = 0.05\nt_pres = 1.0\ndt = 0.02\n'
                                             '[run]\nbackend = "torch"\nbatch = 4\n')
    spec = load_spec(tmp_path / "spec.toml")
    table = compare_principles(spec, range(2), tmp_path / "out", workers=1)
    assert (tmp_path / "out" / "table.md").read_text().strip() == table.strip()
    assert (tmp_path / "out" / "ts.png").stat().st_size > 0
    runs = json.loads((tmp_path / "out" / "summaries.json").read_text())["ts"]
    for method in ("mlp-bp", "inversion"):
        files = [json.loads((tmp_path / "out" / "ts" / method / f"seed{s}" / "summary.json").read_text())
                 for s in (0, 1)]
        assert [f["seed"] for f in files] == [0, 1]
        mse = [f["final"]["mse"] for f in files]
        assert [r["final"]["mse"] for r in runs[method]] == mse
        row = next(line for line in table.splitlines() if line.startswith(f"| {method} |"))
        assert f"{np.mean(mse):.2e} +- {np.std(mse, ddof=1) / np.sqrt(2):.2e}" in row
        assert ", ".join(f"{m:.2e}" for m in mse) in row
        for r in runs[method]:
            c = curve(r)
            assert len(c) == 3 and c[-1] == r["final"]["mse"] < c[0]  # before training, after 2 epochs
    assert all("diverged" in r["error"] for r in runs["blows-up"])
    assert failed_runs(tmp_path / "out") == ["ts/blows-up/seed0", "ts/blows-up/seed1"]
    assert "| blows-up | - | - | failed (" in table
    # the same seed is the same data: both methods start from the same test error
    assert curve(runs["mlp-bp"][0])[0] == pytest.approx(curve(runs["inversion"][0])[0])
    # reuse: complete runs of an unchanged config are read back, the others run again
    out = tmp_path / "out"
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("ts/*/seed*/results.h5")}
    spec["tasks"]["ts"]["methods"]["mlp-bp"]["network"]["eta"] = 0.05
    again = compare_principles(spec, range(2), out, workers=1, reuse=True)
    ran = {p.relative_to(out).parent.parent.name for p, t in stamps.items() if p.stat().st_mtime_ns != t}
    assert ran == {"mlp-bp", "blows-up"}  # changed, and not complete
    row = [line for line in table.splitlines() if line.startswith("| inversion |")]
    assert row == [line for line in again.splitlines() if line.startswith("| inversion |")]
