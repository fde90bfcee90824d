"""The PyNN export through SpiNNaker's own toolchain: sPyNNaker 7.4.1 on a virtual SpiNN-5
board (hardware.spinnaker) partitions, places and routes what `neurosim export --format
pynn` writes, and its decisions are compared with our mapper's (hardware.mapping with
hardware/targets/spinnaker1.toml).

Measured while writing this: the trained Yin-Yang and digits classifiers take 3 cores
each (the hidden layer, driven by i_offset only, on one combined core; the read-out on a
neuron core and a synapse core); 759 cores of the board take neurons (194,304 neurons fit
and 194,305 do not); a cell parameter beyond s16.15 fixed point is refused.
"""
import subprocess
import sys

import numpy as np
import pyNN.spiNNaker  # noqa: F401 - the test dependency itself; fail here, not in a subprocess
import pytest

from hardware.mapping import MappingError, map_network
from hardware.pynn import pynn_script, write_pynn_script
from hardware.spinnaker import ToolchainError, compare, run_virtual_board
from hardware.targets import load_target
from microcircuits.cli import main
from microcircuits.conversion import ConversionSettings, load_trained, to_spiking
from microcircuits.export import export_results
from neurosim.models.rate import Input
from neurosim.models.spiking import IF, LIF, CubaLIF
from neurosim.network import Network, Population, Projection

SPINNAKER1 = load_target("spinnaker1")


def _mapped(network: Network):
    report, _ = map_network(network, SPINNAKER1)
    return report


@pytest.mark.parametrize("task", ["yinyang", "digits"])
def test_trained_classifiers_run_on_the_virtual_board_as_our_mapper_lays_them_out(task, request, tmp_path):
    """The script as `neurosim export --format pynn --samples 20` writes it (a reset and new
    i_offset per sample; the default 100 samples take 18 s here) runs to the end on
    sPyNNaker, and sPyNNaker's cores per population equal our mapper's."""
    results = request.getfixturevalue(f"trained_{task}")
    script = export_results(results, "pynn", tmp_path / "net_pynn.py", samples=20)
    theirs = run_virtual_board(script, tmp_path / "board")
    assert "a virtual SpiNNaker board: the network was mapped" in (tmp_path / "board" / "spynnaker.log").read_text()
    trained = load_trained(results)
    ours = _mapped(to_spiking(trained.cfg, trained.weights, ConversionSettings()))
    table, differences = compare(ours, theirs)
    assert differences == [], table
    assert theirs.populations == ["P1", "P2"]
    assert [theirs.cores_of("P1"), theirs.cores_of("P2")] == [{"neurons": 1, "synapses": 0},
                                                               {"neurons": 1, "synapses": 1}]
    assert theirs.chips == ours.chips == 1 and theirs.routing_entries >= 1
    assert all(v.sdram > 0 for v in theirs.vertices)


def _layered(sizes: dict[str, int], weights: dict[tuple[str, str], np.ndarray], model=None) -> Network:
    model = model or LIF(tau=20.0, bias=0.5)
    first = next(iter(sizes))
    pops = [Population("x", 2, Input())] + [Population(name, n, model) for name, n in sizes.items()]
    projs = [Projection("x_" + first, "x", first, weight=np.ones((sizes[first], 2)), delay=0)]
    projs += [Projection(f"{a}_{b}", a, b, weight=w, delay=0) for (a, b), w in weights.items()]
    return Network(pops, projs, dt=0.1)


def test_slices_split_cores_and_signs_as_sPyNNaker_plans_them(tmp_path):
    """A 2000 -> 300 all-excitatory projection plans 256 x 30 Hz x 2000 = 15.4 M synaptic
    events per s onto each 256-neuron slice: 2 synapse cores per slice (13 M per core); a
    2000 -> 50 projection of both signs is two projections (excitatory, inhibitory) with
    one synapse core; 2000 input-driven neurons take 8 combined cores."""
    rng = np.random.default_rng(0)
    mixed = rng.choice([-0.01, 0.01], (50, 2000))
    net = _layered({"A": 2000, "B": 300, "C": 50},
                   {("A", "B"): np.full((300, 2000), 0.001), ("A", "C"): mixed})
    ours = _mapped(net)
    assert [ours.cores_of(p) for p in "ABC"] == [{"neurons": 8, "synapses": 0}, {"neurons": 2, "synapses": 4},
                                                 {"neurons": 1, "synapses": 1}]
    script = write_pynn_script(net, tmp_path / "net_pynn.py", np.zeros((1, 2)), 1.0)
    theirs = run_virtual_board(script, tmp_path / "board")
    table, differences = compare(ours, theirs)
    assert differences == [], table
    assert max(v.last - v.first + 1 for v in theirs.vertices) == 256


