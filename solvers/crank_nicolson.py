"""Crank–Nicolson on a product grid: the classic finite-difference TDSE solver, in any d that fits.

Grid: n interior points per axis on [a, b] with ψ = 0 at the walls, spacing h = (b − a)/(n + 1),
and the 3-point Laplacian on that same h (a consistent grid: the DSM paper's qmsolve run used
spacing extent/N with N points, which costs about 1.4 % in ⟨x²⟩ at t = 1).

Step (Strang): ψ ← e^{−iVτ/2ħ} · Π_k C_k · e^{−iVτ/2ħ} ψ, V taken at the step's midpoint, where
C_k = (1 + iτK_k/2ħ)⁻¹(1 − iτK_k/2ħ) is the Crank–Nicolson (Cayley) step of axis k's kinetic
operator K_k = −(ħ²/2m) D²_k. The C_k commute, so their product is second order in τ and exactly
unitary, like the potential factors; the scheme is second order in h and τ and conserves the norm
to rounding.

Each C_k is one tridiagonal solve per grid line, all lines at once. The matrix is the same for
every line, so its LU factors are computed once per step size; the Thomas sweep runs over the
contiguous slices of axis 0, vectorised across the n^{d−1} lines, and after each axis the state
is copied with its axes rotated so that the next axis is again axis 0. Measured on 2 shared
cores, one kinetic step (all axes): 48⁴ 307 ms for the sweep along strided axes, 611 ms with
scipy.linalg.solve_banded, 279 ms with a sine transform (which diagonalises the same matrices),
155–210 ms for the rotated sweep used here; 32⁴ 42 / 82 / 47 / 32 ms. With few lines (d = 1,
d = 2 up to 128²) LAPACK's compiled zgttrs on the precomputed factors wins instead (100²:
0.34 ms against 0.69 ms for the sweep). A direct sparse LU of the whole d = 2 CN matrix solves
in 1.0 ms after a 30 ms factorisation, must be refactored for a time-dependent V and fills in
badly past d = 2.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from harness.api import Context, Prediction, Problem, Solver, SolverDiverged, UserError
from harness.observables import grid_observables

#: memory per grid point: state, sweep buffer and potential phase (complex128), density and
#: the potential while it is evaluated (float64); measured: 16.8 M points, 56 B/point above the
#: process's baseline
BYTES_PER_POINT = 64
#: automatic resolution: the most points per axis, at most AUTO_MAX, with points^d ≤ AUTO_TOTAL,
#: but at least enough for a spacing of RESOLVE × ψ0's narrowest standard deviation
AUTO_TOTAL = 2**24
AUTO_MAX = 1024
RESOLVE = 0.5
#: grids with at most this many lines per axis use LAPACK's tridiagonal solve (see CNKinetic)
LAPACK_MAX_LINES = 128
#: points per evaluation of the potential or ψ0 on the grid
SLAB_POINTS = 2**16
#: work–precision ladder: (points per axis, step) as multiples of the chosen setting's
LADDER = ((0.5, 4.0), (0.71, 2.0), (1.0, 1.0), (1.41, 0.5))


@dataclass
class Settings:
    """Crank–Nicolson grid and step; the defaults are the ``quick`` preset."""

    points: int | None = None  #: interior points per axis; None: automatic (AUTO_TOTAL, RESOLVE)
    box: float | tuple[float, float] | None = None  #: None: the problem's box; w: [−w, w]; (a, b)
    dt: float = 1e-2  #: largest time step (each interval between output times is split evenly)
    memory_gb: float = 4.0  #: refuse grids whose state and work arrays need more than this

    def __post_init__(self) -> None:
        if self.points is not None and (isinstance(self.points, bool) or int(self.points) != self.points
                                        or self.points < 3):
            raise UserError(f"crank_nicolson: points must be an integer >= 3, got {self.points!r}")
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise UserError(f"crank_nicolson: dt must be a positive number, got {self.dt!r}")
        if not (self.memory_gb > 0 and math.isfinite(self.memory_gb)):
            raise UserError(f"crank_nicolson: memory_gb must be a positive number, got {self.memory_gb!r}")
        if self.box is not None:
            bounds = (-self.box, self.box) if np.isscalar(self.box) else tuple(self.box)
            if len(bounds) != 2 or not all(math.isfinite(b) for b in bounds) or bounds[0] >= bounds[1]:
                raise UserError(f"crank_nicolson: box must be a half-width > 0 or bounds (a, b) with "
                                f"a < b, got {self.box!r}")
            self.box = (float(bounds[0]), float(bounds[1]))

    def grid(self, problem: Problem) -> tuple[int, float, float]:
        """(points per axis, a, b) of the grid this setting gives ``problem``."""
        a, b = self.box if self.box is not None else problem.box
        n = self.points
        if n is None:
            width = problem.sample_initial(4096, np.random.default_rng(0)).std(axis=0).min()
            n = max(min(AUTO_MAX, int(AUTO_TOTAL ** (1 / problem.d) + 1e-9)),
                    math.ceil((b - a) / (RESOLVE * width)) - 1)
        return int(n), float(a), float(b)


def _on_grid(f, x: np.ndarray, d: int, dtype) -> np.ndarray:
    """f(points) for every point of the grid x^d, evaluated in slabs of whole axis-0 slices of
    about SLAB_POINTS points (f's temporaries, e.g. the bosons' pair table, stay small)."""
    n, rest = x.size, x.size ** (d - 1)
    tail = (np.stack([g.ravel() for g in np.meshgrid(*[x] * (d - 1), indexing="ij")], axis=-1)
            if d > 1 else np.empty((1, 0)))
    block = max(1, SLAB_POINTS // rest)
    out = np.empty(n**d, dtype=dtype)
    for i in range(0, n, block):
        head = x[i:i + block]
        pts = np.concatenate([np.repeat(head, rest)[:, None], np.tile(tail, (head.size, 1))], axis=1)
        out[i * rest:(i + head.size) * rest] = f(pts)
    return out.reshape((n,) * d)


class CNKinetic:
    """The per-axis Crank–Nicolson steps Π_k C_k for a step τ, on states of shape (n,)*d + (1,).

    Many grid lines (n^{d−1} > LAPACK_MAX_LINES): a Thomas sweep written in numpy, vectorised over
    the lines. Few lines (d = 1, small d = 2 grids): LAPACK's zgttrs on the same matrix, whose
    compiled loop beats the sweep's per-slice overhead there (400 points, d = 1: 0.01 ms against
    1.9 ms; 100², 0.34 against 0.69 ms; 256², 4.4 against 2.1 ms)."""

    def __init__(self, n: int, h: float, tau: float, hbar: float, m: float, lines: int):
        # (1 + iτK/2ħ) has diagonal 1 + 2ir and off-diagonals −ir, with r = ħτ/(4mh²);
        # the right-hand side (1 − iτK/2ħ)ψ has 1 − 2ir and +ir.
        r = hbar * tau / (4 * m * h * h)
        diag, off = 1 + 2j * r, -1j * r
        self.tau = tau
        self.rhs_centre, self.rhs_side = 1 - 2j * r, 1j * r
        if lines <= LAPACK_MAX_LINES:
            *factors, _ = lapack.zgttrf(np.full(n - 1, off), np.full(n, diag), np.full(n - 1, off))
            self.factors = factors
            return
        self.factors = None
        inv, upper = np.empty(n, complex), np.empty(n, complex)
        inv[0] = 1 / diag
        upper[0] = off * inv[0]
        for j in range(1, n):
            inv[j] = 1 / (diag - off * upper[j - 1])
            upper[j] = off * inv[j]
        # forward sweep: y_j = inv_j [(1 − 2ir) ψ_j + ir (ψ_{j−1} + ψ_{j+1} + y_{j−1})]
        self.centre = self.rhs_centre * inv
        self.side = self.rhs_side * inv
        self.upper = upper  # back substitution: y_j −= upper_j y_{j+1}

    def apply(self, psi: np.ndarray, work: np.ndarray) -> None:
        """psi ← Π_k C_k psi, in place; work is a buffer like psi.

        Each pass solves along one axis and then copies the state with its axes rotated, so
        that every pass works on contiguous memory; after d passes the order is restored."""
        d, n = psi.ndim - 1, psi.shape[0]
        if self.factors is not None:  # lines along the last axis: rows of (n^{d-1}, n)
            rows, out = psi.reshape(-1, n), work.reshape(-1, n)
            for _ in range(d):
                np.multiply(rows, self.rhs_centre, out=out)
                out[:, 1:] += self.rhs_side * rows[:, :-1]
                out[:, :-1] += self.rhs_side * rows[:, 1:]
                x, _ = lapack.zgttrs(*self.factors, out.T, overwrite_b=1)
                np.copyto(psi, np.moveaxis(x.T.reshape(work.shape), d - 1, 0))
            return
        line = np.empty(psi.shape[1:], complex)
        for _ in range(d):  # lines along axis 0: slices psi[j] are contiguous
            src, dst = psi, work
            for j in range(n):
                if j == 0:
                    np.copyto(line, src[1])
                elif j == n - 1:
                    np.add(src[j - 1], dst[j - 1], out=line)
                else:
                    np.add(src[j - 1], src[j + 1], out=line)
                    line += dst[j - 1]
                line *= self.side[j]
                np.multiply(src[j], self.centre[j], out=dst[j])
                dst[j] += line
            for j in range(n - 2, -1, -1):
                np.multiply(dst[j + 1], self.upper[j], out=line)
                dst[j] -= line
            np.copyto(psi, np.moveaxis(dst, 0, d - 1))


def strang_step(psi: np.ndarray, phase: np.ndarray, kinetic: CNKinetic, work: np.ndarray) -> None:
    """One step in place: ψ ← P · Π_k C_k · P ψ, with P = e^{−iVτ/2ħ} held in ``phase``."""
    psi *= phase
    kinetic.apply(psi, work)
    psi *= phase


def memory_needed(n: int, d: int) -> float:
    """Bytes the solver holds for an n^d grid."""
    return float(n) ** d * BYTES_PER_POINT


class CrankNicolsonSolver(Solver):
    name = "crank_nicolson"
    deterministic = True
    summary = "Crank–Nicolson finite differences (Strang-split potential, per-axis tridiagonal sweeps)"
    Settings = Settings
    presets = {
        "smoke": dict(points=24, dt=1e-2),
        "quick": {},
        "paper": dict(points=100, box=1.5, dt=1e-3),
    }

    def ladder(self, problem: Problem, settings: Settings) -> list[dict]:
        """Coarser and finer grids around ``settings``: points per axis × 0.5 … 1.4 and the step
        × 4 … 0.5 together (the O(dx²) and O(dt²) errors fall together), ``settings`` itself
        as {}; rungs past the memory budget are left out."""
        n, _, _ = settings.grid(problem)
        rungs = []
        for scale, step in LADDER:
            points = max(3, round(n * scale))
            if (scale, step) == (1.0, 1.0):
                rungs.append({})
            elif memory_needed(points, problem.d) <= settings.memory_gb * 1e9:
                rungs.append({"points": points, "dt": settings.dt * step})
        return rungs

    def supports(self, problem: Problem, settings: Settings | None = None) -> tuple[bool, str]:
        """Refuse a grid whose arrays exceed the memory budget (default settings: the quick preset)."""
        settings = settings or Settings(**self.presets[self.default_preset])
        n, _, _ = settings.grid(problem)
        need = memory_needed(n, problem.d)
        if need > settings.memory_gb * 1e9:
            gb = need / 1e9
            size = f"{gb:,.0f}" if 1e3 <= gb < 1e9 else f"{gb:.3g}"
            return False, (f"needs {size} GB of memory for {n}^{problem.d} points, "
                           f"budget {settings.memory_gb:g} GB")
        return True, ""

    def solve(self, problem: Problem, times: np.ndarray, settings: Settings, ctx: Context) -> Prediction:
        times = np.asarray(times, dtype=float)
        if times.size and times.min() < 0:
            raise UserError("crank_nicolson: times must be >= 0")
        start = time.perf_counter()
        d, hbar = problem.d, problem.hbar
        n, a, b = settings.grid(problem)
        h = (b - a) / (n + 1)
        x = a + h * np.arange(1, n + 1)
        t_end = float(times.max(initial=0.0))
        moving_v = problem.time_dependent

        shape = (n,) * d + (1,)  # trailing axis: axis-0 slices stay arrays even at d = 1
        psi = _on_grid(problem.psi0, x, d, complex).reshape(shape)
        mass0 = float(np.vdot(psi, psi).real * h**d)  # below 1 when the box cuts off ψ0's tails
        work = np.empty_like(psi)
        phase = np.empty(shape, complex)
        kinetic = None

        def set_phase(t_mid: float, tau: float) -> None:
            """phase ← e^{−iV(t_mid)τ/2ħ}: every step for a moving V, once per τ for a static one."""
            v = _on_grid(lambda p: problem.potential(p, t_mid), x, d, float)
            np.multiply(v.reshape(shape), -0.5j * tau / hbar, out=phase)
            np.exp(phase, out=phase)

        edges = problem.marginal_edges()
        k_out = times.size
        mean, var = np.empty((k_out, d)), np.empty((k_out, d))
        marg = np.empty((k_out, d, edges.size - 1))
        mass = np.empty(k_out)
        density = np.empty((n,) * d)
        t, steps = 0.0, 0
        for k in np.argsort(times, kind="stable"):
            delta = times[k] - t
            count = math.ceil(delta / settings.dt - 1e-9) if delta > 0 else 0
            if count:
                tau = delta / count
                # reuse the factors when τ agrees to rounding (evenly spaced output times)
                if kinetic is None or abs(tau - kinetic.tau) > 1e-9 * tau:
                    kinetic = CNKinetic(n, h, tau, hbar, problem.m, n ** (d - 1))
                    if not moving_v:
                        set_phase(0.0, tau)
                tau = kinetic.tau
                for s in range(count):
                    if moving_v:
                        set_phase(t + (s + 0.5) * tau, tau)
                    strang_step(psi, phase, kinetic, work)
                steps += count
            t = float(times[k])
            np.abs(psi.reshape(density.shape), out=density)
            density *= density
            mass[k] = density.sum() * h**d
            if not math.isfinite(mass[k]):
                raise SolverDiverged(f"crank_nicolson: the state became NaN or inf by t = {t:g}")
            mean[k], var[k], marg[k] = grid_observables([x] * d, density, edges)
            ctx.progress(t / t_end if t_end > 0 else 1.0, t=t, steps=steps)

        diagnostics = dict(
            points=n, box=[a, b], spacing=h, dt=settings.dt, steps=steps,
            time_dependent_potential=moving_v, grid_mass=mass0,
            norm_drift=float(np.max(np.abs(mass / mass0 - 1), initial=0.0)),
            fit_s=time.perf_counter() - start,
        )
        return Prediction(times, mean, var, marg, edges, diagnostics=diagnostics)
