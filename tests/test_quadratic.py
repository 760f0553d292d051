"""harmonic_bosons and gaussian_network: their exact Gaussian solutions against Newton, against
the certified split-operator grid (moments, marginals and ψ itself) and against Crank–Nicolson;
the quench really moves the state; exchange symmetry; d = 1000. (The conformance kit runs on
both in tests/test_check.py, like on every built-in problem.)"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from harness.api import Context, UserError
from harness.metrics import score
from harness.reference import compute_reference
from problems import quadratic
from problems.gaussian_network import GaussianNetwork
from problems.harmonic_bosons import HarmonicBosons
from solvers.crank_nicolson import CrankNicolsonSolver
from solvers.crank_nicolson import Settings as CNSettings

TIMES = np.linspace(0, 1, 11)


def without_exact(problem):
    """The same problem with its closed form hidden, so the reference must run the grid."""
    cls = type(f"Grid{type(problem).__name__}", (type(problem),), {"exact": lambda self, t: None})
    return dataclasses.dataclass(frozen=True)(cls)(**problem.params())


# -- the shared mode propagation ---------------------------------------------------------------

@pytest.mark.parametrize("omega2", [2.25, 0.0, -2.0])  # oscillating, free, inverted
def test_mode_moments_follow_newton_and_ehrenfest(omega2):
    """Mean: ÿ = −Ω²y. Second moments (X = ⟨y²⟩, C = ⟨yp + py⟩/2, P = ⟨p²⟩):
    X' = 2C/m, C' = P/m − mΩ²X, P' = −2mΩ²C, integrated numerically from ψ0's."""
    sigma, hbar, m, q0, p0 = 0.2, 0.1, 1.3, 0.3, -0.4
    t = np.linspace(0, 2, 21)

    def rhs(_, y):
        q, v, X, C, P = y
        return [v, -omega2 * q, 2 * C / m, P / m - m * omega2 * X, -2 * m * omega2 * C]

    start = [q0, p0 / m, sigma**2 + q0**2, q0 * p0, (hbar / (2 * sigma)) ** 2 + p0**2]
    sol = solve_ivp(rhs, (0, 2), start, t_eval=t, rtol=1e-12, atol=1e-14).y
    mean, var = quadratic.moments([omega2], [q0], [p0], sigma, hbar, m, t)
    np.testing.assert_allclose(mean[:, 0], sol[0], atol=1e-9)
    np.testing.assert_allclose(var[:, 0], sol[2] - sol[0] ** 2, rtol=1e-8)


# -- exact moments and marginals against the certified grid ------------------------------------

def assert_matches_grid(problem, full_grid):
    exact = problem.exact(TIMES)
    ref = compute_reference(without_exact(problem), TIMES, full_grid=full_grid)
    assert ref.kind == "split-operator" and ref.bound["var"] <= 1e-6 and ref.edge_mass < 1e-8
    np.testing.assert_allclose(ref.prediction.var, exact.var, rtol=1e-6)
    np.testing.assert_allclose(ref.prediction.mean, exact.mean, atol=1e-6 * np.sqrt(exact.var.min()))
    l1 = (np.abs(ref.prediction.marginals - exact.marginals) @ np.diff(exact.edges)).max()
    assert l1 < 1e-6


@pytest.mark.parametrize("full_grid", [False, True], ids=["com-split", "full-grid"])
def test_harmonic_bosons_d2_matches_the_grid(full_grid):
    assert_matches_grid(HarmonicBosons(d=2), full_grid)


def test_harmonic_bosons_d3_matches_the_reduced_grid():
    assert_matches_grid(HarmonicBosons(d=3), full_grid=False)


@pytest.mark.slow  # grids past 100³ over hundreds of steps: about 130 s on two shared cores
def test_harmonic_bosons_d3_matches_the_full_grid():
    assert_matches_grid(HarmonicBosons(d=3), full_grid=True)


def test_gaussian_network_d2_matches_the_grid():
    assert_matches_grid(GaussianNetwork(d=2), full_grid=True)


@pytest.mark.slow  # an 88³ check grid: about 40 s on two shared cores
def test_gaussian_network_d3_matches_the_grid():
    assert_matches_grid(GaussianNetwork(d=3), full_grid=True)


def strang(problem, x: np.ndarray, n: int) -> np.ndarray:
    """ψ(T) from ψ0 on the periodic grid x (N, N, 2) by n Strang steps (FFT kinetic factor)."""
    h = problem.T / n
    k = 2 * np.pi * np.fft.fftfreq(x.shape[0], d=x[1, 0, 0] - x[0, 0, 0])
    drift = np.exp(-1j * problem.hbar * h / (2 * problem.m) * (k[:, None] ** 2 + k[None, :] ** 2))
    kick = np.exp(-0.5j * h / problem.hbar * problem.potential(x, 0.0))
    psi = problem.psi0(x)
    for _ in range(n):
        psi = kick * np.fft.ifft2(drift * np.fft.fft2(kick * psi))
    return psi


@pytest.mark.parametrize("problem", [HarmonicBosons(d=2), HarmonicBosons(d=2, kappa=0.8),
                                     GaussianNetwork(d=2)], ids=["bosons-inverted", "bosons-repulsive",
                                                                 "network"])
def test_exact_psi_matches_split_operator_including_phase(problem):
    """ψ(x, T) itself, global phase included, against Strang splitting on a 192² grid over 1.5×
    the box (|ψ| at the box's edge, 7 standard deviations, is still 5e-6 of its peak: it would
    wrap around), Richardson-extrapolated from 200 and 400 steps (its error is even in the step)."""
    lo, hi = problem.box
    centre, half = (lo + hi) / 2, 0.75 * (hi - lo)
    axis = np.linspace(centre - half, centre + half, 192, endpoint=False)
    x = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    psi = (4 * strang(problem, x, 400) - strang(problem, x, 200)) / 3
    exact = problem.psi(x, problem.T)
    np.testing.assert_allclose(problem.psi(x, 0.0), problem.psi0(x), atol=1e-12)
    assert np.abs(psi - exact).max() < 1e-6 * np.abs(exact).max()
    assert np.abs(exact - problem.psi0(x)).max() > 0.1 * np.abs(exact).max()  # it moved


# -- the dynamics is a real one ----------------------------------------------------------------

@pytest.mark.parametrize("d", [2, 3, 8, 100])
def test_default_quench_changes_the_variance_threefold(d):
    p = HarmonicBosons(d=d)
    assert p.kappa == pytest.approx(-3.0 / d) and p.relative_omega2 == pytest.approx(-2.0)
    var = p.exact(np.linspace(0, p.T, 101)).var[:, 0]
    assert var.max() / var.min() >= 3


def test_network_moves_every_coordinate_differently():
    p = GaussianNetwork(d=5)
    mean, var = p.exact_moments(np.linspace(0, p.T, 101))
    assert np.all(np.abs(mean - mean[0]).max(axis=0) > 0.05)  # every mean moves
    assert np.all(np.abs(var[-1] / var[0] - 1) > 0.05)  # every width breathes
    assert len({round(v, 6) for v in var[-1]}) == p.d  # no two coordinates alike
    U, _ = p.modes()
    assert np.abs(U - np.diag(np.diag(U))).max() > 0.1  # the modes mix coordinates
    assert not p.exchangeable()


def test_harmonic_bosons_parameters():
    assert HarmonicBosons(d=4, kappa=0.25).kappa == 0.25  # as written, no rescaling
    assert HarmonicBosons(d=4, omega=2.0, m=0.5).kappa == pytest.approx(-3.0 * 0.5 * 4 / 4)
    assert HarmonicBosons(d=2).params()["kappa"] == -1.5  # finite, printable, hashable
    hash(HarmonicBosons(d=2))
    with pytest.raises(UserError, match="d must be a positive integer"):
        HarmonicBosons(d=0)
    with pytest.raises(UserError, match="omega > 0"):
        HarmonicBosons(omega=-1.0)


def test_gaussian_network_parameters():
    assert not np.allclose(GaussianNetwork(seed=1).K, GaussianNetwork(seed=0).K)
    np.testing.assert_allclose(GaussianNetwork(d=3, coupling=0.0).K, np.diag([0.25, 1.5625, 4.0]))
    assert np.linalg.eigvalsh(GaussianNetwork(d=6).K).min() == pytest.approx(0.25)
    for bad in ({"seed": 1.5}, {"omega_min": 0.0}, {"omega_min": 3.0}, {"sigma0": 0.0}):
        with pytest.raises(UserError):
            GaussianNetwork(**bad)


def test_network_constants_follow_the_array_type():
    """K, x0 and p0 come as x's namespace and dtype: a float32 torch batch stays float32."""
    torch = pytest.importorskip("torch")
    p = GaussianNetwork(d=3)
    x = p.sample_initial(4, np.random.default_rng(3))
    xt = torch.tensor(x, dtype=torch.float32)
    pairs = ((p.potential(xt, 0.0), p.potential(x, 0.0)), (p.u0(xt), p.u0(x)), (p.v0(xt), p.v0(x)),
             (p.grad_potential(xt, 0.0), p.grad_potential(x, 0.0)), (p.log_psi0(xt)[1], p.log_psi0(x)[1]))
    for got, want in pairs:
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


