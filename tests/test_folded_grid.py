"""Folded axes (harness/spectral_grid.py): a grid that keeps half of each exchange-reflected axis
gives the full grid's numbers, for even (bosons) and odd (fermions) ψ."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.fft as sfft

from harness.reference import GridSettings, difference, run_grid
from harness.reference.geometry import exchange_parity, pair_basis
from harness.spectral_grid import Grid
from problems import Bosons, Fermions


def _mirror(psi: np.ndarray, parity: int, n: int) -> np.ndarray:
    """ψ on the full first axis from its kept half (odd: zero at the centre and the edge)."""
    half = psi if parity > 0 else np.concatenate([np.zeros((1, *psi.shape[1:])), psi, np.zeros((1, *psi.shape[1:]))])
    j = np.arange(n) - n // 2
    sign = np.sign(j) if parity < 0 else np.ones(n)
    return sign.reshape(-1, *[1] * (psi.ndim - 1)) * half[np.abs(j)]


@pytest.mark.parametrize("parity", [1, -1])
def test_folded_transform_is_the_full_fft_of_the_mirrored_function(parity: int) -> None:
    """Transforming the kept half with the cosine (sine) transform, multiplying by a factor of
    k² and transforming back equals doing so with the FFT on the full mirrored axis; the
    weights are Parseval's, and unfold mirrors a mass."""
    n = 16
    grid, full = Grid(2, n, 2.0, parity=(parity,)), Grid(2, n, 2.0)
    rng = np.random.default_rng(0)
    psi = rng.standard_normal(grid.shape) + 1j * rng.standard_normal(grid.shape)
    kinetic = [np.exp(-0.3j * grid.wavenumbers(a) ** 2) for a in range(2)]
    work = psi.copy()
    grid.transform(work, workers=1)
    spectrum = work.copy()
    work *= np.multiply.outer(*kinetic)
    grid.transform(work, workers=1, inverse=True)
    k2 = full.wavenumbers() ** 2
    whole = _mirror(psi, parity, n)
    expected = sfft.ifftn(np.exp(-0.3j * np.add.outer(k2, k2)) * sfft.fftn(whole))
    np.testing.assert_allclose(_mirror(work, parity, n), expected, atol=1e-12)
    w = grid.weights(0)[:, None]
    assert (np.abs(spectrum) ** 2 * w).sum() == pytest.approx((np.abs(sfft.fftn(whole)) ** 2).sum(), rel=1e-12)
    assert (np.abs(psi) ** 2 * w).sum() == pytest.approx((np.abs(whole) ** 2).sum(), rel=1e-12)
    np.testing.assert_allclose(grid.unfold(np.abs(psi) ** 2 * w, (0, 1)), np.abs(whole) ** 2, atol=1e-14)


def test_pair_basis_is_orthonormal_and_reflected_by_the_exchanges() -> None:
    for d in (2, 3, 4, 5, 6):
        q, pairs = pair_basis(d)
        np.testing.assert_allclose(q @ q.T, np.eye(d), atol=1e-14)
        assert pairs == d // 2
        for k in range(pairs):  # swapping x_{2k+1}, x_{2k+2} flips row 1 + k and no other
            swap = np.arange(d)
            swap[[2 * k, 2 * k + 1]] = swap[[2 * k + 1, 2 * k]]
            sign = np.ones(d)
            sign[1 + k] = -1
            np.testing.assert_allclose(q[:, swap], sign[:, None] * q, atol=1e-14)
    q, _ = pair_basis(5)
    assert np.count_nonzero(np.abs(q[1:, 4]) > 1e-14) == 1  # x5 lies on one relative axis


@pytest.mark.parametrize("problem, n", [(Bosons(d=2), 48), (Bosons(d=3), 48),
                                        (Fermions(d=3, g=1.0, omega0=2.0, omega=2.0), 48)])
def test_folded_run_equals_the_unfolded_one_to_rounding(problem, n) -> None:
    """At d = 2, 3 the pair basis is the Helmert one: folding changes nothing but rounding, on
    even (bosons, cosine transform) and odd (interacting fermions, sine transform) ψ."""
    settings = GridSettings(half=3.1, n=n, dt=0.01, order=4, reduced=True)
    times = np.linspace(0, 1, 6)
    folded, plain = run_grid(problem, times, settings), run_grid(problem, times, dataclasses.replace(settings, fold=False))
    assert folded.shape[0] == (n // 2 + 1 if exchange_parity(problem) > 0 else n // 2 - 1)
    assert plain.shape == [n] * (problem.d - 1)
    gap = difference(plain.prediction, folded.prediction)
    assert gap["var"] < 1e-12 and gap["mean"] < 1e-8 and gap["density_l1"] < 1e-12
    assert folded.edge_mass == pytest.approx(plain.edge_mass, rel=1e-8)
    assert folded.spectrum_tail == pytest.approx(plain.spectrum_tail, rel=1e-8)


def test_folded_bosons_d4_agree_with_the_helmert_grid() -> None:
    """At d = 4 the bases differ (two folded pair axes against Helmert's), so the two grids
    discretise differently: two independent discretisations, agreeing to their resolution (the
    folded one with a quarter of the points)."""
    settings = GridSettings(half=3.1, n=64, dt=0.02, order=4, reduced=True)
    times = np.linspace(0, 1, 6)
    folded, plain = (run_grid(Bosons(d=4), times, dataclasses.replace(settings, fold=f)) for f in (True, False))
    assert folded.shape == [33, 33, 64]
    gap = difference(plain.prediction, folded.prediction)
    assert gap["var"] < 5e-7 and gap["density_l1"] < 5e-6  # measured 1.3e-7, 1.2e-6 (d = 4 certifies Var to 1e-6)


def test_no_exchange_parity_no_fold() -> None:
    assert exchange_parity(Bosons(d=1)) is None
    assert exchange_parity(Bosons(d=3)) == 1 and exchange_parity(Fermions(d=3)) == -1
