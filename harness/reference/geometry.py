"""What a reference grid holds and how it is observed (DESIGN §6): all of x, or, for a problem
whose centre of mass is a harmonic oscillator in its ground state
(``Problem.separable_com``), only the relative coordinates.

With an orthonormal transform y = Qx whose row 0 is the centre of mass, y0 = Σx_i/√d is a
Gaussian independent of the relative coordinates y_rel (the ground state of the ω0 trap evolving
in the ω trap: variance ħ/(2mω0)·(cos²ωt + (ω0/ω)² sin²ωt)), which obey a TDSE with potential
V(Qᵀ[0, y_rel]). Each x_i = y0/√d + w_i·y_rel, so its moments follow from the
grid density and its marginal is the grid density projected on w_i (cloud-in-cell onto a fine
line) convolved with that Gaussian. Q is the Helmert matrix, or, for identical particles whose
ψ0 is even or odd under an exchange, the pair basis: the differences (x1 − x2)/√2, (x3 − x4)/√2,
… first, which the exchanges x1 ↔ x2, x3 ↔ x4, … reflect one at a time, so that the grid folds
those axes (harness/spectral_grid.py: 4× fewer points for d = 4, 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft
import scipy.sparse

from harness.api import Problem
from harness.observables import gaussian_bins
from harness.reference.grid_settings import GridSettings
from harness.spectral_grid import Grid


def pair_basis(d: int) -> tuple[np.ndarray, int]:
    """An orthonormal Q (d × d) with row 0 the centre of mass, rows 1 … p the pair differences
    (x_{2k−1} − x_{2k})/√2 (p = d // 2), and the rest the Jacobi coordinates of the pairs (and
    the odd one out) as particles of their own: each the centre of the ones before minus the
    next. Every row but a pair's own difference is symmetric in that pair. Returns Q and p."""
    pairs = d // 2
    groups = [[2 * k, 2 * k + 1] for k in range(pairs)] + ([[d - 1]] if d % 2 else [])
    q = np.zeros((d, d))
    q[0] = 1 / math.sqrt(d)
    for k in range(pairs):
        q[1 + k, 2 * k], q[1 + k, 2 * k + 1] = 1 / math.sqrt(2), -1 / math.sqrt(2)
    for k in range(1, len(groups)):
        before = [i for g in groups[:k] for i in g]
        row = np.zeros(d)
        row[before] = 1 / len(before)
        row[groups[k]] = -1 / len(groups[k])
        q[pairs + k] = row / np.linalg.norm(row)
    return q, pairs


def exchange_parity(problem: Problem) -> int | None:
    """+1 (−1) when the problem is exchangeable and swapping x1 and x2 leaves ψ0 unchanged
    (flips its sign), checked on a few samples; None otherwise (no axis can be folded)."""
    if problem.d < 2 or not problem.exchangeable():
        return None
    x = problem.sample_initial(8, np.random.default_rng(1))
    swapped = x.copy()
    swapped[:, [0, 1]] = x[:, [1, 0]]
    ratio = np.asarray(problem.psi0(swapped)) / np.asarray(problem.psi0(x))
    for parity in (1, -1):
        if np.allclose(ratio, parity, rtol=1e-10, atol=0.0):
            return parity
    return None


