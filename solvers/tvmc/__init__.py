"""Time-dependent variational Monte Carlo (t-VMC) on NetKet: the DSM paper's third baseline.

ψ_θ(x, t) is a permutation-symmetric ansatz with complex parameters, initialised exactly to ψ0;
θ(t) follows the time-dependent variational principle  S θ̇ = −i F  (NetKet's ``TDVP`` driver:
quantum geometric tensor S and forces F estimated from Metropolis samples of |ψ_θ|²), integrated
with a fixed-step Runge–Kutta scheme. At the scored times fresh samples give moments, marginals
and their Monte Carlo errors.

Units: NetKet takes ħ = 1. Dividing the TDSE by ħ gives i ∂ψ/∂t = −(ħ/2m) Δψ + (V/ħ) ψ, i.e.
NetKet's kinetic energy with mass m/ħ and the potential V/ħ, with time unchanged.

Ansatz (all terms symmetric under relabelling the coordinates):
    log ψ = a Σ_i x_i² + b Σ_i x_i                                  (Gaussian, exact for ψ0)
          + Σ_i Σ_{n=3}^{n_hermite} c_n h_n(x_i / ℓ)                (one-body Hermite functions)
          + Σ_{i<j} J(x_i − x_j)  or  Σ_{i<j} h(x_i)ᵀ C h(x_j)      (pair terms)
          + Σ_{i<j} NN((x_i − x_j)²)                                 (optional neural Jastrow)
with J(r) = w_0 r² + Σ_k w_k exp(−r²/(2 s_k²)) (``pair="gauss"``) or the paper's symmetrised
Hermite table C (``pair="hermite"``). Hermite orders 0–2 are left out: they duplicate the
Gaussian's parameters and make S singular.

Symmetry reductions: pair terms only where V couples coordinates (``pair="auto"``), and no odd
terms (b, odd Hermite orders) when V and ψ0 are even, since parity is conserved: such terms would
carry nothing but Monte Carlo noise.

Gaussian closure (``closure``, on by default): where V is a symmetric quadratic
(α Σx² + β (Σx)² + γ Σx + δ: the oscillator, harmonic_bosons, bosons at g = 0) a Gaussian ψ0
stays Gaussian, so the ansatz is the Gaussian alone, a Σx² + b Σx + w Σ_{i<j} r² with the pair
sum taken as d Σx² − (Σx)² (O(d); w only where V couples coordinates or ψ0 has it), and the
Hermite, pair-feature and Jastrow settings are unused. Its samples come from independence
proposals out of the fitted Gaussian (``backend.IndependentGaussianRule``), one move a chain
step (``sweep`` 0), where the random walk takes d moves of O(d²) each. This is what makes d = 100
run: without it a step at d = 32 spends ~1 s sampling (d moves × 144 chain steps), and the
pair features' generic Laplacian (n × d × d(d − 1)/2 × 5 complex numbers) ran out of 20 GB at
d = 32 on harmonic_bosons. Elsewhere ``chunk_rule`` bounds that Laplacian's memory from d (at
d = 32 with pair features: 1 GB, but 17 s a force evaluation: the generic Laplacian is d passes
over the O(d²) pair terms; an analytic one is the next step for bosons at large d).
Measured, quick preset, one core (taskset, nice 10, load 7–11 on 2 cores), total run seconds:
oscillator p0 = 0.5 at d = 8 / 32 / 100: 48 / 67 / 119 (before: 106 / 617 / timeout);
var_rel_l2 0.011 at d = 100 (static 0.142), harmonic_bosons d = 100 0.011 (static 0.734).

Measured pitfalls this module avoids (issue 6): adaptive Runge–Kutta collapses under MC noise
(fixed steps only); Metropolis chains get trapped between particle orderings when the pair
repulsion builds walls, so every sample is randomly relabelled before per-coordinate statistics
(exact for a symmetric ansatz); chains start from exact samples of |ψ0|² and are burnt in before
t = 0; the Gaussian proposal's covariance follows the samples' (adaptive Metropolis).

Error bars (``mean_err``, ``var_err``): the spread of the chain averages at each scored time,
i.e. the sampling error of that time's estimate; the noise the TDVP accumulates in θ(t) is not
in them (measured at the quick preset: the RMS of |prediction − truth| / error is 0.95–1.10).

Modules: ``structure`` (numpy checks of the problem, the proposal, chain statistics),
``backend`` (NetKet: the ansatz, the Metropolis rule, H/ħ; imported when a run starts),
``recorder`` (samples, statistics and checks at the scored times).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np

from harness.api import Context, Prediction, Problem, Solver, SolverDiverged, UserError
from solvers.tvmc.structure import (ansatz_width, chunk_rule, couples_coordinates,
                                    exchangeable_gaussian, fit_initial, parity_even,
                                    proposal_factor, quadratic_potential)

INTEGRATORS = ("euler", "heun", "rk4")
PAIRS = ("auto", "gauss", "hermite", "none")


@dataclass
class Settings:
    """t-VMC settings; the defaults are the ``quick`` preset (a few minutes on 2 CPU cores)."""

    integrator: str = "heun"  #: fixed-step Runge–Kutta scheme: "euler", "heun" or "rk4"
    dt: float = 5e-3  #: time step (shortened to land on every scored time)
    n_samples: int = 8192  #: Monte Carlo samples per TDVP evaluation (all chains together)
    n_predict: int = 16384  #: samples per scored time for moments and marginals (0: n_samples)
    n_chains: int = 64  #: Metropolis chains
    n_discard: int = 16  #: chain steps discarded before each batch of samples
    burn_in: int = 400  #: chain steps discarded before t = 0 (chains start at exact ψ0 samples)
    sweep: int = 0  #: Metropolis proposals per recorded chain step (0: d; 1 under the closure)
    sigma: float = 0.0  #: fixed isotropic proposal std (0: adaptive; unused under the closure)
    step_scale: float = 2.4  #: adaptive proposal covariance: step_scale²/d × the samples' one
    diag_shift: float = 1e-6  #: diagonal shift added to the quantum geometric tensor S
    rcond: float = 1e-8  #: smoothed pseudo-inverse cut-off, relative to S's largest eigenvalue
    n_hermite: int = 4  #: highest one-body Hermite order (3..n_hermite; < 3 or closure: none)
    pair: str = "auto"  #: "gauss", "hermite" (paper), "none"; "auto": gauss where V couples axes
    n_pair: int = 4  #: Gaussian pair features (pair="gauss") or Hermite table size (pair="hermite")
    pair_min: float = 0.5  #: narrowest Gaussian pair feature, in units of the initial spread
    pair_max: float = 4.0  #: widest Gaussian pair feature, in units of the initial spread
    jastrow_width: int = 0  #: hidden width of the optional neural (flax) pair Jastrow (0: off)
    relabel: bool = True  #: randomly relabel coordinates of each sample before statistics
    max_drift: float = 0.25  #: diverged when |E(t) − E(0)| > max_drift × max(|E(0)|, ΔE(0))
    chunk_size: int = 0  #: samples per batch in NetKet's expectation values (0: chunk_rule)
    closure: bool = True  #: Gaussian closure where V is a symmetric quadratic (see the module)

    def __post_init__(self) -> None:
        ints = {"n_samples": (self.n_samples, 1), "n_predict": (self.n_predict, 0),
                "n_chains": (self.n_chains, 1), "n_discard": (self.n_discard, 0),
                "burn_in": (self.burn_in, 0), "sweep": (self.sweep, 0),
                "n_hermite": (self.n_hermite, 0), "n_pair": (self.n_pair, 0),
                "jastrow_width": (self.jastrow_width, 0), "chunk_size": (self.chunk_size, 0)}
        for key, (value, low) in ints.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise UserError(f"tvmc: {key} must be an integer >= {low}, got {value!r}")
        positive = {"dt": self.dt, "step_scale": self.step_scale, "max_drift": self.max_drift,
                    "pair_min": self.pair_min, "pair_max": self.pair_max}
        for key, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise UserError(f"tvmc: {key} must be a positive number, got {value!r}")
        for key in ("sigma", "diag_shift", "rcond"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise UserError(f"tvmc: {key} must be a number >= 0, got {value!r}")
        if self.integrator not in INTEGRATORS:
            raise UserError(f"tvmc: integrator must be one of {', '.join(INTEGRATORS)} "
                            f"(adaptive steps collapse under MC noise), got {self.integrator!r}")
        if self.pair not in PAIRS:
            raise UserError(f"tvmc: pair must be one of {', '.join(PAIRS)}, got {self.pair!r}")
        if self.pair_min > self.pair_max:
            raise UserError(f"tvmc: pair_min={self.pair_min} exceeds pair_max={self.pair_max}")
        if self.n_samples < self.n_chains or (self.n_predict and self.n_predict < self.n_chains):
            raise UserError(f"tvmc: n_samples and n_predict need at least one sample per chain "
                            f"({self.n_chains} chains)")
        if self.jastrow_width and self.pair in ("gauss", "hermite"):
            raise UserError("tvmc: the neural Jastrow and pair features span overlapping functions "
                            "(S near-singular, velocities ~1e5): use pair='none' or 'auto'")
        if self.diag_shift == 0 and self.rcond == 0:
            raise UserError("tvmc: S is singular unregularised: set diag_shift or rcond > 0")


class TVMCSolver(Solver):
    """t-VMC (NetKet): a symmetric Hermite/Gaussian/Jastrow ansatz evolved by the TDVP."""

    name = "tvmc"
    summary = "time-dependent variational Monte Carlo (NetKet TDVP, Hermite/Jastrow ansatz), jax"
    Settings = Settings
    presets = {
        # seconds: a compact ansatz, few samples, coarse step (tests)
        "smoke": dict(n_samples=4096, n_predict=0, n_chains=32, n_discard=8, burn_in=200, dt=1e-2,
                      n_hermite=0, n_pair=4),
        # a few minutes on 2 CPU cores at d <= 4 (the defaults)
        "quick": {},
        # PAPER.md: 21 + 484 Hermite coefficients, σ = 0.1, 16 chains, sweep 32, 10^4 samples,
        # 100 discarded per chain, Euler dt = 1e-3 (GPU-scale: ~10 s per step on 2 CPU cores)
        "paper": dict(n_samples=10_000, n_predict=10_000, n_chains=16, sweep=32, n_discard=100,
                      sigma=0.1, integrator="euler", dt=1e-3, n_hermite=20, pair="hermite",
                      n_pair=22),
    }

    def ladder(self, problem: Problem, settings: Settings) -> list[dict]:
        """Cheaper and dearer runs around ``settings``: the step × 4 … 0.5 with the Monte Carlo
        samples ÷ 4 … × 2, whole chains' worth (both errors fall as the cost grows);
        ``settings`` itself as {}."""
        chains = settings.n_chains

        def samples(n: int, step: float) -> int:
            return chains * max(1, round(n / step / chains))

        return [{} if step == 1.0 else
                {"dt": settings.dt * step, "n_samples": samples(settings.n_samples, step),
                 "n_predict": samples(settings.n_predict or settings.n_samples, step)}
                for step in (4.0, 2.0, 1.0, 0.5) if settings.dt * step <= problem.T]

    def supports(self, problem: Problem, settings: Settings | None = None) -> tuple[bool, str]:
        if settings is not None and settings.dt > problem.T:
            return False, f"tvmc: dt={settings.dt} exceeds the horizon T={problem.T}"
        rng = np.random.default_rng(12345)
        if problem.time_dependent:
            return False, "tvmc evolves with a time-independent Hamiltonian only"
        if problem.has_nodes:
            return False, ("the tvmc ansatz (a symmetric Gaussian times symmetric Jastrow terms) "
                           "has no nodes; this ψ0 has")
        if not problem.exchangeable():
            return False, "the tvmc ansatz is symmetric under relabelling coordinates, V or ψ0 not"
        fit, resid = fit_initial(problem, rng)
        if resid > 1e-8:
            return False, (f"the tvmc ansatz starts exactly at a Gaussian ψ0; this ψ0 is not one "
                           f"(relative residual {resid:.1e})")
        return True, ""

    # ------------------------------------------------------------------------------------
    def solve(self, problem: Problem, times: np.ndarray, settings: Settings,
              ctx: Context) -> Prediction:
        t_start = time.perf_counter()
        from solvers.tvmc.backend import hamiltonian, netket_lib
        from solvers.tvmc.recorder import Diverged, Recorder

        lib = netket_lib()
        import_s = time.perf_counter() - t_start
        jax, jnp, nk, nkx = lib["jax"], lib["jnp"], lib["nk"], lib["nkx"]
        s = settings
        d, hbar = problem.d, problem.hbar
        times = np.asarray(times, dtype=float)
        if (times.ndim != 1 or np.any(np.diff(times) <= 0) or times[0] < 0
                or times[-1] > problem.T + 1e-12):
            raise UserError("tvmc: times must increase within [0, T]")
        if ctx.device not in ("cpu", "cuda"):
            raise UserError(f"tvmc: unknown device {ctx.device!r}")
        platform = "gpu" if ctx.device == "cuda" else "cpu"
        try:
            jax_device = jax.devices(platform)[0]
        except RuntimeError as exc:
            raise UserError(f"tvmc: jax sees no {ctx.device} device ({exc})") from None
        rng = ctx.rng(0)
        fit, _ = fit_initial(problem, np.random.default_rng(12345))
        coupled = couples_coordinates(problem, np.random.default_rng(7))
        closure = s.closure and quadratic_potential(problem, np.random.default_rng(5))
        pair = s.pair
        if closure:
            pair = "quadratic" if d > 1 and (coupled or fit.c != 0) else "none"
        elif pair == "auto":
            pair = "gauss" if coupled and not s.jastrow_width else "none"
        pair = pair if d > 1 else "none"
        n_hermite, jastrow_width = (0, 0) if closure else (s.n_hermite, s.jastrow_width)
        spread0 = fit.spread
        even = parity_even(problem, fit, np.random.default_rng(11))
        widths = tuple(np.geomspace(s.pair_min, s.pair_max, s.n_pair) * spread0) if s.n_pair else ()
        model = lib["Ansatz"](d=d, a0=fit.a, b0=fit.b, c0=fit.c, ell=math.sqrt(2) * spread0,
                              n_hermite=n_hermite, pair=pair, n_pair=s.n_pair, widths=widths,
                              jastrow_width=jastrow_width, even=even)
        chunk = s.chunk_size or chunk_rule(
            d, ansatz_width(d, n_hermite, pair, s.n_pair, jastrow_width), s.n_samples)
        holomorphic = jastrow_width == 0

        with jax.default_device(jax_device):
            t_compile = time.perf_counter()
            hilbert, ham = hamiltonian(problem)

            x0 = problem.sample_initial(4096, rng)
            rule = (lib["IndependentRule"](exchangeable_gaussian(x0)) if closure
                    else lib["Rule"](proposal_factor(x0, s)))
            sampler = nk.sampler.MetropolisSampler(
                hilbert, rule, n_chains=s.n_chains, sweep_size=s.sweep or (1 if closure else d),
                dtype=jnp.float64)
            key = jax.random.PRNGKey(ctx.seed)
            k_param, k_sampler = jax.random.split(key)
            vstate = nk.vqs.MCState(sampler, model, n_samples=s.n_samples,
                                    n_discard_per_chain=s.n_discard, seed=k_param,
                                    sampler_seed=k_sampler, chunk_size=chunk)
            n_params = int(vstate.n_parameters)
            # Chains start at exact samples of |ψ0|², then burn in.
            start = jnp.asarray(problem.sample_initial(s.n_chains, rng), dtype=jnp.float64)
            vstate.sampler_state = vstate.sampler_state.replace(σ=start)

            qgt = nk.optimizer.qgt.QGTJacobianDense(holomorphic=holomorphic,
                                                    diag_shift=s.diag_shift)
            solver = functools.partial(nk.optimizer.solver.pinv_smooth, rtol=s.rcond,
                                       rtol_smooth=s.rcond)
            ode = {"euler": nkx.dynamics.Euler, "heun": nkx.dynamics.Heun,
                   "rk4": nkx.dynamics.RK4}[s.integrator](dt=s.dt)
            driver = nkx.TDVP(ham, vstate, ode_solver=ode, qgt=qgt, linear_solver=solver,
                              propagation_type="real")

            # Compile everything once (state, sampling, forces, S and its solve, prediction
            # sampling), timed apart from the run (the integrator's own small functions compile
            # during the first step); then burn the chains in with the compiled sampler.
            vstate.sample()
            vstate.expect(ham)
            jax.block_until_ready(driver.ode())
            n_predict = s.n_predict or s.n_samples
            jax.block_until_ready(vstate.sample(n_samples=n_predict))
            compile_s = time.perf_counter() - t_compile
            t0 = time.perf_counter()
            per_call = s.n_discard + vstate.chain_length
            for _ in range(math.ceil(s.burn_in / per_call)):
                jax.block_until_ready(vstate.sample())
            e0 = vstate.expect(ham)
            burn_in_s = time.perf_counter() - t0
            E0 = float(np.real(e0.mean))
            E0_err = float(np.real(e0.error_of_mean))

            E_scale = max(abs(E0), math.sqrt(max(float(np.real(e0.variance)), 0.0)), 1e-300)
            record = Recorder(problem, times, s, vstate, ham, rng, d, n_predict, ctx, E0,
                              E_scale, closure)
            t_fit = time.perf_counter()
            if times[0] == 0:
                record.collect(0.0, E0, E0_err)
            stops = np.union1d(times[times > 0], np.linspace(0, problem.T, 21)[1:])
            stops = stops[stops <= times[-1] + 1e-12]
            if stops.size:
                callback = record.callback(nk, driver, stops)
                try:
                    driver.run(float(stops[-1]), out=(), tstops=stops, callback=callback,
                               show_progress=False)
                except Diverged as exc:
                    raise SolverDiverged(str(exc)) from None
                record.finish(driver)
            fit_s = time.perf_counter() - t_fit - record.predict_s

        accepted = [a for a in record.acceptance if a is not None]
        diagnostics = {
            "n_params": n_params,
            "pair_terms": pair,
            "gaussian_closure": closure,
            "chunk_size": chunk,
            "holomorphic": holomorphic,
            "parity_even": even,
            "import_s": import_s,
            "compile_s": compile_s,
            "burn_in_s": burn_in_s,
            "fit_s": fit_s,
            "predict_s": record.predict_s,
            "total_solver_s": time.perf_counter() - t_start,
            "n_steps": record.n_steps,
            "energy0": E0 * hbar,
            "energy0_err": E0_err * hbar,
            "energy": [e * hbar for e in record.energy],
            "energy_err": [e * hbar for e in record.energy_err],
            "energy_drift": record.max_drift,
            "energy_drift_sigma": record.max_drift_sigma,
            "acceptance": record.acceptance,
            "acceptance_mean": float(np.mean(accepted)) if accepted else None,
            "acceptance_min": float(np.min(accepted)) if accepted else None,
            "proposal_rms": record.sigmas,
            "mean_err": record.mean_err,
            "var_err": record.var_err,
            "n_chains": s.n_chains,
            "device": str(jax_device),
        }
        return record.stats.prediction(times, diagnostics)
