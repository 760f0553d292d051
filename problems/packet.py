"""Problems that start from one Gaussian packet: ψ0 ∝ exp(−|x − x0|²/(4σ0²) + i p0 Σx/ħ), every
axis alike, so |ψ0|² is N(x0, σ0² I). Subclasses add the potential."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.api import Problem, UserError
from problems import gaussian


@dataclass(frozen=True)
class PacketProblem(Problem):
    """A Problem whose ψ0 is the Gaussian packet of centre x0, momentum p0 and width σ0."""

    x0: float = 0.0
    p0: float = 0.0
    sigma0: float = 0.25

    def validate(self) -> None:
        if self.sigma0 <= 0:
            raise UserError(f"{self.name} needs sigma0 > 0, got {self.sigma0}")

    def log_psi0(self, x):
        return gaussian.log_psi0(x, self.x0, self.sigma0, self.p0, self.hbar)

    def sample_initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return gaussian.sample(n, self.d, self.x0, self.sigma0, rng)

    def u0(self, x):
        return gaussian.osmotic(x, self.x0, self.sigma0, self.hbar, self.m)

    def v0(self, x):
        return 0.0 * x + self.p0 / self.m

    def gaussian_prediction(self, times: np.ndarray, mean1: np.ndarray, var1: np.ndarray):
        """The exact Prediction of a packet that stays Gaussian, every axis alike."""
        from harness.api import Prediction
        from harness.observables import gaussian_bins

        mean = np.repeat(np.asarray(mean1, dtype=float)[:, None], self.d, axis=1)
        var = np.repeat(np.asarray(var1, dtype=float)[:, None], self.d, axis=1)
        edges = self.marginal_edges()
        return Prediction(times, mean, var, gaussian_bins(mean, var, edges), edges)
