"""Free spreading from a narrow packet (V = 0): the DSM paper's relaxed singular start, a δ
initial state relaxed to a Gaussian of variance ħ²/m²; exact at any d."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace

from harness.api import Prediction
from problems.packet import PacketProblem


@dataclass(frozen=True)
class FreeSpread(PacketProblem):
    """V = 0; mean(t) = x0 + p0 t/m and Var(t) = σ0² + (ħt/(2mσ0))². The defaults (ħ = 1e-2,
    σ0 = ħ/m = 0.01) grow the width fiftyfold by T = 1: a start far narrower than the end."""

    name = "free_spread"
    summary = "free particle from a narrow Gaussian (DSM paper's relaxed singular start; exact)"

    d: int = 1
    hbar: float = 1e-2
    sigma0: float = 1e-2

    def potential(self, x, t):
        xp = array_namespace(x)
        return 0.0 * xp.sum(x, axis=-1)

    def grad_potential(self, x, t):
        return 0.0 * x

    def exact_moments(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(times, dtype=float)
        mean = self.x0 + self.p0 / self.m * t
        var = self.sigma0**2 + (self.hbar * t / (2 * self.m * self.sigma0)) ** 2
        return mean, var

    @property
    def box(self) -> tuple[float, float]:
        mean, var = self.exact_moments(np.array([0.0, self.T]))
        half = 6 * math.sqrt(var.max())
        return float(mean.min() - half), float(mean.max() + half)

    def exact(self, times: np.ndarray) -> Prediction:
        times = np.asarray(times, dtype=float)
        return self.gaussian_prediction(times, *self.exact_moments(times))