# -- exchange symmetry -------------------------------------------------------------------------

def test_harmonic_bosons_are_exchangeable():
    p = HarmonicBosons(d=4)
    x = 2 * p.sample_initial(32, np.random.default_rng(1))
    for perm in itertools.permutations(range(4)):
        perm = list(perm)
        np.testing.assert_allclose(p.potential(x[:, perm], 0.3), p.potential(x, 0.3), rtol=1e-12)
        np.testing.assert_allclose(p.log_psi0(x[:, perm])[0], p.log_psi0(x)[0], rtol=1e-12)
        np.testing.assert_allclose(p.psi(x[:, perm], 0.7), p.psi(x, 0.7), rtol=1e-10)
    assert p.exchangeable()
    pred = p.exact(TIMES)
    for arr in (pred.mean, pred.var, pred.marginals):
        np.testing.assert_array_equal(arr, arr[:, :1].repeat(p.d, axis=1))


def test_harmonic_bosons_o_d_forms_match_the_pair_sums():
    p = HarmonicBosons(d=5, kappa=0.7)
    x = np.random.default_rng(2).standard_normal((7, 5))
    pairs = sum((x[:, i] - x[:, j]) ** 2 for i in range(5) for j in range(i + 1, 5))
    np.testing.assert_allclose(p.potential(x, 0.0), 0.5 * np.sum(x**2, axis=1) + 0.35 * pairs)
    grad = x + 0.7 * (x[:, :, None] - x[:, None, :]).sum(-1)  # ∂_k: x_k + κ Σ_j (x_k − x_j)
    np.testing.assert_allclose(p.grad_potential(x, 0.0), grad)


