"""Random and mutated configs for every model kind (hypothesis): each is either accepted
unchanged or refused with a one-line ValueError naming a key; never another exception,
never a value converted behind the user's back; and tiny configs so mutated either refused
in one line or run to an end (complete or diverged), never a traceback or a hang. The
default suite tries EXAMPLES and RUN_EXAMPLES cases; `pytest -m slow
tests/test_config_fuzz.py` tries SLOW_EXAMPLES and SLOW_RUN_EXAMPLES."""
import copy
import math
import signal
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microcircuits.runners import make_config
from neurosim.config import load_config, merge, parse_set

EXAMPLES, SLOW_EXAMPLES = 300, 20_000
BASES = {  # one example config per model kind
    "dendritic": "examples/yinyang_bp.toml", "spiking": "examples/yinyang_spiking_accuracy.toml",
    "energy": "examples/energy_yinyang.toml", "dfc": "examples/dfc_digits.toml",
    "inversion": "examples/inversion_regression.toml", "mlp": "examples/mlp_bp_digits.toml",
}
SCALARS = st.one_of(
    st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=8), st.sampled_from(["fa", "bp", "pal", "torch", "brian2", "numpy", "yinyang", "logistic",
                                          "relu", "set", "random", "spiking", "rate", "float32", "cuda"]))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=5), st.dictionaries(st.text(max_size=5), SCALARS, max_size=2))


def _full(kind: str) -> dict:
    return make_config(load_config(BASES[kind]))


@st.composite
def mutated(draw):
    """(config, [(section, key, value)]): an example config with 1 - 3 keys set to random
    values (known keys mostly, an unknown one sometimes)."""
    kind = draw(st.sampled_from(sorted(BASES)))
    config, full = load_config(BASES[kind]), _full(kind)
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(["network", "task", "run"]))
        known = sorted(full[section])
        key = draw(st.one_of(st.sampled_from(known), st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8))
                   if known else st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8))
        value = draw(VALUES)
        config.setdefault(section, {})[key] = value
        changes.append((section, key, value))
    return config, changes


