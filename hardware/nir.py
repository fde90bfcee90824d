"""NIR graphs to and from spiking networks, with the `nir` package (HDF5 files).

Export: an Input population becomes an `Input` node; a projection an `Affine` node (the
target's bias on its first projection) or a `Linear` one, named like the projection;
LIF, CubaLIF, IF, LI and Threshold populations their NIR nodes; every population nothing reads
from gets an `Output` node ("output" when there is one). NIR's own convention is
seconds: tau (ms) / 1000, and IF's r (1/ms) * 1000. Import is the inverse and accepts
any graph of these nodes in which Affine/Linear nodes join one source to neuron nodes;
an edge from a neuron straight to a neuron is an identity projection.

NIR has no delays: its readers advance the nodes in the graph's order, a node reading
what came before it in the same step. The graph carries no time step either; the
network's dt (ms) is stored in the graph's metadata ("dt_ms") and NIR readers are given
it as dt = dt_ms / 1000 s (snnTorch's reader assumes 1e-4 s, the default dt of
rate-to-spike conversion). The metadata also hold the populations' order ("order"): a
projection along it has delay 0, one against it (a loop) delay 1. A graph without it is
taken in its nodes' order, loops broken in that order; a delay-1 projection along the
order cannot be exported.
"""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from dataclasses import replace

from neurosim.models.rate import Input
from neurosim.models.spiking import IF, LI, LIF, CubaLIF, PoissonInput, Threshold, values
from neurosim.network import Network, Population, Projection

MS = 1e-3  # seconds per ms
NEURON_NODES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.Threshold)
SUPPORTED = ("Input", "Output", "Affine", "Linear", "LIF", "CubaLIF", "IF", "LI", "Threshold")


def bias(pop: Population) -> np.ndarray:
    """The population's bias, one value per neuron (0 for an input)."""
    return np.zeros(pop.size) if pop.is_input else values(pop.model, pop.size)["bias"]


def to_nir(network: Network, metadata: dict | None = None) -> nir.NIRGraph:
    """The network as a type-checked NIR graph; `metadata` adds to the graph's own."""
    nodes, edges, order = {}, [], network.order
    for pop in network.populations:
        if not isinstance(pop.model, (Input, LIF, CubaLIF, IF, LI, Threshold)):
            raise ValueError(f"population {pop.name}: NIR has no node for {type(pop.model).__name__}"
                             + ("; give the network an Input and encode outside the graph"
                                if isinstance(pop.model, PoissonInput) else ""))
        nodes[pop.name] = _neuron_node(pop)
    for proj in network.projections:
        if proj.weight is None:
            raise ValueError(f"projection {proj.name}: NIR needs a weight of its own ({proj.kind}, shared or tied "
                             "projections are not exported)")
        if proj.delay == 1 and order.index(proj.source) < order.index(proj.target):
            raise ValueError(f"projection {proj.name}: NIR has no delays, and {proj.source} comes before "
                             f"{proj.target}, so its NIR readers would deliver it in the same step; give it delay 0")
    for pop in network.populations:
        b = bias(pop)
        for n, proj in enumerate(network.onto(pop.name)):
            nodes[proj.name] = nir.Affine(proj.weight.copy(), b.copy()) if n == 0 and np.any(b != 0) \
                else nir.Linear(proj.weight.copy())
            edges += [(proj.source, proj.name), (proj.name, pop.name)]
        if np.any(b != 0) and not network.onto(pop.name):
            raise ValueError(f"population {pop.name}: NIR holds a bias only on an Affine node, and nothing "
                             "connects onto it")
    sinks = [p.name for p in network.populations if not p.is_input
             and not any(c.source == p.name for c in network.projections)]
    for name in sinks:
        out = "output" if len(sinks) == 1 else f"output_{name}"
        if out in nodes:
            raise ValueError(f"NIR node names must be unique: the Output node of {name} would be called {out!r}, "
                             "like a population or connection")
        nodes[out] = nir.Output(output_type={"output": np.array([network.population(name).size])})
        edges.append((name, out))
    metadata = {**(metadata or {}), "dt_ms": float(network.dt), "order": ",".join(network.order)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)


