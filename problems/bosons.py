"""Interacting bosons in a harmonic trap (DESIGN §4, the DSM paper's main problem)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace

from harness.api import Prediction, Problem, UserError
from harness.observables import gaussian_bins
from problems import gaussian


@dataclass(frozen=True)
class Bosons(gaussian.TrapGroundState, Problem):
    """d bosons in 1-D: V = Σ ½mω²x_i² + (g/2) Σ_{i<j} exp(−(x_i−x_j)²/(2s²)) / √(2πs²).

    Each unordered pair is counted once. ψ0 is the non-interacting ground state, so
    Var(x_i, 0) = ħ/(2mω); with g = 0 the state is stationary and exact at any d."""

    name = "bosons"
    summary = "d bosons in a harmonic trap with a Gaussian pair repulsion (DSM paper)"

    d: int = 2
    g: float = 1.0
    s2: float = 0.1
    omega: float = 1.0
    hbar: float = 0.1
    m: float = 1.0
    T: float = 1.0

    def validate(self) -> None:
        if self.s2 <= 0 or self.omega <= 0:
            raise UserError(f"bosons needs s2 > 0 and omega > 0, got s2={self.s2}, omega={self.omega}")

    @property
    def box(self) -> tuple[float, float]:
        # The repulsion spreads the cloud as d grows (Var(x_1, t=1) ≈ 0.23, 0.42, 0.62 at
        # d = 2, 3, 4 for g = 1, with tails well past 1.5 at d = 4): widen by half a unit per
        # particle, never below eight ground-state widths.
        half = 8 * self.sigma0
        if self.g != 0:
            half = max(half, (1.0 + 0.5 * self.d) * max(1.0, abs(self.g)) ** 0.25)
        return -half, half

    def _pair(self, x):
        """Differences x_i − x_j (..., d, d) and the normalised Gaussian of each."""
        xp = array_namespace(x)
        diff = x[..., :, None] - x[..., None, :]
        kernel = xp.exp(-(diff**2) / (2 * self.s2)) / math.sqrt(2 * math.pi * self.s2)
        return diff, kernel

    def potential(self, x, t):
        xp = array_namespace(x)
        trap = 0.5 * self.m * self.omega**2 * xp.sum(x**2, axis=-1)
        if self.g == 0 or self.d == 1:
            return trap
        _, kernel = self._pair(x)
        # Σ_{i<j} = (Σ_{i,j} − diagonal) / 2; the diagonal is d / √(2πs²).
        pairs = (xp.sum(kernel, axis=(-2, -1)) - self.d / math.sqrt(2 * math.pi * self.s2)) / 2
        return trap + 0.5 * self.g * pairs

    def grad_potential(self, x, t):
        xp = array_namespace(x)
        grad = self.m * self.omega**2 * x
        if self.g == 0 or self.d == 1:
            return grad
        diff, kernel = self._pair(x)
        return grad - (0.5 * self.g / self.s2) * xp.sum(kernel * diff, axis=-1)

    def exact(self, times: np.ndarray) -> Prediction | None:
        if self.g != 0 and self.d > 1:
            return None
        times = np.asarray(times, dtype=float)
        mean = np.zeros((times.size, self.d))
        var = np.full_like(mean, self.sigma0**2)
        edges = self.marginal_edges()
        return Prediction(times, mean, var, gaussian_bins(mean, var, edges), edges)
