"""The torch backend's batch axes, its noise and its errors: replicas are independent
networks, samples a minibatch whose updates are averaged, the counter-based noise is
N(0, 1) and independent of chunking."""
import numpy as np
import pytest
import torch

from microcircuits.dendritic import MicrocircuitConfig, build, initial_weights
from neurosim.backends.brian2 import Brian2Simulator
from neurosim.backends.counter_rng import counter_normals, stream_key
from neurosim.backends.torch import TorchSimulator
from neurosim.recording import DivergenceError, Recording
from neurosim.schedule import Schedule

CFG = MicrocircuitConfig(layers=[4, 6, 3], feedback="pal", dt=0.1, eta_fw=[2.0, 0.5], eta_ip=0.5, eta_pi=0.5,
                         eta_bw=2.0, alpha=0.01, sigma=0.1, tau_xi=0.3, tau_hp=0.3, init_w=0.5, tau_lo=0.5)
REC = Recording({"P1": ["u", "r", "v_apical", "ou"], "P2": ["u_breve"]}, dt=1.0, weights=["W1", "B1", "BPI1"],
                weights_dt=5.0)


def _schedule(seed: int, n: int = 40, samples: int | None = None) -> Schedule:
    rng = np.random.default_rng(seed)
    shape = (n,) if samples is None else (n, samples)
    return Schedule(1.0, {"x": rng.uniform(0, 1, shape + (4,)), "P2.target": rng.uniform(-1, 1, shape + (3,))},
                    {"P2.target": (np.arange(n) % 4 != 3).astype(float)}, (np.arange(n) % 5 != 4).astype(float))


def _assert_same(a, b, rtol=1e-12):
    assert set(a.traces) == set(b.traces)
    for key in a.traces:
        np.testing.assert_allclose(a.traces[key].values, b.traces[key].values, rtol=rtol, atol=1e-14, err_msg=key)
    for key in a.final_weights:
        np.testing.assert_allclose(a.final_weights[key], b.final_weights[key], rtol=rtol, atol=1e-14, err_msg=key)


def test_eight_replicas_equal_eight_single_runs():
    seeds = list(range(10, 18))
    nets = [build(CFG, initial_weights(CFG, s)) for s in seeds]
    schedules = [_schedule(s) for s in seeds]
    together = TorchSimulator(nets, seed=seeds).run_replicas(schedules, REC)
    for net, sched, seed, got in zip(nets, schedules, seeds, together):
        _assert_same(got, TorchSimulator(net, seed=seed).run(sched, REC))
    # and the replicas did differ: own weights, data and noise
    assert not np.allclose(together[0].final_weights["B1"], together[1].final_weights["B1"])


def test_replica_noise_depends_on_its_seed_only():
    net = build(CFG, initial_weights(CFG, 0))
    runs = TorchSimulator([net] * 3, seed=[5, 6, 5]).run_replicas(_schedule(0), REC)
    _assert_same(runs[0], runs[2], rtol=0)
    assert not np.allclose(runs[0].traces["P1.ou"].values, runs[1].traces["P1.ou"].values)


def test_samples_are_a_minibatch_with_averaged_updates():
    net = build(CFG, initial_weights(CFG, 0))
    one = _schedule(1, n=1)
    # S copies of one sample, with the same noise: the mean of equal updates is that update
    same = Schedule(1.0, {k: np.repeat(v[:, None], 3, axis=1) for k, v in one.data.items()}, one.gates, one.learn)
    n_steps = 10
    draws = np.random.default_rng(0).standard_normal((n_steps, 6))
    single = TorchSimulator(net, noise={"P1": draws}).run(one)
    batch = TorchSimulator(net, samples=3, noise={"P1": np.repeat(draws[None, :, None], 3, axis=2)}).run(same)
    for key, w in single.final_weights.items():
        np.testing.assert_allclose(batch.final_weights[key], w, rtol=1e-12, err_msg=key)
    # S different samples: after one step, the update is the mean of the S single-sample updates
    rng = np.random.default_rng(3)
    xs, tgt = rng.uniform(0, 1, (3, 4)), rng.uniform(-1, 1, (3, 3))
    short = MicrocircuitConfig(**{**CFG.__dict__, "tau_lo": 0.0, "sigma": 0.0})  # samples draw their own noise
    net = build(short, initial_weights(short, 0))
    start = {p.name: p.weight for p in net.projections if p.weight is not None}
    step = lambda x, t, s: Schedule(0.1, {"x": x, "P2.target": t})  # noqa: E731
    batch = TorchSimulator(net, samples=3).run(step(xs[None], tgt[None], 3))
    singles = [TorchSimulator(net).run(step(xs[i:i + 1], tgt[i:i + 1], 1)) for i in range(3)]
    for key in ("W1", "W2", "WIP1", "BPI1", "B1"):
        mean_update = np.mean([s.final_weights[key] - start[key] for s in singles], axis=0)
        np.testing.assert_allclose(batch.final_weights[key] - start[key], mean_update, rtol=1e-10, atol=1e-15)
    assert np.max(np.abs(batch.final_weights["W2"] - start["W2"])) > 1e-6
    # and each sample's state is its own single run's
    np.testing.assert_allclose(batch.final_state["P2.u"], np.stack([s.final_state["P2.u"] for s in singles]))


