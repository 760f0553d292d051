"""Bosons in a harmonic trap coupled by harmonic springs: interacting, yet exact at every d."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace

from harness.api import Prediction, Problem, UserError
from harness.observables import gaussian_bins
from problems import gaussian, quadratic

#: the default coupling is DEFAULT_KAPPA · mω²/d (see HarmonicBosons)
DEFAULT_KAPPA = -3.0


@dataclass(frozen=True)
class HarmonicBosons(gaussian.TrapGroundState, Problem):
    """d bosons in 1-D: V = Σ ½mω²x_i² + (κ/2) Σ_{i<j} (x_i − x_j)², quenched from the trap's
    ground state. The centre of mass stays in its ground state; the d − 1 relative modes have
    Ω² = ω² + dκ/m (inverted, growing as cosh/sinh, when κ < −mω²/d), so ψ stays Gaussian.

    The default κ (``kappa`` = NaN, filled in at construction) is −3mω²/d: Ω² = −2ω², inverted
    relative modes. A repulsion (Ω > ω) only squeezes the relative width, and the COM keeps
    Var(x_i) ≥ ħ/(2mωd) (half of ψ0's variance at d = 2): less than a 2× change there; a
    non-inverted attraction widens Var(x_i) by at most 1.5× by t = 1/ω at d = 2. The inverted
    default changes Var(x_1) by 3.8× (d = 2) to 6.6× (d → ∞) over [0, 1/ω]."""

    name = "harmonic_bosons"
    summary = ("d bosons in a harmonic trap with harmonic pair springs, kappa = -3 m omega²/d by "
               "default (a quench; exact at any d)")

    d: int = 2
    omega: float = 1.0
    #: NaN: the d-dependent default DEFAULT_KAPPA · mω²/d, filled in (so ``dataclasses.replace``
    #: with another d keeps the filled value: pass kappa=nan again for that d's default)
    kappa: float = math.nan
    hbar: float = 0.1
    m: float = 1.0
    T: float = 1.0

    def __post_init__(self) -> None:
        if self.kappa != self.kappa:  # NaN: the default for this d
            try:
                kappa = DEFAULT_KAPPA * self.m * self.omega**2 / self.d
            except (TypeError, ZeroDivisionError):  # a bad d, m or omega, refused just below
                kappa = 0.0
            object.__setattr__(self, "kappa", kappa)
        super().__post_init__()

    def validate(self) -> None:
        if self.omega <= 0:
            raise UserError(f"harmonic_bosons needs omega > 0, got omega={self.omega}")

    @property
    def relative_omega2(self) -> float:
        """Ω² = ω² + dκ/m of the d − 1 relative modes (negative: inverted)."""
        return self.omega**2 + self.d * self.kappa / self.m

    def _mode_variances(self, times) -> tuple[np.ndarray, np.ndarray]:
        """Variances of the centre-of-mass mode (constant) and of each relative mode, (K,)."""
        times = np.asarray(times, dtype=float)
        _, rel = quadratic.moments([self.relative_omega2], [0.0], [0.0], self.sigma0, self.hbar,
                                   self.m, times)
        return np.full(times.size, self.sigma0**2), rel[:, 0]

    def exact_var(self, times) -> np.ndarray:
        """Var(x_i, t), the same for every i, shape (K,): the COM mode contributes 1/d of its
        variance and the relative modes the rest."""
        com, rel = self._mode_variances(times)
        return com / self.d + (1 - 1 / self.d) * rel

    @property
    def box(self) -> tuple[float, float]:
        # 7 standard deviations of x_i at its widest over [0, T] (at least ψ0's): the outer
        # tenth of the box holds < 1e-9. A Helmert relative coordinate, with a relative mode's
        # variance ≤ d/(d − 1) Var(x_i), fits the box the reference widens by √(d/(d − 1)).
        half = 7 * math.sqrt(self.exact_var(np.linspace(0, self.T, 257)).max())
        return -half, half

    def potential(self, x, t):
        xp = array_namespace(x)
        square, total = xp.sum(x**2, axis=-1), xp.sum(x, axis=-1)
        # Σ_{i<j} (x_i − x_j)² = d Σx_i² − (Σx_i)²
        pairs = self.d * square - total**2
        return 0.5 * self.m * self.omega**2 * square + 0.5 * self.kappa * pairs

    def grad_potential(self, x, t):
        xp = array_namespace(x)
        total = xp.sum(x, axis=-1, keepdims=True)
        return (self.m * self.omega**2 + self.kappa * self.d) * x - self.kappa * total

    def psi(self, x: np.ndarray, t: float) -> np.ndarray:
        """The exact ψ(x, t) (complex numpy, x of shape (..., d)), O(d) per point: the COM mode
        along (1, …, 1)/√d times d − 1 identical relative modes, which depend on |x_⊥|² only."""
        x = np.asarray(x, dtype=float)
        com = np.sum(x, axis=-1) / math.sqrt(self.d)
        perp2 = np.sum(x**2, axis=-1) - com**2
        omega2 = np.array([self.omega**2, self.relative_omega2])
        log_norm, curv, _, _ = quadratic.wave(omega2, 0.0, 0.0, self.sigma0, self.hbar, self.m, t)
        log = (log_norm[0] + (self.d - 1) * log_norm[1]
               + 0.5j / self.hbar * (curv[0] * com**2 + curv[1] * perp2))
        return np.exp(log)

    def exact(self, times: np.ndarray) -> Prediction:
        times = np.asarray(times, dtype=float)
        var1 = self.exact_var(times)
        edges = self.marginal_edges()
        bins1 = gaussian_bins(np.zeros((times.size, 1)), var1[:, None], edges)
        return Prediction(times, np.zeros((times.size, self.d)), np.repeat(var1[:, None], self.d, axis=1),
                          np.repeat(bins1, self.d, axis=1), edges)