def test_a_cuba_network_runs_as_IF_curr_exp_with_its_initial_synaptic_current(tmp_path):
    """CubaLIF -> IF_curr_exp with tau_syn, both receptors, and the initial isyn that the
    script sets per sample (three samples: resets and parameter changes between runs)."""
    mixed = np.random.default_rng(1).choice([-1.0, 1.0], (3, 30))
    net = _layered({"hidden": 30, "out": 3}, {("hidden", "out"): mixed}, model=CubaLIF(tau_mem=20.0, tau_syn=5.0))
    script = write_pynn_script(net, tmp_path / "net_pynn.py", np.random.default_rng(2).uniform(0, 1, (3, 2)), 10.0)
    assert "sim.IF_curr_exp(" in script.read_text() and "isyn_exc=" in script.read_text()
    theirs = run_virtual_board(script, tmp_path / "board")
    table, differences = compare(_mapped(net), theirs)
    assert differences == [], table


def _one_population(tmp_path, neurons: int, name: str):
    net = _layered({"A": neurons}, {})
    return net, write_pynn_script(net, tmp_path / f"{name}.py", np.zeros((1, 2)), 1.0)


def test_a_network_beyond_the_board_is_refused_by_both_for_the_cores(tmp_path):
    """759 x 256 + 1 neurons: our mapper counts 760 cores, sPyNNaker's placer runs out of chips."""
    net, script = _one_population(tmp_path, 759 * 256 + 1, "too_big")
    with pytest.raises(MappingError, match="A does not fit spinnaker1: the number of cores is 760, the chip allows "
                                           "at most 759"):
        _mapped(net)
    with pytest.raises(ToolchainError, match="PacmanPlaceException: +No more chips to start with for A "):
        run_virtual_board(script, tmp_path / "too_big")


@pytest.mark.slow
def test_the_board_holds_759_cores_of_neurons(tmp_path):
    """The edge: 759 x 256 neurons fit both (sPyNNaker spends about 9 minutes writing the
    data of 759 cores on this machine, hence slow)."""
    net, script = _one_population(tmp_path, 759 * 256, "fits")
    assert _mapped(net).cores_used == 759
    theirs = run_virtual_board(script, tmp_path / "fits")
    assert theirs.cores_of("A") == {"neurons": 759, "synapses": 0} and theirs.chips == 48


def test_a_cell_sPyNNaker_cannot_hold_is_refused_by_both_for_the_same_reason(tmp_path):
    """sPyNNaker keeps cell parameters in s16.15 fixed point: a membrane time constant of
    1e5 ms (what an almost non-leaky cell would ask for) is refused by both. A non-leaky IF
    has no PyNN cell at all (IF_curr_delta with tau_m = inf is refused the same way)."""
    slow = _layered({"A": 10}, {}, model=LIF(tau=1e5))
    with pytest.raises(MappingError, match=r"A does not fit spinnaker1: the cell parameter tau_m \(PyNN\) is 100000.0"):
        _mapped(slow)
    with pytest.raises(ToolchainError, match="value 100000.000000 cannot be converted to 16.15 signed fixed point"):
        run_virtual_board(write_pynn_script(slow, tmp_path / "slow.py", np.zeros((1, 2)), 1.0), tmp_path / "slow")
    just = _layered({"A": 10}, {}, model=LIF(tau=65535.0))
    assert _mapped(just).cores_used == 1
    run_virtual_board(write_pynn_script(just, tmp_path / "just.py", np.zeros((1, 2)), 1.0), tmp_path / "just")
    non_leaky = _layered({"A": 10}, {}, model=IF(r=0.05))
    with pytest.raises(MappingError, match="A does not fit spinnaker1: the neuron model is IF, the chip allows LIF, "
                                           "CubaLIF"):
        _mapped(non_leaky)
    with pytest.raises(ValueError, match="the IF model .* has no PyNN standard cell type"):
        pynn_script(non_leaky, np.zeros((1, 2)), 1.0)


def test_map_toolchain_on_the_command_line(trained_yinyang, tmp_path, capsys, monkeypatch):
    """Runs with its own configuration: a user's that points at a real board is not read."""
    user = tmp_path / "user"
    (user / ".config").mkdir(parents=True)
    for cfg in (user / ".spynnaker.cfg", user / ".config" / ".spynnaker.cfg"):
        cfg.write_text("[Machine]\nversion = 5\nmachine_name = 192.0.2.1\n")
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user / ".config"))
    assert main(["map", str(trained_yinyang), "--target", "spinnaker1", "--toolchain",
                 "--toolchain-dir", str(tmp_path / "board")]) == 0
    out = capsys.readouterr().out
    assert "sPyNNaker 7.4.1, virtual SpiNN-5 board" in out and "differs" not in out
    assert (tmp_path / "board" / "home" / ".spynnaker.cfg").exists()
    assert main(["map", str(trained_yinyang), "--target", "loihi2", "--toolchain"]) == 2
    assert "--toolchain runs a chip's own toolchain, which this package has for ['spinnaker1'] only, not 'loihi2'" \
        in capsys.readouterr().err


def test_the_script_picks_its_simulator_from_its_argument(tmp_path):
    net = _layered({"A": 3}, {})
    script = write_pynn_script(net, tmp_path / "net_pynn.py", np.zeros((1, 2)), 1.0)
    run = subprocess.run([sys.executable, str(script), "nest2"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "invalid choice: 'nest2'" in run.stderr
