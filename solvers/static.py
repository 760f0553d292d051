"""The static baseline: the initial state at every time, i.e. the prediction "nothing moves".

Every real solver must beat it on the problems it claims (DESIGN §3). Its moments and marginals
are those of |ψ0|²: exact where the problem has a closed form (``problem.exact`` at t = 0),
otherwise from a large sample of ``problem.sample_initial``, which needs no grid in any d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.api import Context, Prediction, Problem, Solver, UserError
from harness.observables import sample_observables


@dataclass
class Settings:
    """Sample size of the initial density when the problem has no exact solution."""

    n_samples: int = 200_000  #: samples of |ψ0|² (sampling error in the variance ≈ √(2/n))

    def __post_init__(self) -> None:
        if isinstance(self.n_samples, bool) or int(self.n_samples) != self.n_samples or self.n_samples < 2:
            raise UserError(f"static: n_samples must be an integer >= 2, got {self.n_samples!r}")


class StaticSolver(Solver):
    name = "static"
    summary = "baseline: predicts the initial state at every time (no motion)"
    Settings = Settings
    presets = {"smoke": dict(n_samples=10_000), "quick": {}, "paper": {}}

    def solve(self, problem: Problem, times: np.ndarray, settings: Settings, ctx: Context) -> Prediction:
        times = np.asarray(times, dtype=float)
        edges = problem.marginal_edges()
        initial = problem.exact(np.zeros(1))
        if initial is not None:
            mean, var, marg, n = initial.mean[0], initial.var[0], initial.marginals[0], None
        else:
            samples = problem.sample_initial(int(settings.n_samples), ctx.rng())
            (mean, var, marg), n = sample_observables(samples, edges), len(samples)
        ctx.progress(1.0)
        k = times.size
        return Prediction(times, np.tile(mean, (k, 1)), np.tile(var, (k, 1)), np.tile(marg, (k, 1, 1)),
                          edges, n_samples=n, diagnostics=dict(source="exact" if n is None else "samples"))