def _neuron_node(pop: Population) -> nir.NIRNode:
    if isinstance(pop.model, Input):
        return nir.Input(input_type={"input": np.array([pop.size])})
    p = values(pop.model, pop.size)
    if isinstance(pop.model, LIF):
        return nir.LIF(tau=p["tau"] * MS, r=p["r"], v_leak=p["v_leak"], v_threshold=p["v_threshold"],
                       v_reset=p["v_reset"])
    if isinstance(pop.model, CubaLIF):
        return nir.CubaLIF(tau_syn=p["tau_syn"] * MS, tau_mem=p["tau_mem"] * MS, r=p["r"], v_leak=p["v_leak"],
                           v_threshold=p["v_threshold"], v_reset=p["v_reset"], w_in=p["w_in"])
    if isinstance(pop.model, IF):
        return nir.IF(r=p["r"] / MS, v_threshold=p["v_threshold"], v_reset=p["v_reset"])
    if isinstance(pop.model, Threshold):
        return nir.Threshold(threshold=p["v_threshold"])
    return nir.LI(tau=p["tau"] * MS, r=p["r"], v_leak=p["v_leak"])


def write_nir(network: Network, path, metadata: dict | None = None) -> Path:
    """Write the network's NIR graph to an HDF5 file (written whole or not at all)."""
    path = Path(path)
    graph = to_nir(network, metadata)
    tmp = path.with_name(path.name + ".tmp")
    nir.write(tmp, graph)
    tmp.replace(path)
    return path


def read_nir(path, dt: float | None = None) -> Network:
    """Read an NIR file (type-checked) into a network; dt (ms) defaults to the graph's
    metadata "dt_ms"."""
    _check_node_types(path)
    try:
        graph = nir.read(path, type_check=True)
    except (OSError, KeyError) as err:
        raise ValueError(f"{path}: not a readable NIR file ({err})") from None
    except (ValueError, AttributeError, TypeError, AssertionError) as err:
        raise ValueError(f"{path}: not a valid NIR graph ({err})") from None
    return from_nir(graph, dt)


