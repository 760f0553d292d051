"""The reference solution (harness/reference/, harness/split_operator.py): the split-operator
grid run against exact solutions, its certified bound, box checks, the centre-of-mass reduction,
the memory budget and the disk cache."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.observables import gaussian_bins
from harness.reference import (EDGE_MAX, BoxTooSmall, GridSettings, GridTooLarge, compute_reference,
                               difference, initial_settings, run_grid)
from harness.split_operator import composition
from problems import Bosons, DrivenTrap, Oscillator


def l1(a: np.ndarray, b: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """L1 distance of binned densities per time and coordinate."""
    return np.abs(a - b) @ np.diff(edges)


def test_composition_weights() -> None:
    for order in (2, 4, 6):
        assert composition(order).sum() == pytest.approx(1.0, abs=1e-14)
    assert composition(4).size == 3 and composition(6).size == 9


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


def test_reduced_initial_state_is_exact() -> None:
    """At t = 0 the reduced path reconstructs the exact Gaussian marginals of the bosons."""
    problem = Bosons(d=3)
    run = run_grid(problem, np.array([0.0]), initial_settings(problem, np.array([0.0]), reduced=True))
    edges = problem.marginal_edges()
    exact = gaussian_bins(np.zeros((1, 3)), np.full((1, 3), problem.sigma0**2), edges)
    assert np.abs(run.prediction.var - problem.sigma0**2).max() < 1e-12
    assert l1(run.prediction.marginals, exact, edges).max() < 5e-6


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
    with pytest.raises(GridTooLarge, match="needs .* GB, budget 0.0001 GB"):
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
    small = GridSettings(half=1.2, n=26, dt=0.0125, order=4, reduced=True)
    monkeypatch.setenv("QDBENCH_REFERENCE_GB", str(small.refined().n ** 1 * 80 / 1e9 * 1.01))
    with pytest.raises(GridTooLarge, match=f"grid of {small.grown().grown().n}\\^1 points"):
        compute_reference(Bosons(d=2), np.linspace(0, 1, 11), start=small)


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
