"""Split-operator Fourier propagation of the TDSE on a periodic product grid (DESIGN §6).

iħ ∂ψ/∂t = −(ħ²/2m) Δψ + V(x, t) ψ is advanced by symmetric Strang steps
e^{−iV(t+h)h/2ħ} e^{−iTh/ħ} e^{−iV(t)h/2ħ}, with the kinetic factor applied in Fourier space
(FFT, exact for the band-limited grid function; on an axis folded by an exchange symmetry the
cosine or sine transform of its half, harness/spectral_grid.py), composed into 4th- or 6th-order methods by
the triple jump (Yoshida 1990, Suzuki 1990). Treating t as a coordinate that the kinetic part
advances makes the Strang step an exact splitting of an autonomous Hamiltonian, so V is
evaluated at the sub-step boundaries and the compositions keep their order for time-dependent
potentials.

A stage costs one in-place transform pair and two phase products, nothing else: adjacent potential
half-steps at one time are merged, across steps too (the last half-kick of a step is owed to the
next: |ψ|² does not depend on it, so densities are observed before it is paid); the potential
phases are precomputed per distinct coefficient, the kinetic phase is applied slab by slab from
a precomputed product of per-axis factors, and the FFTs use every thread available. ψ is
complex128 or complex64 (measured: complex64 moves Var by ~1e-7 relative over 600 stages);
densities are accumulated in float64 either way.

The propagator never keeps the history of ψ: at each requested time it hands the grid density
to an observer, and records the mass in the outer layer of the box (wrap-around on the
periodic grid) and the spectral mass near the Nyquist frequency (a grid too coarse).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.spectral_grid import Grid

#: the outer layer checked for mass: this fraction of the half-width, on each side of each axis
EDGE_LAYER = 0.1
#: the outer spectral layer checked: this fraction of the Nyquist wave number
SPECTRUM_LAYER = 0.2
#: elements per chunk when a grid-wide operation is done piecewise to avoid full-size temporaries
CHUNK = 1 << 18


def fft_workers() -> int:
    """Threads for the FFTs: $OMP_NUM_THREADS when set (the harness sets it per run), else every
    core this process may run on."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0))


def composition(order: int) -> np.ndarray:
    """Fractions of a step taken by the successive Strang stages of a symmetric method of
    ``order`` (2, 4 or 6): the triple jump γ = 1/(2 − 2^{1/(p+1)}) lifts order p to p + 2."""
    if order not in (2, 4, 6):
        raise ValueError(f"composition order must be 2, 4 or 6, got {order}")
    fractions = np.ones(1)
    for p in range(2, order, 2):
        outer = 1 / (2 - 2 ** (1 / (p + 1)))
        inner = 1 - 2 * outer
        fractions = np.concatenate([outer * fractions, inner * fractions, outer * fractions])
    return fractions


def _key(coef: float) -> float:
    """Coefficients rounded so that equal steps differing in the last bits share one array."""
    return float(f"{coef:.12e}")


def phase_arrays(order: int) -> int:
    """How many potential phases a run of equal steps caches: one per distinct merged kick
    (adjacent half-kicks of one step, and the last of a step with the first of the next)."""
    f = composition(order)
    return len({_key(c) for c in [*(f[:-1] + f[1:]) / 2, f[0]]})


def axis_marginals(weights: np.ndarray) -> list[np.ndarray]:
    """The 1-D marginal of a grid of masses on each axis, in two passes over the grid (the
    first axis's, then the rest from the grid summed over the first axis)."""
    out, rest = [], weights
    while True:
        out.append(rest.reshape(rest.shape[0], -1).sum(axis=1))
        if rest.ndim == 1:
            return out
        rest = rest.sum(axis=0)


def outer_fraction(marginals: list[np.ndarray], outer: list[np.ndarray]) -> float:
    """Sum over axes of the mass in the slabs where each axis's mask in ``outer`` is true, as a
    fraction of the total; ``marginals`` from axis_marginals."""
    return float(sum(p[mask].sum() for p, mask in zip(marginals, outer, strict=True))) / float(marginals[0].sum())


