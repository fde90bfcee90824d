"""The cache of standalone projects (neurosim/backends/standalone_cache.py): a cached
program run with another seed, other weights and another learning rate gives what a
fresh build of that configuration gives, bit for bit; another structure gets a project
of its own; a damaged program or object file is rebuilt, not run; every process
generates the same code; replicas rerun in one program equal separate runs."""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from neurosim.backends import standalone_make
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.models.rate import Input, Leaky
from neurosim.network import Network, Population, Projection
from neurosim.noise import WhiteNoise
from neurosim.recording import Recording
from neurosim.rules import Hebbian
from neurosim.schedule import Schedule

DT, T_PRES = 0.1, 2.0
REC = Recording({"z": ["z"]}, dt=T_PRES, weights=["W"], weights_dt=T_PRES)


def network(seed: int, eta: float, hidden: int = 3):
    """x -> z (noisy leaky units), W learning by a Hebbian rule."""
    w = np.random.default_rng(seed).normal(0, 1, (hidden, 2))
    return Network([Population("x", 2, Input()), Population("z", hidden, Leaky(1.0), WhiteNoise(0.2))],
                   [Projection("W", "x", "z", weight=w, rule=Hebbian(eta), delay=0)], dt=DT)


def schedule():
    return Schedule(T_PRES, {"x": np.random.default_rng(9).uniform(0, 1, (4, 2))})


def run(net, seed, build_dir=None):
    return Brian2Simulator(net, target="cpp_standalone", seed=seed, build_dir=build_dir).run(schedule(), REC)


def projects(cache):
    return sorted(p for p in (cache / "standalone").iterdir() if p.is_dir())


def test_a_cached_program_with_new_seed_weights_and_rate_equals_a_fresh_build(standalone_cache, tmp_path):
    first = run(network(0, 0.1), seed=0)
    folder, count = newest(standalone_cache), len(projects(standalone_cache))
    program = (folder / "main").stat().st_mtime_ns
    cached = run(network(1, 0.3), seed=5)
    assert newest(standalone_cache) == folder and len(projects(standalone_cache)) == count
    assert (folder / "main").stat().st_mtime_ns != program  # the rate recompiled, in the same folder
    fresh = run(network(1, 0.3), seed=5, build_dir=str(tmp_path / "fresh"))
    np.testing.assert_array_equal(cached.traces["z.z"].values, fresh.traces["z.z"].values)
    np.testing.assert_array_equal(cached.final_weights["W"], fresh.final_weights["W"])
    assert not np.array_equal(cached.final_weights["W"], first.final_weights["W"])
    other_seed = run(network(1, 0.3), seed=6)  # the seed reaches the cached program
    assert not np.array_equal(other_seed.traces["z.z"].values, cached.traces["z.z"].values)


def schedule_of(seed: int):
    return Schedule(T_PRES, {"x": np.random.default_rng(seed).uniform(0, 1, (4, 2))})


@pytest.mark.parametrize("target", ["cpp_standalone", "numpy"])
def test_replicas_in_one_program_equal_separate_runs(standalone_cache, target):
    """Brian2 replicas (other weights, seeds and data) run one after another; on
    cpp_standalone one build, rerun with run-time arguments: bit for bit what separate
    runs give."""
    nets, seeds = [network(k, 0.3) for k in range(3)], [4, 5, 6]
    (standalone_cache / "standalone").mkdir(parents=True, exist_ok=True)
    before = set(projects(standalone_cache))
    together = Brian2Simulator(nets, target=target, seed=seeds).run_replicas([schedule_of(k) for k in range(3)], REC)
    if target == "cpp_standalone":
        assert len(set(projects(standalone_cache)) - before) <= 1
        assert not list(newest(standalone_cache).glob("static_arrays/*.lock"))  # run-time values removed
    for k, result in enumerate(together):
        alone = Brian2Simulator(nets[k], target=target, seed=seeds[k]).run(schedule_of(k), REC)
        np.testing.assert_array_equal(result.traces["z.z"].values, alone.traces["z.z"].values)
        np.testing.assert_array_equal(result.final_weights["W"], alone.final_weights["W"])
    assert not np.array_equal(together[1].final_weights["W"], together[2].final_weights["W"])


def test_replicas_that_need_another_program_are_refused():
    with pytest.raises(ValueError, match="replica 1 differs from replica 0 in more than its weights"):
        Brian2Simulator([network(0, 0.3), network(1, 0.2)], target="cpp_standalone", seed=[0, 1])
    sparse = network(1, 0.3)
    sparse.projections[0].weight[0, 0] = 0.0
    with pytest.raises(ValueError, match="replica 1: weight W has zeros where replica 0's has none"):
        Brian2Simulator([network(0, 0.3), sparse], target="cpp_standalone", seed=[0, 1])
    sim = Brian2Simulator([network(0, 0.3), network(1, 0.3)], target="cpp_standalone", seed=[0, 1])
    with pytest.raises(ValueError, match="use run_replicas"):
        sim.run(schedule(), REC)
    longer = Schedule(T_PRES, {"x": np.zeros((5, 2))})
    with pytest.raises(ValueError, match="schedule 1 differs from schedule 0"):
        sim.run_replicas([schedule(), longer], REC)
    with pytest.raises(ValueError, match="one seed per network"):
        Brian2Simulator([network(0, 0.3), network(1, 0.3)], target="cpp_standalone", seed=0)


def test_another_structure_gets_its_own_project(standalone_cache):
    before = set(projects(standalone_cache))
    run(network(0, 0.1, hidden=4), seed=0)
    assert len(set(projects(standalone_cache)) - before) == 1


