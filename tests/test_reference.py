"""The reference solution (harness/reference/, harness/split_operator.py): the split-operator
grid run against exact solutions, its certified bound, box checks, the centre-of-mass reduction,
the memory budget and the disk cache."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.observables import gaussian_bins
from harness.reference import (EDGE_MAX, BoxTooSmall, GridSettings, GridTooLarge, bytes_per_point,
                               compute_reference, difference, initial_settings, run_grid)
from harness.reference.geometry import geometry
from harness.spectral_grid import Grid
from harness.split_operator import SplitOperator, composition, evolve
from problems import Bosons, DrivenTrap, Oscillator


def l1(a: np.ndarray, b: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """L1 distance of binned densities per time and coordinate."""
    return np.abs(a - b) @ np.diff(edges)


def test_composition_weights() -> None:
    for order in (2, 4, 6):
        assert composition(order).sum() == pytest.approx(1.0, abs=1e-14)
    assert composition(4).size == 3 and composition(6).size == 9


def _plain_steps(psi, grid, potential, hbar, m, order, h, steps):
    """The composed Strang step written plainly (new arrays, every half-kick taken on its own):
    what the in-place stepper must reproduce."""
    k2 = sum(np.meshgrid(*[grid.wavenumbers() ** 2] * grid.dims, indexing="ij"))
    t = 0.0
    for _ in range(steps):
        for f in composition(order):
            psi = np.exp(-1j * f * h / 2 * potential(t) / hbar) * psi
            psi = np.fft.ifftn(np.exp(-1j * hbar * f * h / (2 * m) * k2) * np.fft.fftn(psi))
            t += f * h
            psi = np.exp(-1j * f * h / 2 * potential(t) / hbar) * psi
    return psi


@pytest.mark.parametrize("problem, order", [(Bosons(d=3), 4), (Bosons(d=3), 6),
                                            (DrivenTrap(d=2, x0=0.2, p0=0.1, sigma0=0.2, A=0.3, Omega=2.0), 4)])
def test_in_place_stepper_matches_plain_steps(problem, order) -> None:
    """Merged kicks (across steps too), cached phases, slab-wise kinetic factors and in-place
    FFTs change nothing but rounding: ψ agrees with the plain composition to 1e-12."""
    grid = Grid(problem.d, 20, 2.5)
    x = np.stack(np.meshgrid(*[grid.axis()] * problem.d, indexing="ij"), axis=-1)
    potential = lambda t: problem.potential(x, t)  # noqa: E731
    psi0 = problem.psi0(x) * np.exp(0.7j * x[..., 0])  # a moving state: every factor matters
    expected = _plain_steps(psi0, grid, potential, problem.hbar, problem.m, order, 0.03, 5)
    stepper = SplitOperator(grid, potential, static=not problem.time_dependent, hbar=problem.hbar,
                            m=problem.m, order=order)
    psi, owed, t = psi0.copy(), 0.0, 0.0
    for _ in range(5):
        owed, _ = stepper.step(psi, t, 0.03, owed=owed)
        t += 0.03
    stepper.kick(psi, owed, t)
    assert np.abs(expected).max() > 0.5
    assert np.abs(psi - expected).max() < 1e-12 * np.abs(expected).max()


def test_complex64_agrees_with_complex128() -> None:
    """ψ in complex64 (densities summed in float64, rescaled to the initial norm, which drifts
    by ~1e-7 a stage) stays well within the 1e-5 bound it is used for: measured over 300
    stages, Var 1.7e-6 relative, means 2.6e-6, marginals 1.6e-6 in L1."""
    problem = Bosons(d=3)
    times = np.linspace(0, 1, 11)
    runs = [run_grid(problem, times, GridSettings(half=3.1, n=48, dt=0.01, order=4, reduced=True,
                                                  precision=p)).prediction for p in ("complex128", "complex64")]
    gap = difference(*runs)
    assert gap["var"] < 4e-6 and gap["mean"] < 4e-6 and gap["density_l1"] < 4e-6


@pytest.mark.parametrize("d", [1, 2])
def test_split_operator_matches_exact_oscillator(d: int) -> None:
    problem = Oscillator(d=d, x0=0.4, p0=0.3, sigma0=0.2, centre=0.1)
    times = np.linspace(0, problem.T, 11)
    lo, hi = problem.box
    settings = GridSettings(half=0.75 * (hi - lo), n=64 if d == 2 else 128, dt=0.02, order=4)
    run = run_grid(problem, times, settings)
    exact = problem.exact(times)
    pred = run.prediction
    assert np.abs(pred.var / exact.var - 1).max() <= 1e-7
    assert np.abs(pred.mean - exact.mean).max() <= 1e-8
    assert l1(pred.marginals, exact.marginals, exact.edges).max() <= 1e-6
    assert run.edge_mass < EDGE_MAX
    assert run.norm_drift < 1e-12


def test_time_dependent_potential_and_order() -> None:
    """V(x, t) is evaluated at the right sub-step times: the driven trap's mean follows the
    classical orbit, and halving the step cuts the error 4-fold (Strang) and 16-fold (order 4)."""
    problem = DrivenTrap(d=1, x0=0.2, p0=0.1, sigma0=0.2, A=0.3, Omega=2.0, T=1.0)
    times = np.linspace(0, problem.T, 5)
    target, var_exact = problem.exact_moments(times)

    def error(order: int, dt: float) -> float:
        lo, hi = problem.box
        pred = run_grid(problem, times, GridSettings(0.8 * (hi - lo), 128, dt, order)).prediction
        return float(np.abs(pred.mean[:, 0] - target).max())

    assert error(4, 0.01) < 1e-9
    e2 = [error(2, dt) for dt in (0.05, 0.025)]
    e4 = [error(4, dt) for dt in (0.25, 0.125)]
    assert 3.5 < e2[0] / e2[1] < 4.5
    assert 12 < e4[0] / e4[1] < 20
    pred = run_grid(problem, times, GridSettings(0.8 * (problem.box[1] - problem.box[0]), 128, 0.01, 4)).prediction
    assert np.abs(pred.var[:, 0] / var_exact - 1).max() < 1e-8


def test_norm_conserved() -> None:
    problem = Bosons(d=2)
    run = run_grid(problem, np.linspace(0, 1, 6), GridSettings(half=2.5, n=48, dt=0.01, order=4))
    assert run.norm_drift < 1e-12
    assert run.prediction.diagnostics["steps"] == 100


def test_bound_certified_bosons_d2() -> None:
    """The bound meets tol, is non-trivial, and an independent much finer run lies within it;
    the coarser run's own distance from that run is the size of the bound (not a fake)."""
    problem = Bosons(d=2)
    times = np.linspace(0, 1, 21)
    ref = compute_reference(problem, times, tol=1e-6)
    assert ref.kind == "split-operator"
    assert 0 < ref.bound["var"] <= 1e-6
    assert ref.edge_mass <= EDGE_MAX
    best = run_grid(problem, times, GridSettings(half=4.0, n=160, dt=0.005, order=6, reduced=True)).prediction
    actual = difference(best, ref.prediction)
    assert actual["var"] <= ref.bound["var"] and actual["mean"] <= max(ref.bound["mean"], 1e-12)
    assert actual["density_l1"] <= ref.bound["density_l1"]
    coarse = GridSettings(**{k: ref.settings["coarser"][k] for k in ("half", "n", "dt", "order", "reduced")})
    coarse_error = difference(best, run_grid(problem, times, coarse).prediction)["var"]
    assert 0.5 < coarse_error / ref.bound["var"] < 2


