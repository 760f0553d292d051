"""Statistics and checks at the scored times of a t-VMC run (a NetKet callback): the samples of
each scored time are reduced to moments and histograms at once (harness SampleStatistics), so
memory does not grow with samples × times × d."""

from __future__ import annotations

import time

import numpy as np

from harness.observables import SampleStatistics, relabel
from solvers.tvmc.structure import chain_stats, exchangeable_gaussian, proposal_factor


class Diverged(Exception):
    """Raised inside the NetKet run; the solver turns it into harness.api.SolverDiverged."""


class Recorder:
    """Collects statistics and diagnostics at the scored times; checks the energy every step."""

    def __init__(self, problem, times, settings, vstate, ham, rng, d, n_predict, ctx, E0, E_scale,
                 closure):
        self.problem, self.times, self.s, self.vstate = problem, times, settings, vstate
        self.rng, self.d, self.n_predict, self.ctx, self.E0 = rng, d, n_predict, ctx, E0
        self.E_scale = E_scale  # |E(0)|, or the energy spread ΔE where E(0) is near zero
        self.ham = ham
        self.closure = closure  # independence proposals (mu, alpha, beta), else a factor L
        self.stats = SampleStatistics(len(times), d, problem.marginal_edges())
        self.mean_err, self.var_err = [], []
        self.energy, self.energy_err, self.acceptance, self.sigmas = [], [], [], []
        self.predict_s = 0.0
        self.n_steps = 0
        self.max_drift = 0.0
        self.max_drift_sigma = 0.0
        self.pending = list(times)
        self.last_energy = (E0, 0.0)

    def _check(self, t: float, energy: float, err: float, params) -> None:
        finite = np.isfinite(energy) and all(
            np.all(np.isfinite(np.asarray(p))) for p in tree_leaves(params))
        if not finite:
            raise Diverged(f"tvmc: non-finite energy or parameters at t={t:.4g}")
        drift = abs(energy - self.E0) / self.E_scale
        self.max_drift = max(self.max_drift, drift)
        if err > 0:
            self.max_drift_sigma = max(self.max_drift_sigma, abs(energy - self.E0) / err)
        if drift > self.s.max_drift:
            raise Diverged(f"tvmc: energy drift {drift:.3g} above max_drift={self.s.max_drift} "
                            f"at t={t:.4g}")

    def collect(self, t: float, energy: float, err: float) -> None:
        """Fresh samples at time t (the state's current parameters) -> statistics."""
        t0 = time.perf_counter()
        vs = self.vstate
        x = np.asarray(vs.sample(n_samples=self.n_predict), dtype=float)
        x = x.reshape(self.s.n_chains, -1, self.d)
        if not np.all(np.isfinite(x)):
            raise Diverged(f"tvmc: non-finite samples at t={t:.4g}")
        if self.s.relabel:
            x = relabel(x, self.rng)
        acc = vs.sampler_state.acceptance
        mean, var, mean_err, var_err = chain_stats(x)
        if self.closure:  # the proposal is the Gaussian fitted to these samples
            state = jnp_asarray(exchangeable_gaussian(x.reshape(-1, self.d)))
            vs.sampler_state = vs.sampler_state.replace(rule_state=state)
        elif not self.s.sigma:  # the proposal follows the packet's covariance
            scale = jnp_asarray(proposal_factor(x.reshape(-1, self.d), self.s))
            vs.sampler_state = vs.sampler_state.replace(rule_state=scale)
        if np.isclose(t, self.pending[0] if self.pending else np.nan, rtol=0, atol=1e-9):
            self.pending.pop(0)
            self.stats.add(len(self.mean_err), x.reshape(-1, self.d))
            self.mean_err.append(mean_err.tolist())
            self.var_err.append(var_err.tolist())
            self.energy.append(energy)
            self.energy_err.append(err)
            self.acceptance.append(None if acc is None else float(acc))
            rule = np.asarray(vs.sampler_state.rule_state)
            self.sigmas.append(float(np.sqrt(rule[1] + rule[2])) if self.closure  # √Σ_ii
                               else float(np.sqrt(np.trace(rule @ rule.T) / self.d)))
        self.predict_s += time.perf_counter() - t0

    def callback(self, nk, driver, stops):
        recorder = self
        T = float(self.problem.T)

        class Collect(nk.callbacks.AbstractCallback):
            def before_parameter_update(self, step, log_data, drv):
                # the state holds θ(t) here: the integrator has not yet moved it to t + dt
                t = float(drv.t)
                stats = log_data.get("Generator") if hasattr(log_data, "get") else None
                if stats is not None:  # a real step (the run's last call only reports T)
                    recorder.n_steps += 1
                    e, err = float(np.real(stats.mean)), float(np.real(stats.error_of_mean))
                    recorder.last_energy = (e, err)
                    recorder._check(t, e, err, drv.state.parameters)
                else:  # the final time: no step starts here, so measure the energy
                    stats = drv.state.expect(recorder.ham)
                    e, err = float(np.real(stats.mean)), float(np.real(stats.error_of_mean))
                    recorder.last_energy = (e, err)
                    recorder._check(t, e, err, drv.state.parameters)
                if recorder.pending and np.isclose(t, recorder.pending[0], rtol=0, atol=1e-9):
                    recorder.collect(t, *recorder.last_energy)
                    recorder.ctx.progress(t / T, t=t, energy=recorder.last_energy[0])
                elif np.any(np.isclose(t, stops, rtol=0, atol=1e-9)):
                    recorder.collect(t, *recorder.last_energy)

        return [Collect()]

    def finish(self, driver) -> None:
        """Check that every scored time was collected."""
        if self.pending:
            raise RuntimeError(f"tvmc: run ended at t={float(driver.t)} with scored times "
                               f"{self.pending} not collected")


def tree_leaves(tree):
    import jax

    return jax.tree_util.tree_leaves(tree)


def jnp_asarray(x):
    import jax.numpy as jnp

    return jnp.asarray(x, dtype=jnp.float64)
