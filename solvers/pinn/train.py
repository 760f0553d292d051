"""PINN training and prediction: the ansatz ψ(x, t) built on the network, the TDSE residual,
collocation sampling, the optimisation loop (Adam, optional L-BFGS polish) and the prediction
(|ψ|² on a grid for small d, self-normalised importance sampling beyond).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from harness.api import Context, Prediction, Problem, SolverDiverged
from harness.observables import grid_observables, sample_observables
from solvers.training import for_matmul, subsample_curve, threads
from solvers.pinn.net import PsiNet

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: grid points per axis for the grid prediction when ``grid_points`` = 0
AUTO_GRID = {1: 401, 2: 161, 3: 61}


def thread_count(settings, d: int, device: str) -> int | None:
    """Threads for an epoch on the CPU (solvers.training): its layer matmuls have
    n_colloc × (2 + 2·(probes or d)) rows."""
    if device != "cpu":
        return settings.threads or None
    rows = settings.n_colloc * (2 + 2 * (settings.probes or d))
    return for_matmul(rows, settings.width, settings.threads)


# --------------------------------------------------------------------------------------------
# The ansatz and its residual
# --------------------------------------------------------------------------------------------


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
            r = torch.exp(out[:, 0])
            return torch.stack([r * torch.cos(out[:, 1]), r * torch.sin(out[:, 1])], dim=-1)
        if self.hard_ic:
            out = self.psi0(x) + (t / self.T)[:, None] * out
        return out

    # -- derivatives ----------------------------------------------------------------------------
    def derivatives(self, x: torch.Tensor, t: torch.Tensor, dirs: torch.Tensor):
        """ψ, ∂tψ and Σ_k ∂²_{v_k} ψ (each (N, 2)) for spatial directions ``dirs`` (K, N or 1, d).

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
            return self._log_derivatives(x, t, dirs, N, N_t, N_v, N_vv)
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

    def _log_derivatives(self, x, t, dirs, N, N_t, N_v, N_vv):
        """φ = [log ψ0] + τN: ψ = e^φ, ∂tψ = ψ ∂tφ, ∂²_v ψ = ψ (∂²_v φ + (∂_v φ)²) (complex)."""
        c = lambda p: torch.complex(p[..., 0], p[..., 1])  # noqa: E731
        phi, phi_t, phi_v, phi_vv = c(N), c(N_t), c(N_v), c(N_vv)
        if self.hard_ic:
            tau = (t / self.T).to(phi.dtype)
            with torch.no_grad():
                l0, l0_v, l0_vv = _directional(self.log_psi0, x, dirs)
            phi_t = phi / self.T + tau * phi_t
            phi, phi_v, phi_vv = c(l0) + tau * phi, c(l0_v) + tau * phi_v, c(l0_vv) + tau * phi_vv
        psi = torch.exp(phi)
        lap = psi * (phi_vv + phi_v * phi_v).sum(0)
        pair = lambda z: torch.stack([z.real, z.imag], dim=-1)  # noqa: E731
        return pair(psi), pair(psi * phi_t), pair(lap)

    def potential(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """V at points with their own times: one call with t as a column when the problem's
        potential broadcasts over t (checked once), else one call per distinct time."""
        if self.vector_time is None:
            self.vector_time = _broadcasts_in_time(self.problem, x, t)
        if self.vector_time:
            return self.problem.potential(x, t[:, None])
        levels, inverse = torch.unique(t, return_inverse=True)
        out = x.new_empty(x.shape[0])
        for k, level in enumerate(levels.tolist()):
            at = inverse == k
            out[at] = self.problem.potential(x[at], level)
        return out

    def residual(self, x: torch.Tensor, t: torch.Tensor, dirs: torch.Tensor, lap_scale: float):
        """(iħ∂tψ + (ħ²/2m)Δψ − Vψ) / (ħ |ψ0|max) as (N, 2), Δψ = lap_scale · Σ_k ∂²_{v_k}ψ."""
        p = self.problem
        psi, psi_t, lap = self.derivatives(x, t, dirs)
        V = self.potential(x, t)[:, None] / p.hbar
        kin = (p.hbar / (2 * p.m) * lap_scale) * lap
        re = -psi_t[:, 1] + kin[:, 0] - V[:, 0] * psi[:, 0]
        im = psi_t[:, 0] + kin[:, 1] - V[:, 0] * psi[:, 1]
        return torch.stack([re, im], dim=-1) / self.scale


def _broadcasts_in_time(problem: Problem, x: torch.Tensor, t: torch.Tensor) -> bool:
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


#: distinct collocation times when the potential takes one time per call
TIME_LEVELS = 256


# --------------------------------------------------------------------------------------------
# Collocation points
# --------------------------------------------------------------------------------------------


class Sampler:
    """Collocation points in box × [0, T]: ``uniform`` or Latin-hypercube (``lhs``), of which a
    fraction ``focus`` is drawn instead from a Gaussian around the initial cloud (mean and spread
    of |ψ0|², widened ``focus_width`` times, clipped to the box)."""

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
            g = torch.randn(n_focus, d, generator=self.gen, dtype=self.dtype, device=self.device)
            x = torch.cat([(self.mu + self.sd * g).clamp(self.lo, self.hi), x[n_focus:]])
        return x, t

    def norm_points(self, n_times: int, n: int):
        """For the norm term: stratified times (n_times,) and, at each, n points (n_times, n, d)
        from q = 0.8·N(μ0, focus spread²) + 0.2·U(box), with 1/q (zero outside the box)."""
        d, T = self.problem.d, self.problem.T
        u = (torch.arange(n_times, dtype=self.dtype, device=self.device)
             + torch.rand(n_times, generator=self.gen, dtype=self.dtype, device=self.device)) / n_times
        t = self.times(u)
        shape = (n_times, n, d)
        g = self.mu + self.sd * torch.randn(shape, generator=self.gen, dtype=self.dtype,
                                            device=self.device)
        uni = self.lo + (self.hi - self.lo) * torch.rand(shape, generator=self.gen, dtype=self.dtype,
                                                         device=self.device)
        pick = torch.rand(n_times, n, 1, generator=self.gen, dtype=self.dtype, device=self.device) < 0.8
        x = torch.where(pick, g, uni)
        log_g = (-0.5 * ((x - self.mu) / self.sd) ** 2 - torch.log(self.sd * math.sqrt(2 * math.pi))).sum(-1)
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


# --------------------------------------------------------------------------------------------
# Loss and training
# --------------------------------------------------------------------------------------------


class Trainer:
    """The network, its ansatz, the collocation sampler and the loss (one call per epoch)."""

    def __init__(self, problem: Problem, settings, ctx: Context):
        self.problem, self.s = problem, settings
        self.device = torch.device(ctx.device)
        self.dtype = DTYPES[settings.dtype]
        init_gen = torch.Generator().manual_seed(ctx.seed)
        self.net = PsiNet(problem.d, settings.width, settings.depth, init_gen, self.dtype)
        self.net.to(self.device)
        rng = ctx.rng(1)
        cloud = torch.as_tensor(problem.sample_initial(2048, rng), dtype=torch.float64)
        amplitude = float(torch.exp(problem.log_psi0(cloud)[0]).max())
        self.ansatz = Ansatz(problem, self.net, settings.hard_ic, settings.hard_bc, amplitude,
                             settings.ansatz)
        self.gen = torch.Generator(device=self.device).manual_seed(ctx.seed + 1)
        self.sampler = Sampler(problem, settings, self.gen, self.dtype, self.device, rng)
        probe_x, probe_t = self.sampler.interior(4)
        self.ansatz.vector_time = _broadcasts_in_time(problem, probe_x, probe_t)
        self.sampler.discrete_time = not self.ansatz.vector_time
        self.probes = settings.probes
        self.lap_scale = 1.0 / settings.probes if settings.probes else 1.0
        self.pool = None
        if settings.pool:
            self.pool = self.sampler.interior(settings.pool)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def points(self):
        """This epoch's interior, initial and boundary points (fresh, or a minibatch of the pool)."""
        s = self.s
        if self.pool is not None:
            idx = torch.randint(0, s.pool, (s.n_colloc,), generator=self.gen, device=self.device)
            xt = (self.pool[0][idx], self.pool[1][idx])
        else:
            xt = self.sampler.interior(s.n_colloc)
        x0 = None if s.hard_ic else self.sampler.initial(s.n_ic)
        xb = None if s.hard_bc else self.sampler.boundary(s.n_bc)
        xn = self.sampler.norm_points(s.norm_times, s.n_norm) if s.w_norm > 0 else None
        dirs = directions(self.problem.d, s.n_colloc, self.probes, self.gen, self.dtype, self.device)
        return xt, x0, xb, xn, dirs

    def loss(self, pts) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        (x, t), x0, xb, xn, dirs = pts
        s, a = self.s, self.ansatz
        r = a.residual(x, t, dirs, self.lap_scale)
        r2 = (r * r).sum(-1)
        if s.causal > 0:
            # causal weights (Wang et al. 2022): a time slab counts once the earlier ones fit
            bins = s.causal_bins
            slab = torch.clamp((t / self.problem.T * bins).long(), max=bins - 1)
            per = torch.zeros(bins, dtype=r2.dtype, device=r2.device).index_add_(0, slab, r2)
            cnt = torch.zeros(bins, dtype=r2.dtype, device=r2.device).index_add_(
                0, slab, torch.ones_like(r2)).clamp(min=1)
            per = per / cnt
            with torch.no_grad():
                w = torch.exp(-s.causal * torch.cumsum(per, 0) + s.causal * per)
            res = (w * per).mean()
        else:
            res = r2.mean()
        terms = {"residual": res}
        total = s.w_residual * res
        if x0 is not None:
            zero = torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device)
            diff = a.psi(x0, zero) - a.psi0(x0)
            terms["initial"] = (diff * diff).sum(-1).mean() / a.scale**2
            total = total + s.w_initial * terms["initial"]
        if xb is not None:
            pb = a.psi(*xb)
            terms["boundary"] = (pb * pb).sum(-1).mean() / a.scale**2
            total = total + s.w_boundary * terms["boundary"]
        if xn is not None:
            # ∫|ψ(x, t)|² dx = 1 at every t: without it the residual, which scales with |ψ|,
            # is also lowered by letting ψ decay (the trivial solution ψ = 0)
            tn, xs, inv_q = xn
            k, n, d = xs.shape
            pn = a.psi(xs.reshape(k * n, d), tn.repeat_interleave(n))
            mass = ((pn * pn).sum(-1).reshape(k, n) * inv_q).mean(-1)
            terms["norm"] = ((mass - 1) ** 2).mean()
            total = total + s.w_norm * terms["norm"]
        return total, terms


