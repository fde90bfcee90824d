import os
import sys

import pytest

# make the repository root importable (e.g. `from tests.oracle.microcircuit_loop import ...`)
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pytest.fixture(scope="session", autouse=True)
def standalone_cache(tmp_path_factory):
    """The tests' own cache of standalone projects (neurosim/backends/standalone_cache.py),
    empty at the start: they never read or fill the user's."""
    folder = tmp_path_factory.mktemp("neurosim_cache")
    os.environ["NEUROSIM_CACHE"] = str(folder)
    return folder


def _train(example: str, epochs: int, out):
    """Train an example config (Brian2 standalone) for `epochs`; the results file."""
    from microcircuits.runners import run_experiment
    from neurosim.config import load_config, merge

    config = merge(load_config(os.path.join(_ROOT, "examples", example)), {"task": {"epochs": epochs}})
    run_experiment(config, out, progress=False, log=lambda *a: None)
    return out / "results.h5"


@pytest.fixture(scope="session")
def trained_yinyang(tmp_path_factory):
    """Yin-Yang 4-30-3, hard_sigmoid, fa, 10 epochs (examples/yinyang_spiking.toml)."""
    return _train("yinyang_spiking.toml", 10, tmp_path_factory.mktemp("yinyang"))


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory):
    """Digits 64-40-10, hard_sigmoid, fa, 4 epochs (examples/digits_spiking.toml)."""
    return _train("digits_spiking.toml", 4, tmp_path_factory.mktemp("digits"))
