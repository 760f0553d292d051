"""The grid of one reference run (box half-width, points per axis, step, order, COM split) and
how it is refined for certification; the first grid is chosen from the physics of ψ0."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from harness.api import Problem

#: per certification: spacing × 0.85, box half-width × 1.05, step × 0.5; a box too small grows
#: × 1.3. Measured on gaussian_network d = 2: the box alone moves the marginals by 1e-6 in L1
#: (Var by 3e-10) with the edge mass under 1e-8, ×1.05 cuts that 4.6×, so the box is refined
#: too; ×1.05 and 0.85 (n × 1.24) rather than ×1.1 and 0.8 (n × 1.375) keep bosons d = 5's check
#: at 110 points an axis instead of 126 (1.7× fewer points), the spatial error falling
#: spectrally (88 → 110 points: Var 1.2e-6)
SPACING_REFINE, BOX_REFINE, STEP_REFINE, BOX_GROW = 0.85, 1.05, 0.5, 1.3
#: initial spacing and step (see initial_settings); measured on bosons d = 2, 3: the step error
#: in Var is ~4e-5 at dt = 0.05 (order 4), so dt = 0.016 for tol = 1e-6
K_MARGIN, STEP_SCALE = 14.0, 0.125
#: Nyquist over the wave number a coordinate reaches when the energy above V's floor is all
#: kinetic and shared equally (exchangeable coordinates): 2.5 keeps bosons d ≤ 4 on the ψ0 rule
#: (d = 4's 70 points an axis reach 2.6 of it) and resolves d = 5, whose repulsion turns 20
#: times the zero-point energy into motion (ψ0's rule there leaves 0.2 of |ψ̂|² in the outer
#: fifth of the Nyquist range at 60 points, 3.91 half-width)
K_ENERGY = 2.5
#: the tolerance by default, and on grids of RELAXED_AXES axes or more (a 4-axis grid certified
#: to 1e-6 would need far more than the memory budget and hours of compute)
TOL, RELAXED_TOL, RELAXED_AXES = 1e-6, 1e-5, 4
#: tolerances from this one up run ψ in complex64 (measured: its rounding moves Var by ~1e-7)
SINGLE_PRECISION_TOL = 1e-5


def even_fast_len(points: float) -> int:
    """The least even number of points ≥ ``points`` whose FFT is fast (an even grid is
    symmetric about its centre, so it can fold)."""
    n = sfft.next_fast_len(math.ceil(points))
    while n % 2:
        n = sfft.next_fast_len(n + 1)
    return n


def default_tol(dims: int) -> float:
    """The certification tolerance for a grid of ``dims`` axes."""
    return RELAXED_TOL if dims >= RELAXED_AXES else TOL


@dataclass(frozen=True)
class GridSettings:
    """One grid run: box half-width and points per axis, largest step, composition order
    (2, 4, 6), whether the centre of mass is split off (a grid of d − 1 axes), the precision
    of ψ (complex128 or complex64; densities are summed in float64 either way), and whether
    the relative axes of identical particles are folded by their exchange symmetry (a quarter
    of the points for d = 4, 5; the same numbers to rounding)."""

    half: float
    n: int
    dt: float
    order: int = 4
    reduced: bool = False
    precision: str = "complex128"
    fold: bool = True

    def __post_init__(self) -> None:
        if self.precision not in ("complex128", "complex64"):
            raise ValueError(f"precision must be complex128 or complex64, got {self.precision!r}")

    @property
    def dx(self) -> float:
        return 2 * self.half / self.n

    def dims(self, d: int) -> int:
        """The number of grid axes for a problem of dimension ``d``."""
        return d - 1 if self.reduced else d

    def _with(self, half: float, dx: float, dt: float) -> GridSettings:
        return dataclasses.replace(self, half=half, n=even_fast_len(2 * half / dx - 1e-9), dt=dt)

    def refined(self) -> GridSettings:
        """The certification run: finer spacing, larger box and smaller step, each."""
        return self._with(self.half * BOX_REFINE, self.dx * SPACING_REFINE, self.dt * STEP_REFINE)

    def grown(self) -> GridSettings:
        """A larger box at the same spacing and step."""
        return self._with(self.half * BOX_GROW, self.dx, self.dt)

    def finer(self) -> GridSettings:
        """A finer spacing in the same box."""
        return self._with(self.half, self.dx * SPACING_REFINE, self.dt)


def initial_settings(problem: Problem, times: np.ndarray, reduced: bool, tol: float = 1e-6,
                     order: int = 4) -> GridSettings:
    """A first grid from the physics.

    Box: the problem's, widened by √(d/(d−1)) for the relative coordinates (exchangeable
    coordinates with a narrow centre of mass have Var(y_rel) ≈ d/(d−1) Var(x_i)).
    Spacing: π / (K_MARGIN · k_rms), with k_rms = √⟨p_i²⟩/ħ the rms wave number of ψ0,
    ⟨p_i²⟩ = m²⟨u_i² + v_i²⟩ from Nelson's velocities (20 000 samples of ψ0: 20 000 × d numbers);
    for exchangeable coordinates in a static potential, also at most π / (K_ENERGY · k_E),
    k_E = √(2m(E − V_low)/d)/ħ the wave number a coordinate reaches if the energy E above the
    potential's floor V_low (the least of 0 and V on the samples) turns kinetic, shared equally.
    Step: STEP_SCALE · tol^{1/4} (the 4th-order error) times the kinetic time scale
    2mħ/⟨p_i²⟩ (4/ω for a trap's ground state), and never above the shortest gap between
    scored times, so that halving it halves the step actually taken."""
    x = problem.sample_initial(20_000, np.random.default_rng(2))
    u, v = np.asarray(problem.u0(x)), np.asarray(problem.v0(x))
    p2 = float((problem.m**2 * (u**2 + v**2).mean(axis=0)).max())
    lo, hi = problem.box
    half = (hi - lo) / 2 * (math.sqrt(problem.d / (problem.d - 1)) if reduced else 1.0)
    k_max = K_MARGIN * math.sqrt(p2) / problem.hbar
    if not problem.time_dependent and problem.exchangeable():
        potential = np.asarray(problem.potential(x, 0.0))
        energy = float(problem.m / 2 * (u**2 + v**2).sum(axis=1).mean() + potential.mean())
        floor = min(0.0, float(potential.min()))
        k_max = max(k_max, K_ENERGY * math.sqrt(2 * problem.m * (energy - floor) / problem.d) / problem.hbar)
    n = even_fast_len(2 * half * k_max / math.pi)
    gaps = np.diff(np.concatenate([[0.0], np.asarray(times, dtype=float)]))
    dt = STEP_SCALE * tol**0.25 * 2 * problem.m * problem.hbar / p2
    dt = float(min([problem.T, dt, *gaps[gaps > 0]]))
    precision = "complex64" if tol >= SINGLE_PRECISION_TOL else "complex128"
    return GridSettings(half=half, n=n, dt=dt, order=order, reduced=reduced, precision=precision)