def train(problem: Problem, times: np.ndarray, settings, ctx: Context) -> Prediction:
    """Fit ψ_θ and return the Prediction at ``times`` (PINNSolver.solve's body)."""
    tr = Trainer(problem, settings, ctx)
    s = settings
    opt = torch.optim.Adam(tr.net.parameters(), lr=s.lr)
    decay = (s.lr_final / s.lr) ** (1 / max(1, s.epochs - 1)) if s.lr_final else 1.0
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, decay)
    curve: dict[str, list] = {"epoch": [], "loss": [], "wall_s": []}
    start = time.perf_counter()
    paused = 0.0  # seconds spent on checkpoint predictions (not training)
    last_ckpt = start

    def check(value: float, epoch: int) -> None:
        if not math.isfinite(value):
            raise SolverDiverged(f"pinn: loss is {value} at epoch {epoch}",
                                 {"epochs": epoch, "loss_curve": subsample_curve(curve, 200)})

    def log(epoch: int, loss: float, terms: dict) -> None:
        curve["epoch"].append(epoch)
        curve["loss"].append(loss)
        curve["wall_s"].append(time.perf_counter() - start - paused)
        for k, v in terms.items():
            curve.setdefault(f"loss_{k}", []).append(v.item())

    ramp = s.curriculum * s.epochs
    for epoch in range(1, s.epochs + 1):
        if ramp:
            tr.sampler.horizon = min(1.0, 0.1 + 0.9 * (epoch - 1) / ramp)
        loss, terms = tr.loss(tr.points())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        value = loss.item()
        check(value, epoch)
        opt.step()
        sched.step()
        if epoch % s.log_every == 0 or epoch == s.epochs:
            log(epoch, value, terms)
            ctx.progress(epoch / (s.epochs + s.lbfgs_steps), loss=value)
            now = time.perf_counter()
            if ctx.checkpoint_every and now - last_ckpt >= ctx.checkpoint_every:
                ctx.checkpoint(predict(tr, times, s, coarse=True,
                                       diagnostics={"epoch": epoch, "fit_s": now - start - paused}))
                last_ckpt = time.perf_counter()
                paused += last_ckpt - now

    if s.lbfgs_steps:
        pts = tr.points()  # one fixed batch: L-BFGS needs a deterministic objective
        lbfgs = torch.optim.LBFGS(tr.net.parameters(), lr=1.0, max_iter=s.lbfgs_steps,
                                  history_size=50, line_search_fn="strong_wolfe")

        def closure():
            lbfgs.zero_grad(set_to_none=True)
            total, _ = tr.loss(pts)
            total.backward()
            return total

        lbfgs.step(closure)
        loss, terms = tr.loss(pts)
        value = loss.item()
        check(value, s.epochs + s.lbfgs_steps)
        log(s.epochs + s.lbfgs_steps, value, terms)
        ctx.progress(1.0, loss=value)

    fit_s = time.perf_counter() - start - paused
    diagnostics = {
        "epochs": s.epochs,
        "lbfgs_steps": s.lbfgs_steps,
        "n_params": tr.n_params(),
        "fit_s": fit_s,
        "s_per_epoch": fit_s / max(1, s.epochs),
        "checkpoint_s": paused,
        "final_loss": curve["loss"][-1] if curve["loss"] else None,
        "loss_curve": subsample_curve(curve, 200),
        "amplitude": tr.ansatz.A,
    }
    t0 = time.perf_counter()
    pred = predict(tr, times, s, coarse=False, diagnostics=diagnostics)
    pred.diagnostics["predict_s"] = time.perf_counter() - t0
    return pred


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def _density(tr: Trainer, x: torch.Tensor, t: float, batch: int) -> torch.Tensor:
    out = []
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        psi = tr.ansatz.psi(xb, torch.full((xb.shape[0],), t, dtype=xb.dtype, device=xb.device))
        out.append((psi * psi).sum(-1))
    return torch.cat(out)