# -- another code agrees; large d -------------------------------------------------------------

@pytest.mark.parametrize("problem", [HarmonicBosons(d=2), GaussianNetwork(d=2)], ids=lambda p: p.name)
def test_crank_nicolson_agrees(problem):
    times = np.linspace(0, problem.T, 21)
    pred = CrankNicolsonSolver().solve(problem, times, CNSettings(points=256), Context())
    assert score(pred, problem.exact(times))["var_rel_l2"] <= 1e-2


def test_exact_at_d1000_is_finite_and_conserves():
    times = np.linspace(0, 1, 101)
    for p in (HarmonicBosons(d=1000), GaussianNetwork(d=1000)):
        pred = p.exact(times)
        assert pred.mean.shape == (101, 1000) and pred.marginals.shape == (101, 1000, p.n_bins)
        assert pred.finite
        mass = pred.marginals @ np.diff(pred.edges)  # norm conserved and held by the box
        np.testing.assert_allclose(mass, 1.0, atol=1e-6)
    # Ehrenfest for the network: d²⟨x⟩/dt² = −K⟨x⟩/m, by central differences on a fine grid
    h = 1e-3
    mean = p.exact_moments(np.array([0.5 - h, 0.5, 0.5 + h]))[0]
    accel = (mean[0] - 2 * mean[1] + mean[2]) / h**2
    np.testing.assert_allclose(accel, -mean[1] @ p.K / p.m, atol=1e-5 * np.abs(accel).max())
