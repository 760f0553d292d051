"""Problems: the pair convention, gradients on numpy/torch/jax, the initial state and the exact
oscillator."""

import math

import numpy as np
import pytest
import torch

from harness.api import UserError
from harness.registry import discover
from problems import Anharmonic, Bosons, DoubleWell, DrivenTrap, FreeSpread, Oscillator

PROBLEMS = [Bosons(d=3), Bosons(d=4, g=2.0, s2=0.05), Oscillator(d=2, centre=0.1, x0=0.3, p0=0.5),
            DrivenTrap(d=2, p0=0.2), FreeSpread(d=2, p0=0.01), DoubleWell(d=3, kappa=0.1),
            Anharmonic(d=1), Anharmonic(d=2), Anharmonic(d=4, p0=0.1)]


def test_pair_convention_by_hand():
    """d = 3: every unordered pair once, with weight g/2 and the normalised Gaussian."""
    x = np.array([0.3, -0.2, 0.5])
    g, s2 = 1.0, 0.1
    trap = 0.5 * (0.09 + 0.04 + 0.25)
    pairs = sum(math.exp(-(a - b) ** 2 / (2 * s2)) / math.sqrt(2 * math.pi * s2)
                for a, b in ((0.3, -0.2), (0.3, 0.5), (-0.2, 0.5)))
    assert Bosons(d=3).potential(x, 0.0) == pytest.approx(trap + g / 2 * pairs, rel=1e-14)
    # d = 2 by hand: 0.5*(0.3² + 0.2²) + 0.5 * exp(-0.25/0.2)/sqrt(0.2π)
    expected = 0.065 + 0.5 * math.exp(-1.25) / math.sqrt(0.2 * math.pi)
    assert Bosons(d=2).potential(np.array([0.3, -0.2]), 0.0) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: f"{p.name}-d{p.d}")
