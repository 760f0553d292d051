"""The reference solution every solver is scored against (DESIGN §6): exact where the problem
has one, otherwise a certified split-operator grid run, cached on disk.

Certification: the base run is repeated with a finer spacing, a larger box and a smaller step
(each refined; a box and point count grown together at one spacing would prove nothing). The
refined run is the reference and its difference from the base run its error bound: the bound
holds whenever the refinement at least halves the error (measured: it cuts it 5 to 50-fold, the
spatial error falling spectrally). When the bound misses ``tol`` the refined run becomes the base
and is refined again. The box is checked at every scored time for
mass in its outer layer (a periodic grid wraps escaping mass around) and grown when needed, and
the spectrum for mass near the Nyquist wave number (a spacing too coarse) and refined when needed.

Problems whose centre of mass is a harmonic oscillator in its ground state
(``Problem.stationary_com_frequency``) are solved on a grid of one dimension fewer: with the
orthonormal Helmert transform y = Qx, y0 = Σx_i/√d is a Gaussian of variance ħ/(2mω) independent
of the relative coordinates y_rel, which obey a TDSE with potential V(Qᵀ[0, y_rel]). Each
x_i = y0/√d + w_i·y_rel, so its moments follow from the grid density and its marginal is the
grid density projected on w_i (cloud-in-cell onto a fine line) convolved with that Gaussian.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pathlib
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft
import scipy.sparse

from harness.api import Prediction, Problem, UserError
from harness.observables import gaussian_bins
from harness.split_operator import EDGE_LAYER, Grid, evolve

__all__ = ["BoxTooSmall", "GridTooLarge", "NotCertified", "ReferenceFailed", "GridSettings", "Reference", "compute_reference", "initial_settings", "run_grid"]

#: bump when a change alters the numbers a reference produces (it invalidates the disk cache)
ALGORITHM = "split-operator/1"
#: most mass allowed in the outer layer of the box at any scored time
EDGE_MAX = 1e-8
#: most spectral mass allowed in the outer fifth of the Nyquist range before certifying: a guard
#: against a grossly coarse grid (measured, bosons d = 4: 2.5e-4 there still gives Var to 6e-7)
TAIL_MAX = 1e-3
#: per certification: spacing × 0.8, box half-width × 1.1, step × 0.5; a box too small grows × 1.3
SPACING_REFINE, BOX_REFINE, STEP_REFINE, BOX_GROW = 0.8, 1.1, 0.5, 1.3
#: initial spacing and step (see initial_settings); measured on bosons d = 2, 3: the step error
#: in Var is ~4e-5 at dt = 0.05 (order 4), so dt = 0.016 for tol = 1e-6
K_MARGIN, STEP_SCALE = 14.0, 0.125


class ReferenceFailed(UserError):
    """No certified reference for these parameters: runs are not scored, the CLI says why."""


class BoxTooSmall(ReferenceFailed):
    """The state reaches the edge of every box tried (it would wrap around the periodic grid)."""


class NotCertified(ReferenceFailed):
    """Refinement did not bring the difference of two grid runs under the tolerance."""


class GridTooLarge(ReferenceFailed):
    """The certified grid would not fit the memory budget: past what a grid can hold, only
    problems with an exact solution are scored (DESIGN §6)."""


#: bytes held per grid point during a run: ψ, the two phase factors, the density and FFT scratch
BYTES_PER_POINT = 5 * 16


def memory_budget_gb() -> float:
    """The reference's memory budget: $QDBENCH_REFERENCE_GB, default 8 GB."""
    return float(os.environ.get("QDBENCH_REFERENCE_GB", 8))


def _check_fits(problem: Problem, s: GridSettings) -> None:
    dims = problem.d - 1 if s.reduced else problem.d
    need = s.n**dims * BYTES_PER_POINT / 1e9
    if need > memory_budget_gb():
        raise GridTooLarge(f"no certified reference for {problem.name} d={problem.d}: its grid of "
                           f"{s.n}^{dims} points needs {need:.3g} GB, budget {memory_budget_gb():g} GB "
                           f"(QDBENCH_REFERENCE_GB)")


