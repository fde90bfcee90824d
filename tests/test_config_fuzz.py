"""Random and mutated configs for every model kind (hypothesis): each is either accepted
unchanged or refused with a one-line ValueError naming a key; never another exception,
never a value converted behind the user's back. The default suite tries EXAMPLES cases;
`pytest -m slow tests/test_config_fuzz.py` tries SLOW_EXAMPLES."""
import copy
import math

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
