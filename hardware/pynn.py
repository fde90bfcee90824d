"""Export a spiking network as a standalone PyNN script of standard cell types.

SpiNNaker (sPyNNaker) and NEST users, and anyone else who runs PyNN, get one Python file
that builds the network with `sim.Population` / `sim.Projection`, runs every input sample
for t_sample ms from the initial state, and saves the spike counts per sample and neuron
(np.savez, one (samples, size) array per population, keyed by population name). The
weights, parameters and inputs travel inside the script (a base64 np.savez_compressed
blob, its arrays listed in a comment), so the file is all a user needs. The same file runs
on every back end in SIMULATORS, chosen by its first argument (`python net.py spiNNaker`);
its docstring says what each does differently. tests/test_pynn.py runs it on pyNN.brian2
against neurosim, tests/test_spinnaker.py on sPyNNaker's virtual board
(hardware.spinnaker).

Mapping (neurosim.models.spiking's step; potentials are read as mV, times are ms, and every
cell gets cm = CM = 1 nF, so that a current of 1 nA moves v by 1 mV/ms):

    LIF     -> IF_curr_delta   tau_m = tau, v_rest = v_leak, v_thresh = v_threshold,
                               v_reset = v_reset, tau_refrac = 0
               synapse (mV jump)   w = r dt / tau * W
               bias, input (nA)    i_offset = cm r / tau * (bias + W_in x)
    CubaLIF -> IF_curr_exp     as LIF with tau_m = tau_mem, and tau_syn_E = tau_syn_I = tau_syn
               synapse (nA jump)   w = cm r w_in dt / (tau_mem tau_syn) * W
               bias, input (nA)    i_offset = cm r w_in / tau_mem * (bias + W_in x)

IF_curr_delta, whose synapses make v jump, is exactly neurosim's LIF, where a spike adds
r W dt / tau to v in one step; a short-tau_syn IF_curr_exp would only approximate the
jump. It is a standard cell of PyNN 0.13 (pyNN.brian2, pyNN.nest); sPyNNaker has the
model as IFCurrDelta (sPyNNaker 7.4.1 also names it IF_curr_delta), and BrainScaleS-2's
pynn_brainscales has no standard cells at all (its HXNeuron is set by hardware
parameters), so there the cell lines need a hand edit. CubaLIF's current I jumps by
w_in W dt/tau_syn per spike and decays with tau_syn, and v sees r I / tau_mem;
IF_curr_exp's i_syn jumps by w and enters as i_syn / cm, hence the weight above.

Negative weights go into a second Projection with receptor_type="inhibitory" and keep
their sign: PyNN's convention for current-based cells is negative inhibitory weights
(StaticSynapse(weight=...) rejects positive ones; a FromListConnector list is not
checked), and pyNN.brian2 adds the weight as it is (v += w for IF_curr_delta, whose two
receptors are both v; ii += w for IF_curr_exp), so a positive weight on the inhibitory
receptor would excite.

The network's one Input population is no PyNN population: each projection from it
is folded, with the target's bias, into the target's i_offset, set per sample by
`pop.set(i_offset=...)` after `sim.reset()` (pyNN.brian2's reset returns parameters to
their values at the first run, unlike PyNN's documentation says). A CubaLIF's I starts at
0 and rises to w_in (bias + W_in x) over tau_syn; IF_curr_exp gets the same rise from an
initial synaptic current isyn = -i_offset (in isyn_exc or isyn_inh by sign), which decays
with tau_syn.

What differs from neurosim's own simulation, and why counts agree only closely:
- PyNN's synaptic delays are at least one time step (DELAY = dt here), whereas neurosim
  delivers a spike to the next population in the step it is fired; pyNN.brian2 in
  addition applies delivered spikes after that step's threshold, so a spike acts two
  steps later than in neurosim (per layer).
- The simulators integrate the membrane exactly (Brian2's "exact" method), neurosim by
  forward Euler: the same fixed points, slightly different transients for dt/tau > 0.
tests/test_pynn.py measures both on a 4-30-3 classifier on pyNN.brian2 (30 samples of
80 ms, dt 0.1 ms): total counts within 1 % per population, no neuron's count off by more
than 1 spike in any sample, and the same winning class.
Refused: IF (PyNN has no standard non-leaky integrate-and-fire cell), LI (a read-out
that never spikes; no standard cell without a threshold), PoissonInput sources (not
exported; only an Input drives the script), and anything but exactly one
Input population.
"""
from __future__ import annotations