def predict(tr: Trainer, times: np.ndarray, s, coarse: bool, diagnostics: dict) -> Prediction:
    d = tr.problem.d
    method = s.predict
    if method == "auto":
        method = "grid" if d <= 3 else "is"
    if method == "grid":
        return _predict_grid(tr, times, s, coarse, diagnostics)
    return _predict_is(tr, times, s, coarse, diagnostics)


def _predict_grid(tr: Trainer, times, s, coarse, diagnostics) -> Prediction:
    """|ψ|² on a product grid over the box, normalised per time; moments and marginals from
    ``grid_observables``. The unnormalised mass is the norm drift."""
    problem = tr.problem
    d = problem.d
    n = s.grid_points or AUTO_GRID.get(d, 41)
    if coarse:
        n = max(21, n // 3)
    lo, hi = problem.box
    axis = np.linspace(lo, hi, n)
    mesh = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)
    x = torch.as_tensor(mesh, dtype=tr.dtype, device=tr.device)
    cell = (axis[1] - axis[0]) ** d
    edges = problem.marginal_edges()
    K = len(times)
    mean, var, marg = np.empty((K, d)), np.empty((K, d)), np.empty((K, d, edges.size - 1))
    mass = np.empty(K)
    for k, t in enumerate(times):
        rho = _density(tr, x, float(t), s.predict_batch).double().cpu().numpy().reshape((n,) * d)
        mass[k] = rho.sum() * cell
        if not (np.isfinite(mass[k]) and mass[k] > 0):
            raise SolverDiverged(f"pinn: |ψ|² has mass {mass[k]} at t = {t:g}")
        mean[k], var[k], marg[k] = grid_observables([axis] * d, rho / mass[k], edges)
    diagnostics = dict(diagnostics, predict_method="grid", grid_points=n)
    diagnostics.update(_norm_diagnostics(times, mass))
    return Prediction(times, mean, var, marg, edges, diagnostics=diagnostics)