def test_small_box_detected_and_grown() -> None:
    problem = Bosons(d=2)
    times = np.linspace(0, 1, 11)
    small = GridSettings(half=1.2, n=26, dt=0.0125, order=4, reduced=True)
    assert run_grid(problem, times, small).edge_mass > 1e3 * EDGE_MAX
    ref = compute_reference(problem, times, start=small)
    runs = ref.settings["runs"]
    assert runs[0]["edge_mass"] > EDGE_MAX and ref.edge_mass <= EDGE_MAX
    assert ref.settings["reference"]["half"] > 1.2 * 1.3**2
    with pytest.raises(BoxTooSmall):
        compute_reference(problem, times, start=small, max_runs=1)


@pytest.mark.parametrize("d", [2, 3])
def test_com_reduction_matches_full_grid(d: int) -> None:
    problem = Bosons(d=d)
    times = np.linspace(0, 1, 6)
    reduced = compute_reference(problem, times, tol=1e-6)
    full = compute_reference(problem, times, tol=1e-6, full_grid=True)
    assert reduced.settings["reference"]["reduced"] and not full.settings["reference"]["reduced"]
    gap = difference(full.prediction, reduced.prediction)
    assert gap["var"] <= 1e-6 and gap["mean"] <= 1e-7 and gap["density_l1"] <= 1e-5