import base64
import io
import keyword
import math
import textwrap
from pathlib import Path

import numpy as np

from neurosim.models.rate import Input
from neurosim.models.spiking import IF, LI, LIF, CubaLIF, PoissonInput, values
from neurosim.network import Network

from .nir import bias

CM = 1.0  # nF, the membrane capacitance of every exported cell
CELL = {LIF: "IF_curr_delta", CubaLIF: "IF_curr_exp"}
FORMULAS = {LIF: "i_offset = cm r/tau (bias + W_in x) nA; weights onto it r dt/tau W mV",
            CubaLIF: "i_offset = cm r w_in/tau_mem (bias + W_in x) nA, and isyn = -i_offset at the "
                     "start;\n#   weights onto it cm r w_in dt/(tau_mem tau_syn) W nA"}
# the PyNN back ends a script runs on (its first argument), and what each does differently
SIMULATORS = {
    "brian2": "pyNN.brian2: exact integration (Brian2's 'exact' method) in double precision; a spike "
              "acts DELAY plus one step after it is fired (Brian2 applies delivered spikes after the "
              "step's threshold); numpy code generation, faster than compiling for short runs.",
    "nest": "pyNN.nest: exact integration in double precision; a spike acts DELAY after it is fired.",
    "spiNNaker": "pyNN.spiNNaker (sPyNNaker): fixed-point arithmetic (s16.15 parameters and state) on "
                 "the ARM cores, weights as 16-bit integers with a scale per receptor that sPyNNaker "
                 "chooses from the expected synaptic input (ring_buffer_sigma), negative inhibitory "
                 "weights taken as their magnitude; delays are whole time steps from 1 (more than 16 "
                 "steps take extra delay cores); a spike enters its target's input ring buffer DELAY "
                 "after it is fired. On a virtual board (virtual_board = True in .spynnaker.cfg) sPyNNaker "
                 "partitions, places and routes the network and stops before loading a machine: "
                 "nothing runs and no counts are written.",
}
# names the script itself uses; a population of that name gets a suffix
RESERVED = {"sim", "np", "base64", "io", "DATA", "DT", "T_SAMPLE", "DELAY", "CM", "OUT", "POPULATIONS",
            "from_list", "counts", "k", "x", "i", "pop", "segments", "seg", "st", "c", "brian2", "argparse",
            "importlib", "SIMULATORS", "parser", "args", "virtual_board", "get_config_bool"}


def _refuse(network: Network) -> str:
    """The name of the one Input population; ValueError for what PyNN cannot take."""
    for pop in network.populations:
        if isinstance(pop.model, IF):
            raise ValueError(f"population {pop.name}: the IF model (non-leaky integrate-and-fire) has no "
                             "PyNN standard cell type; only LIF and CubaLIF can be exported")
        if isinstance(pop.model, LI):
            raise ValueError(f"population {pop.name}: the LI model (a leaky integrator that never spikes) has "
                             "no PyNN standard cell type; only LIF and CubaLIF can be exported")
        if isinstance(pop.model, PoissonInput):
            raise ValueError(f"population {pop.name}: PoissonInput sources are not exported to PyNN; "
                             "drive the network with one Input")
    inputs = [p.name for p in network.populations if isinstance(p.model, Input)]
    if len(inputs) != 1:
        raise ValueError(f"a PyNN export needs exactly one Input population, the network has {inputs}")
    return inputs[0]