def _norm_diagnostics(times, mass) -> dict:
    ref = 1.0 if times[0] > 0 else mass[0]  # ψ0 is normalised on R^d
    drift = mass / ref - 1
    idx = np.unique(np.linspace(0, len(times) - 1, min(len(times), 51)).round().astype(int))
    return {"norm_drift_max": float(np.max(np.abs(drift))),
            "norm_curve": {"t": [float(times[i]) for i in idx], "norm": [float(mass[i]) for i in idx]}}


def _predict_is(tr: Trainer, times, s, coarse, diagnostics) -> Prediction:
    """Self-normalised importance sampling of |ψ|² restricted to the box, per time, from a
    proposal adapted along the time grid: a Gaussian with the previous time's moments (widened
    1.5×, the initial cloud's at the first time) mixed with 10 % uniform on the box."""
    problem = tr.problem
    d = problem.d
    n = s.n_samples if not coarse else max(1000, s.n_samples // 10)
    lo, hi = problem.box
    vol = (hi - lo) ** d
    edges = problem.marginal_edges()
    rng = np.random.default_rng([tr.gen.initial_seed(), 7])
    mu = tr.sampler.mu.double().cpu().numpy()
    sd = tr.sampler.sd.double().cpu().numpy() / s.focus_width * 1.5
    K = len(times)
    mean, var, marg = np.empty((K, d)), np.empty((K, d)), np.empty((K, d, edges.size - 1))
    mass, ess = np.empty(K), np.empty(K)
    mix = 0.1
    for k, t in enumerate(times):
        n_uni = rng.binomial(n, mix)
        xs = np.concatenate([mu + sd * rng.standard_normal((n - n_uni, d)),
                             rng.uniform(lo, hi, (n_uni, d))])
        log_g = (-0.5 * ((xs - mu) / sd) ** 2 - np.log(sd * math.sqrt(2 * math.pi))).sum(-1)
        q = (1 - mix) * np.exp(log_g) + mix / vol
        inside = np.all((xs >= lo) & (xs <= hi), axis=1)
        rho = np.zeros(n)
        xin = torch.as_tensor(xs[inside], dtype=tr.dtype, device=tr.device)
        rho[inside] = _density(tr, xin, float(t), s.predict_batch).double().cpu().numpy()
        w = rho / q
        mass[k] = w.mean()
        if not (np.isfinite(mass[k]) and mass[k] > 0):
            raise SolverDiverged(f"pinn: |ψ|² has mass {mass[k]} at t = {t:g}")
        w = w / w.sum()
        ess[k] = 1.0 / np.sum(w * w)
        mean[k], var[k], marg[k] = sample_observables(xs, edges, weights=w)
        mu, sd = mean[k], 1.5 * np.sqrt(np.maximum(var[k], 1e-12))
    diagnostics = dict(diagnostics, predict_method="is", is_samples=n,
                       ess_min=float(ess.min()), ess_median=float(np.median(ess)),
                       ess_curve=[float(e) for e in ess[:: max(1, K // 50)]])
    diagnostics.update(_norm_diagnostics(times, mass))
    return Prediction(times, mean, var, marg, edges, n_samples=int(np.median(ess)),
                      diagnostics=diagnostics)