@dataclass
class Propagation:
    """What a run measured besides the observations: steps taken, worst edge mass and
    spectral tail over the observed times (as fractions of the mass), norm drift, wall time."""

    steps: int
    stages: int
    edge_mass: float
    spectrum_tail: float
    norm_drift: float
    wall_s: float


class SplitOperator:
    """The composed Strang step for one grid and Hamiltonian, on ψ of ``dtype`` (complex128 or
    complex64). ``potential(t)`` returns V on the grid; with ``static`` it is called once and
    the potential phases are cached, as many as the composition uses in a run of equal steps."""

    def __init__(self, grid: Grid, potential: Callable[[float], np.ndarray], *, static: bool,
                 hbar: float, m: float, order: int, dtype=np.complex128) -> None:
        self.grid, self.potential, self.static, self.hbar, self.m = grid, potential, static, hbar, m
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.complex128, np.complex64):
            raise ValueError(f"ψ must be complex128 or complex64, got {self.dtype}")
        self.fractions = composition(order)
        self.workers = fft_workers()
        k = [grid.wavenumbers(a) for a in range(grid.dims)]
        self.k_outer = [np.abs(ka) >= (1 - SPECTRUM_LAYER) * np.pi / grid.dx for ka in k]
        self._k2 = [ka**2 for ka in k]
        doubled = [np.flatnonzero(grid.weights(a) == 2) for a in range(grid.folded)]
        self._doubled = [(a, int(i[0]), int(i[-1]) + 1) for a, i in enumerate(doubled) if i.size]
        real = np.empty(0, self.dtype).real.dtype
        self._v = np.asarray(potential(0.0), dtype=real) if static else None
        self._capacity = phase_arrays(order)
        self._phases: OrderedDict[float, np.ndarray] = OrderedDict()
        self._kinetic: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._buffer: np.ndarray | None = None

    def step(self, psi: np.ndarray, t: float, h: float, *, owed: float = 0.0,
             tail: bool = False) -> tuple[float, float]:
        """ψ(t) → ψ(t + h) in place, but for the last potential half-kick, whose coefficient is
        returned (owed: pass it to the next step, or to ``kick`` at t + h); ``owed`` is the one
        the previous step left. Also returns the spectral tail of ψ̂ in the last stage when
        ``tail`` (else 0)."""
        tail_mass = 0.0
        for j, f in enumerate(self.fractions):
            self.kick(psi, owed + f * h / 2, t)
            self.grid.transform(psi, self.workers)
            self._drift(psi, f * h)
            if tail and j == len(self.fractions) - 1:
                tail_mass = self.spectral_tail(psi)
            self.grid.transform(psi, self.workers, inverse=True)
            t, owed = t + f * h, f * h / 2
        return owed, tail_mass

    def kick(self, psi: np.ndarray, coef: float, t: float) -> None:
        """ψ ← e^{−i V(t) coef / ħ} ψ, in place."""
        if coef == 0:
            return
        if not self.static:
            psi *= np.exp((-1j * coef / self.hbar) * self.potential(t)).astype(self.dtype, copy=False)
            return
        key = _key(coef)
        phase = self._phases.get(key)
        if phase is None:
            phase = np.empty(self.grid.shape, self.dtype)
            flat, v = phase.reshape(-1), self._v.reshape(-1)
            for lo in range(0, flat.size, CHUNK):
                flat[lo:lo + CHUNK] = np.exp((-1j * coef / self.hbar) * v[lo:lo + CHUNK])
            self._phases[key] = phase
            if len(self._phases) > self._capacity:
                self._phases.popitem(last=False)
        self._phases.move_to_end(key)
        np.multiply(psi, phase, out=psi)

    def density(self, psi: np.ndarray, scale: float) -> np.ndarray:
        """|ψ|²·scale in float64 times each point's weight on the folded axes (so that it sums
        as the full grid would), in a buffer that the next call overwrites."""
        if self._buffer is None:
            self._buffer = np.empty(self.grid.shape)
        flat, out = psi.reshape(-1), self._buffer.reshape(-1)
        for lo in range(0, flat.size, CHUNK):
            z, o = flat[lo:lo + CHUNK], out[lo:lo + CHUNK]
            np.square(z.real, out=o, dtype=np.float64)
            o += np.square(z.imag, dtype=np.float64)
            o *= scale
        for a, lo, hi in self._doubled:  # folded axes: the points standing for two
            self._buffer[(slice(None),) * a + (slice(lo, hi),)] *= 2.0
        return self._buffer

    def spectral_tail(self, psi_hat: np.ndarray) -> float:
        """Fraction of |ψ̂|² in the outer SPECTRUM_LAYER of the Nyquist range (any axis)."""
        return outer_fraction(axis_marginals(self.density(psi_hat, 1.0)), self.k_outer)

    def _drift(self, psi_hat: np.ndarray, tau: float) -> None:
        """ψ̂ ← e^{−iħτk²/2m} ψ̂, in place: the factor of the first axis times the precomputed
        product over the others, one slab of the first axis at a time."""
        key = _key(tau)
        if key not in self._kinetic:
            if len(self._kinetic) >= 2 * self.fractions.size:
                self._kinetic.clear()
            factors = [np.exp((-1j * self.hbar * tau / (2 * self.m)) * k2) for k2 in self._k2]
            rest = np.ones((), complex)
            for axis in factors[1:]:
                rest = np.multiply.outer(rest, axis)
            self._kinetic[key] = factors[0].astype(self.dtype), rest.astype(self.dtype)
        first, rest = self._kinetic[key]
        if self.grid.dims == 1:
            psi_hat *= first
            return
        for i in range(first.size):
            slab = psi_hat[i]
            np.multiply(slab, rest, out=slab)
            slab *= first[i]


