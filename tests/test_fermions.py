"""fermions: the closed form (g = 0) against the split-operator grid, the certified interacting
reference, ψ0 against the explicit Slater determinant, the GUE sampler against the exact density,
the Hermite recurrence against scipy, and the conformance kit."""

import dataclasses
import math

import numpy as np
import pytest
from scipy.special import eval_hermite, ndtri

from harness.check import check_problem
from harness.reference import compute_reference
from problems import slater
from problems.fermions import Fermions

TIMES = np.linspace(0, 1, 11)


def without_exact(problem):
    """The same problem with its closed form hidden, so the reference must run the grid."""
    cls = dataclasses.dataclass(frozen=True)(
        type("GridFermions", (Fermions,), {"exact": lambda self, t: None}))
    return cls(**problem.params())


def hermite_functions(xi, d):
    """ψ_n(ξ) for n < d from scipy's Hermite polynomials (factorials: small d only), (..., d)."""
    n = np.arange(d)
    norm = np.sqrt(2.0**n * np.array([math.factorial(k) for k in n]) * math.sqrt(math.pi))
    return eval_hermite(n, np.asarray(xi)[..., None]) * np.exp(-np.asarray(xi)[..., None] ** 2 / 2) / norm


@pytest.mark.parametrize("d", [2, pytest.param(3, marks=pytest.mark.slow)])  # d = 3: ~90 s
def test_exact_matches_the_split_operator_grid(d):
    p = Fermions(d=d)
    exact = p.exact(TIMES)
    ref = compute_reference(without_exact(p), TIMES, full_grid=True)
    assert ref.kind == "split-operator" and ref.bound["var"] <= 1e-6
    assert exact.var.min() < 0.3 * exact.var[0, 0]  # the quench really squeezes the cloud
    np.testing.assert_allclose(ref.prediction.var, exact.var, rtol=1e-6)
    np.testing.assert_allclose(ref.prediction.mean, 0.0, atol=1e-6 * np.sqrt(exact.var.max()))
    l1 = (np.abs(ref.prediction.marginals - exact.marginals) @ np.diff(exact.edges)).max()
    assert l1 < 1e-5


def test_interacting_reference_is_certified_and_every_marginal_equal():
    p = Fermions(d=2, g=1.0)
    assert p.exact(TIMES) is None and p.separable_com() == (2.0, 1.0)  # a quench: the COM breathes
    ref = compute_reference(p, TIMES)
    assert ref.kind == "split-operator" and ref.bound["var"] <= 1e-6 and ref.edge_mass < 1e-8
    pred = ref.prediction
    np.testing.assert_allclose(pred.marginals[:, 1], pred.marginals[:, 0], rtol=0,
                               atol=1e-9 * pred.marginals.max())
    np.testing.assert_allclose(pred.var[:, 1], pred.var[:, 0], rtol=1e-9)
    free = Fermions(d=2).exact(TIMES).var
    assert pred.var[-1, 0] > 1.5 * free[-1, 0]  # the repulsion resists the squeeze