@pytest.mark.parametrize("d, fold", [(3, True), (5, False), (5, True)])
def test_reduced_initial_state_is_exact(d: int, fold: bool) -> None:
    """At t = 0 the reduced path reconstructs the exact Gaussian marginals of the bosons, every
    coordinate on its own (before the run averages them): at d = 5 in Helmert coordinates x_1,
    x_2 depend on all four relative axes, x_3 on three; in the folded pair basis x_1 … x_4 on a
    folded axis mirrored back and x_5 on one axis: every deposit path. The grid's samples along
    w_i·y, |w_i|·dx apart, must be well inside the COM Gaussian's width (here 0.09 against 0.1:
    aliasing ~e^{−2π²σ²/Δ²}); at dx = 0.15 x_5 misses by 1.6e-4."""
    problem = Bosons(d=d)
    settings = (initial_settings(problem, np.array([0.0]), reduced=True) if d == 3
                else GridSettings(half=2.0, n=40, dt=0.01, reduced=True, fold=fold))
    geo = geometry(problem, settings)
    assert geo.grid.folded == (d // 2 if fold else 0)
    edges = problem.marginal_edges()
    seen = []
    evolve(geo.psi0(), geo.grid, geo.potential, static=True, hbar=problem.hbar, m=problem.m, times=np.array([0.0]),
           dt=0.01, order=4, observe=lambda k, mass: seen.append(geo.observe(mass, edges, 0.0)))
    (mean, var, marg), = seen
    exact = gaussian_bins(np.zeros((1, d)), np.full((1, d), problem.sigma0**2), edges)
    assert np.abs(var - problem.sigma0**2).max() < 1e-12 and np.abs(mean).max() < 1e-12
    assert l1(marg[None], exact, edges).max() < 5e-6


def test_bosons_d2_variance_and_cache(tmp_path) -> None:
    problem = Bosons(d=2)
    times = np.linspace(0, 1, 11)
    ref = compute_reference(problem, times, cache_dir=tmp_path)
    assert ref.prediction.var[-1, 0] == pytest.approx(0.23, abs=0.01)
    assert ref.prediction.var[0, 0] == pytest.approx(problem.sigma0**2, rel=1e-9)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]
    start = time.perf_counter()
    again = compute_reference(problem, times, cache_dir=tmp_path)
    assert time.perf_counter() - start < 0.5
    for field in ("mean", "var", "marginals", "times", "edges"):
        np.testing.assert_array_equal(getattr(again.prediction, field), getattr(ref.prediction, field))
    assert again.bound == ref.bound and again.settings == ref.settings and again.kind == ref.kind


def test_exact_problems_skip_the_grid() -> None:
    ref = compute_reference(Bosons(d=6, g=0.0), np.linspace(0, 1, 5))
    assert ref.kind == "exact" and ref.bound == {"mean": 0.0, "var": 0.0, "density_l1": 0.0}


@pytest.mark.slow
@pytest.mark.parametrize("d, expected", [(3, 0.42), (4, 0.62)])
def test_bosons_spread_certified(d: int, expected: float) -> None:
    ref = compute_reference(Bosons(d=d), np.linspace(0, 1, 101), tol=1e-6)
    assert ref.bound["var"] <= 1e-6 and ref.edge_mass <= EDGE_MAX
    assert ref.prediction.var[-1, 0] == pytest.approx(expected, abs=0.01)


