"""The two DSM networks, u_θ and v_θ, stored side by side and evaluated together.

The paper's architecture (PAPER.md): z = (x, t) → Linear(d+1 → W) → σ → ``depth`` skip blocks
h ← h + σ(W_b σ(W_a h + b_a) + b_b) → σ → Linear(W → d), with σ = tanh by default. Both networks
have the same shape, so their weights are stacked along a leading axis of size 2 (index 0 is u,
1 is v) and every layer of both is one batched matmul.

``PairMLP.jet`` returns, besides the outputs, everything the DSM residuals need in one sweep:
the time derivative (a forward tangent), the x-Jacobian (d forward tangents) and ∇(div NN), the
gradient of the divergence, computed exactly from the second-order identity of a composition of
linear maps and elementwise nonlinearities σ at "sites" s:

    ∂_k ∂_i NN_i = Σ_s Σ_h λ_{s,i,h} σ''(a_{s,h}) T_{s,i,h} T_{s,k,h},

where T_{s,k} is the forward tangent of the pre-activation a_s in direction x_k and λ_{s,i} is
the adjoint of the site's output for output component i (reverse mode, one sweep per component).
That costs 2 + 2d matrix products per layer instead of the 2 + d + d(d+1)/2 of a forward-mode
second-order jet (or the d² + 2d + 1 of nested ``jacfwd``); the O(d²) part is elementwise.
With ``probes`` = K > 0 the sum over i is replaced by Hutchinson's estimator with K Rademacher
cotangents z (E[z zᵀ] = I), so the reverse part costs K sweeps instead of d (for large d).
Every step is an ordinary differentiable torch operation, so the parameter gradient of a loss
built from these quantities is plain reverse mode through them (no graph is kept beyond it).
``solvers.dsm.loss.func_derivatives`` computes the same quantities with ``torch.func``
(nested ``jacfwd`` and ``jvp``); the tests check that the two agree.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _tanh(a):
    y = torch.tanh(a)
    d1 = 1 - y * y
    return y, d1, -2 * y * d1


def _sin(a):
    y = torch.sin(a)
    return y, torch.cos(a), -y


#: activation name -> function returning (σ(a), σ'(a), σ''(a))
ACTIVATIONS = {"tanh": _tanh, "sin": _sin}
#: activation name -> plain σ (sampling, no derivatives)
PLAIN = {"tanh": torch.tanh, "sin": torch.sin}


def _uniform(shape, bound, generator):
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound


#: oneDNN's fp32 inner product (AVX-512 on any x86 CPU that has it); torch's fp32 matmul goes
#: to MKL, which on AMD CPUs runs its AVX2 code: measured here (AMD EPYC, Zen 5, 1 thread,
#: 6000×500 @ 500×500) 240 GFLOP/s against MKL's 95.
_DNN = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None


class _DnnLinear(torch.autograd.Function):
    """y = x Wᵀ + b through oneDNN, with a first-order backward through oneDNN as well."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return _DNN(x, w, b, "none", [], "")

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        dx = dw = db = None
        dy = dy.contiguous()
        if ctx.needs_input_grad[0]:
            dx = _DNN(dy, w.t(), None, "none", [], "")
        dy2 = dy.reshape(-1, dy.shape[-1])
        if ctx.needs_input_grad[1]:  # dW = dyᵀx: one transposed copy, the weight as a view
            x2 = x.reshape(-1, x.shape[-1])
            dw = _DNN(dy2.t().contiguous(), x2.t(), None, "none", [], "")
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy2.sum(0)
        return dx, dw, db


def linear2(x, w, b=None, fast: bool = False):
    """Both networks' layer: x (2, ..., K) @ w (2, N, K)ᵀ (+ b (2, 1, N)) -> (2, ..., N)."""
    if fast and _DNN is not None and x.dtype == torch.float32 and x.device.type == "cpu":
        # unbind, not x[n]: the backward of indexing would write each half into a zero tensor
        bs = (None, None) if b is None else b.squeeze(1).unbind(0)
        return torch.stack([_DnnLinear.apply(xn.contiguous(), wn, bn)
                            for xn, wn, bn in zip(x.unbind(0), w.unbind(0), bs)])
    shape = x.shape
    y = torch.bmm(x.reshape(2, -1, shape[-1]), w.transpose(1, 2)).view(*shape[:-1], -1)
    return y if b is None else y + b