def test_counter_normals_are_standard_normal_and_chunk_independent():
    keys = torch.tensor([stream_key(0, 0), stream_key(1, 0), stream_key(0, 1)])
    whole = counter_normals(keys, 0, 4000, 50)
    parts = torch.cat([counter_normals(keys, 0, 1000, 50), counter_normals(keys, 1000, 3000, 50)], dim=1)
    assert torch.equal(whole, parts)
    z = whole.numpy()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert abs(np.mean(z ** 4) - 3.0) < 0.05  # normal kurtosis
    assert abs(np.corrcoef(z[0].ravel(), z[1].ravel())[0, 1]) < 0.01  # other seed
    assert abs(np.corrcoef(z[0].ravel(), z[2].ravel())[0, 1]) < 0.01  # other stream
    assert abs(np.corrcoef(z[0, 1:].ravel(), z[0, :-1].ravel())[0, 1]) < 0.01  # next step


def test_splitmix64_wraps_like_python_integers():
    """The int64 hash equals exact arithmetic mod 2^64 (the draws rest on it)."""
    from neurosim.backends.counter_rng import splitmix64

    def reference(x):
        m = (1 << 64) - 1
        x &= m
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
        return x ^ (x >> 31)

    values = [0, 1, 12345, 2 ** 62 + 7, -1, -(2 ** 63), 2 ** 63 - 1]
    got = splitmix64(torch.tensor(values, dtype=torch.int64)).tolist()
    assert [g & ((1 << 64) - 1) for g in got] == [reference(v) for v in values]


def test_own_noise_has_the_ou_statistics():
    """xi(n) = (1 - c) xi + sigma sqrt(c) w: stationary std sigma / sqrt(2 - c), lag-1 correlation 1 - c."""
    cfg = MicrocircuitConfig(layers=[2, 200, 1], feedback="pal", dt=0.1, sigma=0.2, tau_xi=1.0)
    net = build(cfg, initial_weights(cfg, 0))
    sched = Schedule(1.0, {"x": np.zeros((300, 2)), "P2.target": np.zeros((300, 1))})
    rec = Recording({"P1": ["ou"]}, dt=0.1)
    xi = TorchSimulator(net, seed=3).run(sched, rec).traces["P1.ou"].values[100:]
    c = 0.1
    assert abs(xi.std() / (0.2 / np.sqrt(2 - c)) - 1) < 0.03
    assert abs(np.corrcoef(xi[1:].ravel(), xi[:-1].ravel())[0, 1] - (1 - c)) < 0.01


def test_float32_follows_float64():
    net = build(CFG, initial_weights(CFG, 0))
    a = TorchSimulator(net, dtype="float64").run(_schedule(0), REC)
    b = TorchSimulator(net, dtype="float32").run(_schedule(0), REC)
    for key in a.final_weights:
        np.testing.assert_allclose(b.final_weights[key], a.final_weights[key], rtol=1e-3, atol=1e-4, err_msg=key)


def test_compiled_block_equals_eager():
    net = build(CFG, initial_weights(CFG, 0))
    eager = TorchSimulator(net, seed=2).run(_schedule(0, n=6), REC)
    _assert_same(TorchSimulator(net, seed=2, compile=True).run(_schedule(0, n=6), REC), eager, rtol=1e-10)


def test_divergence_stops_only_the_replica_that_diverged():
    linear = MicrocircuitConfig(**{**CFG.__dict__, "activation": "linear"})
    bad = MicrocircuitConfig(**{**CFG.__dict__, "activation": "linear", "init_w": [1e308, 1e308]})  # sums overflow
    nets = [build(linear, initial_weights(linear, 0)), build(bad, initial_weights(bad, 0))]
    good, broken = TorchSimulator(nets, seed=[0, 0], check_every_ms=1.0).run_replicas(_schedule(0), REC)
    assert good.divergence is None and np.all(np.isfinite(good.final_weights["W1"]))
    assert broken.divergence is not None and broken.divergence.time_ms < 40
    with pytest.raises(DivergenceError, match="NaN or inf"):
        TorchSimulator(nets[1], check_every_ms=1.0).run(_schedule(0), REC)


def test_bad_input_is_refused_clearly():
    net = build(CFG, initial_weights(CFG, 0))
    other = build(MicrocircuitConfig(layers=[4, 7, 3], feedback="pal"), initial_weights(
        MicrocircuitConfig(layers=[4, 7, 3], feedback="pal"), 0))
    with pytest.raises(ValueError, match="replica 1 differs in structure"):
        TorchSimulator([net, other], seed=[0, 1])
    with pytest.raises(ValueError, match="one seed per replica"):
        TorchSimulator([net, net], seed=0)
    with pytest.raises(ValueError, match="dtype"):
        TorchSimulator(net, dtype="float16")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            TorchSimulator(net, device="cuda")
    with pytest.raises(ValueError, match="1 samples per presentation; the simulator runs 2"):
        TorchSimulator(net, samples=2).run(_schedule(0))
    with pytest.raises(ValueError, match="use run_replicas"):
        TorchSimulator([net, net], seed=[0, 1]).run(_schedule(0))
    with pytest.raises(ValueError, match="cannot record 'I_N1'"):
        TorchSimulator(net).run(_schedule(0), Recording({"P1": ["I_N1"]}))
    with pytest.raises(ValueError, match="noise for P1 must have shape"):
        TorchSimulator(net, noise={"P1": np.zeros((10, 5))})
    with pytest.raises(ValueError, match="cannot record 'spikes' of P1 on the brian2 backend"):
        Brian2Simulator(net).run(_schedule(0), Recording({"P1": ["spikes"]}))
    with pytest.raises(ValueError, match="presents one sample at a time"):
        Brian2Simulator(net).run(_schedule(0, samples=2))