def evolve(psi: np.ndarray, grid: Grid, potential: Callable[[float], np.ndarray], *, static: bool,
           hbar: float, m: float, times: np.ndarray, dt: float, order: int,
           observe: Callable[[int, np.ndarray], None], dtype=np.complex128) -> Propagation:
    """Propagate ``psi`` (ψ at t = 0 on ``grid``, overwritten when of ``dtype``, ending as
    ψ(times[-1])) to each of ``times`` (sorted, ≥ 0) with steps of at most ``dt``, calling
    ``observe(k, mass)`` with the mass per cell |ψ|²·dV at times[k], rescaled to the initial
    norm (float64; a buffer that the propagation reuses, so the observer must not keep it).

    Each interval between observed times is cut into equal steps, so every observation falls on
    a step boundary and is exact to the method's order."""
    start = time.perf_counter()
    stepper = SplitOperator(grid, potential, static=static, hbar=hbar, m=m, order=order, dtype=dtype)
    psi = np.ascontiguousarray(psi, dtype=stepper.dtype)
    x_outer = [np.abs(grid.points(a) - grid.centre) >= (1 - EDGE_LAYER) * grid.half for a in range(grid.dims)]
    norm0 = float(stepper.density(psi, grid.cell).sum())
    grid.transform(psi, stepper.workers)  # in place and back: no ψ-sized copy
    worst_tail = stepper.spectral_tail(psi)
    grid.transform(psi, stepper.workers, inverse=True)
    t, steps, owed = 0.0, 0, 0.0
    worst_edge = drift_norm = 0.0
    for idx, target in enumerate(times):
        n_steps = int(np.ceil((target - t) / dt - 1e-9)) if target > t else 0
        for j in range(n_steps):
            h = (target - t) / (n_steps - j)
            owed, tail = stepper.step(psi, t, h, owed=owed, tail=j == n_steps - 1)
            t += h
            worst_tail = max(worst_tail, tail)
        steps += n_steps
        mass = stepper.density(psi, grid.cell)  # the owed half-kick is a phase: |ψ|² is final
        marginals = axis_marginals(mass)
        norm = float(marginals[0].sum())
        drift_norm = max(drift_norm, abs(norm - norm0))
        worst_edge = max(worst_edge, outer_fraction(marginals, x_outer))
        mass *= norm0 / norm  # unitary evolution: a drift is rounding (complex64: ~1e-7 a stage)
        observe(idx, mass)
    stepper.kick(psi, owed, t)
    return Propagation(steps, steps * stepper.fractions.size, worst_edge, worst_tail, drift_norm,
                       time.perf_counter() - start)
