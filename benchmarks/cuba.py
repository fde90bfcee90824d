"""The CUBA network (Vogels & Abbott 2005, as in Brian2's examples/CUBA.py: 4000 LIF
neurons, 3200 excitatory + 800 inhibitory, 2 % random connectivity, dt = 0.1 ms) on
plain Brian2 written by hand, on the Brian2 backend and on the torch backend, measured
in the same run.

    python -m benchmarks.cuba [--duration 1000] [--repeat 3] [--skip-runtime] [--devices cpu,cuda]
        [--dtypes float64,float32] [--profile] [--out benchmarks/results]

The model is the package's CubaLIF step (neurosim/models/spiking.py), in mV as plain numbers:
one population P of 4000 CubaLIF(tau_mem = 20 ms, tau_syn = 5 ms, v_leak = -49,
v_threshold = -50, v_reset = -60, r = 1, w_in = tau_syn/dt) and one recurrent
connection whose (target, source) weights are non-zero with probability 0.02, 1.62 for
an excitatory source (j < 3200) and -9 for an inhibitory one. A spike thus moves I of
its targets by w_in w dt/tau_syn = w, CUBA's jumps (60 * 0.27/10 mV and -20 * 4.5/10
mV). Unlike CUBA: one synaptic time constant (5 ms) for excitation and inhibition
(CUBA: 5 and 10 ms), no refractory period (CUBA: 5 ms), forward Euler (CUBA: exact
integration), and every neuron starts at v = v_leak (CUBA: uniform in [v_reset,
v_threshold]), so all 4000 fire together in the first step.

The hand-written reference is that model as a Brian2 user writes it: one NeuronGroup
(dv/dt = (v_leak - v + I)/tau_mem, dI/dt = -I/tau_syn, method "euler", threshold and
reset) and one Synapses (w per synapse, on_pre "I += w") on the same connectivity, with
Brian2's normal schedule. With that schedule (state update, threshold, synapses, reset)
it is step for step the package's step: the I that the reference's v reads is the
package's new I. Both therefore fire nearly the same spikes; the table gives the
first step at which a variant's spikes differ from the reference's runtime ones.

Each variant runs --repeat times, interleaved with the others; the table gives the best
loop and the best whole time. Times: "loop" is the simulation loop alone (Brian2: device._last_run_time, runtime or
standalone; the package: RunResult.run_time_s); "whole" is the wall time of everything
from creating the Brian2 objects (the package: the run() call) to having the spikes
back: code generation, compilation, the standalone build, the run. Runtime (Cython)
variants are each run once for 1 ms first, so that their Cython modules are compiled
and cached and the timed run only loads them. Loop ratios: Brian2 variants against the
hand-written one in the same mode; torch against the hand-written runtime one (both
are loops driven from Python), or the standalone one with --skip-runtime.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from neurosim.backends.brian2 import Brian2Simulator
from neurosim.recording import Recording, library_versions
from neurosim.schedule import Schedule
from neurosim.models.rate import Input
from neurosim.models.spiking import CubaLIF
from neurosim.network import Network, Population, Projection

N, N_EXC, P_CONNECT = 4000, 3200, 0.02
DT, TAU_MEM, TAU_SYN = 0.1, 20.0, 5.0  # ms
V_LEAK, V_THRESHOLD, V_RESET = -49.0, -50.0, -60.0  # mV, as plain numbers
WE, WI = 60 * 0.27 / 10, 20 * 4.5 / 10  # jump of I per spike (mV): 1.62, 9


def connectivity(seed: int) -> np.ndarray:
    """(target, source) weights: each entry non-zero with probability P_CONNECT."""
    rng = np.random.default_rng(seed)
    mask = rng.random((N, N), dtype=np.float32) < P_CONNECT
    return np.where(mask, np.where(np.arange(N) < N_EXC, WE, -WI)[None, :], 0.0)


def network(weight: np.ndarray) -> Network:
    """CUBA as a neurosim network. The unconnected input X is there only because a
    Schedule needs data for at least one input; nothing reads it, so it costs no work
    per step."""
    model = CubaLIF(tau_mem=TAU_MEM, tau_syn=TAU_SYN, r=1.0, v_leak=V_LEAK, v_threshold=V_THRESHOLD,
                    v_reset=V_RESET, w_in=TAU_SYN / DT)
    return Network([Population("P", N, model), Population("X", 1, Input())],
                   [Projection("C", "P", "P", weight=weight, delay=1)], dt=DT)


def schedule(duration: float) -> Schedule:
    return Schedule(duration, {"X": np.zeros((1, 1))})


def hand_written(weight: np.ndarray, duration: float, standalone: bool, seed: int) -> dict:
    """The same model in plain Brian2: runtime mode (Cython) or cpp_standalone."""
    import brian2 as b2

    directory = tempfile.mkdtemp(prefix="cuba_standalone_") if standalone else None
    if standalone:
        b2.set_device("cpp_standalone", directory=directory)
    else:
        b2.set_device("runtime")
        b2.prefs.codegen.target = "cython"
    try:
        t0 = time.perf_counter()
        b2.start_scope()
        b2.defaultclock.dt = DT * b2.ms
        b2.seed(seed)
        tau_mem, tau_syn = TAU_MEM * b2.ms, TAU_SYN * b2.ms  # noqa: F841 (read by Brian2)
        v_leak, v_threshold, v_reset = V_LEAK, V_THRESHOLD, V_RESET  # noqa: F841
        eqs = """
        dv/dt = (v_leak - v + I)/tau_mem : 1
        dI/dt = -I/tau_syn : 1
        """
        P = b2.NeuronGroup(N, eqs, threshold="v > v_threshold", reset="v = v_reset", method="euler")
        P.v = v_leak
        C = b2.Synapses(P, P, "w : 1", on_pre="I += w")
        post, pre = np.nonzero(weight)
        C.connect(i=pre, j=post)
        C.w = weight[post, pre]
        M = b2.SpikeMonitor(P)
        net = b2.Network(P, C, M)
        net.run(duration * b2.ms)
        steps = np.round(np.asarray(M.t / b2.ms) / DT).astype(np.int64)
        indices = np.asarray(M.i[:], dtype=np.int64)
        whole = time.perf_counter() - t0
        loop = float(b2.device._last_run_time)
    finally:
        if standalone:
            b2.device.reinit()
            b2.device.activate()
            b2.set_device("runtime")
            shutil.rmtree(directory, ignore_errors=True)
    return {"loop_s": loop, "whole_s": whole, "steps": steps, "indices": indices}


def package(sim, duration: float) -> dict:
    t0 = time.perf_counter()
    result = sim.run(schedule(duration), Recording(spikes=["P"]))
    whole = time.perf_counter() - t0
    train = result.spikes["P"]
    return {"loop_s": result.run_time_s, "whole_s": whole, "own_wall_s": result.wall_time_s,
            "steps": np.round(train.times / DT).astype(np.int64), "indices": train.indices.astype(np.int64)}


def package_standalone(net: Network, args) -> dict:
    build_dir = tempfile.mkdtemp(prefix="cuba_standalone_")
    try:
        return package(Brian2Simulator(net, target="cpp_standalone", seed=args.seed, build_dir=build_dir),
                       args.duration)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


def first_difference(a: dict, b: dict) -> int | None:
    """The first step at which the two spike trains differ (None: identical)."""
    ka, kb = (np.unique(r["steps"] * N + r["indices"]) for r in (a, b))
    m = min(len(ka), len(kb))
    bad = np.flatnonzero(ka[:m] != kb[:m])
    if len(bad):
        return int(min(ka[bad[0]], kb[bad[0]]) // N)
    if len(ka) != len(kb):
        return int((ka[m] if len(ka) > m else kb[m]) // N)
    return None


@contextlib.contextmanager
def profiled(store: list):
    """Brian2's runtime networks run with profile=True; each is kept in `store`."""
    import brian2 as b2

    original = b2.Network.run

    def run(self, *args, **kwargs):
        store.append(self)
        kwargs.update(profile=True, level=kwargs.get("level", 0) + 1)  # the caller's namespace, one frame up
        return original(self, *args, **kwargs)

    b2.Network.run = run
    try:
        yield
    finally:
        b2.Network.run = original


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated time in ms")
    parser.add_argument("--skip-runtime", action="store_true", help="no Brian2 runtime (Cython) variants")
    parser.add_argument("--devices", default=None, help="torch devices, e.g. cpu,cuda (default: cpu, and cuda "
                                                        "when torch sees a GPU; empty: no torch)")
    parser.add_argument("--dtypes", default="float64,float32", help="torch dtypes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the connectivity")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant, interleaved; the best loop counts")
    parser.add_argument("--profile", action="store_true",
                        help="also print Brian2's profiling_summary of both runtime variants (separate runs)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    import torch

    from neurosim.backends.torch import TorchSimulator

    devices = args.devices.split(",") if args.devices is not None else \
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    devices = [d for d in devices if d]
    weight = connectivity(args.seed)
    net = network(weight)
    variants = {}
    if not args.skip_runtime:
        hand_written(weight, 1.0, False, args.seed)  # compile and cache the Cython modules
        Brian2Simulator(net, target="cython", seed=args.seed).run(schedule(1.0), Recording(spikes=["P"]))
        variants["brian2 by hand, runtime (cython)"] = lambda: hand_written(weight, args.duration, False, args.seed)
        variants["neurosim brian2, runtime (cython)"] = lambda: package(
            Brian2Simulator(net, target="cython", seed=args.seed), args.duration)
    variants["brian2 by hand, cpp_standalone"] = lambda: hand_written(weight, args.duration, True, args.seed)
    variants["neurosim brian2, cpp_standalone"] = lambda: package_standalone(net, args)
    for device in devices:
        for dtype in args.dtypes.split(","):
            variants[f"neurosim torch, {device}, {dtype}"] = lambda device=device, dtype=dtype: package(
                TorchSimulator(net, device=device, dtype=dtype, seed=args.seed), args.duration)
    rows = {}
    for _ in range(args.repeat):  # interleaved, so that a busy moment of the machine hits every variant alike
        for name, run in variants.items():
            row = run()
            if name not in rows or row["loop_s"] < rows[name]["loop_s"]:
                rows[name] = {**row, "whole_s": min(row["whole_s"], rows.get(name, row)["whole_s"])}

    reference = rows.get("brian2 by hand, runtime (cython)", rows["brian2 by hand, cpp_standalone"])
    lines = [f"| variant | loop s | whole s | loop ratio vs hand-written (same mode) | mean rate Hz | spikes | "
             f"first step differing from brian2 by hand{'' if args.skip_runtime else ', runtime'} |",
             "|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        if name.startswith("neurosim torch"):
            ref_name = "brian2 by hand, cpp_standalone" if args.skip_runtime else "brian2 by hand, runtime (cython)"
        else:
            ref_name = "brian2 by hand, " + name.split(", ", 1)[1]
        mode = ref_name.split(", ", 1)[1].split(" ")[0]
        row["ratio"] = row["loop_s"] / rows[ref_name]["loop_s"]
        row["spike_count"] = len(row["steps"])
        row["rate_hz"] = row["spike_count"] / (N * args.duration / 1000.0)
        diff = None if row is reference else first_difference(row, reference)
        row["first_difference_step"] = diff
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] < 10 else f"{row['ratio']:.0f}x"
        ratio += f" (vs {mode})" if name.startswith("neurosim torch") else ""
        where = "-" if row is reference else "none" if diff is None else f"{diff} ({diff * DT:g} ms)"
        lines.append(f"| {name} | {row['loop_s']:.3g} | {row['whole_s']:.1f} | {ratio} | {row['rate_hz']:.1f} | "
                     f"{row['spike_count']:,} | {where} |")
    table = "\n".join(lines)
    print(f"CUBA, {N} CubaLIF neurons, {int(weight.astype(bool).sum()):,} synapses, {args.duration:g} ms at dt = "
          f"{DT} ms ({int(round(args.duration / DT))} steps), on {platform.processor() or platform.machine()}")
    print(table, flush=True)

    if args.profile and not args.skip_runtime:
        import brian2 as b2

        nets = []
        with profiled(nets):
            hand_written(weight, args.duration, False, args.seed)
            Brian2Simulator(net, target="cython", seed=args.seed).run(schedule(args.duration),
                                                                              Recording(spikes=["P"]))
        for name, bnet in zip(["brian2 by hand, runtime (cython)", "neurosim brian2, runtime (cython)"], nets):
            print(f"\nprofile, {name}:")
            print(b2.profiling_summary(bnet))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keep = {name: {k: v for k, v in row.items() if k not in ("steps", "indices")} for name, row in rows.items()}
    (out / "cuba.json").write_text(json.dumps({"duration_ms": args.duration, "dt_ms": DT, "rows": keep,
                                               "versions": library_versions()}, indent=2))
    (out / "cuba.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