def _same(a, b) -> bool:
    """Equal and of the same type, NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _check(config: dict, changes: list) -> None:
    given_config = copy.deepcopy(config)
    try:
        full = make_config(config)
    except ValueError as err:
        message = str(err)
        assert "\n" not in message, message
        named = {key for _, key, _ in changes} | {f"[{section}]" for section, _, _ in changes}
        assert any(name in message for name in named), (message, changes)
        return
    final = {(section, key): value for section, key, value in changes}  # a key set twice keeps the last
    for (section, key), value in final.items():  # accepted: every value as given
        assert _same(full[section][key], value), (section, key, value, full[section][key])
    assert config == given_config or _same(config, given_config)  # the user's dict is not changed


def _fuzz(examples: int):
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated())
    def run(case):
        _check(*case)

    run()


def test_mutated_configs_are_accepted_as_given_or_refused_naming_a_key():
    _fuzz(EXAMPLES)


@pytest.mark.slow
def test_mutated_configs_many():
    _fuzz(SLOW_EXAMPLES)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=3), st.sampled_from(sorted(BASES)))
def test_random_set_options_are_accepted_or_refused_in_one_line(items, kind):
    """`--set` strings of any text: parse_set reads them or says why; the config they make
    is then accepted or refused as above."""
    try:
        overlay = parse_set(items)
    except ValueError as err:
        assert "\n" not in str(err) and "--set" in str(err)
        return
    config = merge(load_config(BASES[kind]), overlay)
    try:
        make_config(config)
    except ValueError as err:
        assert "\n" not in str(err), str(err)


# -- runs: accepted configs run to an end -------------------------------------------------
RUN_EXAMPLES, SLOW_RUN_EXAMPLES = 12, 1000
RUN_SECONDS = 120  # a case that runs longer than this has hung: every base run takes about a second
TINY = {  # every kind's base shrunk to a run of about a second, on a backend that compiles nothing
    "task": {"epochs": 1, "n_train": 8, "n_test": 4},
    "dendritic": {"run": {"backend": "torch", "compile": False}},
    "spiking": {"task": {"t_pres": 5.0}, "run": {"backend": "torch", "compile": False}},
    **{kind: {"run": {"batch": 4}} for kind in ("energy", "dfc", "inversion", "mlp")},
}
FLOATS = [0.0, -1.0, 1e-3, 0.1, 1.0, 10.0, 1e300, math.nan, math.inf, -math.inf, 3, "x", None, True]
INTS = [-1, 0, 1, 2, 3, 1.5, True, "2", None]
BOOLS = [True, False, "false", 0, 1, None]
TEXTS = ["fa", "bp", "pal", "logistic", "tanh", "relu", "linear", "hard_sigmoid", "set", "random", "ou", "spikes",
         "yinyang", "digits", "teacher_student", "alignment", "", "nonsense", 1, None]
TINY_KEYS = {"task": ("epochs", "n_train", "n_test")}  # sizes: their values stay small


def _tiny(kind: str) -> dict:
    return merge(merge(load_config(BASES[kind]), {"task": TINY["task"]}), TINY[kind])


def _values_like(default):
    """Values for a key whose default is `default`: of its type and around it (zero,
    negative, huge, NaN, inf), and of other types."""
    if isinstance(default, bool):
        return st.sampled_from(BOOLS)
    if isinstance(default, int):
        return st.sampled_from(INTS)
    if isinstance(default, float) or default is None:
        return st.sampled_from(FLOATS)
    if isinstance(default, str):
        return st.sampled_from(TEXTS)
    if isinstance(default, list):
        like = _values_like(default[0]) if default else st.sampled_from(FLOATS)
        return st.one_of(st.lists(like, min_size=max(0, len(default) - 1), max_size=len(default) + 1), like)
    return st.sampled_from(FLOATS)


@st.composite
def mutated_tiny(draw):
    """(config, [(section, key, value)]): a tiny base with 1 - 2 keys of [network] or
    [task] set to values like their defaults (sizes and durations stay small)."""
    kind = draw(st.sampled_from(sorted(BASES)))
    config, full = _tiny(kind), make_config(_tiny(kind))
    changes = []
    for _ in range(draw(st.integers(1, 2))):
        section = draw(st.sampled_from(["network", "task"]))
        key = draw(st.sampled_from(sorted(full[section])))
        value = draw(st.sampled_from([0.0, -1.0, 1.0, 5.0, math.nan]) if key in ("t_pres", "settle") else
                     st.sampled_from([0, 1, 2, 3, -1]) if key in TINY_KEYS.get(section, ()) else
                     _values_like(full[section][key]))
        config.setdefault(section, {})[key] = value
        changes.append((section, key, value))
    return config, changes


def _hang(signum, frame):
    raise TimeoutError(f"the run took over {RUN_SECONDS} s")


def _run_case(config: dict, changes: list, tmp_path) -> str:
    """Refused in one line naming a key, complete, or diverged with the population and
    time; anything else (a traceback, a failed run, a hang) fails the test."""
    from microcircuits.runners import run_experiment
    from neurosim.recording import DivergenceError, read_results

    try:
        make_config(config)
    except ValueError as err:
        _check(config, changes)
        return "refused"
    out = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(RUN_SECONDS)
    try:
        run_experiment(config, out, log=lambda *a: None)
        outcome = "complete"
    except ValueError as err:  # refused when the run starts (sizes, stability with the data)
        assert "\n" not in str(err), str(err)
        return "refused"
    except DivergenceError as err:
        assert " diverged" in str(err) and "\n" not in str(err), str(err)
        outcome = "diverged"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert read_results(out / "results.h5")["status"] == outcome
    return outcome


def _fuzz_runs(examples: int, tmp_path) -> None:
    outcomes = []

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutated_tiny())
    def run(case):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # overflowing metrics of diverging runs, Brian2's notes
            outcomes.append(_run_case(*case, tmp_path))

    run()
    print({outcome: outcomes.count(outcome) for outcome in sorted(set(outcomes))})


def test_accepted_configs_run_to_an_end(tmp_path):
    """Tiny configs of every model kind with keys set to values like their defaults:
    refused in one line, or run to `complete` or `diverged` (with its message); never
    another exception, never a hang."""
    _fuzz_runs(RUN_EXAMPLES, tmp_path)


@pytest.mark.slow
def test_accepted_configs_run_to_an_end_many(tmp_path):
    _fuzz_runs(SLOW_RUN_EXAMPLES, tmp_path)