def test_a_grid_past_the_memory_budget_is_refused_before_running(monkeypatch) -> None:
    monkeypatch.setenv("QDBENCH_REFERENCE_GB", "0.0001")
    start = time.perf_counter()
    with pytest.raises(GridTooLarge, match=r"needs .* GB and about .* h \(.*\), budget 0.0001 GB"):
        compute_reference(Bosons(d=3), np.linspace(0, 1, 11))
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("full_grid", [False, True])
def test_a_huge_d_fails_fast_without_allocating(full_grid: bool) -> None:
    """d = 10⁹ is refused from the size of the smallest grid, before ψ0 is sampled (20 000 × d
    numbers) or the Helmert matrix (d × d) is made; the message is one line with the need."""
    start = time.perf_counter()
    with pytest.raises(GridTooLarge, match=r"bosons d=1000000000: .* needs at least 10\^\d+ GB, budget 8 GB") as info:
        compute_reference(Bosons(d=10**9), np.linspace(0, 1, 101), full_grid=full_grid)
    assert "\n" not in str(info.value)
    assert time.perf_counter() - start < 2


def test_every_grid_is_checked_before_it_runs(monkeypatch) -> None:
    """A box grown past the budget during certification is refused, not run: the start, its
    refinement and the box grown once fit a budget that the box grown twice does not."""
    small = GridSettings(half=1.2, n=26, dt=0.0125, order=4, reduced=True, fold=False)
    refined_gb = small.refined().n ** 1 * bytes_per_point("complex128", 4) / 1e9
    monkeypatch.setenv("QDBENCH_REFERENCE_GB", str(refined_gb * 1.01))
    with pytest.raises(GridTooLarge, match=f"grid of {small.grown().grown().n}\\^1 points"):
        compute_reference(Bosons(d=2), np.linspace(0, 1, 11), start=small)


def test_bosons_d6_is_refused_with_its_memory_and_time() -> None:
    """Past the CPU's reach the refusal says, in one line, what the grid would need."""
    start = time.perf_counter()
    need = r"needs [\d.]+ GB and about [\d.]+ h \(\d+ stages at \d+ ns a point, 2 CPU cores\)"
    with pytest.raises(GridTooLarge, match=rf"bosons d=6: its grid of \d+\^3·\d+\^2 points {need}, budget 8 GB") as info:
        compute_reference(Bosons(d=6), np.linspace(0, 1, 101))
    assert "\n" not in str(info.value)
    assert time.perf_counter() - start < 5


def test_bosons_d5_plan_fits_folded(monkeypatch) -> None:
    """d = 5's first grid comes from the energy its repulsion can turn kinetic (ψ0's own
    spectrum would give 80 points an axis); it runs complex64 to 1e-5 on the pair basis with
    two folded axes, so its check run (110 points an axis) fits the default 8 GB; under 1 GB
    it is refused at once, saying how much memory and time it needs."""
    problem, times = Bosons(d=5), np.linspace(0, 1, 101)
    start = initial_settings(problem, times, reduced=True, tol=1e-5)
    assert (start.n, start.precision, start.dt) == (88, "complex64", pytest.approx(0.01))
    assert (start.refined().n, start.refined().half, start.refined().dt) == (110, 1.05 * start.half, pytest.approx(0.005))
    monkeypatch.setenv("QDBENCH_REFERENCE_GB", "1")
    with pytest.raises(GridTooLarge, match=r"bosons d=5: its grid of 56\^2·110\^2 points needs 1.52 GB and about"):
        compute_reference(problem, times)


def test_a_corrupt_cache_entry_is_recomputed_and_overwritten(tmp_path) -> None:
    problem = Bosons(d=2)
    times = np.linspace(0, 1, 6)
    ref = compute_reference(problem, times, cache_dir=tmp_path)
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(entry.read_bytes()[:200])  # a write cut short (a full disk, a copy)
    with pytest.warns(UserWarning, match=f"recomputing: {entry}"):
        again = compute_reference(problem, times, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.prediction.var, ref.prediction.var)
    assert again.bound == ref.bound
    third = compute_reference(problem, times, cache_dir=tmp_path)  # served from the rewritten entry
    assert third.wall_s == again.wall_s
