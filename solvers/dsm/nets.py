"""The two DSM networks, u_θ and v_θ, stored side by side and evaluated one after the other.

The paper's architecture (PAPER.md): z = (x, t) → Linear(d+1 → W) → σ → ``depth`` skip blocks
h ← h + σ(W_b σ(W_a h + b_a) + b_b) → σ → Linear(W → d), with σ = tanh by default. Both networks
have the same shape, so their weights are stacked along a leading axis of size 2 (index 0 is u,
1 is v); each is evaluated on its own (views of that storage), so no activation is ever copied
into or out of a stacked tensor.

``PairMLP.jet`` returns, besides the outputs, everything the DSM residuals need in one sweep:
the time derivative, the x-Jacobian and ∇(div NN), the gradient of the divergence, computed
exactly from the second-order identity of a composition of linear maps and elementwise
nonlinearities σ at "sites" s:

    ∂_k ∂_i NN_i = Σ_s Σ_h λ_{s,i,h} σ''(a_{s,h}) T_{s,i,h} T_{s,k,h},

where T_{s,k} is the forward tangent of the pre-activation a_s in direction x_k and λ_{s,i} is
the adjoint of the site's output for output component i (reverse mode, one sweep per component).
The adjoints at the input layer give the whole input Jacobian ∂NN_i/∂(x, t), ∂t included, by a
thin product with W0, so no t tangent is pushed through the network. That costs 1 + 2d matrix
products per layer (value, d tangents, d adjoints) instead of the 2 + d + d(d+1)/2 of a
forward-mode second-order jet (or the d² + 2d + 1 of nested ``jacfwd``); the O(d²) part is
elementwise.
That is O(d²) a point (d directions, a d × d Jacobian). ``probe_forward``/``probe_reverse`` are
the O(d) jet for large d: forward tangents in t and along K Rademacher probes z, reverse sweeps
for the K probes and for the cotangents of the Jacobian products J_nᵀw the residuals need, and
Hutchinson's estimate of ∇(div NN), E_z ∇(zᵀJz) = ∇ tr J, pulled back to x in the cotangents'
own sweep. Rademacher rather than Gaussian probes: zᵀJz is then exact for a diagonal J (separable
velocities, e.g. the oscillator), its variance coming only from the off-diagonal entries.
Every step is an ordinary differentiable torch operation, so the parameter gradient of a loss
built from these quantities is plain reverse mode through them (no graph is kept beyond it).
With ``time_readout`` the readout has a time slope, NN = (W + t W_t) g + b + t b_t: a per-point
readout matrix, so the adjoints start from W + t W_t and ∂t NN gains W_t g + b_t.
``solvers.dsm.loss.func_derivatives`` computes the same quantities with ``torch.func``
(nested ``jacfwd`` and ``jvp``); the tests check that the two agree.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def tanh(a):
    """tanh(a) as 2σ(2a) − 1: torch's CPU tanh takes ~1 ns an element here, its sigmoid ~0.1
    (measured on 2 threads); the two agree to one fp32 rounding of the result's scale."""
    return 2 * torch.sigmoid(2 * a) - 1


def _tanh(a):
    y = tanh(a)
    d1 = 1 - y * y
    return y, d1, -2 * y * d1


def _sin(a):
    y = torch.sin(a)
    return y, torch.cos(a), -y


#: activation name -> function returning (σ(a), σ'(a), σ''(a))
ACTIVATIONS = {"tanh": _tanh, "sin": _sin}
#: activation name -> plain σ (sampling, no derivatives)
PLAIN = {"tanh": tanh, "sin": torch.sin}


def _uniform(shape, bound, generator):
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound


#: oneDNN's fp32 inner product (AVX-512 on any x86 CPU that has it); torch's fp32 matmul goes
#: to MKL, which on AMD CPUs runs its AVX2 code.
_DNN = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
#: Whether the products go through oneDNN by default: only where the CPU has AVX-512. Measured
#: on 2 cores of an AMD EPYC Zen 5 (AVX-512): 6000×500 @ 500×500 240 GFLOP/s a thread against
#: MKL's 95. On a Zen 3 (AVX2 only) MKL is as fast or faster: 100×500 @ 500×500 0.43 ms against
#: oneDNN's 0.75 on 2 threads, and oneDNN's fused tanh post-op costs a further ~40 %; a compiled
#: paper path step 2.2 ms against 3.7.
ONEDNN_DEFAULT = _DNN is not None and torch.backends.cpu.get_cpu_capability() == "AVX512"


@torch.library.custom_op("qdbench::dnn_linear", mutates_args=(),
                         tags=(torch.Tag.needs_contiguous_strides,))
def dnn_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, act: str) -> torch.Tensor:
    """y = act(x Wᵀ + b) through oneDNN, act "none" or "tanh" (fused into the product's output
    pass: measured here ~0.1 ns an element against 1.0 for torch.tanh). An opaque op, so that
    torch.compile keeps it (inductor would lower a matmul to MKL's sgemm, 2.3× slower on this
    AMD CPU) and fuses only the elementwise work around it."""
    return _DNN(x.contiguous(), w, b, act, [], "")


@dnn_linear.register_fake
def _(x, w, b, act):
    return x.new_empty((*x.shape[:-1], w.shape[0]))


@torch.library.custom_op("qdbench::dnn_weight_grad", mutates_args=(),
                         tags=(torch.Tag.needs_contiguous_strides,))