@dataclass
class Reference:
    """Moments and marginals at the requested times on ``problem.marginal_edges()``, with the
    certified error ``bound`` (``mean``: max abs diff, ``var``: max relative diff,
    ``density_l1``: mean L1 diff of the marginals; zeros when exact), the worst mass fraction in
    the outer layer of the box over the scored times, the grid settings, and the wall time."""

    prediction: Prediction
    kind: str  # "exact" or "split-operator"
    bound: dict[str, float]
    edge_mass: float
    settings: dict
    wall_s: float


@dataclass(frozen=True)
class GridSettings:
    """One grid run: box half-width and points per axis, largest step, composition order
    (2, 4, 6), and whether the centre of mass is split off (a grid of d − 1 axes)."""

    half: float
    n: int
    dt: float
    order: int = 4
    reduced: bool = False

    @property
    def dx(self) -> float:
        return 2 * self.half / self.n

    def _with(self, half: float, dx: float, dt: float) -> GridSettings:
        n = sfft.next_fast_len(math.ceil(2 * half / dx - 1e-9))
        return dataclasses.replace(self, half=half, n=n, dt=dt)

    def refined(self) -> GridSettings:
        """The certification run: finer spacing, larger box and smaller step, each."""
        return self._with(self.half * BOX_REFINE, self.dx * SPACING_REFINE, self.dt * STEP_REFINE)

    def grown(self) -> GridSettings:
        """A larger box at the same spacing and step."""
        return self._with(self.half * BOX_GROW, self.dx, self.dt)

    def finer(self) -> GridSettings:
        """A finer spacing in the same box."""
        return self._with(self.half, self.dx * SPACING_REFINE, self.dt)


@dataclass
class GridRun:
    """One grid run's prediction and what it measured about its own grid."""

    prediction: Prediction
    settings: GridSettings
    edge_mass: float
    spectrum_tail: float
    norm_drift: float
    wall_s: float

    def summary(self) -> dict:
        return {**dataclasses.asdict(self.settings), "dx": self.settings.dx, "edge_mass": self.edge_mass,
                "spectrum_tail": self.spectrum_tail, "norm_drift": self.norm_drift, "wall_s": self.wall_s}


# --------------------------------------------------------------------------------------------
# Geometry: what the grid holds (all of x, or the relative coordinates) and how to observe it
# --------------------------------------------------------------------------------------------


def helmert(d: int) -> np.ndarray:
    """The orthonormal Helmert matrix: row 0 is 1/√d (the centre of mass), row k the k-th
    relative coordinate (x_1 + … + x_k − k x_{k+1}) / √(k(k+1))."""
    q = np.zeros((d, d))
    q[0] = 1 / math.sqrt(d)
    for k in range(1, d):
        q[k, :k] = 1 / math.sqrt(k * (k + 1))
        q[k, k] = -k / math.sqrt(k * (k + 1))
    return q


