"""The backprop reference the angle tests measure against (checked by finite differences),
and the phi'-weighted transpose that PAL aligns B with."""
import numpy as np
import pytest

from microcircuits.dendritic import MicrocircuitConfig
from microcircuits.metrics import alignment_target, angle_deg, backprop_updates, basal_factors, feedforward
from neurosim import activations


@pytest.mark.parametrize("act", ["logistic", "tanh", "soft_relu"])
def test_backprop_updates_are_the_negative_gradient_up_to_the_layer_factor(act):
    cfg = MicrocircuitConfig(layers=[3, 5, 4, 2], activation=act)
    rng = np.random.default_rng(0)
    weights = [rng.uniform(-1, 1, (n, m)) for m, n in zip(cfg.layers[:-1], cfg.layers[1:])]
    x, u_tgt = rng.uniform(0, 1, 3), rng.uniform(-1, 1, 2)

    def loss(ws):
        return 0.5 * np.sum((u_tgt - feedforward(cfg, ws, x)[-1][0]) ** 2)

    k = basal_factors(cfg)
    updates = backprop_updates(cfg, weights, x, u_tgt)
    for l, w in enumerate(weights):
        grad = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            step = [ww.copy() for ww in weights]
            step[l][idx] += 1e-6
            down = [ww.copy() for ww in weights]
            down[l][idx] -= 1e-6
            grad[idx] = (loss(step) - loss(down)) / 2e-6
        np.testing.assert_allclose(updates[l] * np.prod(k[l:]), -grad, rtol=1e-5, atol=1e-9)


def test_angle_of_matrices():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert angle_deg(a, 3 * a) == pytest.approx(0.0, abs=1e-6)
    assert angle_deg(a, -a) == pytest.approx(180.0)
    assert angle_deg(a, np.array([[0.0, 1.0], [1.0, 0.0]])) == pytest.approx(90.0)


def test_alignment_target_is_the_mean_phi_prime_weighted_transpose():
    cfg = MicrocircuitConfig(layers=[3, 4, 5, 2])
    rng = np.random.default_rng(0)
    weights = [rng.uniform(-2, 2, (n, m)) for m, n in zip(cfg.layers[:-1], cfg.layers[1:])]
    x = rng.uniform(0, 1, (7, 3))
    v = feedforward(cfg, weights, x)
    d = [activations.derivative("logistic", vl) for vl in v]
    for l in (1, 2):
        expected = np.mean([np.diag(d[l - 1][s]) @ weights[l].T @ np.diag(d[l][s]) for s in range(7)], axis=0)
        np.testing.assert_allclose(alignment_target(cfg, weights, x, l), expected, rtol=1e-12)
    linear = MicrocircuitConfig(layers=[3, 4, 5, 2], activation="linear")
    np.testing.assert_allclose(alignment_target(linear, weights, x, 1), weights[1].T)
