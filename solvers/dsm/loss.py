"""The DSM residuals (DESIGN §5) at sampled points, with the hard initial condition.

u(x, t) = t·NN_u(x, t) + u0(x),  v(x, t) = t·NN_v(x, t) + v0(x)  (so u, v equal u0, v0 at t = 0)

R_u = ∂t u + (ħ/2m) ∇(div v) + ∇⟨u, v⟩
R_v = ∂t v − [ ∇(½|u|²) − ∇(½|v|²) + (ħ/2m) ∇(div u) − ∇V/m ]

with ∇⟨u, v⟩ = J_uᵀv + J_vᵀu and ∇(½|u|²) = J_uᵀu. The loss is (L_u + L_v)/2 with
L = mean over points and components of (w(t)·R)², and the paper's time weights
w_u = √(e^{2(T−t)} − 1), w_v = √(e^{T−t} − 1) (or none).
"""

from __future__ import annotations

import torch
from torch.func import grad, jacfwd, jvp, vjp, vmap

from solvers.dsm.nets import PLAIN, PairMLP


def initial_terms(f, x: torch.Tensor):
    """f(x), its Jacobian J[p, i, k] = ∂f_i/∂x_k and ∇(div f), for a problem's u0 or v0.

    Computed with torch.func on the problem's own (array-API) function, so any u0 works."""
    value = f(x)
    jac = vmap(jacfwd(f))(x)
    grad_div = vmap(jacfwd(lambda y: torch.diagonal(jacfwd(f)(y)).sum()))(x)
    return value, jac, grad_div


def func_derivatives(net: PairMLP, x: torch.Tensor, t: torch.Tensor):
    """Same as ``PairMLP.jet`` (exact ∇div) through torch.func: the reference for the tests.

    Nested forward mode: ``jvp`` in t, ``jacfwd`` in x and ``jacfwd`` of the trace of the
    Jacobian for ∇(div ·), vmapped over points."""
    act = PLAIN[net.activation]
    w, b = list(net.weights), list(net.biases)

    def single(n, xs, ts):
        z = torch.cat([xs, ts])
        h = act(w[0][n] @ z + b[0][n, 0])
        for k in range(net.depth):
            y = act(w[1 + 2 * k][n] @ h + b[1 + 2 * k][n, 0])
            h = h + act(w[2 + 2 * k][n] @ y + b[2 + 2 * k][n, 0])
        g = act(h)
        out = w[-1][n] @ g + b[-1][n, 0]
        if net.readout_t is not None:
            out = out + ts * (net.readout_t[n][:, :-1] @ g + net.readout_t[n][:, -1])
        return out

    results = []
    for n in range(2):
        f = lambda xs, ts: single(n, xs, ts)  # noqa: E731
        out = vmap(f)(x, t)
        out_t = vmap(lambda xs, ts: jvp(lambda s: f(xs, s), (ts,), (torch.ones_like(ts),))[1])(x, t)
        jac = vmap(jacfwd(f, argnums=0))(x, t)
        div = lambda xs, ts: torch.diagonal(jacfwd(f, argnums=0)(xs, ts)).sum()  # noqa: E731
        grad_div = vmap(jacfwd(div, argnums=0))(x, t)
        results.append((out, out_t, jac, grad_div))
    return tuple(torch.stack([r[i] for r in results]) for i in range(4))


def time_weights(t: torch.Tensor, T: float, kind: str):
    """The residual weights (w_u, w_v) at times t (P, 1); 0 from T on. The clamp matters: an
    off-grid time t_k + s of the last step rounds past T in float32 (N = 1000: about one point
    in 10⁵ there), and √ of the negative expm1 would turn the whole loss into NaN."""
    if kind == "none":
        one = torch.ones_like(t)
        return one, one
    left = (T - t).clamp_min(0)
    return torch.sqrt(torch.expm1(2 * left)), torch.sqrt(torch.expm1(left))


def initial_velocities(problem, x: torch.Tensor):
    """``initial_terms`` of u0 and of v0 at x: constants of the loss (independent of θ), computed
    apart so that a compiled loss need not trace torch.func transforms of the problem's code."""
    with torch.no_grad():
        return initial_terms(problem.u0, x) + initial_terms(problem.v0, x)


