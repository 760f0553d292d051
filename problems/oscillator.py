"""The d-dimensional harmonic oscillator with a Gaussian packet: exact at any d and any t."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace

from harness.api import Prediction, UserError
from problems.packet import PacketProblem


@dataclass(frozen=True)
class Oscillator(PacketProblem):
    """V = ½mω²|x − c|², ψ0 ∝ exp(−|x − x0|²/(4σ0²) + i p0 Σx/ħ) (every axis alike).

    The packet stays Gaussian: mean(t) − c = (x0 − c) cos ωt + p0/(mω) sin ωt and
    Var(t) = σ0² cos² ωt + (ħ/(2mωσ0))² sin² ωt, so moments and marginals are exact.
    The DSM paper's 1-D cases are the variants ``oscillator_paper`` (phase 0) and
    ``oscillator_paper_momentum`` (phase e^{−5ix}, i.e. p0 = −5ħ)."""

    name = "oscillator"
    summary = "harmonic trap with a displaced, moving, squeezed Gaussian packet (exact)"
    variants = {
        "oscillator_paper": dict(hbar=1e-2, centre=0.1, x0=0.0, p0=0.0, sigma0=math.sqrt(0.1)),
        "oscillator_paper_momentum": dict(hbar=1e-2, centre=0.1, x0=0.0, p0=-5e-2,
                                          sigma0=math.sqrt(0.1)),
    }

    d: int = 1
    centre: float = 0.0
    omega: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.omega <= 0:
            raise UserError(f"oscillator needs omega > 0, got omega={self.omega}")

    @property
    def box(self) -> tuple[float, float]:
        swing = math.hypot(self.x0 - self.centre, self.p0 / (self.m * self.omega))
        widest = max(self.sigma0, self.hbar / (2 * self.m * self.omega * self.sigma0))
        half = swing + 6 * widest
        return self.centre - half, self.centre + half

    def potential(self, x, t):
        xp = array_namespace(x)
        return 0.5 * self.m * self.omega**2 * xp.sum((x - self.centre) ** 2, axis=-1)

    def grad_potential(self, x, t):
        return (self.m * self.omega**2) * (x - self.centre)

    def exact_moments(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of every coordinate at ``times``, shape (K,)."""
        wt = self.omega * np.asarray(times, dtype=float)
        mean = self.centre + (self.x0 - self.centre) * np.cos(wt) + self.p0 / (self.m * self.omega) * np.sin(wt)
        spread = self.hbar / (2 * self.m * self.omega * self.sigma0)
        var = self.sigma0**2 * np.cos(wt) ** 2 + spread**2 * np.sin(wt) ** 2
        return mean, var

    def exact(self, times: np.ndarray) -> Prediction:
        times = np.asarray(times, dtype=float)
        return self.gaussian_prediction(times, *self.exact_moments(times))
