"""Target alignment against depth (microcircuits.energy_depth, examples/energy_depth.py),
16 wide, depths 1 and 6, five seeds: the simulated circuit's step against the step at the
exact minimum of E, backprop's step against autograd, and the paper's result, prospective
configuration's alignment falling far less with depth than backprop's."""
import numpy as np
import pytest
import torch

from microcircuits.energy import relaxed_linear
from microcircuits.energy_depth import LR, backprop_step, prospective_step, random_problem, target_alignment

WIDTH, SEEDS = 16, range(5)


@pytest.fixture(scope="module")
def alignments():
    """depth -> (PC alignments, BP alignments) over SEEDS, PC from the simulated circuit."""
    result = {}
    for depth in (1, 6):
        pc, bp = [], []
        for seed in SEEDS:
            weights, x, y = random_problem(depth, WIDTH, seed)
            pc.append(target_alignment(weights, prospective_step(weights, x, y)[0], x, y))
            bp.append(target_alignment(weights, backprop_step(weights, x, y), x, y))
        result[depth] = np.array(pc), np.array(bp)
    return result


def test_the_simulated_step_is_the_step_at_the_minimum_of_the_energy():
    """dW_l = lr e_l x_{l-1}^T at the relaxed state of relaxed_linear, to within the O(lr)
    drift of the state while W learns (measured 6e-5)."""
    weights, x, y = random_problem(6, WIDTH, 0)
    new, residual, _ = prospective_step(weights, x, y)
    assert residual < 2e-4, residual  # measured 6e-5 after 8 slowest time constants
    xs = [x, *relaxed_linear(weights, x, y), y]
    for l, (w, w_new) in enumerate(zip(weights, new)):
        np.testing.assert_allclose(w_new - w, LR * np.outer(xs[l + 1] - w @ xs[l], xs[l]), rtol=0, atol=5e-4 * LR)


def test_backprop_step_is_the_gradient():
    weights, x, y = random_problem(3, WIDTH, 0)
    ws = [torch.tensor(w, requires_grad=True) for w in weights]
    out = torch.tensor(x)
    for w in ws:
        out = w @ out
    (0.5 * ((torch.tensor(y) - out) ** 2).sum()).backward()
    for w, w_new, w_t in zip(weights, backprop_step(weights, x, y), ws):
        np.testing.assert_allclose(w_new - w, -LR * w_t.grad.numpy(), rtol=1e-8)  # w_new - w cancels ~1e-10


def test_prospective_configuration_keeps_its_target_alignment_with_depth(alignments):
    (pc1, bp1), (pc6, bp6) = alignments[1], alignments[6]
    # one layer: both steps are lr (y - W x) x^T, along the error
    np.testing.assert_allclose(pc1, 1.0, atol=1e-9)
    np.testing.assert_allclose(bp1, 1.0, atol=1e-9)
    # six layers, measured: PC 0.83-0.995 (mean 0.93), BP 0.42-0.67 (mean 0.59), PC - BP >= 0.21
    assert np.all(pc6 > bp6 + 0.1), (pc6, bp6)
    assert pc6.mean() > 0.85 and bp6.mean() < 0.75, (pc6, bp6)
    pc_fall, bp_fall = pc1.mean() - pc6.mean(), bp1.mean() - bp6.mean()  # measured 0.07 and 0.41
    assert pc_fall < 0.5 * bp_fall, (pc_fall, bp_fall)
