"""Physics checks of the Crank–Nicolson solver and the static baseline.

Exact answers come from the harmonic oscillator (moments for all t) and non-interacting bosons
(stationary); the interacting bosons are checked by self-convergence. Tolerances are the
measured grid errors with a margin, so a wrong spacing, a wrong step or a lost factor fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.api import Context, UserError
from harness.metrics import score
from problems import Bosons, DrivenTrap, Oscillator
from solvers.crank_nicolson import CNKinetic, CrankNicolsonSolver, Settings
from solvers.static import Settings as StaticSettings
from solvers.static import StaticSolver

TIMES = np.linspace(0.0, 1.0, 11)


def solve(problem, times=TIMES, **settings):
    return CrankNicolsonSolver().solve(problem, times, Settings(**settings), Context())


def rel_l2(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def observed_order(errors):
    """log2 of successive error ratios for spacings halved each time."""
    errors = np.asarray(errors)
    return np.log2(errors[:-1] / errors[1:])


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("lines", [1, 10**9])  # LAPACK path, numpy sweep
def test_kinetic_step_is_the_per_axis_cayley_product(d, lines):
    """Both tridiagonal paths give Π_k (1 − irL_k)⁻¹(1 + irL_k), built densely, and keep the norm."""
    n, h, tau, hbar, m = 7, 0.1, 0.01, 0.1, 1.0
    rng = np.random.default_rng(d)
    psi = rng.standard_normal((n,) * d + (1,)) + 1j * rng.standard_normal((n,) * d + (1,))
    out = psi.copy()
    CNKinetic(n, h, tau, hbar, m, lines).apply(out, np.empty_like(out))
    r = hbar * tau / (4 * m * h * h)
    lap = np.diag(-2.0 * np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    cayley = np.linalg.solve(np.eye(n) - 1j * r * lap, np.eye(n) + 1j * r * lap)
    want = psi[..., 0]
    for k in range(d):
        want = np.moveaxis(np.tensordot(cayley, want, axes=([1], [k])), 0, k)
    np.testing.assert_allclose(out[..., 0], want, atol=1e-13)
    assert np.linalg.norm(out) == pytest.approx(np.linalg.norm(psi), rel=1e-13)


def test_moving_oscillator_matches_exact_within_grid_error():
    """p0 = 0.5 on [−2, 2]: with 399 points (h = 0.01) the measured errors are 5.3e-4 (relative
    L2 of the variance) and 1.3e-4 (mean); the grid error at h = 0.02 is four times larger."""
    problem = Oscillator(p0=0.5)
    exact = problem.exact(TIMES)
    fine = solve(problem, points=399, dt=1e-3)
    coarse = solve(problem, points=199, dt=1e-3)
    for pred, var_tol, mean_tol in ((fine, 7e-4, 2e-4), (coarse, 2.5e-3, 7e-4)):
        assert rel_l2(pred.var[1:], exact.var[1:]) < var_tol
        assert np.sqrt(np.mean((pred.mean - exact.mean) ** 2)) < mean_tol
    assert rel_l2(fine.var[1:], exact.var[1:]) < rel_l2(coarse.var[1:], exact.var[1:]) / 3.5
    # t = 0 is the discretised ψ0: its moments are exact to quadrature accuracy
    assert fine.var[0, 0] == pytest.approx(problem.sigma0**2, rel=1e-10)
    assert fine.marginals[-1].sum() * np.diff(fine.edges)[0] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("d, points, dt", [(1, (99, 199, 399), 1e-3), (2, (49, 99, 199), 2e-3)])
def test_second_order_in_the_spacing(d, points, dt):
    """On [−2, 2] with n + 1 = 50·2^k intervals the spacing halves exactly; the variance error
    against the exact oscillator falls 4× (measured orders 1.85–1.96)."""
    problem = Oscillator(d=d, p0=0.5)
    exact = problem.exact(TIMES)
    errors = [rel_l2(solve(problem, points=n, dt=dt).var[1:], exact.var[1:]) for n in points]
    assert np.all((observed_order(errors) > 1.7) & (observed_order(errors) < 2.3)), errors


def test_interacting_bosons_converge_at_second_order():
    """No closed form: the differences between successive halvings shrink 4× (measured 4.00),
    and Richardson's extrapolation v + (v − v_coarse)/3 of Var(x_1, t=1) lands on the certified
    split-operator value 0.227425 (measured 0.227425; the 199-point grid alone is 2.5e-3 low)."""
    var = [solve(Bosons(d=2), points=n, dt=2e-3, box=2.0).var[1:] for n in (49, 99, 199)]
    order = math.log2(np.linalg.norm(var[0] - var[1]) / np.linalg.norm(var[1] - var[2]))
    assert 1.8 < order < 2.2
    assert var[2][-1, 0] + (var[2][-1, 0] - var[1][-1, 0]) / 3 == pytest.approx(0.227425, rel=2e-4)


def test_noninteracting_bosons_stay_put():
    """g = 0 is stationary; the discrete ground state differs from the Gaussian by O(h²):
    measured 0.23 % at 99 points (h = 0.036)."""
    pred = solve(Bosons(d=2, g=0), points=99)
    np.testing.assert_allclose(pred.var, 0.05, rtol=4e-3)
    np.testing.assert_allclose(pred.mean, 0.0, atol=1e-12)


def test_norm_is_conserved():
    pred = solve(Bosons(d=2), points=64, dt=1e-3)
    assert pred.diagnostics["grid_mass"] == pytest.approx(1.0, abs=1e-9)
    assert pred.diagnostics["norm_drift"] < 1e-12


def test_time_dependent_potential_is_taken_at_the_step_midpoint():
    problem = DrivenTrap(p0=0.5, A=0.4, Omega=2.0, T=1.0)
    pred = solve(problem, points=399, dt=1e-3)
    mean, _ = problem.exact_moments(TIMES)
    assert pred.diagnostics["time_dependent_potential"]
    assert np.abs(pred.mean[:, 0] - mean).max() < 3e-4
    assert rel_l2(pred.var[1:], problem.exact(TIMES).var[1:]) < 1e-3


def test_uneven_unsorted_times_land_exactly():
    problem = Oscillator(p0=0.5)
    times = np.array([0.7, 0.0, 0.13, 1.0, 0.131])
    pred = solve(problem, times=times, points=399, dt=1e-3)
    assert np.abs(pred.mean - problem.exact(times).mean).max() < 2e-4
    np.testing.assert_allclose(pred.times, times)


def test_refuses_grids_over_the_memory_budget():
    solver = CrankNicolsonSolver()
    ok, reason = solver.supports(Bosons(d=4), Settings(points=200))
    assert not ok and "GB of memory" in reason and "200^4" in reason and "budget 4 GB" in reason
    ok, reason = solver.supports(Bosons(d=5))  # the quick preset's grid
    assert not ok and "memory" in reason
    assert solver.supports(Bosons(d=4)) == (True, "")
    assert solver.supports(Bosons(d=3), Settings(points=100, memory_gb=0.01)) == (
        False, "needs 0.064 GB of memory for 100^3 points, budget 0.01 GB")


@pytest.mark.parametrize("bad", [dict(points=2), dict(points=2.5), dict(dt=0.0), dict(dt=float("nan")),
                                 dict(memory_gb=-1.0), dict(box=-1.0), dict(box=(1.0, -1.0))])
def test_nonsense_settings_are_refused(bad):
    with pytest.raises(UserError, match="crank_nicolson"):
        Settings(**bad)


def test_paper_preset_grid():
    s = Settings(**CrankNicolsonSolver.presets["paper"])
    n, a, b = s.grid(Bosons(d=2))
    assert (n, a, b, s.dt) == (100, -1.5, 1.5, 1e-3)  # spacing 3/101, the Laplacian's too


# -- the static baseline ----------------------------------------------------------------------


def test_static_reproduces_the_initial_moments():
    pred = StaticSolver().solve(Bosons(d=4), TIMES, StaticSettings(), Context(seed=3))
    n = pred.n_samples
    assert n == 200_000
    np.testing.assert_allclose(pred.var, 0.05, rtol=4 * math.sqrt(2 / n))  # sampling error
    np.testing.assert_allclose(pred.mean, 0.0, atol=4 * math.sqrt(0.05 / n))
    assert np.all(pred.var == pred.var[0]) and np.all(pred.marginals == pred.marginals[0])


def test_static_scores_badly_on_a_moving_oscillator():
    """Exact t = 0 moments held for all t: the mean misses the whole swing, the variance
    about 15 %; Crank–Nicolson on a fine grid scores 1e-3 or better on both."""
    problem = Oscillator(p0=0.5)
    times = np.linspace(0.0, 1.0, 21)
    exact = problem.exact(times)
    static = StaticSolver().solve(problem, times, StaticSettings(), Context())
    assert static.n_samples is None  # exact initial moments, no sampling
    np.testing.assert_allclose(static.var, problem.sigma0**2)
    np.testing.assert_allclose(static.mean, 0.0)
    bad, good = score(static, exact), score(solve(problem, times, points=399, dt=1e-3), exact)
    assert bad["mean_rel_l2"] == pytest.approx(1.0) and bad["var_rel_l2"] > 0.1
    assert good["mean_rel_l2"] < 1e-3 and good["var_rel_l2"] < 1e-3