def dnn_weight_grad(dyT: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """dyT x for dyT (N, R), x (R, K): a weight gradient through oneDNN. x goes in as a
    transposed view (oneDNN reorders its weight operand anyway: measured here, no slower than
    a contiguous one), so a compiled graph transposes only dy, in the kernel that makes it."""
    return _DNN(dyT.contiguous(), x.t(), None, "none", [], "")


@dnn_weight_grad.register_fake
def _(dyT, x):
    return dyT.new_empty((dyT.shape[0], x.shape[1]))


def _dnn_setup(ctx, inputs, output):
    x, w, b, act = inputs
    ctx.save_for_backward(x, w, output if act == "tanh" else None)
    ctx.has_bias = b is not None


def _dnn_backward(ctx, dy):
    """da = dy (1 − y²) after tanh; dx = da W, dW = daᵀx (one transposed copy, the input as a
    view), db = Σ da; the products through oneDNN too."""
    x, w, y = ctx.saved_tensors
    dx = dw = db = None
    da = (dy if y is None else dy * (1 - y * y)).contiguous()
    if ctx.needs_input_grad[0]:
        dx = dnn_linear(da, w.t(), None, "none")
    da2 = da.reshape(-1, da.shape[-1])
    if ctx.needs_input_grad[1]:
        dw = dnn_weight_grad(da2.t(), x.reshape(-1, x.shape[-1]))
    if ctx.has_bias and ctx.needs_input_grad[2]:
        db = da2.sum(0)
    return dx, dw, db, None


dnn_linear.register_autograd(_dnn_backward, setup_context=_dnn_setup)


def linear(x, w, b=None, onednn: bool = False, act: str = "none"):
    """One network's layer act(x Wᵀ + b): x (..., K), w (N, K), b (N,) -> (..., N), through
    oneDNN when ``onednn`` and the tensors are fp32 on the CPU, else torch's own kernels."""
    if onednn and _DNN is not None and x.dtype == torch.float32 and x.device.type == "cpu":
        return dnn_linear(x, w, b, act)
    y = torch.nn.functional.linear(x, w, b)
    return tanh(y) if act == "tanh" else y


class PairMLP(nn.Module):
    """u and v networks of identical shape; parameters carry a leading axis of size 2."""

    def __init__(self, d: int, width: int, depth: int = 1, activation: str = "tanh",
                 generator: torch.Generator | None = None, dtype=torch.float32,
                 onednn: bool | None = None, time_readout: bool = False):
        super().__init__()
        #: route the products through oneDNN (fp32 on the CPU only; else torch.nn.functional.linear);
        #: None: where it pays, ``ONEDNN_DEFAULT``
        self.onednn = ONEDNN_DEFAULT if onednn is None else onednn
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
        #: the readout's time slope: NN = (W + t W_t) g + b + t b_t, W_t and b_t starting at 0
        #: (the paper's network); None without ``time_readout``
        self.readout_t = (nn.Parameter(torch.zeros((2, d, width + 1), dtype=dtype))
                          if time_readout else None)

    def _params(self, n: int):
        """Network n's weights (out, in) and biases (out,): views of the stacked parameters."""
        return [p[n] for p in self.weights], [p[n, 0] for p in self.biases]

    # ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Raw outputs NN(x, t) of both networks: x (P, d), t (P, 1) -> (2, P, d). Through
        oneDNN one network after the other; else both at once, by batched products over the
        stacked weights (half the calls: the paths' per-step products are small)."""
        z = torch.cat([x, t], dim=-1)
        if self.onednn:
            return torch.stack([self._forward1(n, z) for n in range(2)])
        act, w, b = PLAIN[self.activation], self.weights, self.biases
        h = act(torch.baddbmm(b[0], z.expand(2, -1, -1), w[0].transpose(1, 2)))
        for k in range(1, 2 * self.depth + 1, 2):
            y = act(torch.baddbmm(b[k], h, w[k].transpose(1, 2)))
            h = h + act(torch.baddbmm(b[k + 1], y, w[k + 1].transpose(1, 2)))
        g = act(h)
        out = torch.baddbmm(b[-1], g, w[-1].transpose(1, 2))
        if self.readout_t is None:
            return out
        wt = self.readout_t
        return out + t * torch.baddbmm(wt[:, None, :, -1], g, wt[..., :-1].transpose(1, 2))

    def _readout(self, n: int, g: torch.Tensor, t: torch.Tensor):
        """Network n's output at the last hidden state g (P, W) and times t (P, 1), and the
        explicit ∂t of the readout (W_t g + b_t; None without ``time_readout``)."""
        w, b = self._params(n)
        out = torch.addmm(b[-1], g, w[-1].t())
        if self.readout_t is None:
            return out, None
        wt = self.readout_t[n]
        slope = torch.addmm(wt[:, -1], g, wt[:, :-1].t())
        return out + t * slope, slope

    def _forward1(self, n: int, z: torch.Tensor) -> torch.Tensor:
        """Network n's raw output at z = (x, t), its products through oneDNN."""
        act = PLAIN[self.activation]
        fused = "tanh" if self.activation == "tanh" else "none"  # oneDNN's post-op, if any
        w, b = self._params(n)

        def layer(x, k):
            y = linear(x, w[k], b[k], self.onednn, fused)
            return y if fused != "none" else act(y)
        h = act(torch.addmm(b[0], z, w[0].t()))  # d + 1 inputs: too thin for oneDNN to pay
        for k in range(self.depth):
            h = h + layer(layer(h, 1 + 2 * k), 2 + 2 * k)
        return self._readout(n, act(h), z[:, -1:])[0]

    # ------------------------------------------------------------------------------------------
    def jet(self, x: torch.Tensor, t: torch.Tensor):
        """Outputs and exact derivatives of both networks at x (P, d), t (P, 1).

        Returns ``out`` (2, P, d), ``out_t`` (2, P, d) = ∂NN/∂t, ``jac`` (2, P, d, d) with
        jac[n, p, i, k] = ∂NN_i/∂x_k, and ``grad_div`` (2, P, d) = ∇_x(Σ_i ∂NN_i/∂x_i)."""
        z = torch.cat([x, t], dim=-1)
        parts = [self._jet1(n, z) for n in range(2)]
        return tuple(torch.stack(q) for q in zip(*parts))

    def _push(self, n: int, z: torch.Tensor, T0: torch.Tensor):
        """Network n's forward pass at z = (x, t) (P, d + 1) with tangents pushed along: ``T0``
        (…, R, H), R tangents of the input pre-activation a0 (one set for every point, or one
        per point). Returns ``out`` (P, d) and, per site s (a0, each block's two
        pre-activations, the residual stream h), its tangents T_s (P, R, H), σ'(a_s), σ''(a_s),
        and the readout's explicit ∂t (``_readout``). Tangents are laid out (P, direction, H),
        so that compiled kernels loop over points."""
        act = ACTIVATIONS[self.activation]
        w, b = self._params(n)

        def lin(a, k, bias=True):
            return linear(a, w[k], b[k] if bias else None, self.onednn)

        h, s1, s2 = act(torch.addmm(b[0], z, w[0].t()))
        T = s1.unsqueeze(1) * T0  # tangents of h
        sites = [(T0, s1, s2)]
        for k in range(self.depth):
            ka, kb = 1 + 2 * k, 2 + 2 * k
            y1, s1a, s2a = act(lin(h, ka))
            T1 = lin(T, ka, False)
            y2, s1b, s2b = act(lin(y1, kb))
            T2 = lin(s1a.unsqueeze(1) * T1, kb, False)
            h = h + y2
            T = T + s1b.unsqueeze(1) * T2
            sites += [(T1, s1a, s2a), (T2, s1b, s2b)]
        g, s1g, s2g = act(h)
        sites.append((T, s1g, s2g))
        out, slope = self._readout(n, g, z[:, -1:])
        return out, sites, slope

    def _jet1(self, n: int, z: torch.Tensor):
        """``jet`` of network n at z = (x, t) (P, d + 1): the d x directions pushed forward,
        one reverse sweep per output component. The whole input Jacobian ∂NN_i/∂(x, t) is read
        off the adjoints at the input layer (a thin product with W0), so no t tangent is
        pushed through the network."""
        w, _ = self._params(n)
        d = self.d
        # the tangents of a0 are the columns of W0, the same at every point: (d, H), row-major
        out, sites, slope = self._push(n, z, w[0][:, :d].t().contiguous())
        adjoints = self._sweep(n, sites, None, None, z[:, -1:])
        # ∂NN_i/∂z = λ_{a0,i} σ'(a0) W0: (P, i, d + 1), its last column ∂t
        dz = torch.matmul(sites[0][1].unsqueeze(1) * adjoints[0], w[0])
        jac, out_t = dz[..., :d], dz[..., d]
        if slope is not None:
            out_t = out_t + slope
        grad_div = 0
        for (T, _, s2), lam in zip(sites, adjoints):
            mu = (lam * T).sum(1)  # Σ_i λ_{s,i} T_{s,i}: (P, H)
            grad_div = grad_div + ((s2 * mu).unsqueeze(1) * T).sum(-1)  # (P, d)
        return out, out_t, jac, grad_div

    # ------------------------------------------------------------------------------------------
    def probe_forward(self, x: torch.Tensor, t: torch.Tensor, probes: torch.Tensor):
        """First half of the O(d) jet: outputs ``out`` (2, P, d), ``out_t`` (2, P, d) and the
        state ``probe_reverse`` needs, from forward tangents in t and along the K ``probes``
        (P, K, d). No x direction is pushed forward: every product has (1 + K)·P rows."""
        z = torch.cat([x, t], dim=-1)
        parts = [self._probe_forward1(n, z, probes.to(z.dtype)) for n in range(2)]
        return (torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]),
                [p[2] for p in parts])

    def _probe_forward1(self, n: int, z: torch.Tensor, probes: torch.Tensor):
        w, _ = self._params(n)
        d = self.d
        # tangents of a0: direction t (row 0, W0's last column) and the probes (rows 1..K)
        T0 = torch.cat([w[0][:, d].expand(z.shape[0], 1, -1),
                        torch.matmul(probes, w[0][:, :d].t())], dim=1)  # (P, 1 + K, H)
        out, sites, slope = self._push(n, z, T0)
        T, s1g, _ = sites[-1]
        t = z[:, -1:]
        g_t = s1g * T[:, 0]  # ∂t of the last hidden state
        out_t = linear(g_t, w[-1], None, self.onednn)
        if slope is not None:
            out_t = out_t + t * linear(g_t, self.readout_t[n][:, :-1], None, self.onednn) + slope
        return out, out_t, (n, t, [(T[:, 1:], s1, s2) for T, s1, s2 in sites])

    def probe_reverse(self, state, probes: torch.Tensor, cotangents, div_weights) -> list:
        """Second half of the O(d) jet: for each network n and cotangent c (``cotangents``
        (one (P, C, d) tensor per network)), J_nᵀ w_c + div_weights[n][c] · ĝ_n (a (P, C, d) tensor per network; weights: numbers), where ĝ_n is the
        Hutchinson estimate of ∇(div NN_n) from the ``probes`` given to ``probe_forward``:

            ĝ_k = (1/K) Σ_r ∂_k (z_rᵀ J z_r) = Σ_s Σ_h σ''(a_{s,h}) μ_{s,h} ∂a_{s,h}/∂x_k,
            μ_s = (1/K) Σ_r λ_{s,z_r} ⊙ T_{s,z_r},

        λ_{s,z} the adjoint of site s's output for the output cotangent z. The pull-back of
        c_s = σ''(a_s) ⊙ μ_s from every site to x is one more reverse sweep, merged into the
        cotangents' own: 2K + 2C rows of width × width products per network in all."""
        outs = []
        for n, t, sites in state:
            lam = self._sweep(n, sites, probes.to(cotangents[n].dtype), None, t)
            inject = [s2 * (lam_s * Tz).mean(1) for (Tz, _, s2), lam_s in zip(sites, lam)]
            outs.append(self._sweep(n, sites, cotangents[n],
                                    [torch.stack([wc * c for wc in div_weights[n]], 1)
                                     for c in inject], t))
        return outs

    def _sweep(self, n, sites, cot, inject, t):
        """Reverse sweep of network n at times t (P, 1) for output cotangents ``cot`` (P, C, d);
        None: one per output component (the identity, C = d). Without ``inject``: the adjoints
        of every site's output (in the order of ``sites``); with it (one (P, C, H) term per
        site, added to the adjoint of its pre-activation): the pull-back to x (P, C, d)."""
        w, _ = self._params(n)
        onednn = self.onednn
        # adjoint of g = σ(h): the readout's rows, (d, H) (per point (P, d, H) with a time
        # slope), or the cotangents pulled through it
        slope = None if self.readout_t is None else self.readout_t[n][:, :-1]
        if cot is None:
            adj = w[-1] if slope is None else w[-1] + t.unsqueeze(-1) * slope
        else:
            adj = torch.matmul(cot, w[-1])
            if slope is not None:
                adj = adj + t.unsqueeze(-1) * torch.matmul(cot, slope)
        outputs = [adj]

        def pre(i, a):  # adjoint of site i's pre-activation from that of its output
            grad = sites[i][1].unsqueeze(1) * a
            return grad if inject is None else grad + inject[i]
        lam = pre(-1, adj)  # adjoint of the residual stream h
        for k in reversed(range(self.depth)):
            ia, ib = 1 + 2 * k, 2 + 2 * k  # site indices of a1 and a2 of block k
            outputs.append(lam)
            lam_y1 = linear(pre(ib, lam), w[ib].t(), None, onednn)
            outputs.append(lam_y1)
            lam = lam + linear(pre(ia, lam_y1), w[ia].t(), None, onednn)
        if inject is None:
            outputs.append(lam)
            return outputs[::-1]
        return torch.matmul(pre(0, lam), w[0][:, :self.d])
