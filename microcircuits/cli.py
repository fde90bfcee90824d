"""Command line: `neurosim run CONFIG.toml ...` and `neurosim demo`.

The `neurosim` console script: `run` (a config through its model's runner,
microcircuits.runners), `sweep` (a spec's runs on Ray, microcircuits.sweep_ray), `demo`
(microcircuits.demo), `export` and `map` (a trained microcircuit to NIR, PyNN or a chip,
microcircuits.export). Exit codes: 0 complete; 1 diverged
(results written, status `diverged`), or for `map --toolchain` the chip's toolchain laid
the network out differently from our mapper; 2 a bad config, option or file, named in one line
(nothing run); 3 failed (an error of the run itself: status `failed` with the message,
the traceback beside it); 128 + the signal (130, 143) stopped by SIGINT or SIGTERM
(what it recorded written, status `interrupted`)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from neurosim.config import load_config, merge, parse_set
from neurosim.interrupt import Interrupted
from neurosim.recording import DivergenceError, RunFailed


def cmd_run(args) -> int:
    from .runners import make_config, resume_config, run_experiment

    if args.resume:
        given = [f"--{k.replace('_', '-')}" for k in ("config", "out", "set", "seed", "backend", "target", "device",
                                                       "dtype", "replicas", "compile", "checkpoint_every")
                 if getattr(args, k) is not None]
        if given:
            raise ValueError(f"--resume continues a run as it was started: drop {', '.join(given)}")
        out = Path(args.resume)
        config = resume_config(out)
    else:
        if args.config is None:
            raise ValueError("neurosim run needs a CONFIG.toml (or --resume OUT)")
        config = load_config(args.config)
        overrides = parse_set(args.set or [])
        for key in ("seed", "backend", "target", "device", "dtype", "replicas", "compile", "checkpoint_every"):
            if getattr(args, key) is not None:
                overrides = merge(overrides, {"run": {key: getattr(args, key)}})
        config = merge(config, overrides)
        out = Path(args.out or Path("runs") / Path(args.config).stem)
    make_config(config)  # a bad config is refused before --out is touched
    with _claim(out, args.overwrite, resuming=bool(args.resume)):
        summaries = run_experiment(config, out, progress=True, resume=bool(args.resume))
    for summary in summaries if isinstance(summaries, list) else [summaries]:
        print(_format_summary(summary))
    where = out if not isinstance(summaries, list) else out / "seed<k>"
    print(f"results: {where / 'results.h5'}, {where / 'summary.json'}")
    return 0


LOCK = ".neurosim.lock"


@contextmanager
def _claim(out: Path, overwrite: bool, resuming: bool):
    """Hold --out for this run: it must be a folder we can write, not held by another live
    run (a lock file inside, released when the run ends however it ends), and not hold a
    complete run, or an unfinished one with a checkpoint (unless resuming it), unless
    --overwrite. A folder this call made and the run left empty is removed again."""
    from filelock import FileLock, Timeout

    from neurosim.checkpoint import unfinished

    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(out / LOCK), timeout=0)
        lock.acquire()
    except Timeout:  # (an OSError too)
        raise ValueError(f"--out {out} is in use by another run (it holds {out / LOCK})") from None
    except OSError as err:
        raise ValueError(f"--out {out} cannot be written ({err.strerror or err})") from None
    try:
        complete = [p for p in sorted(out.glob("results.h5")) + sorted(out.glob("seed*/results.h5"))
                    if _status(p) == "complete"]
        if complete and not overwrite:
            raise ValueError(f"--out {out} holds a complete run ({complete[0]}); pass --overwrite to replace it "
                             "or choose another --out")
        if unfinished(out) and not resuming and not overwrite:
            raise ValueError(f"--out {out} holds an unfinished run with a checkpoint; continue it with neurosim run "
                             f"--resume {out}, or pass --overwrite to start again")
        yield
    finally:
        lock.release()
        (out / LOCK).unlink(missing_ok=True)
        if made and not any(out.iterdir()):
            out.rmdir()


def _status(results) -> str | None:
    import h5py

    try:
        with h5py.File(results, "r") as f:
            return str(f.attrs.get("status"))
    except OSError:  # a damaged file holds no complete run
        return None


def cmd_sweep(args) -> int:
    from .sweep_ray import SWEEP_MD, run_sweep
    from .sweep_spec import load_spec

    runs, spec = load_spec(args.spec)  # a bad spec is refused before anything runs
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    out = Path(args.out or spec.get("out") or Path("runs") / Path(args.spec).stem)
    rows = run_sweep(runs, out, workers=args.workers, address=args.address, resume=args.resume)
    print(f"table: {out / SWEEP_MD}")
    return 0 if all(row["status"] == "complete" for row in rows) else 1


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), epochs=args.epochs, seeds=args.seeds)
    return 0


def cmd_export(args) -> int:
    from .export import export_results

    path = export_results(args.results, args.format, args.out, samples=args.samples)
    print(f"{args.format}: {path}")
    return 0


def cmd_map(args) -> int:
    from .export import check_toolchain, map_results, toolchain_check

    if args.toolchain:  # refused before the conversion and mapping
        check_toolchain(args.target)
    report = map_results(args.results, args.target)
    print(report.to_text())
    if args.json:
        Path(args.json).write_text(report.to_json() + "\n")
        print(f"report: {args.json}")
    if not args.toolchain:
        return 0
    folder = Path(args.toolchain_dir or tempfile.mkdtemp(prefix="neurosim-toolchain-"))
    table, differences = toolchain_check(args.results, args.target, report, folder)
    print(f"\nsPyNNaker 7.4.1, virtual SpiNN-5 board (in {folder}):\n{table}")
    for line in differences:
        print(f"differs: {line}")
    return 1 if differences else 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _format_summary(s: dict) -> str:
    final = ", ".join(f"{k} = {v}" for k, v in s["final"].items())
    return (f"{s['model']}/{s['rule']} seed {s['seed']} on {s['backend']}: {s['sim_time_ms'] / 1000:g} s simulated in "
            f"{s['wall_time_s']:.1f} s ({s['steps_per_s']:.3g} steps/s); {final}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="neurosim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an experiment from a TOML config")
    run.add_argument("config", nargs="?")
    run.add_argument("--backend", choices=["brian2", "torch"])
    run.add_argument("--target", choices=["cython", "numpy", "cpp_standalone"],
                     help="Brian2 code generation: runtime (cython, numpy) or cpp_standalone")
    run.add_argument("--device", help="torch device: cpu, cuda or cuda:N")
    run.add_argument("--dtype", choices=["float32", "float64"], help="torch floating point type")
    run.add_argument("--replicas", type=int,
                     help="run seeds SEED .. SEED+N-1 as N replicas (torch: in one tensor program; brian2: one "
                          "after another, on cpp_standalone with one build)")
    run.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                     help="torch: torch.compile the step (default: on CUDA, and on the CPU from 400,000 steps)")
    run.add_argument("--out", help="output folder (default runs/CONFIG_NAME)")
    run.add_argument("--overwrite", action="store_true", help="replace a complete run in --out")
    run.add_argument("--checkpoint-every", type=float, metavar="T",
                     help="write a checkpoint every T ms of simulated time (dendritic microcircuit) or T epochs (rate "
                          "runners), and when SIGINT/SIGTERM stops the run (default: every tenth of a torch or Brian2 "
                          "runtime run, every epoch; none on cpp_standalone)")
    run.add_argument("--resume", metavar="OUT", help="continue the checkpointed run in OUT")
    run.add_argument("--seed", type=int)
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config value, e.g. --set network.feedback=fa")
    run.set_defaults(func=cmd_run)
    sweep = sub.add_parser("sweep", help="run a sweep spec (configs x variants x seeds) on Ray, into one table")
    sweep.add_argument("spec", help="sweep spec (TOML; see microcircuits/sweep_spec.py)")
    sweep.add_argument("--workers", type=int, default=2, help="local Ray workers (CPUs) when no --address")
    sweep.add_argument("--address", help="an existing Ray cluster (e.g. 127.0.0.1:6379, from `ray start --head`)")
    sweep.add_argument("--out", help="output folder (default: the spec's `out`, else runs/SPEC_NAME)")
    sweep.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                       help="skip runs whose folder holds a complete run of the same config, continue checkpointed "
                            "ones (default; --no-resume runs everything again)")
    sweep.set_defaults(func=cmd_sweep)
    demo = sub.add_parser("demo", help="train on Yin-Yang with bp, fa and pal feedback and compare")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("--seeds", type=int, default=1)
    demo.set_defaults(func=cmd_demo)
    export = sub.add_parser("export", help="convert a trained network to spikes and write it as NIR or PyNN")
    export.add_argument("results", help="results.h5 of a run")
    export.add_argument("--format", choices=["nir", "pynn"], required=True)
    export.add_argument("--out", required=True, help="file to write (NIR: HDF5; PyNN: a Python script)")
    export.add_argument("--samples", type=_positive_int, default=100, help="PyNN: test samples the script runs")
    export.set_defaults(func=cmd_export)
    mapping = sub.add_parser("map", help="map a trained network onto a chip: quantise, place, check, report")
    mapping.add_argument("results", help="results.h5 of a run")
    mapping.add_argument("--target", required=True, help="chip: one of the files in hardware/targets/")
    mapping.add_argument("--json", help="also write the report as JSON to this file")
    mapping.add_argument("--toolchain", action="store_true",
                         help="also run the chip's own toolchain on the PyNN export and compare (spinnaker1: "
                              "sPyNNaker's virtual board); exit 1 where its core counts differ from ours")
    mapping.add_argument("--toolchain-dir", help="folder for the toolchain's run and reports (default: a new "
                                                 "temporary folder, kept)")
    mapping.set_defaults(func=cmd_map)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        print(f"neurosim: error: {err}", file=sys.stderr)
        return 2
    except Interrupted as err:  # SIGINT or SIGTERM: what was recorded is written
        print(f"neurosim: {err}", file=sys.stderr)
        return 128 + err.signum
    except DivergenceError as err:  # its results are written
        print(f"neurosim: {err}", file=sys.stderr)
        return 1
    except RunFailed as err:
        print(f"neurosim: {err}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
