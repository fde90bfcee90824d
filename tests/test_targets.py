"""The chip target files load, cite a source for every fact, and broken files are refused."""

import re
import tomllib
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from hardware.targets import NEURON_MODELS, TARGETS, Target, all_targets, load_target

_FOLDER = Path(__file__).resolve().parents[1] / "hardware" / "targets"


def test_the_six_chips_are_known():
    assert TARGETS == ("brainscales2", "loihi2", "speck", "spinnaker1", "spinnaker2", "xylo")


def test_every_target_loads():
    for target in all_targets():
        assert target.title and target.time_step.strip() and target.notes.strip()
        assert set(target.neuron_models) <= set(NEURON_MODELS)
        for n in (target.weight_bits, target.neurons_per_core, target.cores):
            assert isinstance(n, int) and n > 0
        assert isinstance(target.weight_signed, bool)


def test_every_field_has_a_source():
    required = [f.name for f in fields(Target) if f.name not in ("name", "notes", "sources") and f.default is MISSING]
    for target in all_targets():
        given = tomllib.loads((_FOLDER / f"{target.name}.toml").read_text(encoding="utf-8"))
        assert set(required) <= set(target.sources), target.name
        assert sorted(target.sources) == sorted(k for k in given if k not in ("notes", "sources")), target.name
        assert all(s.strip() for s in target.sources.values()), target.name


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        load_target("loihi3")
    assert "loihi3" in str(err.value)
    assert all(name in str(err.value) for name in TARGETS)


def _broken(tmp_path, edit):
    """A copy of loihi2.toml in tmp_path, `edit` applied to its (top-level, [sources]) parts."""
    head, sources = (_FOLDER / "loihi2.toml").read_text(encoding="utf-8").split("\n[sources]\n")
    head, sources = edit(head, sources)
    (tmp_path / "loihi2.toml").write_text(head + "\n[sources]\n" + sources, encoding="utf-8")


def _drop(text, key):
    return re.sub(rf"^{key} = .*\n", "", text, count=1, flags=re.M)


def _set(text, key, value):
    return re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda h, s: (_drop(h, "weight_bits"), s), "weight_bits"),
        (lambda h, s: (_set(h, "neuron_models", '["LIF", "Izhikevich"]'), s), "neuron_models"),
        (lambda h, s: (_set(h, "cores", "-1"), s), "cores"),
        (lambda h, s: (_set(h, "fan_in", "2.5"), s), "fan_in"),
        (lambda h, s: (_set(h, "weight_signed", '"yes"'), s), "weight_signed"),
        (lambda h, s: (h + "clock_mhz = 100\n", s), "clock_mhz"),
        (lambda h, s: (h, _drop(s, "synapses_per_core")), "synapses_per_core"),
        (lambda h, s: (h + "cores_shared = false\n", s), "cores_shared"),
        (lambda h, s: (h + "split_below_dt = -1.0\n", s + 'split_below_dt = "a manual"\n'), "split_below_dt"),
        (lambda h, s: (h, s + 'planned_rate = "a manual"\n'), "planned_rate"),
        (lambda h, s: (h + "planned_rate = 30\n", s + 'planned_rate = "a manual"\n'), "split_below_dt"),
    ],
    ids=["missing", "unknown-model", "negative", "float", "ill-typed", "extra", "no-source",
         "optional-no-source", "optional-negative", "source-without-field", "split-incomplete"],
)
def test_broken_file_is_refused_naming_file_and_field(tmp_path, edit, field):
    _broken(tmp_path, edit)
    with pytest.raises(ValueError) as err:
        load_target("loihi2", folder=tmp_path)
    assert str(tmp_path / "loihi2.toml") in str(err.value)
    assert field in str(err.value)