@pytest.mark.parametrize("omega", [1.0, 2.0], ids=["stationary-com", "breathing-com"])
def test_the_centre_of_mass_splits_off_with_or_without_a_quench(omega):
    """The relative grid (folded: ψ odd in x1 − x2, sine transforms) with the centre of mass
    added back as a Gaussian, stationary (ω0 = ω) or breathing exactly (the quench), agrees with
    the full grid."""
    p = Fermions(d=2, omega=omega, g=1.0)
    assert p.separable_com() == (omega, 1.0)
    reduced = compute_reference(p, TIMES)
    full = compute_reference(p, TIMES, full_grid=True)
    assert reduced.settings["reference"]["reduced"] and not full.settings["reference"]["reduced"]
    assert reduced.settings["reference"]["shape"] == [reduced.settings["reference"]["n"] // 2 - 1]
    np.testing.assert_allclose(reduced.prediction.var, full.prediction.var, rtol=1e-7)
    l1 = (np.abs(reduced.prediction.marginals - full.prediction.marginals) @ np.diff(full.prediction.edges)).max()
    assert l1 < 1e-6


def test_psi0_is_the_normalised_antisymmetric_slater_determinant():
    p = Fermions(d=4)
    x = np.random.default_rng(3).normal(0, 0.4, (50, 4))
    log_abs, phase = p.log_psi0(x)
    det = np.linalg.det(hermite_functions(x / p.ell0, 4)) / math.sqrt(math.factorial(4) * p.ell0**4)
    np.testing.assert_allclose(np.exp(log_abs) * np.cos(phase), det, rtol=1e-10)
    swapped = p.log_psi0(x[:, [1, 0, 2, 3]])
    np.testing.assert_allclose(swapped[0], log_abs, rtol=1e-12)
    np.testing.assert_allclose(np.cos(swapped[1] - phase), -1.0)
    assert p.exchangeable() and Fermions.has_nodes
    # quadrature at d = 2 on a grid 2.5× the box (|ψ0|² is a polynomial times a Gaussian)
    q = Fermions(d=2)
    axis = np.linspace(2.5 * q.box[0], 2.5 * q.box[1], 801)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    assert abs(np.exp(2 * q.log_psi0(grid)[0]).sum() * (axis[1] - axis[0]) ** 2 - 1) < 1e-10


def test_u0_is_the_gradient_of_log_density_off_the_nodes():
    torch = pytest.importorskip("torch")
    p = Fermions(d=30)
    x = torch.tensor(p.sample_initial(8, np.random.default_rng(4)), requires_grad=True)
    log_abs, _ = p.log_psi0(x)
    (grad,) = torch.autograd.grad(log_abs.sum(), x)
    np.testing.assert_allclose(p.u0(x.detach()).numpy(), (p.hbar / p.m) * grad.numpy(), rtol=1e-10)
    assert np.isfinite(p.u0(x.detach()).numpy()).all()
    assert np.all(p.v0(x.detach()).numpy() == 0)


def test_one_body_density_recurrence_against_scipy_and_sum_rules():
    xi = np.linspace(-7, 7, 301)
    np.testing.assert_allclose(slater.one_body_density(xi, 12), (hermite_functions(xi, 12) ** 2).sum(-1),
                               rtol=1e-11, atol=1e-14)
    # d = 1000, where e^{−ξ²/2} and the factorials underflow: ∫n = d and ∫ξ²n = d²/2
    d = 1000
    xi = np.linspace(-60, 60, 400_001)
    n = slater.one_body_density(xi, d)
    h = xi[1] - xi[0]
    assert abs(n.sum() * h / d - 1) < 1e-10
    assert abs((xi**2 * n).sum() * h / (d**2 / 2) - 1) < 1e-10
    # the binned masses against the same fine sum
    cut = np.array([-30.0, -5.0, 0.0, 0.013, 44.0])
    mass = np.diff(slater.cumulative_mass(cut, d))
    cum = np.concatenate([[0], np.cumsum((n[1:] + n[:-1]) / 2 * h)])
    np.testing.assert_allclose(mass, np.diff(np.interp(cut, xi, cum)), rtol=1e-7, atol=1e-9)


def test_exact_at_large_d_holds_the_mass_and_the_variance():
    p = Fermions(d=1000)
    pred = p.exact(np.linspace(0, 1, 101))
    widths = np.diff(pred.edges)
    mass = pred.marginals[:, 0] @ widths
    assert np.all(np.abs(mass - 1) < 1e-9)
    centres = (pred.edges[1:] + pred.edges[:-1]) / 2
    var_bins = (pred.marginals[:, 0] * widths) @ centres**2
    # midpoint moments of 120 bins: within (bin width)²/12 + a small oscillation term
    np.testing.assert_allclose(var_bins, pred.var[:, 0], rtol=2e-3)
    np.testing.assert_allclose(pred.var[:, 0], p.scale(pred.times) ** 2 * 1000 * p.sigma0**2)


@pytest.mark.parametrize("d", [3, 12])
def test_samples_match_the_exact_moments_and_one_body_density(d):
    p = Fermions(d=d)
    n = 20_000
    x = p.sample_initial(n, np.random.default_rng(5))
    exact = p.exact(np.array([0.0]))
    var = exact.var[0, 0]
    # variance of each coordinate within 5 standard errors (Var(x²) from the samples)
    se = np.sqrt(((x**2 - var) ** 2).mean(0) / n)
    assert np.all(np.abs((x**2).mean(0) - var) < 5 * se)
    assert np.all(np.abs(x.mean(0)) < 5 * np.sqrt(var / n))
    # exchangeable samples: no coordinate is the smallest more often than chance
    smallest = np.bincount(np.argmin(x, axis=1), minlength=d) / n
    assert np.all(np.abs(smallest - 1 / d) < 5 * np.sqrt(1 / d / n))
    # histogram of all coordinates against the one-body density / d: every bin within z
    # standard deviations (z: two-sided 1e-4 normal quantile, Bonferroni over the bins)
    edges = exact.edges
    prob = exact.marginals[0, 0] * np.diff(edges)
    counts = sum(np.histogram(x[:, i], edges)[0] for i in range(d))
    total = n * d
    keep = prob * total > 20
    z = ndtri(1 - 1e-4 / (2 * keep.sum()))
    # a draw's count in a bin is a determinantal process's: its variance is at most its mean
    spread = np.sqrt(total * prob[keep])
    assert np.all(np.abs(counts[keep] - total * prob[keep]) < z * spread)
    # and in L1, below 1.3× what Poisson counts would give on average (a Gaussian of the same
    # variance is 0.24 away from the exact marginal at d = 3 and 12; the Poisson L1 is 0.023, 0.013)
    poisson_l1 = math.sqrt(2 / math.pi) * np.sqrt(prob / total).sum()
    assert np.abs(counts / total - prob).sum() < 1.3 * poisson_l1


def test_parameters_and_box():
    with pytest.raises(ValueError):
        Fermions(omega0=0.0)
    # the box grows like √d and holds the widest b when the trap opens (ω0 > ω)
    assert Fermions(d=1000).box[1] > 8 * Fermions(d=2).box[1]
    opening = Fermions(d=4, omega0=3.0, omega=1.0)
    pred = opening.exact(np.linspace(0, 1, 51))
    assert pred.var.max() > 4 * pred.var[0, 0]
    assert np.all(1 - pred.marginals[:, 0] @ np.diff(pred.edges) < 1e-9)


def test_conformance_kit_passes():
    failed = [r for r in check_problem(Fermions) if not r.passed]
    assert not failed, failed


def test_crank_nicolson_scores_on_the_quench():
    from harness.api import Context
    from harness.metrics import score
    from harness.runner import scored_times
    from solvers.crank_nicolson import CrankNicolsonSolver, Settings

    p = Fermions(d=2)
    times = np.concatenate([[0.0], scored_times(p, 20)])
    pred = CrankNicolsonSolver().solve(p, times, Settings(), Context())
    scores = score(pred, p.exact(times))
    assert scores["var_rel_l2"] <= 1e-2 and scores["density_l1"] <= 1e-2


@pytest.mark.parametrize("name", ["dsm", "pinn", "tvmc"])
def test_solvers_built_on_log_psi0_refuse_the_nodes_with_the_reason(name):
    """Methods whose ansatz has no nodes, or that differentiate log|ψ0|, say so in supports."""
    from harness.registry import discover

    solver = discover().solver(name)()
    ok, reason = solver.supports(Fermions(d=3), None)
    assert not ok and "node" in reason
