"""The torch backend against the Brian2 backend, 10,000 steps in float64: somatic
potentials, rates and all weights agree within a relative 1e-5, with the noise off and
with the same noise realisation fed to both (issue 4)."""
import numpy as np
import pytest

from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.recording import Recording
from neurosim.schedule import Schedule

N_STEPS = 10_000
# The PAL B-alignment network (paper settings) with forward learning switched on too,
# so that every weight moves; and the Yin-Yang 4-30-3 network of examples/pal_yinyang.toml.
# alpha = 0, so that B moves by the noise alone (tests/test_backends_vs_numpy.py covers alpha).
NETWORKS = {
    "pal_5-20-10-20-5": dict(layers=[5, 20, 10, 20, 5], feedback="pal", dt=0.01, eta_fw=[20.0, 20.0, 20.0, 5.0],
                             eta_bw=50.0, eta_pi=5.0, eta_ip=0.5, alpha=0.0, sigma=0.05, tau_xi=0.1,
                             tau_hp=0.1, init_w=1.0, init_b=1.0),
    "yinyang_4-30-3": dict(layers=[4, 30, 3], feedback="pal", dt=0.1, eta_fw=[10.0, 0.1], eta_ip=0.5,
                           eta_pi=0.5, eta_bw=0.5, alpha=0.0, sigma=0.05, tau_xi=0.3, tau_hp=0.3,
                           init_w=0.1, init_b=1.0),
}


def _setup(name: str, noise_on: bool):
    settings = dict(NETWORKS[name])
    if not noise_on:
        settings["sigma"] = 0.0
    cfg = MicrocircuitConfig(**settings)
    net = build(cfg, initial_weights(cfg, seed=1))
    rng = np.random.default_rng(2)
    t_pres = 1.0
    spp = int(round(t_pres / cfg.dt))
    n_pres = N_STEPS // spp
    out = f"P{cfg.n_layers}"
    schedule = Schedule(t_pres, {"x": rng.uniform(0, 1, (n_pres, cfg.layers[0])),
                                 f"{out}.target": rng.uniform(-2, 2, (n_pres, cfg.layers[-1]))},
                        {f"{out}.target": (np.arange(n_pres) % 3 != 2).astype(float)},
                        (np.arange(n_pres) % 5 != 4).astype(float))
    noise = {pop.name: rng.standard_normal((N_STEPS, pop.size)) for pop in net.populations if pop.noise}
    every = 20 * cfg.dt
    rec = Recording({p.name: ["u", "r"] for p in net.populations if not p.is_input}, dt=every,
                    weights=[p.name for p in net.projections if p.kind == "all_to_all"], weights_dt=100 * cfg.dt)
    return net, schedule, noise, rec


@pytest.mark.parametrize("noise_on", [False, True], ids=["noise_off", "same_noise"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_torch_equals_brian2_over_10000_steps(name, noise_on):
    net, schedule, noise, rec = _setup(name, noise_on)
    ref = Brian2Simulator(net, target="numpy", noise=noise).run(schedule, rec)
    got = TorchSimulator(net, dtype="float64", noise=noise).run(schedule, rec)
    assert got.steps == ref.steps == N_STEPS
    assert set(got.traces) == set(ref.traces)
    for key, trace in ref.traces.items():
        np.testing.assert_allclose(got.traces[key].times, trace.times)
        scale = np.max(np.abs(trace.values))
        np.testing.assert_allclose(got.traces[key].values, trace.values, rtol=1e-5, atol=1e-5 * scale, err_msg=key)
    for key, w in ref.final_weights.items():
        np.testing.assert_allclose(got.final_weights[key], w, rtol=1e-5, atol=1e-5 * np.max(np.abs(w)), err_msg=key)
    # the comparison is not empty: every plastic weight moved, B by PAL only with noise
    start = {p.name: p.weight for p in net.projections if p.weight is not None}
    for key in ("W1", "W2", "WIP1", "BPI1"):
        assert np.max(np.abs(ref.final_weights[key] - start[key])) > 1e-4, key
    assert (np.max(np.abs(ref.final_weights["B1"] - start["B1"])) > 1e-4) == noise_on