def fold_parities(problem: Problem, s: GridSettings) -> tuple[int, ...]:
    """The parities of the axes grid ``s`` folds for ``problem``: ψ0's exchange parity on each
    of the d // 2 pair axes of a reduced grid with ``s.fold``, an even n and ψ0 of definite
    exchange parity; else none."""
    if not (s.reduced and s.fold and s.n % 2 == 0):
        return ()
    parity = exchange_parity(problem)
    return () if parity is None else (parity,) * (problem.d // 2)


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
class Geometry:
    """The grid and the map from its points y (..., dims) to x (..., d): x = y on the full grid,
    or x = Qᵀ[0, y] with the centre of mass split off (``com`` = (ω, ω0); ``com_var(t)`` is
    then added back to every coordinate, and ψ on the grid is ψ0 / φ0(0), φ0 the COM's initial
    ground state). ψ is held at ``dtype`` (complex128 or complex64), V at the matching real
    precision."""

    problem: Problem
    grid: Grid
    to_x: np.ndarray | None  # (dims, d) or None for the identity
    com: tuple[float, float] | None = None
    psi_scale: float = 1.0  # 1 / φ0(y0 = 0) of the COM ground state
    dtype: np.dtype = np.dtype(np.complex128)
    _marg: list = field(default_factory=list)
    _slab_deposits: dict = field(default_factory=dict)
    _kernels: dict = field(default_factory=dict)

    def com_var(self, t: float) -> float:
        """What the centre of mass adds to each Var(x_i) at time t: Var(y0)/d."""
        if self.com is None:
            return 0.0
        omega, omega0 = self.com
        p = self.problem
        return p.hbar / (2 * p.m * omega0 * p.d) * (math.cos(omega * t) ** 2 + (omega0 / omega * math.sin(omega * t)) ** 2)

    def _com_var_min(self) -> float:
        omega, omega0 = self.com
        return self.com_var(0.0) * min(1.0, (omega0 / omega) ** 2)

    def evaluate(self, fn, dtype) -> np.ndarray:
        """fn(x) on every grid point as ``dtype``, in slabs of the first axis to bound memory."""
        axes = [self.grid.points(a) for a in range(self.grid.dims)]
        out = np.empty(self.grid.shape, dtype=dtype)
        per_slab = max(1, int(2**22 // (math.prod(self.grid.shape[1:]) * self.problem.d**2)))
        for lo in range(0, axes[0].size, per_slab):
            y = np.stack(np.meshgrid(axes[0][lo:lo + per_slab], *axes[1:], indexing="ij"), axis=-1)
            x = y if self.to_x is None else y @ self.to_x
            out[lo:lo + per_slab] = np.asarray(fn(x))
        return out

    def psi0(self) -> np.ndarray:
        psi = self.evaluate(self.problem.psi0, self.dtype)
        psi *= self.psi_scale
        return psi

    def potential(self, t: float) -> np.ndarray:
        return self.evaluate(lambda x: self.problem.potential(x, t), np.empty(0, self.dtype).real.dtype)

    def observe(self, mass: np.ndarray, edges: np.ndarray, t: float):
        """Mean, variance and binned marginal of every x_i at time t from the grid mass per cell
        (weighted on folded axes, ``SplitOperator.density``)."""
        if self.to_x is None:
            return _product_observables(self.grid.axis(), mass, edges)
        if not self._marg:
            self._marg = [self._projection(i, edges) for i in range(self.problem.d)]
        total, first, second = _grid_moments([self.grid.points(a) for a in range(self.grid.dims)], mass)
        for a in range(self.grid.folded):  # a reflection symmetry: odd moments in y_a vanish
            first[a] = 0.0
            second[a, :a] = second[a, a + 1:] = second[:a, a] = second[a + 1:, a] = 0.0
        w = self.to_x
        mean = w.T @ first / total
        com_var = self.com_var(t)
        var = np.einsum("ai,ab,bi->i", w, second, w) / total - mean**2 + com_var
        marg = np.empty((self.problem.d, edges.size - 1))
        deposited = {}
        for i, (group, shifts, nodes, smoothing) in enumerate(self._marg):
            if group not in deposited:  # shared by coordinates differing only in the first axis's sign
                summed, deposit = self._slab_deposits[group]
                sub = mass.sum(axis=summed) if summed else mass
                sub = self.grid.unfold(sub, tuple(a for a in range(mass.ndim) if a not in summed))
                deposited[group] = np.column_stack([deposit @ slab for slab in sub.reshape(sub.shape[0], -1)])
            slabs = deposited[group]
            line = np.zeros(slabs.shape[0] + int(shifts.max()))
            for k, shift in enumerate(shifts):
                line[shift:shift + slabs.shape[0]] += slabs[:, k]
            built = self._kernels.get(i)
            if built is None or built[0] != com_var:  # built once, or each time the COM breathes
                kernel = gaussian_bins(nodes[:, None], np.full((nodes.size, 1), com_var - smoothing), edges)[:, 0]
                kernel[kernel < 1e-30] = 0.0  # far tails: negligible; a node reaches a few bins only
                built = self._kernels[i] = (com_var, scipy.sparse.csr_matrix(kernel.T))
            marg[i] = built[1] @ line
        return mean, var, marg

    def _projection(self, i: int, edges: np.ndarray):
        """For x_i, whose relative part is s = w_i·y: the deposition of the grid mass onto a
        fine line in s (node spacing h ≤ min(dx, σ_COM)/64, σ_COM its least over time) and what
        the kernel taking the line's node masses to bin averages of the density convolved with
        the COM Gaussian is built from (``observe`` builds it for the time's σ_COM).

        The axes x_i does not depend on are summed out first. The first remaining axis moves s
        by whole nodes (h divides |w_0|·dx), so only one slab of it is deposited linearly
        (cloud in cell: a sparse matrix with two entries per point of the slab, shared by every
        slab and by coordinates with the same slab weights), each slab's line then shifted by
        its whole number of nodes. Linear deposition widens a point by h²·f(1 − f) at fraction
        f between nodes, on average over the slab taken back by the kernel; the rest is ~1e-6
        in L1. Returns the deposition's key, each slab's shift, the nodes and that widening."""
        w_all = self.to_x[:, i]
        keep = np.flatnonzero(np.abs(w_all) > 1e-12)
        summed = tuple(int(a) for a in np.flatnonzero(np.abs(w_all) <= 1e-12))
        axis, dx = self.grid.axis(), self.grid.dx
        w0, w_slab = w_all[keep[0]], w_all[keep[1:]]
        q = math.ceil(abs(w0) * dx / (min(dx, math.sqrt(self._com_var_min())) / 64))
        h = abs(w0) * dx / q
        s = np.zeros((axis.size,) * w_slab.size)
        for j, wa in enumerate(w_slab):
            s = s + wa * axis.reshape([-1 if b == j else 1 for b in range(w_slab.size)])
        u = (s.ravel() - s.min()) / h
        j = u.astype(np.int32)
        frac = u - j
        group = (summed, float(f"{h:.12e}"), tuple(np.round(w_slab, 12)))  # what the deposit depends on
        if group not in self._slab_deposits:
            data = np.column_stack([1 - frac, frac]).ravel()
            rows = np.column_stack([j, j + 1]).ravel()
            deposit = scipy.sparse.csc_matrix((data, rows, np.arange(0, 2 * u.size + 1, 2, dtype=np.int32)),
                                              shape=(int(j.max()) + 2, u.size))
            self._slab_deposits[group] = summed, deposit
        steps = np.arange(axis.size) if w0 > 0 else np.arange(axis.size)[::-1]
        shifts = q * steps
        lowest = s.min() + min(w0 * axis[0], w0 * axis[-1])
        nodes = lowest + h * np.arange(self._slab_deposits[group][1].shape[0] + int(shifts.max()))
        return group, shifts, nodes, h**2 * float(np.mean(frac * (1 - frac)))


def _grid_moments(axes: list[np.ndarray], mass: np.ndarray):
    """Total, first moments Σ m y_a and second moments Σ m y_a y_b of a grid of masses on the
    points ``axes`` (one array per axis): the grid contracted with (1, y, y²) along each axis in
    turn (one pass over the grid, a matrix product; the rest is small)."""
    dims = mass.ndim
    c = mass
    for a, y in enumerate(axes):
        c = np.tensordot(np.stack([np.ones_like(y), y, y * y], axis=1), c, axes=([0], [a]))
    c = c.transpose(tuple(reversed(range(dims))))  # c[p_0, ..., p_{dims-1}] = Σ m Π y_a^{p_a}
    unit = np.eye(dims, dtype=int)
    first = np.array([c[tuple(unit[a])] for a in range(dims)])
    second = np.array([[c[tuple(unit[a] + unit[b])] for b in range(dims)] for a in range(dims)])
    return c[(0,) * dims], first, second


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


def geometry(problem: Problem, s: GridSettings) -> Geometry:
    """The geometry of grid ``s``: all d axes centred on the box, or (``s.reduced``) the d − 1
    relative axes centred at 0, after checking the declared centre-of-mass separation; those
    in the pair basis with the pair axes folded when ``s.fold``, n is even and ψ0 has an
    exchange parity (``exchange_parity``), else the Helmert ones."""
    lo, hi = problem.box
    if not s.reduced:
        return Geometry(problem, Grid(problem.d, s.n, s.half, (lo + hi) / 2), None, dtype=np.dtype(s.precision))
    com = problem.separable_com()
    if com is None or problem.d < 2:
        raise ValueError(f"{problem.name} declares no separable centre of mass (d = {problem.d})")
    omega, omega0 = com
    parities = fold_parities(problem, s)
    q = pair_basis(problem.d)[0] if parities else helmert(problem.d)
    check_com(problem, omega, omega0, q)
    a = problem.m * omega0 / problem.hbar
    return Geometry(problem, Grid(problem.d - 1, s.n, s.half, 0.0, parities), q[1:],
                     com=(omega, omega0), psi_scale=(math.pi / a) ** 0.25, dtype=np.dtype(s.precision))


def check_com(problem: Problem, omega: float, omega0: float, q: np.ndarray) -> None:
    """Check the declared separation at a few points: V(Qᵀ[a, r]) − V(Qᵀ[0, r]) = ½mω²a² and
    ψ0(Qᵀ[a, r]) / ψ0(Qᵀ[0, r]) = exp(−mω0a²/2ħ), i.e. a COM ground state of ω0 centred at 0."""
    rng = np.random.default_rng(0)
    r = problem.sample_initial(8, rng) @ q[1:].T
    sigma = math.sqrt(problem.hbar / (2 * problem.m * omega0))
    for a in (0.7 * sigma, -2.0 * sigma):
        shifted, centred = np.column_stack([np.full(8, a), r]) @ q, np.column_stack([np.zeros(8), r]) @ q
        for t in (0.0, 0.37 * problem.T, problem.T):
            dv = np.asarray(problem.potential(shifted, t)) - np.asarray(problem.potential(centred, t))
            if not np.allclose(dv, 0.5 * problem.m * omega**2 * a**2, rtol=1e-8, atol=1e-12):
                raise ValueError(f"{problem.name}: the potential does not separate off a COM oscillator")
        ratio = problem.psi0(shifted) / problem.psi0(centred)
        if not np.allclose(ratio, math.exp(-problem.m * omega0 * a**2 / (2 * problem.hbar)), rtol=1e-8):
            raise ValueError(f"{problem.name}: ψ0 is not the COM ground state times a relative part")