def probe_grad_div(f, x: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
    """Hutchinson's estimate (1/K) Σ_r ∇(z_rᵀ J_f z_r) of ∇(div f) at x (P, d) for a problem's
    u0 or v0 (batched over points), from the probes (P, K, d): K forward-over-reverse passes."""
    def quad(y):
        return sum((jvp(f, (y,), (probes[:, r],))[1] * probes[:, r]).sum()
                   for r in range(probes.shape[1])) / probes.shape[1]
    return grad(quad)(x)


def probe_initial_velocities(problem, x: torch.Tensor, probes: torch.Tensor):
    """u0, v0 at x and the probe estimates of ∇(div u0), ∇(div v0): the θ-independent part of
    the O(d) loss, no d × d Jacobian (the Jacobian products come in ``probe_residuals``)."""
    with torch.no_grad():
        return (problem.u0(x), problem.v0(x), probe_grad_div(problem.u0, x, probes),
                probe_grad_div(problem.v0, x, probes))


def probe_network_terms(net: PairMLP, x, t, probes, u0, v0, c: float):
    """The networks' part of the O(d) residuals: NN (2, P, d), ∂t NN (2, P, d) and, per
    network, the reverse sweeps J_uᵀ[v, u] + [0, c ĝ_u] and J_vᵀ[u, v] + [c ĝ_v, 0] (P, 2, d),
    with u = t NN_u + u0, v = t NN_v + v0."""
    out, out_t, state = net.probe_forward(x, t, probes)
    u = t * out[0] + u0
    v = t * out[1] + v0
    back = net.probe_reverse(state, probes, [torch.stack([v, u], 1), torch.stack([u, v], 1)],
                             [[0.0, c], [c, 0.0]])
    return out, out_t, back[0], back[1]


def probe_residuals(net: PairMLP, problem, x, t, probes, init=None, network=None):
    """R_u, R_v (P, d) in O(d) per point: ∂t NN by a forward tangent, every Jacobian product
    J_nᵀw, J_{u0}ᵀw, J_{v0}ᵀw by a reverse sweep (``vjp``), ∇(div ·) by Hutchinson's
    estimator with the Rademacher ``probes`` (P, K, d); ``init``: ``probe_initial_velocities``;
    ``network``: ``probe_network_terms`` of ``net`` (possibly compiled; built when not given)."""
    u0, v0, gu0, gv0 = probe_initial_velocities(problem, x, probes) if init is None else init
    c = problem.hbar / (2 * problem.m)
    network = network or (lambda *args: probe_network_terms(net, *args))
    out, out_t, back_u, back_v = network(x, t, probes, u0, v0, c)
    u = t * out[0] + u0
    v = t * out[1] + v0
    _, pull0 = vjp(lambda y: (problem.u0(y), problem.v0(y)), x)
    (grad_uv,) = pull0((v, u))  # ∇⟨u0, v⟩ + ∇⟨v0, u⟩ at fixed u, v: J_{u0}ᵀv + J_{v0}ᵀu
    (grad_uu_vv,) = pull0((u, -v))  # J_{u0}ᵀu − J_{v0}ᵀv
    r_u = out[0] + t * out_t[0] + t * (back_u[:, 0] + back_v[:, 0]) + c * gv0 + grad_uv
    r_v = (out[1] + t * out_t[1] - t * (back_u[:, 1] - back_v[:, 1]) - c * gu0 - grad_uu_vv
           + problem.grad_potential(x, t) / problem.m)
    return r_u, r_v


def residuals(net: PairMLP, problem, x: torch.Tensor, t: torch.Tensor, engine: str = "adjoint",
              probes: torch.Tensor | None = None, init=None):
    """R_u, R_v (P, d) at points x (P, d) and times t (P, 1): exact, or with ``probes``
    (P, K, d) in O(d) (``probe_residuals``); ``init``: the ``initial_velocities`` (or
    ``probe_initial_velocities``) at x (computed here when not given)."""
    if probes is not None:
        return probe_residuals(net, problem, x, t, probes, init)
    if engine == "func":
        out, out_t, jac, grad_div = func_derivatives(net, x, t)
    else:
        out, out_t, jac, grad_div = net.jet(x, t)
    u0, ju0, gu0, v0, jv0, gv0 = initial_velocities(problem, x) if init is None else init
    tt = t.unsqueeze(-1)
    u = t * out[0] + u0
    v = t * out[1] + v0
    u_t = out[0] + t * out_t[0]
    v_t = out[1] + t * out_t[1]
    ju = tt * jac[0] + ju0
    jv = tt * jac[1] + jv0
    gdu = t * grad_div[0] + gu0
    gdv = t * grad_div[1] + gv0

    def jtw(j, f):  # Jᵀf: Σ_i ∂f_i/∂x_k w_i
        return (j * f.unsqueeze(-1)).sum(-2)

    c = problem.hbar / (2 * problem.m)
    grad_v = problem.grad_potential(x, t)
    r_u = u_t + c * gdv + jtw(ju, v) + jtw(jv, u)
    r_v = v_t - (jtw(ju, u) - jtw(jv, v) + c * gdu - grad_v / problem.m)
    return r_u, r_v


def loss_terms(net: PairMLP, problem, x, t, weights: str = "paper", engine: str = "adjoint",
               probes=None, init=None, mask=None, network=None):
    """Sums over the points and components of (w_u R_u)² and (w_v R_v)² (divide by P·d);
    ``mask`` (P, 1) weights points (0 for padding); ``network``: see ``probe_residuals``."""
    if probes is not None:
        r_u, r_v = probe_residuals(net, problem, x, t, probes, init, network)
    else:
        r_u, r_v = residuals(net, problem, x, t, engine, probes, init)
    w_u, w_v = time_weights(t, problem.T, weights)
    if mask is not None:
        w_u, w_v = w_u * mask, w_v * mask
    return ((w_u * r_u) ** 2).sum(), ((w_v * r_v) ** 2).sum()