def test_gradient_matches_autograd_and_finite_differences(problem):
    x = torch.randn(7, problem.d, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(problem.potential(x, 0.3).sum(), x)
    assert torch.allclose(problem.grad_potential(x.detach(), 0.3), auto, rtol=1e-12, atol=1e-12)
    xn, h = x.detach().numpy(), 1e-5
    fd = np.stack([(problem.potential(xn + h * e, 0.3) - problem.potential(xn - h * e, 0.3)) / (2 * h)
                   for e in np.eye(problem.d)], axis=-1)
    np.testing.assert_allclose(problem.grad_potential(xn, 0.3), fd, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: f"{p.name}-d{p.d}")
def test_gradient_takes_a_time_per_point(problem):
    """∇V(x, t) with t a (P, 1) tensor, one time per point, as DSM's residuals call it."""
    x = torch.randn(5, problem.d, dtype=torch.float64)
    t = torch.linspace(0.1, 0.9, 5, dtype=torch.float64).view(5, 1)
    rows = torch.cat([problem.grad_potential(x[i:i + 1], float(t[i])) for i in range(5)])
    assert torch.allclose(problem.grad_potential(x, t), rows, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: f"{p.name}-d{p.d}")
def test_initial_velocities_are_gradients_of_psi0(problem):
    """u0 = (ħ/2m)∇log|ψ0|², v0 = (ħ/m)∇arg ψ0, via autograd of log_psi0."""
    x = torch.randn(5, problem.d, dtype=torch.float64, requires_grad=True)
    log_abs, phase = problem.log_psi0(x)
    (g_abs,) = torch.autograd.grad(log_abs.sum(), x, retain_graph=True)
    (g_phase,) = torch.autograd.grad(phase.sum(), x)
    k = problem.hbar / problem.m
    assert torch.allclose(problem.u0(x.detach()), k * g_abs, atol=1e-12)
    assert torch.allclose(problem.v0(x.detach()), k * g_phase, atol=1e-12)


def test_jax_arrays_share_the_same_code():
    jax = pytest.importorskip("jax", reason="jax arrives with the t-VMC backend")
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    for problem in PROBLEMS[:2]:
        xj = jax.numpy.asarray(x)
        np.testing.assert_allclose(np.asarray(problem.potential(xj, 0.0)),
                                   problem.potential(x.astype(float), 0.0), rtol=1e-5)
        auto = jax.grad(lambda y: problem.potential(y, 0.0).sum())(xj)
        np.testing.assert_allclose(np.asarray(problem.grad_potential(xj, 0.0)), np.asarray(auto),
                                   rtol=1e-4, atol=1e-5)


def test_psi0_norm_and_samples_1d_2d():
    for problem in (Bosons(d=2), Oscillator(d=2, x0=0.3, p0=0.5)):
        lo, hi = problem.box
        x = np.linspace(lo, hi, 401)
        grid = np.stack(np.meshgrid(x, x, indexing="ij"), axis=-1)
        norm = (np.abs(problem.psi0(grid)) ** 2).sum() * (x[1] - x[0]) ** 2
        assert norm == pytest.approx(1.0, abs=1e-10)
        s = problem.sample_initial(200_000, np.random.default_rng(1))
        exact = problem.exact(np.array([0.0]))
        if exact is not None:
            np.testing.assert_allclose(s.mean(0), exact.mean[0], atol=3e-3)
            np.testing.assert_allclose(s.var(0), exact.var[0], rtol=1e-2)


def test_exact_oscillator_moments_and_marginals():
    osc = Oscillator(d=1, centre=0.1, x0=0.3, p0=0.5, sigma0=0.3)
    t = np.linspace(0, 3, 7)
    pred = osc.exact(t)
    w = osc.omega * t
    mean = 0.1 + 0.2 * np.cos(w) + 0.5 * np.sin(w)
    var = 0.09 * np.cos(w) ** 2 + (0.1 / 0.6) ** 2 * np.sin(w) ** 2
    np.testing.assert_allclose(pred.mean[:, 0], mean, rtol=1e-14)
    np.testing.assert_allclose(pred.var[:, 0], var, rtol=1e-14)
    widths = np.diff(pred.edges)
    centres = (pred.edges[1:] + pred.edges[:-1]) / 2
    np.testing.assert_allclose(pred.marginals[:, 0] @ widths, 1.0, atol=1e-8)
    np.testing.assert_allclose((pred.marginals[:, 0] * widths) @ centres, mean, atol=1e-4)


def test_paper_variants_are_registered():
    reg = discover()
    zero = reg.problem("oscillator_paper")
    kick = reg.problem("oscillator_paper_momentum")
    for p in (zero, kick):
        assert (p.d, p.hbar, p.m, p.omega, p.centre, p.x0, p.T) == (1, 1e-2, 1.0, 1.0, 0.1, 0.0, 1.0)
        assert p.sigma0**2 == pytest.approx(0.1)
    # the paper's phase e^{icx} with c = -5 is p0 = c·ħ
    assert zero.p0 == 0.0 and kick.p0 / kick.hbar == pytest.approx(-5.0)


@pytest.mark.parametrize("kwargs", [dict(d=0), dict(hbar=-1.0), dict(m=0.0), dict(T=0.0),
                                    dict(s2=-0.1), dict(g=float("nan")), dict(d=1.5)])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(UserError):
        Bosons(**kwargs)


def test_problems_are_hashable_and_frozen():
    assert hash(Bosons(d=4)) == hash(Bosons(d=4))
    with pytest.raises(AttributeError):
        Bosons().d = 3


def test_exchangeable_problems_are_recognised():
    """Identical particles (V and ψ0 symmetric under relabelling) and problems that are not."""
    assert Bosons(d=3).exchangeable() and Oscillator(d=2, p0=0.5).exchangeable()
    assert DoubleWell(d=2).exchangeable() and not DoubleWell(d=3).exchangeable()  # open chain
    assert Oscillator(d=1).exchangeable()
