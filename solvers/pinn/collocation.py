"""Where the PINN's loss is evaluated: collocation points in box × [0, T] (uniform, Latin
hypercube, focused on the initial cloud or on its classical flow), initial, edge and norm points,
and the directions of the Laplacian."""

from __future__ import annotations

import math

import numpy as np
import torch

from harness.api import Problem
from solvers.pinn.flow import Flow

#: distinct collocation times when the potential takes one time per call
TIME_LEVELS = 256
#: trajectories and steps of the classical flow (``focus_on="flow"``)
FLOW_PATHS, FLOW_STEPS = 4096, 100


class Sampler:
    """Collocation points in box × [0, T]: ``uniform`` or Latin-hypercube (``lhs``), of which a
    fraction ``focus`` is drawn instead around the state: ``focus_on="initial"``, a Gaussian of
    |ψ0|²'s mean and spread widened ``focus_width`` times; ``"flow"``, a point of a classical
    trajectory of ψ0's samples (``flow.Flow``) at that time, jittered by ``flow_jitter`` times the
    cloud's spread then. Both clipped to the box. The norm term's proposal follows the same
    cloud (its mean, its spread widened ``focus_width`` times)."""

    def __init__(self, problem: Problem, settings, gen: torch.Generator, dtype, device,
                 rng: np.random.Generator):
        self.problem, self.s, self.gen = problem, settings, gen
        self.dtype, self.device = dtype, device
        self.lo, self.hi = problem.box
        self.discrete_time = False
        self.horizon = 1.0  # collocation times lie in [0, horizon·T] (the time curriculum)
        cloud = problem.sample_initial(4096, rng)
        self.mu = torch.as_tensor(cloud.mean(0), dtype=dtype, device=device)
        self.sd = torch.as_tensor(cloud.std(0) * settings.focus_width, dtype=dtype, device=device)
        self.flow = (Flow(problem, FLOW_PATHS, FLOW_STEPS, rng) if settings.focus_on == "flow"
                     else None)

    def cloud(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and spread (× ``focus_width``) of the focus cloud at times t, each (len(t), d)."""
        if self.flow is None:
            return self.mu.expand(t.shape[0], -1), self.sd.expand(t.shape[0], -1)
        mean, sd = self.flow.moments(t.detach().cpu().numpy())
        as_t = lambda a: torch.as_tensor(a, dtype=self.dtype, device=self.device)  # noqa: E731
        return as_t(mean), as_t(sd * self.s.focus_width)

    def _focus(self, t: torch.Tensor) -> torch.Tensor:
        """One focus point per time in t, (len(t), d), clipped to the box."""
        g = torch.randn(t.shape[0], self.problem.d, generator=self.gen, dtype=self.dtype,
                        device=self.device)
        if self.flow is None:
            x = self.mu + self.sd * g
        else:
            which = torch.randint(0, FLOW_PATHS, (t.shape[0],), generator=self.gen,
                                  device=self.device)
            tn = t.detach().cpu().numpy()
            centre = self.flow.positions(tn, which.cpu().numpy())
            sd = self.flow.moments(tn)[1] * self.s.flow_jitter
            x = torch.as_tensor(centre, dtype=self.dtype, device=self.device) + torch.as_tensor(
                sd, dtype=self.dtype, device=self.device) * g
        return x.clamp(self.lo, self.hi)

    def _unit(self, n: int, k: int) -> torch.Tensor:
        """n points in [0, 1]^k, uniform or Latin hypercube."""
        u = torch.rand(n, k, generator=self.gen, dtype=self.dtype, device=self.device)
        if self.s.collocation == "lhs":
            strata = torch.stack([torch.randperm(n, generator=self.gen, device=self.device)
                                  for _ in range(k)], dim=1).to(self.dtype)
            u = (strata + u) / n
        return u

    def interior(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.problem.d
        u = self._unit(n, d + 1)
        x = self.lo + (self.hi - self.lo) * u[:, :d]
        t = self.times(u[:, d])
        n_focus = int(round(self.s.focus * n))
        if n_focus:
            x = torch.cat([self._focus(t[:n_focus]), x[n_focus:]])
        return x, t

    def norm_points(self, n_times: int, n: int):
        """For the norm term: stratified times (n_times,) and, at each, n points (n_times, n, d)
        from q = 0.8·N(cloud mean, cloud spread²) + 0.2·U(box), with 1/q (zero outside the box)."""
        d = self.problem.d
        u = (torch.arange(n_times, dtype=self.dtype, device=self.device)
             + torch.rand(n_times, generator=self.gen, dtype=self.dtype, device=self.device)) / n_times
        t = self.times(u)
        shape = (n_times, n, d)
        mu, sd = (c[:, None, :] for c in self.cloud(t))
        g = mu + sd * torch.randn(shape, generator=self.gen, dtype=self.dtype, device=self.device)
        uni = self.lo + (self.hi - self.lo) * torch.rand(shape, generator=self.gen, dtype=self.dtype,
                                                         device=self.device)
        pick = torch.rand(n_times, n, 1, generator=self.gen, dtype=self.dtype, device=self.device) < 0.8
        x = torch.where(pick, g, uni)
        log_g = (-0.5 * ((x - mu) / sd) ** 2 - torch.log(sd * math.sqrt(2 * math.pi))).sum(-1)
        q = 0.8 * torch.exp(log_g) + 0.2 / (self.hi - self.lo) ** d
        inside = ((x >= self.lo) & (x <= self.hi)).all(-1)
        return t, x, torch.where(inside, 1 / q, torch.zeros_like(q))

    def initial(self, n: int) -> torch.Tensor:
        x, _ = self.interior(n)
        return x

    def boundary(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n points on the faces of the box (a random face each), times uniform."""
        d = self.problem.d
        u = self._unit(n, d + 1)
        x = self.lo + (self.hi - self.lo) * u[:, :d]
        face = torch.randint(0, 2 * d, (n,), generator=self.gen, device=self.device)
        axis, side = face // 2, (face % 2).to(self.dtype)
        x[torch.arange(n, device=self.device), axis] = self.lo + (self.hi - self.lo) * side
        return x, self.times(u[:, d])

    def times(self, u: torch.Tensor) -> torch.Tensor:
        """Times T·u, snapped to TIME_LEVELS levels when the potential takes one time per call."""
        u = u * self.horizon
        if self.discrete_time:
            u = torch.round(u * (TIME_LEVELS - 1)) / (TIME_LEVELS - 1)
        return self.problem.T * u


def directions(d: int, n: int, probes: int, gen: torch.Generator, dtype, device) -> torch.Tensor:
    """Spatial directions for the Laplacian: the d unit vectors (exact; shape (d, 1, d)) or
    ``probes`` Rademacher vectors per point (Hutchinson; shape (probes, n, d))."""
    if probes == 0:
        return torch.eye(d, dtype=dtype, device=device)[:, None, :]
    signs = torch.randint(0, 2, (probes, n, d), generator=gen, device=device)
    return (2 * signs - 1).to(dtype)
