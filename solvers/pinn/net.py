"""The PINN's network ψ_θ(z) → (Re, Im) and its forward-mode (Taylor) derivatives.

Inputs are normalised coordinates z = (x_n, t_n) in [−1, 1]^{d+1}. The architecture is
Linear(d+1 → W)–tanh, then ``depth`` skip blocks h ← h + tanh(W₂ tanh(W₁h + b₁) + b₂), then
Linear(W → 2).

``jet`` pushes first derivatives along J input directions and pure second derivatives along the
K spatial ones through the network in one stacked tensor (value, J tangents, K curvatures), so a
layer is a single matmul of (1 + J + K)·N rows: for small d this is the exact Laplacian (K = d
unit directions) at about (2 + 2d) forward passes, with no nested autograd graph; for large d
the K directions are Rademacher probes (Hutchinson's estimate). The loss is then differentiated
with ordinary reverse mode.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _linear(fan_in: int, fan_out: int, gen: torch.Generator, dtype) -> tuple[nn.Parameter, nn.Parameter]:
    """torch.nn.Linear's default initialisation, drawn from ``gen`` (seeded, global RNG untouched)."""
    bound = 1.0 / math.sqrt(fan_in)
    w = (torch.rand(fan_out, fan_in, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    b = (torch.rand(fan_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    return nn.Parameter(w.to(dtype)), nn.Parameter(b.to(dtype))


class PsiNet(nn.Module):
    """tanh MLP with skip blocks: (N, d+1) normalised (x, t) → (N, 2) = (Re, Im)."""

    def __init__(self, d: int, width: int, depth: int, gen: torch.Generator, dtype=torch.float32):
        super().__init__()
        self.d, self.width, self.depth = d, width, depth
        self.w_in, self.b_in = _linear(d + 1, width, gen, dtype)
        self.w1 = nn.ParameterList()
        self.b1 = nn.ParameterList()
        self.w2 = nn.ParameterList()
        self.b2 = nn.ParameterList()
        for _ in range(depth):
            w, b = _linear(width, width, gen, dtype)
            self.w1.append(w)
            self.b1.append(b)
            w, b = _linear(width, width, gen, dtype)
            self.w2.append(w)
            self.b2.append(b)
        self.w_out, self.b_out = _linear(width, 2, gen, dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(z @ self.w_in.T + self.b_in)
        for w1, b1, w2, b2 in zip(self.w1, self.b1, self.w2, self.b2):
            h = h + torch.tanh(torch.tanh(h @ w1.T + b1) @ w2.T + b2)
        return h @ self.w_out.T + self.b_out

    # -- forward-mode derivatives ------------------------------------------------------------
    @staticmethod
    def _tanh_jet(v, plain, curved, curv):
        """tanh of a jet: value v (N, W), tangents without (plain) and with (curved) second
        derivatives, and the curvatures: a' = s·ȧ, a'' = s·ä − 2 a s ȧ², s = 1 − tanh²."""
        a = torch.tanh(v)
        s = 1 - a * a
        return a, plain * s, curved * s, curv * s - (2 * a * s) * curved * curved

    @staticmethod
    def _linear_jet(v, plain, curved, curv, w, b):
        """An affine map of a jet: the bias only moves the value. The parts are kept apart
        (no stacking and slicing), so the backward pass allocates no zero-filled slices."""
        wt = w.T
        return v @ wt + b, plain @ wt, curved @ wt, curv @ wt

    def jet(self, z: torch.Tensor, tangents: torch.Tensor, n_curv: int):
        """Value, first derivatives and pure second derivatives of the output.

        ``z`` (N, d+1) inputs; ``tangents`` (J, N or 1, d+1) input directions, of which the last
        ``n_curv`` also get second derivatives (the input is linear, so their input curvature is 0).
        Returns (value (N, 2), first (J, N, 2), second (n_curv, N, 2))."""
        n = z.shape[0]
        n_plain = tangents.shape[0] - n_curv
        w_in = self.w_in.T
        v = z @ w_in + self.b_in
        plain = (tangents[:n_plain] @ w_in).expand(n_plain, n, self.width)
        curved = (tangents[n_plain:] @ w_in).expand(n_curv, n, self.width)
        jet = self._tanh_jet(v, plain, curved, v.new_zeros((n_curv, n, self.width)))
        for w1, b1, w2, b2 in zip(self.w1, self.b1, self.w2, self.b2):
            inner = self._tanh_jet(*self._linear_jet(*jet, w1, b1))
            outer = self._tanh_jet(*self._linear_jet(*inner, w2, b2))
            jet = tuple(h + g for h, g in zip(jet, outer))
        v, plain, curved, curv = self._linear_jet(*jet, self.w_out, self.b_out)
        return v, torch.cat([plain, curved]), curv