def _scales(pop, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(nA of i_offset per unit of x, PyNN weight per unit of W), one value per neuron."""
    p = values(pop.model, pop.size)
    if isinstance(pop.model, LIF):
        return CM * p["r"] / p["tau"], p["r"] * dt / p["tau"]
    return (CM * p["r"] * p["w_in"] / p["tau_mem"],
            CM * p["r"] * p["w_in"] * dt / (p["tau_mem"] * p["tau_syn"]))


def cell_parameters(pop) -> dict[str, np.ndarray]:
    """The PyNN cell parameters of a LIF or CubaLIF population, one value per neuron (without i_offset)."""
    p = values(pop.model, pop.size)
    if isinstance(pop.model, LIF):
        out = {"tau_m": p["tau"]}
    else:
        out = {"tau_m": p["tau_mem"], "tau_syn_E": p["tau_syn"], "tau_syn_I": p["tau_syn"]}
    out.update(v_rest=p["v_leak"], v_thresh=p["v_threshold"], v_reset=p["v_reset"],
               cm=np.full(pop.size, CM), tau_refrac=np.zeros(pop.size))
    return out


def _literal(value: float) -> str:
    return repr(float(value))


def pynn_script(network: Network, inputs: np.ndarray, t_sample: float, *,
                simulator: str = "brian2", out_counts: str = "counts.npz") -> str:
    """The PyNN script (source text) that runs `inputs` (samples, n_input), one sample per
    t_sample ms from the initial state, and saves the spike counts to `out_counts`. The
    script's first argument picks the PyNN back end, one of SIMULATORS (`simulator` when
    none is given): `python net.py spiNNaker`."""
    input_name = _refuse(network)
    input_pop = network.population(input_name)
    inputs = np.asarray(inputs, dtype=float)
    if inputs.ndim != 2 or inputs.shape[1] != input_pop.size or len(inputs) == 0:
        raise ValueError(f"inputs must have shape (samples, {input_pop.size}) for {input_name}, "
                         f"got {inputs.shape}")
    if not np.all(np.isfinite(inputs)):
        raise ValueError("inputs contain NaN or inf")
    dt = float(network.dt)
    if not (math.isfinite(t_sample) and t_sample > 0):
        raise ValueError(f"t_sample must be > 0 ms, got {t_sample!r}")
    steps = t_sample / dt
    if abs(steps - round(steps)) > 1e-9 * steps:
        raise ValueError(f"t_sample = {t_sample} ms is not a whole number of steps of dt = {dt} ms")
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {sorted(SIMULATORS)}, got {simulator!r}")

    neurons = [network.population(n) for n in network.order if not network.population(n).is_input]
    var = {p.name: p.name + "_pop" if p.name in RESERVED or keyword.iskeyword(p.name) else p.name
           for p in neurons}
    data = {"inputs": inputs}
    listing = [("inputs", inputs.shape, f"the values of {input_name}, one row per sample")]
    scales = {p.name: _scales(p, dt) for p in neurons}

    def array(key, value, what):
        while key in data:
            key += "_"
        data[key] = np.asarray(value, dtype=float)
        listing.append((key, data[key].shape, what))
        return f'DATA["{key}"]'

    def value(key, values, what):
        """A literal where all neurons share the value, else an array in DATA."""
        values = np.asarray(values, dtype=float)
        return _literal(values[0]) if np.all(values == values[0]) else array(key, values, what)

    lines = []
    driven = []  # (population variable, input weight expression, bias expression, CubaLIF?)
    for pop in neurons:
        cell = CELL[type(pop.model)]
        gain, _ = scales[pop.name]
        params = cell_parameters(pop)
        units = {"v_rest": "mV", "v_thresh": "mV", "v_reset": "mV", "cm": "nF"}
        args = [f"{k}={value(f'{pop.name}_{k}', v, units.get(k, 'ms'))}" for k, v in params.items()]
        w_in = sum((c.weight for c in network.onto(pop.name) if c.source == input_name),
                   np.zeros((pop.size, input_pop.size)))
        b = value(f"{pop.name}_i_bias", gain * bias(pop), "nA, i_offset from the bias")
        args.append(f"i_offset={b}")
        start = [f"v={value(f'{pop.name}_v0', values(pop.model, pop.size)['v_leak'], 'mV, the initial v')}"]
        cuba = isinstance(pop.model, CubaLIF)
        driven_here = any(c.source == input_name for c in network.onto(pop.name))
        if cuba and not driven_here:  # I starts at 0: an initial synaptic current -i_offset, decaying with tau_syn
            start += [f"isyn_exc={value(f'{pop.name}_isyn_exc0', np.maximum(-gain * bias(pop), 0.0), 'nA')}",
                      f"isyn_inh={value(f'{pop.name}_isyn_inh0', np.minimum(-gain * bias(pop), 0.0), 'nA')}"]
        model = type(pop.model).__name__
        lines += [f"# {pop.name}: neurosim {model} -> {cell}", f"#   {FORMULAS[type(pop.model)]}",
                  f"{var[pop.name]} = sim.Population({pop.size}, sim.{cell}(",
                  textwrap.fill(", ".join(args), width=100, initial_indent="    ",
                                subsequent_indent="    ", break_long_words=False) + "),",
                  f"    label={pop.name!r})",
                  f"{var[pop.name]}.initialize({', '.join(start)})",
                  f'{var[pop.name]}.record("spikes")', ""]
        if driven_here:
            w = array(f"{pop.name}_w_in", gain[:, None] * w_in,
                      f"nA per unit of {input_name}, i_offset from the input (post, pre)")
            driven.append((var[pop.name], w, b, cuba))
    for conn in network.projections:
        if conn.source == input_name:
            continue
        _, scale = scales[conn.target]
        target = network.population(conn.target)
        units = "mV (jump of v)" if isinstance(target.model, LIF) else "nA (jump of i_syn)"
        w = scale[:, None] * conn.weight
        key = array(f"w_{conn.name}", w, f"{units}, {conn.source} -> {conn.target} (post, pre)")
        for receptor, part in (("excitatory", w > 0), ("inhibitory", w < 0)):
            if not np.any(part):
                continue
            clip = "np.maximum" if receptor == "excitatory" else "np.minimum"
            lines += [f"sim.Projection({var[conn.source]}, {var[conn.target]},",
                      f"               sim.FromListConnector(from_list({clip}({key}, 0.0))),",
                      f'               sim.StaticSynapse(), receptor_type="{receptor}", '
                      f'label="{conn.name} {receptor}")']
        lines.append("")

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **data)
    blob = base64.encodebytes(buffer.getvalue()).decode("ascii")
    width = max(len(k) for k, _, _ in listing)
    arrays = "\n".join(f"#   {k:<{width}}  {str(shape):<10}  {what}" for k, shape, what in listing)
    table = "\n".join(f"    {p.name:<12} {p.size:>6}  sim.{CELL[type(p.model)]:<14} (neurosim {type(p.model).__name__})"
                      for p in neurons)
    loop = []
    for v, w, b, cuba in driven:
        if cuba:
            loop += [f"    i = {b} + {w} @ x",
                     f"    {v}.set(i_offset=i)",
                     f"    {v}.initialize(isyn_exc=np.maximum(-i, 0.0), isyn_inh=np.minimum(-i, 0.0))"]
        else:
            loop.append(f"    {v}.set(i_offset={b} + {w} @ x)")
    loop = "\n".join(loop) or "    pass"
    samples = len(inputs)
    cuba_note = ("; an IF_curr_exp population also gets the initial synaptic current -i_offset, so "
                 "that its input rises from 0 with tau_syn as in neurosim's CubaLIF"
                 if any(cuba for *_, cuba in driven) else "")
    about_input = textwrap.fill(
        f"The input {input_name} ({input_pop.size} values per sample) is no PyNN population: per "
        f"sample it sets i_offset = i_bias + w_in @ x of the population(s) it drives{cuba_note}. "
        f"Each of the {samples} samples runs {t_sample:g} ms from the initial state, with sim.reset() "
        "in between (and i_offset set after it: pyNN.brian2's reset also returns parameters to "
        f"their values at the first run). The spike counts go to --out (default {out_counts}), one (samples, size) "
        "array per population.", width=88)
    differences = "\n".join(textwrap.fill(f"{name}: {text.split(': ', 1)[1]}", width=88, initial_indent="- ",
                                          subsequent_indent="  ") for name, text in SIMULATORS.items())
    return f'''#!/usr/bin/env python
"""A spiking network exported from neurosim as a PyNN script (standard cell types).

    python THIS_SCRIPT [{"|".join(SIMULATORS)}] [--out COUNTS.npz]     (default {simulator})

