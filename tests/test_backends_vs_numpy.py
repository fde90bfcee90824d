"""Both backends (Brian2 and torch, float64) against the independent numpy loop
(tests/oracle/microcircuit_loop.py): same network, same schedule, noise off or the same noise
draws -> the same trajectories and weights, to 1e-9."""
import numpy as np
import pytest

from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.torch import TorchSimulator
from neurosim.recording import Recording
from neurosim.schedule import Schedule
from tests.oracle.microcircuit_loop import from_microcircuit, simulate

N_SAMPLES = 12
SIMULATORS = {"brian2": lambda net, noise: Brian2Simulator(net, target="numpy", noise=noise),
              "torch": lambda net, noise: TorchSimulator(net, dtype="float64", noise=noise)}


@pytest.fixture(params=list(SIMULATORS))
def simulator(request):
    return SIMULATORS[request.param]


def _compare(cfg: MicrocircuitConfig, simulator):
    w = initial_weights(cfg, seed=3)
    net = build(cfg, w)
    rng = np.random.default_rng(4)
    n0, nN, N = cfg.layers[0], cfg.layers[-1], cfg.n_layers
    x = rng.uniform(0, 1, (N_SAMPLES, n0))
    u_tgt = rng.uniform(-1, 1, (N_SAMPLES, nN))
    target_on = (np.arange(N_SAMPLES) % 3 != 2).astype(float)
    learn = (np.arange(N_SAMPLES) % 4 != 3).astype(float)
    t_pres = 0.5
    schedule = Schedule(t_pres, {"x": x, f"P{N}.target": u_tgt}, {f"P{N}.target": target_on}, learn)
    layers = [f"P{l}" for l in range(1, N + 1)]
    rec = Recording({p: ["u_breve", "r"] for p in layers}, dt=t_pres)
    n_steps = N_SAMPLES * int(round(t_pres / cfg.dt))
    noise = {f"P{l}": rng.standard_normal((n_steps, cfg.layers[l])) for l in range(1, N)} if cfg.noisy else {}
    result = simulator(net, noise).run(schedule, rec)

    params, ref_w = from_microcircuit(cfg, w, t_pres)
    ref = simulate(params, ref_w, x, u_tgt, target_on, learn, record_every=params.steps_per_sample,
                   noise_w=list(noise.values()) or None)

    for l, pop in enumerate(layers):
        for var in ("u_breve", "r"):
            got = result.traces[f"{pop}.{var}"].values[1:]  # drop the initial state
            np.testing.assert_allclose(got, ref["rec"][var][l], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{pop}.{var}")
    for key in ("W", "B", "WIP", "BPI"):
        for l, expected in enumerate(ref["weights"][key], start=1):
            np.testing.assert_allclose(result.final_weights[f"{key}{l}"], expected, rtol=1e-9,
                                       atol=1e-12, err_msg=f"{key}{l}")
    return result, ref


@pytest.mark.parametrize("feedback", ["bp", "fa"])
def test_backend_equals_numpy_loop_with_all_plasticity(feedback, simulator):
    cfg = MicrocircuitConfig(layers=[3, 5, 4, 2], feedback=feedback, dt=0.05, sps="random",
                             eta_fw=[0.5, 0.3, 0.2], eta_ip=[0.4, 0.2], eta_pi=[0.3, 0.6], tau_lo=0.5)
    result, _ = _compare(cfg, simulator)
    # the run really learned: the weights moved
    assert not np.allclose(result.final_weights["W1"], initial_weights(cfg, 3)["W1"])


def test_backend_equals_numpy_loop_without_prospective_coding(simulator):
    cfg = MicrocircuitConfig(layers=[2, 3, 2], dt=0.1, sps="set", activation="tanh", prospective=False,
                             eta_fw=[0.2, 0.2], eta_ip=[0.1], eta_pi=[0.1],
                             g_l=0.05, g_bas=0.2, g_api=0.03, g_den=0.15, g_nI=0.1, g_tgt=0.2)
    _compare(cfg, simulator)


@pytest.mark.parametrize("feedback", ["pal", "fa"])
def test_backend_equals_numpy_loop_with_the_same_noise(feedback, simulator):
    """OU noise on the hidden apical compartments from the same normal draws; in mode pal
    B learns from the noise and the high-passed rates of the layer above."""
    cfg = MicrocircuitConfig(layers=[3, 5, 4, 2], feedback=feedback, dt=0.05, sps="set", sigma=0.3,
                             tau_xi=0.2, tau_hp=0.3, eta_bw=[40.0, 20.0], alpha=[0.1, 0.2],
                             eta_fw=[0.5, 0.3, 0.2], eta_ip=[0.4, 0.2], eta_pi=[0.3, 0.6])
    result, _ = _compare(cfg, simulator)
    moved = not np.allclose(result.final_weights["B1"], initial_weights(cfg, 3)["B1"])
    assert moved == (feedback == "pal")
