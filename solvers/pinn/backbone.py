"""A semiclassical backbone for the log ansatz: log G(x, t) of the Gaussian wave packet with the
classical flow's moments (``flow.Flow.gaussian``, linear in t between its steps) and its
derivatives. The ansatz adds log G(t) − log G(0), so the network learns only what that packet
misses (exact for a Gaussian ψ0 in a quadratic potential, up to the flow's sampling noise)."""

from __future__ import annotations

import math

import torch

from solvers.pinn.flow import Flow


class Backbone:
    """log G(x, t) = −¼yᵀΣ⁻¹y − ¼log det(2πΣ) + (i/ħ)(p̄·y + ½yᵀBy), y = x − μ (complex)."""

    def __init__(self, flow: Flow, hbar: float, dtype, device):
        g = flow.gaussian()
        self.T, self.steps, self.hbar = flow.T, flow.steps, hbar
        self.parts = {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in g.items()}

    def _at(self, t: torch.Tensor):
        """Each part and its time derivative at times t (linear between the flow's steps)."""
        s = torch.clamp(t / self.T * self.steps, 0, self.steps)
        k = torch.clamp(torch.floor(s).long(), max=self.steps - 1)
        out = {}
        for name, a in self.parts.items():
            f = (s - k).reshape((-1,) + (1,) * (a.dim() - 1))
            lo, step = a[k], a[k + 1] - a[k]
            out[name], out[name + "_t"] = lo + f * step, step * (self.steps / self.T)
        return out

    @torch.no_grad()
    def terms(self, x: torch.Tensor, t: torch.Tensor, dirs: torch.Tensor | None = None):
        """log G, ∂t log G (each complex (N,)) and, for ``dirs`` (K, N or 1, d), the first and
        second derivatives of log G along each direction (complex (K, N)); None without dirs."""
        g = self._at(t)
        y = x - g["mu"]
        P = torch.linalg.inv(g["cov"])
        Py, By = (P @ y[..., None])[..., 0], (g["B"] @ y[..., None])[..., 0]
        d = x.shape[-1]
        logdet = torch.linalg.slogdet(g["cov"])[1]
        quad = lambda M, a, b: (a * (M @ b[..., None])[..., 0]).sum(-1)  # noqa: E731
        re = -0.25 * (y * Py).sum(-1) - 0.25 * (d * math.log(2 * math.pi) + logdet)
        im = ((g["p"] * y).sum(-1) + 0.5 * (y * By).sum(-1)) / self.hbar
        P_t = -P @ g["cov_t"] @ P
        mu_t = g["mu_t"]
        re_t = (0.5 * (mu_t * Py).sum(-1) - 0.25 * quad(P_t, y, y)
                - 0.25 * torch.einsum("nij,nji->n", P, g["cov_t"]))
        im_t = ((g["p_t"] * y).sum(-1) - (g["p"] * mu_t).sum(-1) + 0.5 * quad(g["B_t"], y, y)
                - (mu_t * By).sum(-1)) / self.hbar
        value, value_t = torch.complex(re, im), torch.complex(re_t, im_t)
        if dirs is None:
            return value, value_t, None, None
        v = dirs.expand(dirs.shape[0], x.shape[0], d)
        first = torch.complex(-0.5 * (v * Py).sum(-1),
                              ((g["p"] * v).sum(-1) + (v * By).sum(-1)) / self.hbar)
        Pv = torch.einsum("nij,knj->kni", P, v)
        Bv = torch.einsum("nij,knj->kni", g["B"], v)
        second = torch.complex(-0.5 * (v * Pv).sum(-1), (v * Bv).sum(-1) / self.hbar)
        return value, value_t, first, second