Populations (potentials in mV, times in ms, currents in nA, cm = {CM:g} nF):
{table}
{about_input}

Synaptic delays are DELAY = one time step, PyNN's shortest; neurosim delivers a spike in
the step it is fired, so the counts here differ a little from neurosim's own run. What
differs per simulator (pyNN.<name>):
{differences}
"""
import argparse
import base64
import importlib
import io

import numpy as np

SIMULATORS = {tuple(SIMULATORS)!r}
parser = argparse.ArgumentParser(description="Run the exported network on a PyNN simulator.")
parser.add_argument("simulator", nargs="?", default={simulator!r}, choices=SIMULATORS,
                    help="the PyNN back end, pyNN.<simulator> (default %(default)s)")
parser.add_argument("--out", default={out_counts!r}, help="spike counts file (default %(default)s)")
args = parser.parse_args()
sim = importlib.import_module("pyNN." + args.simulator)
if args.simulator == "brian2":
    import brian2

    # numpy code generation: for short runs it beats compiling with Cython
    brian2.prefs.codegen.target = "numpy"

DT = {dt!r}  # ms
T_SAMPLE = {float(t_sample)!r}  # ms per sample
DELAY = DT  # ms
OUT = args.out

# The arrays (np.savez_compressed, base64):
{arrays}
DATA = np.load(io.BytesIO(base64.b64decode(b"""
{blob}""")))


def from_list(weight):
    """FromListConnector's (pre, post, weight, delay) for the non-zero entries of weight (post, pre),
    sorted by pre: sPyNNaker 7.4.1 sizes its synaptic rows from the list as if it were sorted so
    (FromListConnector.__numpy_group splits the unsorted list) and refuses a long post-sorted one."""
    pre, post = np.nonzero(weight.T)
    return [(int(i), int(j), float(weight[j, i]), DELAY) for i, j in zip(pre, post)]


sim.setup(timestep=DT)
virtual_board = False
if args.simulator == "spiNNaker":
    from spinn_utilities.config_holder import get_config_bool

    virtual_board = get_config_bool("Machine", "virtual_board")

{chr(10).join(lines)}
POPULATIONS = [{", ".join(var[p.name] for p in neurons)}]
for k, x in enumerate(DATA["inputs"]):
    if k > 0:
        sim.reset()  # t = 0, the state back to its initial values, a new Segment of recorded data
{loop}
    sim.run(T_SAMPLE)

if virtual_board:
    print("a virtual SpiNNaker board: the network was mapped, nothing ran, no counts written")
else:
    counts = {{}}
    for pop in POPULATIONS:
        segments = pop.get_data("spikes").segments
        assert len(segments) == len(DATA["inputs"]), (pop.label, len(segments))
        c = np.zeros((len(segments), pop.size), dtype=np.int64)
        for k, seg in enumerate(segments):
            for st in seg.spiketrains:
                c[k, int(st.annotations["source_index"])] = len(st)
        counts[pop.label] = c
    np.savez(OUT, **counts)
sim.end()
'''


def write_pynn_script(network: Network, path, inputs: np.ndarray, t_sample: float, **kw) -> Path:
    """Write pynn_script(network, inputs, t_sample, **kw) to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pynn_script(network, inputs, t_sample, **kw))
    return path
