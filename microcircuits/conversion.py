"""Rate-to-spike conversion of a trained microcircuit's forward pathway.

The rate network is the microcircuit's effective network (metrics.feedforward):
u_l = k_l W_l r_{l-1}, r_l = phi(u_l). The spiking network replaces each r_l (l >= 1)
by the spikes of LIF neurons (r = 1, v_leak = 0, v_reset = 0, threshold theta, time
constant tau) that fire `rate` spikes per step at r_l = 1; the input r_0 stays analog
(an Input). With tau much longer than the interspike interval a LIF integrates
like an IF neuron, v grows by dt/tau x per step and fires at x dt/(tau theta) per step,
so relu(a u + c) is reproduced by

    x_l = (theta tau / dt) (a k_l W_l s_{l-1} + c rate),     s_0 = r_0 rate

i.e. Affine weights (theta tau / dt) a k_l W_l (times `rate` for the analog input) and
bias (theta tau / dt) c rate. relu is a = 1, c = 0. hard_sigmoid (a = 1/6, c = 1/2)
also clips at 1, and a third of a trained Yin-Yang network's hidden units sit there:
clip(z, 0, 1) = relu(z) - relu(z - 1), so each hidden unit becomes a pair of neurons
(bias c and c - 1, the same input) whose spikes reach the next layer through W and -W.
The output layer is not paired (its clip only creates ties). Other activations
(logistic, tanh, soft_relu) are refused: a LIF's rate has no smooth lower branch.

For chips without LIF the same network is built from CubaLIF neurons (r = w_in = 1: the
current is x low-passed with tau_syn, its mean unchanged) or IF neurons (r = 1/tau:
the LIF without its leak).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neurosim.models.rate import Input
from neurosim.models.spiking import IF, LIF, CubaLIF
from neurosim.network import Network, Population, Projection

from .metrics import basal_factors, feedforward

CONVERTIBLE = {"relu": (1.0, 0.0), "hard_sigmoid": (1.0 / 6.0, 0.5)}  # phi(u) = max(0, a u + c)
NEURONS = {
    "LIF": lambda s: LIF(tau=s.tau, v_threshold=s.threshold),
    "CubaLIF": lambda s: CubaLIF(tau_mem=s.tau, tau_syn=s.tau_syn, v_threshold=s.threshold),
    "IF": lambda s: IF(r=1.0 / s.tau, v_threshold=s.threshold),
}


@dataclass(frozen=True)
class ConversionSettings:
    """dt in ms (0.1 ms: NIR readers such as snnTorch assume 1e-4 s); `rate` spikes
    per step at r = 1; tau in ms; t_sample: how long each sample is shown (ms)."""

    dt: float = 0.1
    rate: float = 0.05
    tau: float = 100.0
    threshold: float = 1.0
    t_sample: float = 100.0
    neuron: str = "LIF"
    tau_syn: float = 1.0  # ms, CubaLIF only

    def __post_init__(self):
        if self.neuron not in NEURONS:
            raise ValueError(f"conversion neuron must be one of {sorted(NEURONS)}, got {self.neuron!r}")
        for name in ("dt", "rate", "tau", "threshold", "t_sample", "tau_syn"):
            if not getattr(self, name) > 0:
                raise ValueError(f"conversion setting {name} must be > 0, got {getattr(self, name)!r}")
        if self.rate > 1:
            raise ValueError(f"conversion rate must be <= 1 spike per step, got {self.rate}")


def to_spiking(cfg, weights: list[np.ndarray], settings: ConversionSettings = ConversionSettings()) -> Network:
    """The forward pathway x -> P1 -> ... -> PN of a microcircuit (config `cfg`, forward
    weights W_1..W_N) as a spiking network of LIF populations named like the microcircuit's,
    each layer reading the one below in the same step (delay 0)."""
    if cfg.activation not in CONVERTIBLE:
        raise ValueError(f"activation {cfg.activation!r} does not convert to spikes; train with one of "
                         f"{sorted(CONVERTIBLE)}")
    a, c = CONVERTIBLE[cfg.activation]
    s = settings
    gain = s.threshold * s.tau / s.dt
    model = NEURONS[s.neuron](s)
    pops = [Population("x", cfg.layers[0], Input())]
    conns, paired = [], False  # paired: the source layer is a (relu(z), relu(z - 1)) pair
    for l, (k, w) in enumerate(zip(basal_factors(cfg), weights), start=1):
        w = gain * a * k * (s.rate if l == 1 else 1.0) * np.asarray(w, dtype=float)
        if paired:
            w = np.hstack([w, -w])
        bias = np.full(cfg.layers[l], gain * c * s.rate)
        paired = cfg.activation == "hard_sigmoid" and l < cfg.n_layers
        if paired:
            w, bias = np.vstack([w, w]), np.concatenate([bias, bias - gain * s.rate])
        pops.append(Population(f"P{l}", len(bias), replace(model, bias=bias)))
        conns.append(Projection(f"W{l}", pops[-2].name, f"P{l}", weight=w, delay=0))
    return Network(pops, conns, dt=s.dt)


def output_population(network: Network) -> str:
    """The last population in the network's order: the classifier's read-out."""
    return network.order[-1]


@dataclass
class Trained:
    """A trained microcircuit read from its results file."""

    config: dict
    cfg: object  # MicrocircuitConfig
    weights: list[np.ndarray]  # W_1 .. W_N
    task: object  # tasks.Task
    test_accuracy: float | None = None  # the run's final test accuracy, if it measured one


def load_trained(path) -> Trained:
    """The config, forward weights and task (with its test set) of a results file."""
    from neurosim.recording import read_results

    from . import dendritic, tasks
    from .defaults import DEFAULTS

    results = read_results(path)
    if results["status"] != "complete":
        detail = f": {results['status_detail']}" if results["status_detail"] else ""
        raise ValueError(f"{path}: the run did not complete (status {results['status']!r}{detail}); its weights are "
                         "not final")
    config = results["config"]
    if config.get("model") != "dendritic":
        raise ValueError(f"{path}: a {config.get('model')!r} run; export and map take the results of a dendritic "
                         "microcircuit (model = \"dendritic\")")
    if config["task"]["name"] not in tasks.CLASSIFICATION:
        raise ValueError(f"{path}: the run learned {config['task']['name']!r}, not a classification task "
                         f"({', '.join(tasks.CLASSIFICATION)}): there is no class read-out to export or map")
    cfg = dendritic.MicrocircuitConfig.from_dict(config["network"])
    missing = [f"W{l}" for l in range(1, cfg.n_layers + 1) if f"W{l}" not in results["final_weights"]]
    if missing:
        raise ValueError(f"{path}: final weights {missing} are missing")
    weights = [results["final_weights"][f"W{l}"] for l in range(1, cfg.n_layers + 1)]
    for l, w in enumerate(weights, start=1):
        if w.shape != (cfg.layers[l], cfg.layers[l - 1]):
            raise ValueError(f"{path}: W{l} has shape {w.shape}, but layers {cfg.layers} need "
                             f"{(cfg.layers[l], cfg.layers[l - 1])}")
    # a results file written before a [task] key existed holds no value for it: the default,
    # which every such key has as the behaviour from before it
    task = tasks.load_task({**DEFAULTS["task"], **config["task"]}, cfg, config["run"]["seed"])
    return Trained(config, cfg, weights, task, results["summary"].get("final", {}).get("test_accuracy"))


def rate_predictions(cfg, weights, x) -> np.ndarray:
    """Classes of the rate network (argmax of r_N)."""
    from neurosim import activations

    return np.argmax(activations.numpy(cfg.activation)(feedforward(cfg, weights, x)[-1]), axis=1)


def spike_counts(network: Network, x, t_sample: float, backend: str = "torch", **options) -> np.ndarray:
    """Output spike counts (samples, classes) of the spiking network shown each row of x
    for t_sample ms from rest: all samples as one minibatch on torch, one after another
    (state reset in between) on brian2."""
    from neurosim.recording import Recording
    from neurosim.schedule import Schedule

    out = output_population(network)
    x = np.atleast_2d(np.asarray(x, dtype=float))
    size = network.population(out).size
    recording = Recording(spikes=[out])
    if backend == "torch":
        from neurosim.backends.torch import TorchSimulator

        result = TorchSimulator(network, samples=len(x), **options).run(Schedule(t_sample, {"x": x[None]}), recording)
        return result.spikes[out].counts(size, [0.0, t_sample], samples=len(x))[0]
    if backend == "brian2":
        from neurosim.backends.brian2 import Brian2Simulator

        result = Brian2Simulator(network, **options).run(Schedule(t_sample, {"x": x}), recording, reset=True)
        return result.spikes[out].counts(size, np.arange(len(x) + 1) * t_sample)[:, 0, :]
    raise ValueError(f"backend must be 'torch' or 'brian2', got {backend!r}")