def _check_node_types(path) -> None:
    """Name a node whose type neurosim cannot simulate before nir.read meets it (nir
    fails on a type it does not know with a bare AssertionError)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            nodes = {name: group["type"][()] for name, group in f["node/nodes"].items()}
    except (OSError, KeyError) as err:
        raise ValueError(f"{path}: not a readable NIR file ({err})") from None
    for name, kind in nodes.items():
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind not in SUPPORTED:
            raise ValueError(f"{path}: NIR node {name!r} is of type {kind!r}, which neurosim cannot simulate; "
                             f"supported nodes: {', '.join(SUPPORTED)}")


def from_nir(graph: nir.NIRGraph, dt: float | None = None) -> Network:
    """A spiking network from an NIR graph of the SUPPORTED node types."""
    metadata = graph.metadata if isinstance(graph.metadata, dict) else {}
    dt = dt if dt is not None else metadata.get("dt_ms")
    if dt is None:
        raise ValueError("the NIR graph gives no time step (metadata 'dt_ms'); pass dt (ms)")
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind not in SUPPORTED:
            raise ValueError(f"NIR node {name!r} is a {kind}, which neurosim cannot simulate; "
                             f"supported nodes: {', '.join(SUPPORTED)}")
        if not str(name).isidentifier():
            raise ValueError(f"NIR node name {name!r} must be a Python identifier here")
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in graph.nodes:
                raise ValueError(f"NIR edge ({src!r}, {dst!r}) names no node {end!r}")
    pops = {name: _population(name, node) for name, node in graph.nodes.items()
            if isinstance(node, (nir.Input, *NEURON_NODES))}
    biases = {name: np.zeros(pop.size) for name, pop in pops.items()}
    conns = []
    for name, node in graph.nodes.items():
        if isinstance(node, (nir.Affine, nir.Linear)):
            conns += _affine_connections(graph, name, node, pops, biases)
    for src, dst in graph.edges:
        if src in pops and dst in pops:
            if pops[src].size != pops[dst].size:
                raise ValueError(f"NIR edge {src!r} -> {dst!r}: shapes do not connect ({pops[src].size} values "
                                 f"into {pops[dst].size} neurons)")
            conns.append((f"{src}_to_{dst}", src, dst, np.eye(pops[src].size)))
    for name, b in biases.items():
        if np.any(b != 0):
            pops[name] = Population(name, pops[name].size, replace(pops[name].model, bias=b))
    order = str(metadata.get("order", "")).split(",")
    if sorted(order) == sorted(pops):  # the exporter's order: loops keep which side reads the previous step
        pops = {name: pops[name] for name in order}
    order = _sources_first(list(pops), [(src, dst) for _, src, dst, _ in conns])
    projs = [Projection(name, src, dst, weight=w, delay=int(order.index(src) >= order.index(dst)))
             for name, src, dst, w in conns]
    return Network(list(pops.values()), projs, dt=float(dt))


def _sources_first(names: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """Nodes sources-first (Kahn's algorithm, ties in list order); the members of a loop
    follow in list order."""
    preds = {n: {s for s, d in edges if d == n and s != n} for n in names}
    order = []
    while len(order) < len(names):
        ready = [n for n in names if n not in order and preds[n] <= set(order)]
        order.append(ready[0] if ready else next(n for n in names if n not in order))
    return order


def _size(name: str, values) -> int:
    shape = np.shape(values)
    if len(shape) > 1:
        raise ValueError(f"NIR node {name!r}: only flat populations are supported, got shape {shape}")
    return int(np.prod(shape)) if shape else 1


def _population(name: str, node) -> Population:
    if isinstance(node, nir.Input):
        shape = np.asarray(next(iter(node.input_type.values())))
        if shape.size != 1:
            raise ValueError(f"NIR Input {name!r}: only flat inputs are supported, got shape {shape.tolist()}")
        return Population(name, int(shape[0]), Input())
    if isinstance(node, nir.LIF):
        size = _size(name, node.v_threshold)
        model = LIF(tau=np.asarray(node.tau) / MS, r=node.r, v_leak=node.v_leak, v_threshold=node.v_threshold,
                    v_reset=node.v_reset)
    elif isinstance(node, nir.CubaLIF):
        size = _size(name, node.v_threshold)
        model = CubaLIF(tau_mem=np.asarray(node.tau_mem) / MS, tau_syn=np.asarray(node.tau_syn) / MS, r=node.r,
                        v_leak=node.v_leak, v_threshold=node.v_threshold, v_reset=node.v_reset, w_in=node.w_in)
    elif isinstance(node, nir.IF):
        size = _size(name, node.v_threshold)
        model = IF(r=np.asarray(node.r) * MS, v_threshold=node.v_threshold, v_reset=node.v_reset)
    elif isinstance(node, nir.Threshold):
        size = _size(name, node.threshold)
        model = Threshold(v_threshold=node.threshold)
    else:
        size = _size(name, node.v_leak)
        model = LI(tau=np.asarray(node.tau) / MS, r=node.r, v_leak=node.v_leak)
    try:
        return Population(name, size, model)
    except ValueError as err:
        raise ValueError(f"NIR node {name!r}: {err}") from None


def _affine_connections(graph, name, node, pops, biases) -> list[tuple]:
    """(name, source, target, weight) of each projection an Affine/Linear node makes."""
    sources = [s for s, d in graph.edges if d == name]
    targets = [d for s, d in graph.edges if s == name]
    if len(sources) != 1 or sources[0] not in pops:
        raise ValueError(f"NIR node {name!r} ({type(node).__name__}) must read exactly one Input or neuron node; "
                         f"it reads {sources}")
    weight = np.asarray(node.weight, dtype=float)
    if weight.ndim != 2:
        raise ValueError(f"NIR node {name!r}: weight must be a matrix, got shape {weight.shape}")
    src = pops[sources[0]]
    if weight.shape[1] != src.size:
        raise ValueError(f"NIR node {name!r}: shapes do not connect: {sources[0]!r} sends {src.size} values, "
                         f"the weight takes {weight.shape[1]}")
    conns = []
    for target in targets:
        if target not in pops or isinstance(graph.nodes[target], nir.Input):
            raise ValueError(f"NIR node {name!r} feeds {target!r}, which is not a neuron node; neurosim needs "
                             "every Affine/Linear node to feed neurons")
        if weight.shape[0] != pops[target].size:
            raise ValueError(f"NIR node {name!r}: shapes do not connect: the weight gives {weight.shape[0]} values, "
                             f"{target!r} has {pops[target].size} neurons")
        if isinstance(node, nir.Affine) and node.bias is not None:
            biases[target] = biases[target] + np.broadcast_to(np.asarray(node.bias, dtype=float), (weight.shape[0],))
        conns.append((name if len(targets) == 1 else f"{name}_{target}", sources[0], target, weight))
    return conns