def test_a_build_folder_reused_for_another_structure_equals_a_fresh_build(tmp_path):
    """The makefile's dependency list (standalone_make.py) recompiles what a changed
    header touches: a folder built for 3 hidden units, then given 4, runs the 4."""
    folder = str(tmp_path / "reused")
    run(network(0, 0.1), seed=0, build_dir=folder)
    assert (tmp_path / "reused" / "neurosim_pch.h.gch").exists()
    loop = (tmp_path / "reused" / "network.cpp").read_text()
    assert standalone_make._CLOCK_EVERY_STEP not in loop and "elapsed_realtime = (double)(std::clock()" in loop
    reused = run(network(0, 0.1, hidden=4), seed=0, build_dir=folder)
    fresh = run(network(0, 0.1, hidden=4), seed=0, build_dir=str(tmp_path / "fresh"))
    assert reused.final_weights["W"].shape == (4, 2) and reused.run_time_s > 0
    np.testing.assert_array_equal(reused.final_weights["W"], fresh.final_weights["W"])


def test_an_unknown_network_loop_is_kept_with_a_warning():
    with pytest.warns(UserWarning, match="keeps reading the clock every step"):
        assert standalone_make.fast_network_loop("void Network::run() {}") == "void Network::run() {}"


def test_a_damaged_program_or_object_file_is_rebuilt_not_run(standalone_cache, tmp_path):
    net = network(2, 0.2)
    good = run(net, seed=1)
    folder = newest(standalone_cache)
    (folder / "main").write_bytes(b"\x7fELF damaged")  # fails its checksum: the folder is built anew
    again = run(net, seed=1)
    np.testing.assert_array_equal(again.final_weights["W"], good.final_weights["W"])
    assert (folder / "main").stat().st_size > 1000
    damaged = next(folder.glob("code_objects/*.o"))  # newer than its source, so make keeps it: the link fails
    damaged.write_bytes(b"damaged")
    later = time.time() + 3600
    os.utime(damaged, (later, later))
    with pytest.warns(UserWarning, match="did not compile; building it again from clean"):
        cached = run(network(2, 0.4), seed=1)
    fresh = run(network(2, 0.4), seed=1, build_dir=str(tmp_path / "fresh"))
    np.testing.assert_array_equal(cached.final_weights["W"], fresh.final_weights["W"])


GENERATE_ONLY = """
import sys
import numpy as np
from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
from neurosim.backends import brian2 as backend
from neurosim.schedule import Schedule

def generate_only(directory, cached):
    backend._b2().device.build(directory=directory, compile=False, run=False)
    raise SystemExit(0)

backend._compile = generate_only
cfg = MicrocircuitConfig(layers=[3, 4, 4, 2], feedback="pal", sigma=0.05, eta_bw=1.0, eta_pi=1.0, dt=0.1)
data = {"x": np.zeros((2, 3)), "P3.target": np.zeros((2, 2))}
backend.Brian2Simulator(build(cfg, initial_weights(cfg, 0)), target="cpp_standalone",
                        build_dir=sys.argv[1]).run(Schedule(1.0, data, {"P3.target": np.zeros(2)}))
"""


def test_every_process_generates_the_same_code(tmp_path):
    """Brian2 orders subexpressions by a sort whose ties followed each process's string
    hash seed; the PAL microcircuit's code objects then differed from run to run and a
    cached project recompiled them."""
    def generated(hash_seed):
        folder = tmp_path / str(hash_seed)
        env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
        subprocess.run([sys.executable, "-c", GENERATE_ONLY, str(folder)], env=env, check=True,
                       cwd=Path(__file__).parents[1], capture_output=True)
        return {p.name: p.read_text() for p in [folder / "main.cpp", *sorted(folder.glob("code_objects/*.cpp"))]}

    first = generated(1)
    assert len(first) > 20
    for hash_seed in (2, 3):
        assert generated(hash_seed) == first


def test_a_second_run_in_one_process_generates_the_same_code(standalone_cache):
    """With the cycle collector idle (as in a Ray worker), the first run's Brian2 objects
    stayed alive, the second run's got the names "..._1", and every run recompiled; and the
    monitors' clocks (clock_rec_*) started in a set's order, which changed main.cpp."""
    import gc

    gc.collect()
    gc.disable()
    try:
        texts = []
        for seed in (0, 1):
            run(network(seed, 0.5), seed)
            texts.append((newest(standalone_cache) / "main.cpp").read_text())
    finally:
        gc.enable()
    assert "codeobject.h" in texts[0] and texts[1] == texts[0]


def newest(cache):
    """The project whose program was built last."""
    return max(projects(cache), key=lambda p: (p / "main").stat().st_mtime_ns)


def test_concurrent_runs_of_one_structure_each_keep_a_project(standalone_cache):
    """A second (third ...) process running the same structure gets the next slot, kept
    for its next run; only when every slot is busy does a run build in a temporary folder."""
    from neurosim.backends import standalone_cache as cache

    with cache.project("k", slots=2) as (first, kept_first):
        with cache.project("k", slots=2) as (second, kept_second):
            with cache.project("k", slots=2) as (third, kept_third):
                assert (kept_first, kept_second, kept_third) == (True, True, False)
                assert Path(first).name == "k" and Path(second).name == "k-1"
                assert not Path(third).is_relative_to(standalone_cache)
        with cache.project("k", slots=2) as (again, kept):
            assert kept and again == second
    assert not Path(third).exists()
