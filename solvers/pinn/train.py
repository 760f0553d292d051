"""PINN training: the network, its ansatz, the collocation sampler and the loss (``Trainer``),
Adam epochs through the shared training loop and an optional L-BFGS polish (``train``).
"""

from __future__ import annotations

import numpy as np
import torch

from harness.api import Context, Prediction, Problem
from solvers.pinn.ansatz import Ansatz, broadcasts_in_time
from solvers.pinn.backbone import Backbone
from solvers.pinn.collocation import FLOW_PATHS, FLOW_STEPS, Sampler, directions
from solvers.pinn.flow import Flow
from solvers.pinn.net import PsiNet
from solvers.pinn.predict import predict
from solvers.training import Budget, TrainingLoop, for_matmul

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def thread_count(settings, d: int, device: str) -> int | None:
    """Threads for an epoch on the CPU (solvers.training): its layer matmuls have
    n_colloc × (2 + 2·(probes or d)) rows."""
    if device != "cpu":
        return settings.threads or None
    rows = settings.n_colloc * (2 + 2 * (settings.probes or d))
    return for_matmul(rows, settings.width, settings.threads)


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
        if settings.backbone:
            flow = self.sampler.flow or Flow(problem, FLOW_PATHS, FLOW_STEPS, rng)
            self.ansatz.backbone = Backbone(flow, problem.hbar, self.dtype, self.device)
        probe_x, probe_t = self.sampler.interior(4)
        self.ansatz.vector_time = broadcasts_in_time(problem, probe_x, probe_t)
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
        r = a.residual(x, t, dirs, self.lap_scale, s.residual == "relative")
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
    ramp = s.curriculum * s.epochs

    def step(epoch: int, progress: float):
        """One Adam step on fresh points; the time horizon grows over the curriculum."""
        if ramp:
            tr.sampler.horizon = min(1.0, 0.1 + 0.9 * epoch / ramp)
        loss, terms = tr.loss(tr.points())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return loss, terms

    loop = TrainingLoop("pinn", Budget(s.epochs, log_every=s.log_every), ctx, tr.n_params(),
                        share=s.epochs / (s.epochs + s.lbfgs_steps))
    loop.run(step, lambda diagnostics: predict(tr, times, s, True, diagnostics))
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
        with torch.no_grad():
            loss, terms = tr.loss(pts)
        rows = torch.stack([loss, *terms.values()])[None].cpu().numpy()
        loop.log(s.epochs + s.lbfgs_steps, rows, list(terms), 1.0)
    return loop.finish(lambda diagnostics: predict(tr, times, s, False, diagnostics),
                       lbfgs_steps=s.lbfgs_steps, amplitude=tr.ansatz.A)
