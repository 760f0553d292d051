"""DSM's O(d) path: the probe jet against torch.func, Hutchinson's estimate of ∇(div ·)
unbiased, probe residuals equal to the exact ones where Rademacher probes are exact (d = 1),
the auto switch, and an epoch at d = 100 without any d × d tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import jacfwd, vmap
from torch.utils._python_dispatch import TorchDispatchMode

from dsm_epochs import eager_and_compiled
from problems import Bosons, Oscillator
from solvers.dsm import D_AUTO, PROBES_AUTO, DSMSolver, Settings
from solvers.dsm.loss import func_derivatives, residuals
from solvers.dsm.nets import PairMLP
from solvers.dsm.train import epoch_step, training_points


def net64(d, depth=1, activation="tanh", time_readout=False):
    net = PairMLP(d, 12, depth, activation, torch.Generator().manual_seed(0), torch.float64,
                  time_readout=time_readout)
    if time_readout:  # a readout slope away from its initial 0
        with torch.no_grad():
            net.readout_t.normal_(generator=torch.Generator().manual_seed(5))
    return net


def rademacher(shape, seed):
    return torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(seed)).double() * 2 - 1


def points(P, d, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(P, d, dtype=torch.float64, generator=gen) * 0.5,
            torch.rand(P, 1, dtype=torch.float64, generator=gen))


@pytest.mark.parametrize("d,depth,activation,time_readout", [
    (1, 1, "tanh", False), (3, 1, "tanh", False), (4, 2, "sin", False), (5, 2, "tanh", False),
    (4, 1, "tanh", True)])
def test_probe_jet_matches_torch_func(d, depth, activation, time_readout):
    """probe_forward/probe_reverse give NN, ∂t NN, J_nᵀw and, for the given probes,
    (1/K) Σ_r ∇(z_rᵀ J z_r) exactly as torch.func computes them (nested jacfwd)."""
    net = net64(d, depth, activation, time_readout)
    P, K = 7, 3
    x, t = points(P, d)
    z = rademacher((P, K, d), 2)
    out, out_t, jac, _ = func_derivatives(net, x, t)
    fwd, fwd_t, state = net.probe_forward(x, t, z)
    torch.testing.assert_close(fwd, out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fwd_t, out_t, rtol=1e-10, atol=1e-12)
    cot = list(torch.randn(2, P, 2, d, dtype=torch.float64, generator=torch.Generator().manual_seed(3)))
    weights = [[0.0, 1.0], [0.5, 0.0]]
    back = net.probe_reverse(state, z, cot, weights)
    for n in range(2):
        def quad(xs, ts, zs, n=n):
            J = jacfwd(lambda y: net(y[None], ts[None])[n, 0])(xs)
            return torch.einsum("ri,ik,rk->", zs, J, zs) / zs.shape[0]
        estimate = vmap(jacfwd(quad))(x, t, z)
        for c in range(2):
            want = torch.einsum("pik,pi->pk", jac[n], cot[n][:, c]) + weights[n][c] * estimate
            torch.testing.assert_close(back[n][:, c], want, rtol=1e-10, atol=1e-12)


def test_hutchinson_estimate_is_unbiased():
    """Over many independent probes the estimate of ∇(div NN) averages to the exact value within
    4 standard errors, component by component (d = 6, one probe each draw)."""
    d, P, draws = 6, 3, 4000
    net = net64(d)
    x, t = points(P, d, 5)
    exact = func_derivatives(net, x, t)[3]  # (2, P, d)
    xs, ts = x.repeat(draws, 1), t.repeat(draws, 1)
    z = rademacher((P * draws, 1, d), 6)
    _, _, state = net.probe_forward(xs, ts, z)
    zero = torch.zeros(P * draws, 1, d, dtype=torch.float64)
    est = torch.stack([b[:, 0] for b in net.probe_reverse(state, z, [zero, zero], [[1.0], [1.0]])])
    est = est.view(2, draws, P, d)
    mean, se = est.mean(1), est.std(1) / draws**0.5
    assert (se > 0).any()  # the estimator is not trivially exact here
    assert ((mean - exact).abs() <= 4 * se + 1e-12).all()


@pytest.mark.parametrize("problem", [Oscillator(d=1, p0=0.5), Bosons(d=1)])
def test_probe_residuals_are_exact_at_d1(problem):
    """At d = 1 a Rademacher probe is ±1 and zᵀJz = J: the O(d) residuals, hard initial
    condition and problem Jacobian products included, equal the exact ones."""
    net = net64(1)
    x, t = points(9, 1, 7)
    exact = residuals(net, problem, x, t)
    probed = residuals(net, problem, x, t, probes=rademacher((9, 3, 1), 8))
    for a, b in zip(exact, probed):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


def test_probe_residuals_average_to_the_exact_ones():
    """Bosons at d = 3 (interacting, so the problem's ∇V is not separable): the residuals are
    linear in the estimate, so their mean over 20 000 probes is within 1e-3 of the exact."""
    problem = Bosons(d=3)
    net = net64(3)
    x, t = points(4, 3, 9)
    exact = residuals(net, problem, x, t)
    probed = residuals(net, problem, x, t, probes=rademacher((4, 20000, 3), 10))
    for a, b in zip(exact, probed):
        assert (a - b).abs().max() < 1e-3 * a.abs().max()


def test_auto_switch():
    """probes = 0: exact up to D_AUTO, PROBES_AUTO probes above; −1 always exact; K always K;
    the func engine always exact."""
    auto = Settings()
    assert auto.probes_for(1) == auto.probes_for(D_AUTO) == 0
    assert auto.probes_for(D_AUTO + 1) == auto.probes_for(1000) == PROBES_AUTO
    assert Settings(probes=-1).probes_for(1000) == 0
    assert Settings(probes=3).probes_for(2) == 3
    assert Settings(engine="func").probes_for(1000) == 0
    paper = Settings(**DSMSolver.presets["paper"])
    assert all(paper.probes_for(d) == 0 for d in range(1, 6))  # the paper's bosons stay exact


class LargestTensor(TorchDispatchMode):
    """Records every op's output shapes (what the epoch allocates)."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for o in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(o, torch.Tensor):
                self.shapes.append(tuple(o.shape))
        return out


def test_epoch_at_d100_has_no_d_by_d_tensor():
    """One auto-settings epoch at d = 100 (probes, eager): no tensor has two axes of size d,
    and no tensor holds more than points × (K + 2) × width or points × (K + 2) × d numbers."""
    d = 100
    problem = Oscillator(d=d, p0=0.5)
    s = Settings(N=10, M=4, batch=16, width=24, lr=1e-3, epochs=1)
    net = PairMLP(d, s.width, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    x0 = torch.as_tensor(problem.sample_initial(s.batch, np.random.default_rng(0)), dtype=torch.float32)
    with LargestTensor() as rec:
        X, T = training_points(net, problem, x0, s.N, s.M, torch.Generator().manual_seed(1),
                               torch.Generator().manual_seed(2))
        lu, lv = epoch_step(net, opt, problem, X, T, s, torch.Generator().manual_seed(3))
    assert np.isfinite(float(lu + lv))
    P, K = X.shape[0], s.probes_for(d)
    assert K > 0
    assert not [sh for sh in rec.shapes if sum(n == d for n in sh) >= 2]
    biggest = max(int(np.prod(sh)) for sh in rec.shapes)
    assert biggest <= P * (K + 2) * max(s.width, d)


def test_compiled_probe_epoch_matches_eager():
    """With probes the compiled network part gives the eager epoch's losses and update."""
    out = eager_and_compiled(
        Oscillator(d=12, p0=0.5),
        lambda mode: Settings(N=20, M=5, batch=8, width=16, lr=1e-3, epochs=1, compile=mode),
        lambda s: PairMLP(12, s.width, generator=torch.Generator().manual_seed(0)))
    for eager, fast in zip(out[False][2:], out[True][2:]):  # losses and update
        torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-6)