class PairMLP(nn.Module):
    """u and v networks of identical shape; parameters carry a leading axis of size 2."""

    def __init__(self, d: int, width: int, depth: int = 1, activation: str = "tanh",
                 generator: torch.Generator | None = None, dtype=torch.float32, fast: bool = True):
        super().__init__()
        #: route the width × width products through oneDNN (fp32 on CPU only; else torch.bmm)
        self.fast = fast
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        self.d, self.width, self.depth, self.activation = d, width, depth, activation
        shapes = [(width, d + 1)] + [(width, width)] * (2 * depth) + [(d, width)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for out_f, in_f in shapes:
            # torch.nn.Linear's default initialisation: U(±1/√fan_in) for weights and biases.
            bound = 1 / math.sqrt(in_f)
            self.weights.append(nn.Parameter(_uniform((2, out_f, in_f), bound, generator).to(dtype)))
            self.biases.append(nn.Parameter(_uniform((2, 1, out_f), bound, generator).to(dtype)))

    # ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Raw outputs NN(x, t) of both networks: x (P, d), t (P, 1) -> (2, P, d)."""
        act = PLAIN[self.activation]
        w, b = self.weights, self.biases
        z = torch.cat([x, t], dim=-1)
        h = act(torch.matmul(z, w[0].transpose(1, 2)) + b[0])
        for k in range(self.depth):
            y = act(linear2(h, w[1 + 2 * k], b[1 + 2 * k], self.fast))
            h = h + act(linear2(y, w[2 + 2 * k], b[2 + 2 * k], self.fast))
        return torch.baddbmm(b[-1], act(h), w[-1].transpose(1, 2))

    # ------------------------------------------------------------------------------------------
    def jet(self, x: torch.Tensor, t: torch.Tensor, probes: torch.Tensor | None = None):
        """Outputs and derivatives of both networks at x (P, d), t (P, 1).

        Returns ``out`` (2, P, d), ``out_t`` (2, P, d) = ∂NN/∂t, ``jac`` (2, P, d, d) with
        jac[n, p, i, k] = ∂NN_i/∂x_k, and ``grad_div`` (2, P, d) = ∇_x(Σ_i ∂NN_i/∂x_i), exact,
        or Hutchinson's estimate when ``probes`` (P, K, d) of ±1 entries are given."""
        act = ACTIVATIONS[self.activation]
        w, b = self.weights, self.biases
        d, P = self.d, x.shape[0]
        fast = self.fast
        z = torch.cat([x, t], dim=-1)

        sites = []  # (tangent of a_s in the x directions (2, d, P|1, H), σ''(a_s))
        # Input layer: the tangents of a0 are the columns of W0 (the same at every point).
        a0 = torch.matmul(z, w[0].transpose(1, 2)) + b[0]
        T0 = w[0].transpose(1, 2).unsqueeze(2)  # (2, d+1, 1, H): directions x_1..x_d, t
        h, s1, s2 = act(a0)
        Th = s1.unsqueeze(1) * T0  # (2, d+1, P, H)
        sites.append((T0[:, :d], s2))
        blocks = []
        for k in range(self.depth):
            wa, ba, wb, bb = w[1 + 2 * k], b[1 + 2 * k], w[2 + 2 * k], b[2 + 2 * k]
            a1 = linear2(h, wa, ba, fast)
            T1 = linear2(Th, wa, None, fast)
            y1, s1a, s2a = act(a1)
            a2 = linear2(y1, wb, bb, fast)
            T2 = linear2(s1a.unsqueeze(1) * T1, wb, None, fast)
            y2, s1b, s2b = act(a2)
            h = h + y2
            Th = Th + s1b.unsqueeze(1) * T2
            sites += [(T1[:, :d], s2a), (T2[:, :d], s2b)]
            blocks.append((wa, wb, s1a, s1b))
        g, s1g, s2g = act(h)
        sites.append((Th[:, :d], s2g))
        out = torch.baddbmm(b[-1], g, w[-1].transpose(1, 2))  # (2, P, d)
        Tout = linear2(s1g.unsqueeze(1) * Th, w[-1])  # (2, d+1, P, d)
        jac = Tout[:, :d].permute(0, 2, 3, 1)  # (2, P, i, k)
        out_t = Tout[:, d]

        # Reverse sweep with one cotangent per output component i (or per probe): the adjoints
        # of every site's output.
        if probes is None:
            adj = w[-1].unsqueeze(2)  # (2, d, 1, H): ∂NN_i/∂g = W_out[i]
        else:
            adj = torch.einsum("pri,nih->nrph", probes.to(x.dtype), w[-1])  # (2, K, P, H)
        adjoints = [adj]
        lam = s1g.unsqueeze(1) * adj  # adjoint of h before the output activation
        for wa, wb, s1a, s1b in reversed(blocks):
            adjoints.append(lam)  # h_out = h_in + y2: the adjoint of y2 is that of h_out
            lam_y1 = linear2(s1b.unsqueeze(1) * lam, wb.transpose(1, 2), None, fast)
            adjoints.append(lam_y1)
            lam = lam + linear2(s1a.unsqueeze(1) * lam_y1, wa.transpose(1, 2), None, fast)
        adjoints.append(lam)  # adjoint of h1 = σ(a0)
        adjoints.reverse()  # now in the order of ``sites``

        grad_div = x.new_zeros(2, P, d)
        for (T, s2), lam in zip(sites, adjoints):
            if probes is None:
                mu = (lam * T).sum(1)  # Σ_i λ_{s,i} T_{s,i}: (2, P, H)
            else:  # Σ_r λ_{s,r} T_{s,z_r} / K with T_{s,z} = Σ_i z_i T_{s,i}
                Tz = torch.einsum("pri,niph->nrph", probes.to(x.dtype), T.expand(-1, -1, P, -1))
                mu = (lam * Tz).mean(1)
            c = s2 * mu
            grad_div = grad_div + (c.unsqueeze(1) * T).sum(-1).transpose(1, 2)
        return out, out_t, jac, grad_div
