"""The PINN's ansatz ψ(x, t) built on the network (additive or log form, with the initial and
edge conditions optionally built in), its derivatives and the TDSE residual."""

from __future__ import annotations

import torch

from harness.api import Problem
from solvers.pinn.net import PsiNet


def _directional(f, x: torch.Tensor, dirs: torch.Tensor):
    """f(x), its first and pure second derivatives along each of ``dirs`` (K, N, d) by nested
    forward mode; f maps (N, d) to (N, c). Returns (N, c), (K, N, c), (K, N, c)."""
    x = x.contiguous()
    value = f(x)
    first, second = [], []
    for v in dirs:
        v = v.expand_as(x).contiguous()

        def along(y, v=v):
            return torch.func.jvp(f, (y,), (v,))[1]

        d1, d2 = torch.func.jvp(along, (x,), (v,))
        first.append(d1)
        second.append(d2)
    return value, torch.stack(first), torch.stack(second)


class Ansatz:
    """ψ(x, t) built on the network N_θ = (N_re, N_im), in one of two forms:

    * ``additive`` (the classic PINN): ψ = ψ0(x) + τ(t) B(x) A N_θ(x, t), with A the peak of |ψ0|
      (so N = O(1));
    * ``log``: ψ = exp(log ψ0(x) + τ(t) B(x) N_θ(x, t)), N a complex correction of log ψ (the exact
      oscillator packet has log ψ quadratic in x, and ψ keeps ψ0's decay at the box edge).

    τ = t/T when the initial condition is built in (else τ = 1, no ψ0 term and an IC loss);
    B = Π(1 − z_i²) in box coordinates when the edge condition is built in (else 1 and a
    boundary loss)."""

    def __init__(self, problem: Problem, net: PsiNet, hard_ic: bool, hard_bc: bool,
                 amplitude: float, form: str = "additive"):
        self.problem, self.net, self.form = problem, net, form
        self.hard_ic, self.hard_bc = hard_ic, hard_bc
        lo, hi = problem.box
        self.centre, self.half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        self.T = problem.T
        self.A = amplitude if form == "additive" else 1.0
        self.scale = amplitude  # residuals are measured in units of |ψ0|'s peak
        self.vector_time: bool | None = None  # does potential(x, t) take t per point?
        self.d = problem.d
        self.backbone = None  # a Backbone (log form, hard_ic): φ gains log G(t) − log G(0)

    # -- pieces -------------------------------------------------------------------------------
    def inputs(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        z = (x - self.centre) / self.half
        return torch.cat([z, (2 * t / self.T - 1)[:, None]], dim=1)

    def psi0(self, x: torch.Tensor) -> torch.Tensor:
        """ψ0 as (N, 2) real and imaginary parts."""
        log_abs, phase = self.problem.log_psi0(x)
        r = torch.exp(log_abs)
        return torch.stack([r * torch.cos(phase), r * torch.sin(phase)], dim=-1)

    def log_psi0(self, x: torch.Tensor) -> torch.Tensor:
        """log ψ0 as (N, 2): log|ψ0| and arg ψ0."""
        return torch.stack(self.problem.log_psi0(x), dim=-1)

    def envelope(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.centre) / self.half
        return torch.prod(1 - z * z, dim=-1, keepdim=True)

    # -- value ----------------------------------------------------------------------------------
    def psi(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ψ(x, t) as (N, 2)."""
        out = self.A * self.net(self.inputs(x, t))
        if self.hard_bc:
            out = out * self.envelope(x)
        if self.form == "log":
            if self.hard_ic:
                out = self.log_psi0(x) + (t / self.T)[:, None] * out
                if self.backbone is not None:
                    g = self.backbone.terms(x, t)[0] - self.backbone.terms(x, 0 * t)[0]
                    out = out + torch.stack([g.real, g.imag], dim=-1)
            r = torch.exp(out[:, 0])
            return torch.stack([r * torch.cos(out[:, 1]), r * torch.sin(out[:, 1])], dim=-1)
        if self.hard_ic:
            out = self.psi0(x) + (t / self.T)[:, None] * out
        return out

    # -- derivatives ----------------------------------------------------------------------------
    def derivatives(self, x: torch.Tensor, t: torch.Tensor, dirs: torch.Tensor,
                    relative: bool = False):
        """ψ, ∂tψ and Σ_k ∂²_{v_k} ψ (each (N, 2)) for spatial directions ``dirs`` (K, N or 1, d);
        ``relative`` (log form only): each divided by ψ instead, as complex (N,) tensors.

        The network's derivatives come from its jet (forward mode, in physical units); ψ0's and
        the envelope's from nested jvp (they have no parameters, so no graph is kept)."""
        K = dirs.shape[0]
        z = self.inputs(x, t)
        zeros = dirs.new_zeros(dirs.shape[:-1] + (1,))
        tan_x = torch.cat([dirs / self.half, zeros], dim=-1)  # (K, ., d+1)
        tan_t = z.new_zeros((1, tan_x.shape[1], self.d + 1))
        tan_t[..., -1] = 2 / self.T
        tangents = torch.cat([tan_t, tan_x])
        N, dN, d2N = self.net.jet(z, tangents, K)
        N, N_t, N_v, N_vv = self.A * N, self.A * dN[0], self.A * dN[1:], self.A * d2N
        if self.hard_bc:
            with torch.no_grad():
                B, B_v, B_vv = _directional(self.envelope, x, dirs)
            N_vv = B * N_vv + 2 * B_v * N_v + B_vv * N
            N_v = B * N_v + B_v * N
            N, N_t = B * N, B * N_t
        if self.form == "log":
            return self._log_derivatives(x, t, dirs, N, N_t, N_v, N_vv, relative)
        lap = N_vv.sum(0)
        if self.hard_ic:
            tau = (t / self.T)[:, None]
            with torch.no_grad():
                p0, _, p0_vv = _directional(self.psi0, x, dirs)
            psi = p0 + tau * N
            psi_t = N / self.T + tau * N_t
            lap = p0_vv.sum(0) + tau * lap
        else:
            psi, psi_t = N, N_t
        return psi, psi_t, lap

    def _log_derivatives(self, x, t, dirs, N, N_t, N_v, N_vv, relative=False):
        """φ = [log ψ0] + τN: ψ = e^φ, ∂tψ = ψ ∂tφ, ∂²_v ψ = ψ (∂²_v φ + (∂_v φ)²) (complex);
        ``relative``: (1, ∂tφ, Σ_v ∂²_v φ + (∂_v φ)²), never forming e^φ (which underflows)."""
        c = lambda p: torch.complex(p[..., 0], p[..., 1])  # noqa: E731
        phi, phi_t, phi_v, phi_vv = c(N), c(N_t), c(N_v), c(N_vv)
        if self.hard_ic:
            tau = (t / self.T).to(phi.dtype)
            with torch.no_grad():
                l0, l0_v, l0_vv = _directional(self.log_psi0, x, dirs)
            phi_t = phi / self.T + tau * phi_t
            phi, phi_v, phi_vv = c(l0) + tau * phi, c(l0_v) + tau * phi_v, c(l0_vv) + tau * phi_vv
            if self.backbone is not None:
                g, g_t, g_v, g_vv = self.backbone.terms(x, t, dirs)
                g0, _, g0_v, g0_vv = self.backbone.terms(x, 0 * t, dirs)
                phi, phi_t = phi + (g - g0), phi_t + g_t
                phi_v, phi_vv = phi_v + (g_v - g0_v), phi_vv + (g_vv - g0_vv)
        if relative:
            return torch.ones_like(phi), phi_t, (phi_vv + phi_v * phi_v).sum(0)
        psi = torch.exp(phi)
        lap = psi * (phi_vv + phi_v * phi_v).sum(0)
        pair = lambda z: torch.stack([z.real, z.imag], dim=-1)  # noqa: E731
        return pair(psi), pair(psi * phi_t), pair(lap)

    def potential(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """V at points with their own times: one call with t as a column when the problem's
        potential broadcasts over t (checked once), else one call per distinct time."""
        if self.vector_time is None:
            self.vector_time = broadcasts_in_time(self.problem, x, t)
        if self.vector_time:
            return self.problem.potential(x, t[:, None])
        levels, inverse = torch.unique(t, return_inverse=True)
        out = x.new_empty(x.shape[0])
        for k, level in enumerate(levels.tolist()):
            at = inverse == k
            out[at] = self.problem.potential(x[at], level)
        return out

    def residual(self, x: torch.Tensor, t: torch.Tensor, dirs: torch.Tensor, lap_scale: float,
                 relative: bool = False):
        """(iħ∂tψ + (ħ²/2m)Δψ − Vψ) / (ħ |ψ0|max) as (N, 2), Δψ = lap_scale · Σ_k ∂²_{v_k}ψ;
        ``relative`` (log form): divided by ħψ instead, i∂t log ψ + (ħ/2m)Δψ/ψ − V/ħ, which a
        ψ decaying in time does not lower (the plain residual scales with |ψ|)."""
        p = self.problem
        if relative:
            _, phi_t, lap = self.derivatives(x, t, dirs, relative=True)
            r = 1j * phi_t + (p.hbar / (2 * p.m) * lap_scale) * lap - self.potential(x, t) / p.hbar
            return torch.stack([r.real, r.imag], dim=-1)
        psi, psi_t, lap = self.derivatives(x, t, dirs)
        V = self.potential(x, t)[:, None] / p.hbar
        kin = (p.hbar / (2 * p.m) * lap_scale) * lap
        re = -psi_t[:, 1] + kin[:, 0] - V[:, 0] * psi[:, 0]
        im = psi_t[:, 0] + kin[:, 1] - V[:, 0] * psi[:, 1]
        return torch.stack([re, im], dim=-1) / self.scale


def broadcasts_in_time(problem: Problem, x: torch.Tensor, t: torch.Tensor) -> bool:
    """True when ``problem.potential(x, t[:, None])`` gives each point its own time's V."""
    x, t = x[:4].detach(), t[:4].detach()
    try:
        with torch.no_grad():
            vec = problem.potential(x, t[:, None])
            one = torch.stack([torch.as_tensor(problem.potential(x[i:i + 1], float(t[i])),
                                               dtype=x.dtype).reshape(()) for i in range(len(t))])
        return tuple(vec.shape) == (len(t),) and bool(torch.allclose(vec, one.to(vec.device)))
    except (TypeError, RuntimeError, ValueError):
        return False