@dataclass
class _Geometry:
    """The grid and the map from its points y (..., dims) to x (..., d): x = y on the full grid,
    or x = Qᵀ[0, y] with the centre of mass split off (``com_var`` = ħ/(2mωd) is then added
    back to every coordinate, and ψ on the grid is ψ0 / φ0(0), φ0 the COM ground state)."""

    problem: Problem
    grid: Grid
    to_x: np.ndarray | None  # (dims, d) or None for the identity
    com_var: float = 0.0
    psi_scale: float = 1.0  # 1 / φ0(y0 = 0) of the COM ground state
    _marg: list = field(default_factory=list)

    def evaluate(self, fn) -> np.ndarray:
        """fn(x) on every grid point, in slabs of the first axis to bound memory."""
        axis = self.grid.axis()
        out = None
        per_slab = max(1, int(2**22 // (self.grid.n ** (self.grid.dims - 1) * self.problem.d**2)))
        for lo in range(0, self.grid.n, per_slab):
            y = np.stack(np.meshgrid(axis[lo:lo + per_slab], *[axis] * (self.grid.dims - 1),
                                     indexing="ij"), axis=-1)
            x = y if self.to_x is None else y @ self.to_x
            value = np.asarray(fn(x))
            if out is None:
                out = np.empty(self.grid.shape, dtype=value.dtype)
            out[lo:lo + per_slab] = value
        return out

    def psi0(self) -> np.ndarray:
        return self.evaluate(self.problem.psi0).astype(np.complex128) * self.psi_scale

    def potential(self, t: float) -> np.ndarray:
        return self.evaluate(lambda x: self.problem.potential(x, t)).astype(np.float64)

    def observe(self, mass: np.ndarray, edges: np.ndarray):
        """Mean, variance and binned marginal of every x_i from the grid mass per cell."""
        axes = [self.grid.axis()] * self.grid.dims
        if self.to_x is None:
            return _product_observables(axes[0], mass, edges)
        if not self._marg:
            self._marg = [self._projection(i, edges) for i in range(self.problem.d)]
        total, first, second = _grid_moments(axes[0], mass)
        w = self.to_x
        mean = w.T @ first / total
        var = np.einsum("ai,ab,bi->i", w, second, w) / total - mean**2 + self.com_var
        marg = np.empty((self.problem.d, edges.size - 1))
        for i, (summed, deposit, kernel) in enumerate(self._marg):
            sub = mass.sum(axis=summed) if summed else mass
            marg[i] = kernel @ (deposit @ sub.ravel())
        return mean, var, marg

    def _projection(self, i: int, edges: np.ndarray):
        """For x_i: the grid axes it does not depend on (summed out first), the cloud-in-cell
        deposition of the remaining grid onto a fine line in s = w_i·y (a sparse matrix with two
        entries per point), and the kernel taking the line's node masses to bin averages of the
        density convolved with the COM Gaussian. Linear deposition widens every point by h²/6
        on average, which the kernel takes back; with h ≤ σ_COM/64 the rest is ~1e-6 in L1."""
        w_all = self.to_x[:, i]
        keep = np.flatnonzero(np.abs(w_all) > 1e-12)
        summed = tuple(int(a) for a in np.flatnonzero(np.abs(w_all) <= 1e-12))
        axis = self.grid.axis()
        s = np.zeros((axis.size,) * keep.size)
        for j, a in enumerate(keep):
            s = s + w_all[a] * axis.reshape([-1 if b == j else 1 for b in range(keep.size)])
        h = min(self.grid.dx, math.sqrt(self.com_var)) / 64
        reach = float(np.abs(w_all).sum()) * (self.grid.half + self.grid.dx)
        nodes = -reach + h * np.arange(math.ceil(2 * reach / h) + 2)
        u = (s.ravel() + reach) / h
        j = u.astype(np.int32)
        frac = u - j
        data = np.column_stack([1 - frac, frac]).ravel()
        rows = np.column_stack([j, j + 1]).ravel()
        deposit = scipy.sparse.csc_matrix((data, rows, np.arange(0, 2 * u.size + 1, 2, dtype=np.int32)),
                                          shape=(nodes.size, u.size))
        kernel = gaussian_bins(nodes[:, None], np.full((nodes.size, 1), self.com_var - h**2 / 6), edges)[:, 0]
        kernel[kernel < 1e-30] = 0.0  # far tails: negligible, and subnormal numbers are slow
        return summed, deposit, np.ascontiguousarray(kernel.T)


def _grid_moments(y: np.ndarray, mass: np.ndarray):
    """Total, first moments Σ m y_a and second moments Σ m y_a y_b of a grid of masses with
    the same axis ``y`` in every direction, from the one- and two-axis marginals."""
    dims = mass.ndim
    first, second = np.empty(dims), np.empty((dims, dims))
    for a in range(dims):
        for b in range(a, dims):
            pair = mass.sum(axis=tuple(c for c in range(dims) if c not in (a, b)))
            if a == b:
                first[a] = pair @ y
                second[a, a] = pair @ y**2
            else:
                second[a, b] = second[b, a] = y @ pair @ y
    return mass.sum(), first, second


def _product_observables(x: np.ndarray, mass: np.ndarray, edges: np.ndarray):
    """Moments and bin averages of each axis's marginal on the full grid. The bin averages
    integrate the marginal's trigonometric interpolant exactly (spectrally accurate, where a
    monotone-cubic CDF would err by ~1e-4 in L1 on a narrow state at 10 points per unit)."""
    d = mass.ndim
    dx = x[1] - x[0]
    k = 2 * np.pi * sfft.fftfreq(x.size, d=dx)
    at = np.clip(edges, x[0], x[0] + x.size * dx)[:, None] - x[0]
    nonzero = k != 0
    primitive = np.where(nonzero, np.expm1(1j * k * at) / np.where(nonzero, 1j * k, 1.0), at)
    mean, var, marg = np.empty(d), np.empty(d), np.empty((d, edges.size - 1))
    for i in range(d):
        rho = mass.sum(axis=tuple(a for a in range(d) if a != i))
        total = rho.sum()
        mean[i] = rho @ x / total
        var[i] = rho @ (x - mean[i]) ** 2 / total
        coef = sfft.fft(rho / dx) / x.size
        if x.size % 2 == 0:
            coef[x.size // 2] = 0.0
        marg[i] = np.diff((primitive @ coef).real) / np.diff(edges)
    return mean, var, marg


def _geometry(problem: Problem, s: GridSettings) -> _Geometry:
    lo, hi = problem.box
    if not s.reduced:
        return _Geometry(problem, Grid(problem.d, s.n, s.half, (lo + hi) / 2), None)
    omega = problem.stationary_com_frequency()
    if omega is None or problem.d < 2:
        raise ValueError(f"{problem.name} declares no separable centre of mass (d = {problem.d})")
    q = helmert(problem.d)
    _check_com(problem, omega, q)
    a = problem.m * omega / problem.hbar
    return _Geometry(problem, Grid(problem.d - 1, s.n, s.half, 0.0), q[1:],
                     com_var=problem.hbar / (2 * problem.m * omega * problem.d),
                     psi_scale=(math.pi / a) ** 0.25)


def _check_com(problem: Problem, omega: float, q: np.ndarray) -> None:
    """Check the declared separation at a few points: V(Qᵀ[a, r]) − V(Qᵀ[0, r]) = ½mω²a² and
    ψ0(Qᵀ[a, r]) / ψ0(Qᵀ[0, r]) = exp(−mωa²/2ħ), i.e. a COM ground state centred at 0."""
    rng = np.random.default_rng(0)
    r = problem.sample_initial(8, rng) @ q[1:].T
    sigma = math.sqrt(problem.hbar / (2 * problem.m * omega))
    for a in (0.7 * sigma, -2.0 * sigma):
        shifted, centred = np.column_stack([np.full(8, a), r]) @ q, np.column_stack([np.zeros(8), r]) @ q
        for t in (0.0, 0.37 * problem.T, problem.T):
            dv = np.asarray(problem.potential(shifted, t)) - np.asarray(problem.potential(centred, t))
            if not np.allclose(dv, 0.5 * problem.m * omega**2 * a**2, rtol=1e-8, atol=1e-12):
                raise ValueError(f"{problem.name}: the potential does not separate off a COM oscillator")
        ratio = problem.psi0(shifted) / problem.psi0(centred)
        if not np.allclose(ratio, math.exp(-problem.m * omega * a**2 / (2 * problem.hbar)), rtol=1e-8):
            raise ValueError(f"{problem.name}: ψ0 is not the COM ground state times a relative part")


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


def initial_settings(problem: Problem, times: np.ndarray, reduced: bool, tol: float = 1e-6,
                     order: int = 4) -> GridSettings:
    """A first grid from the physics.

    Box: the problem's, widened by √(d/(d−1)) for the relative coordinates (exchangeable
    coordinates with a narrow centre of mass have Var(y_rel) ≈ d/(d−1) Var(x_i)).
    Spacing: π / (K_MARGIN · k_rms), with k_rms = √⟨p_i²⟩/ħ the rms wave number of ψ0,
    ⟨p_i²⟩ = m²⟨u_i² + v_i²⟩ from Nelson's velocities.
    Step: STEP_SCALE · tol^{1/4} (the 4th-order error) times the kinetic time scale
    2mħ/⟨p_i²⟩ (4/ω for a trap's ground state), and never above the shortest gap between
    scored times, so that halving it halves the step actually taken."""
    x = problem.sample_initial(20_000, np.random.default_rng(2))
    u, v = np.asarray(problem.u0(x)), np.asarray(problem.v0(x))
    p2 = float((problem.m**2 * (u**2 + v**2).mean(axis=0)).max())
    lo, hi = problem.box
    half = (hi - lo) / 2 * (math.sqrt(problem.d / (problem.d - 1)) if reduced else 1.0)
    n = sfft.next_fast_len(math.ceil(2 * half * K_MARGIN * math.sqrt(p2) / (math.pi * problem.hbar)))
    gaps = np.diff(np.concatenate([[0.0], np.asarray(times, dtype=float)]))
    dt = STEP_SCALE * tol**0.25 * 2 * problem.m * problem.hbar / p2
    dt = float(min([problem.T, dt, *gaps[gaps > 0]]))
    return GridSettings(half=half, n=n, dt=dt, order=order, reduced=reduced)


def run_grid(problem: Problem, times: np.ndarray, settings: GridSettings) -> GridRun:
    """One split-operator run on the grid ``settings`` describes, observed at ``times``
    (sorted, ≥ 0), with moments and marginals on ``problem.marginal_edges()``."""
    start = time.perf_counter()
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or (times < 0).any() or (np.diff(times) < 0).any():
        raise ValueError("reference times must be a sorted 1-D array of times ≥ 0")
    geo = _geometry(problem, settings)
    edges = problem.marginal_edges()
    k, d = times.size, problem.d
    mean, var, marg = np.empty((k, d)), np.empty((k, d)), np.empty((k, d, edges.size - 1))

    def observe(idx: int, mass: np.ndarray) -> None:
        mean[idx], var[idx], marg[idx] = geo.observe(mass, edges)

    prop = evolve(geo.psi0(), geo.grid, geo.potential, static=not problem.time_dependent, hbar=problem.hbar,
                  m=problem.m, times=times, dt=settings.dt, order=settings.order, observe=observe)
    pred = Prediction(times, mean, var, marg, edges,
                      diagnostics={"norm_drift": prop.norm_drift, "steps": prop.steps, "stages": prop.stages})
    return GridRun(pred, settings, prop.edge_mass, prop.spectrum_tail, prop.norm_drift,
                   time.perf_counter() - start)


def difference(a: Prediction, b: Prediction) -> dict[str, float]:
    """The bound's three figures for ``a`` against ``b``: max |Δmean|, max |Δvar| / var_a and
    the mean over times and coordinates of the L1 distance of the marginals."""
    widths = np.diff(a.edges)
    return {"mean": float(np.abs(a.mean - b.mean).max()),
            "var": float((np.abs(a.var - b.var) / np.abs(a.var)).max()),
            "density_l1": float((np.abs(a.marginals - b.marginals) @ widths).mean())}


def _certify(problem: Problem, times: np.ndarray, start: GridSettings, tol: float, max_runs: int):
    """Run, check the box and spectrum, refine and compare until the difference meets ``tol``;
    return the coarser run, the refined run, their difference and every run made.

    A box with edge mass above EDGE_MAX is grown, a spectrum with more than TAIL_MAX of its
    mass in the outer fifth of the Nyquist range is refined, before a certification is tried."""
    for grid in (start, start.refined()):
        _check_fits(problem, grid)
    runs = [run_grid(problem, times, start)]
    while len(runs) < max_runs:
        base = runs[-1]
        if base.edge_mass > EDGE_MAX:
            runs.append(run_grid(problem, times, base.settings.grown()))
            continue
        if base.spectrum_tail > TAIL_MAX:
            runs.append(run_grid(problem, times, base.settings.finer()))
            continue
        check = run_grid(problem, times, base.settings.refined())
        runs.append(check)
        bound = difference(check.prediction, base.prediction)
        scale = math.sqrt(float(np.abs(check.prediction.var).min()))
        if bound["var"] <= tol and bound["mean"] <= tol * scale:
            return base, check, bound, runs
    if runs[-1].edge_mass > EDGE_MAX:
        raise BoxTooSmall(f"{problem.name}: mass {runs[-1].edge_mass:.2e} at the edge of a box of "
                          f"half-width {runs[-1].settings.half:.3g} after {len(runs)} runs")
    last = runs[-1].settings
    raise NotCertified(f"{problem.name}: reference not certified to {tol:g} in {max_runs} runs "
                       f"(last: {last.n} points per axis, half-width {last.half:.3g}, dt {last.dt:.3g})")


# --------------------------------------------------------------------------------------------
# Entry point and disk cache
# --------------------------------------------------------------------------------------------


def compute_reference(problem: Problem, times: np.ndarray, cache_dir: pathlib.Path | None = None, *,
                      full_grid: bool = False, tol: float = 1e-6, start: GridSettings | None = None,
                      max_runs: int = 6) -> Reference:
    """The reference at ``times``: ``problem.exact`` when it has one, else a certified grid run
    that differs from its coarser twin by at most ``tol`` (relative, in every variance).

    ``full_grid`` forces the plain grid over all d coordinates; ``start`` overrides the first
    grid (otherwise chosen from the physics); at most ``max_runs`` grid runs are made."""
    begin = time.perf_counter()
    times = np.asarray(times, dtype=float)
    exact = problem.exact(times)
    if exact is not None:
        return Reference(exact, "exact", {"mean": 0.0, "var": 0.0, "density_l1": 0.0}, 0.0,
                         {"source": "exact"}, time.perf_counter() - begin)
    reduced = not full_grid and problem.d > 1 and problem.stationary_com_frequency() is not None
    start = start or initial_settings(problem, times, reduced, tol)
    key = _cache_key(problem, times, tol, start, max_runs)
    cached = _load(cache_dir, key) if cache_dir is not None else None
    if cached is not None:
        return cached
    base, check, bound, runs = _certify(problem, times, start, tol, max_runs)
    settings = {"algorithm": ALGORITHM, "tol": tol, "reference": check.summary(), "coarser": base.summary(),
                "runs": [r.summary() for r in runs], "edge_layer": EDGE_LAYER, "edge_max": EDGE_MAX}
    ref = Reference(check.prediction, "split-operator", bound, check.edge_mass, settings,
                    time.perf_counter() - begin)
    if cache_dir is not None:
        _store(pathlib.Path(cache_dir), key, ref)
    return ref


def _cache_key(problem: Problem, times: np.ndarray, tol: float, start: GridSettings, max_runs: int) -> str:
    spec = {"problem": f"{type(problem).__module__}.{type(problem).__qualname__}", "params": problem.params(),
            "times": [float(t) for t in times], "tol": tol, "start": dataclasses.asdict(start),
            "max_runs": max_runs, "algorithm": ALGORITHM}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def _atomic_write(path: pathlib.Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _store(cache_dir: pathlib.Path, key: str, ref: Reference) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    p = ref.prediction
    meta = {"kind": ref.kind, "bound": ref.bound, "edge_mass": ref.edge_mass, "settings": ref.settings,
            "wall_s": ref.wall_s, "diagnostics": p.diagnostics}
    # The sidecar first: an .npz present means its sidecar is complete.
    _atomic_write(cache_dir / f"{key}.json", lambda fh: fh.write(json.dumps(meta, indent=1).encode()))
    _atomic_write(cache_dir / f"{key}.npz", lambda fh: np.savez(fh, times=p.times, mean=p.mean, var=p.var,
                                                                marginals=p.marginals, edges=p.edges))


def _load(cache_dir: pathlib.Path, key: str) -> Reference | None:
    npz, sidecar = pathlib.Path(cache_dir) / f"{key}.npz", pathlib.Path(cache_dir) / f"{key}.json"
    if not npz.exists():
        return None
    meta = json.loads(sidecar.read_text())
    with np.load(npz) as f:
        pred = Prediction(f["times"], f["mean"], f["var"], f["marginals"], f["edges"],
                          diagnostics=meta["diagnostics"])
    return Reference(pred, meta["kind"], meta["bound"], meta["edge_mass"], meta["settings"], meta["wall_s"])
