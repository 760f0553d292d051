"""A harmonic trap whose centre is driven, V = ½mω²|x − A sin(Ωt)|²: exact at any d, and the
simplest test of a solver's time dependence."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace

from harness.api import Prediction, UserError
from problems.packet import PacketProblem


@dataclass(frozen=True)
class DrivenTrap(PacketProblem):
    """Every axis driven alike. A Gaussian packet stays Gaussian: its width breathes as in the
    static trap, Var(t) = σ0² cos² ωt + (ħ/(2mωσ0))² sin² ωt, and its centre follows Newton,
    ẍ = −ω²(x − A sin Ωt), x(0) = x0, ẋ(0) = p0/m (a driven coherent state)."""

    name = "driven_trap"
    summary = "harmonic trap whose centre moves as A sin(Omega t) (exact, time-dependent V)"
    time_dependent = True

    d: int = 1
    omega: float = 1.0
    A: float = 0.3
    Omega: float = 3.0
    T: float = 2.0

    def validate(self) -> None:
        super().validate()
        if self.omega <= 0 or self.Omega < 0:
            raise UserError(f"driven_trap needs omega > 0 and Omega >= 0, got {self.omega}, {self.Omega}")

    def _centre(self, t, xp):
        """A sin(Ωt) for a number t or an array of x's namespace (DSM's times, shape (P, 1))."""
        if isinstance(t, (int, float)):
            return self.A * math.sin(self.Omega * t)
        return self.A * xp.sin(self.Omega * t)

    def potential(self, x, t):
        xp = array_namespace(x)
        return 0.5 * self.m * self.omega**2 * xp.sum((x - self._centre(t, xp)) ** 2, axis=-1)

    def grad_potential(self, x, t):
        return (self.m * self.omega**2) * (x - self._centre(t, array_namespace(x)))

    def exact_moments(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of every coordinate at ``times``."""
        t = np.asarray(times, dtype=float)
        w, W, v0 = self.omega, self.Omega, self.p0 / self.m
        if abs(W - w) < 1e-9 * w:  # resonance: the response grows linearly in time
            mean = self.x0 * np.cos(w * t) + (v0 + w * self.A / 2) / w * np.sin(w * t) \
                - (w * self.A * t / 2) * np.cos(w * t)
        else:
            B = w**2 * self.A / (w**2 - W**2)
            mean = self.x0 * np.cos(w * t) + (v0 - B * W) / w * np.sin(w * t) + B * np.sin(W * t)
        spread = self.hbar / (2 * self.m * w * self.sigma0)
        var = self.sigma0**2 * np.cos(w * t) ** 2 + spread**2 * np.sin(w * t) ** 2
        return mean, var

    @property
    def box(self) -> tuple[float, float]:
        mean, _ = self.exact_moments(np.linspace(0, self.T, 512))
        widest = max(self.sigma0, self.hbar / (2 * self.m * self.omega * self.sigma0))
        return float(mean.min() - 6 * widest), float(mean.max() + 6 * widest)

    def exact(self, times: np.ndarray) -> Prediction:
        times = np.asarray(times, dtype=float)
        return self.gaussian_prediction(times, *self.exact_moments(times))
