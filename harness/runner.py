"""Run problem × solver × seed: resolve settings, serve cached runs from the store, compute the
reference once, run each solver with its clock and memory watched, score, and store a row —
also for a solver that refuses the problem, raises, diverges or returns NaN."""

from __future__ import annotations

import json
import threading
import time
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import psutil

from harness.api import Context, Prediction, Problem, Solver, SolverDiverged, UserError
from harness.metrics import score
from harness.record import Record, environment, reference_key, run_key
from harness.reference import Reference, compute_reference
from harness.settings import resolve_settings, settings_dict, split_overrides
from harness.store import Store

DEFAULT_TIMES = 100
log = logging.getLogger("qdbench")


def scored_times(problem: Problem, n_times: int = DEFAULT_TIMES) -> np.ndarray:
    """t = 0 (for the paper's error) followed by ``n_times`` evenly spaced times in (0, T]."""
    return np.linspace(0.0, problem.T, n_times + 1)


def resolve_device(device: str) -> str:
    """'cpu', 'cuda' or 'auto' (cuda when torch sees a GPU); 'cuda' without a GPU is refused."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no GPU on this machine")
    if device not in ("cpu", "cuda"):
        raise UserError(f"unknown device {device!r}; use cpu, cuda or auto")
    return device


class PeakMemory:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak_mb = interval, 0.0
        self._proc, self._stop = psutil.Process(), threading.Event()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)

    def __enter__(self) -> "PeakMemory":
        self.peak_mb = self._proc.memory_info().rss / 2**20
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)


@dataclass
class Job:
    """One solver's run of the problem: everything its run key is made of."""

    problem_name: str
    problem: Problem
    solver: type[Solver]
    preset: str
    settings: object
    seed: int
    device: str
    times: np.ndarray

    @property
    def key(self) -> str:
        return run_key(self.problem_name, self.problem.params(), self.solver.name,
                       settings_dict(self.settings), self.seed, self.device, self.times.size - 1)

    @property
    def ref_key(self) -> str:
        return reference_key(self.problem_name, self.problem.params(), self.times.size - 1)

    def record(self, **fields) -> Record:
        return Record(run_key=self.key, problem=self.problem_name, d=self.problem.d,
                      params=json.dumps(self.problem.params(), sort_keys=True),
                      solver=self.solver.name, preset=self.preset,
                      settings=json.dumps(settings_dict(self.settings), sort_keys=True, default=str),
                      seed=self.seed, device=self.device, ref_key=self.ref_key, **environment(),
                      **fields)


def plan(problem_name: str, problem: Problem, solvers: list[type[Solver]], preset: str | None,
         overrides: dict[str, str], seed: int, device: str, n_times: int = DEFAULT_TIMES) -> list[Job]:
    """Jobs for each solver; bad settings raise UserError here, before anything runs."""
    times = scored_times(problem, n_times)
    shares = split_overrides(solvers, overrides)
    jobs = []
    for solver in solvers:
        settings = resolve_settings(solver, preset, shares[solver.name])
        jobs.append(Job(problem_name, problem, solver, preset or solver.default_preset,
                        settings, seed, device, times))
    return jobs


def _reference_fields(ref: Reference) -> dict:
    return dict(ref_kind=ref.kind, ref_mean_bound=ref.bound.get("mean", np.nan),
                ref_var_bound=ref.bound.get("var", np.nan),
                ref_density_bound=ref.bound.get("density_l1", np.nan), ref_edge_mass=ref.edge_mass)


def execute(job: Job, ref: Reference,
            on_progress: Callable[..., None] = lambda fraction, **info: None,
            checkpoint_every: float | None = None) -> tuple[Record, Prediction | None, dict]:
    """Run one job now (no store involved): its record, its prediction (None unless ok) and
    what to keep whatever its status, ``dict(extras=checkpoint scores, diagnostics=...)``."""
    supported, reason = job.solver().supports(job.problem, job.settings)
    if not supported:
        return job.record(status="unsupported", error=reason, **_reference_fields(ref)), None, {}
    start = time.perf_counter()
    checkpoints: dict[str, list[float]] = {"wall_s": [], "density_l1": [], "var_rel_l2": []}

    def checkpoint(pred: Prediction) -> None:
        scores = score(pred, ref.prediction)
        checkpoints["wall_s"].append(time.perf_counter() - start)
        checkpoints["density_l1"].append(scores["density_l1"])
        checkpoints["var_rel_l2"].append(scores["var_rel_l2"])

    ctx = Context(seed=job.seed, device=job.device, progress=on_progress, checkpoint=checkpoint,
                  checkpoint_every=checkpoint_every)
    status, error, pred, metrics, diag = "ok", "", None, {}, {}
    gpu = _gpu_peak_reset(job.device)
    with PeakMemory() as mem:
        try:
            solver = job.solver()
            solver.check(job.settings, job.problem)
            pred = solver.solve(job.problem, job.times, job.settings, ctx)
            diag = getattr(pred, "diagnostics", {})
            _validate(pred, job)
            metrics = score(pred, ref.prediction)
        except SolverDiverged as exc:
            status, error, diag = "diverged", str(exc), exc.diagnostics
        except MemoryError:
            status, error = "oom", "MemoryError"
        except Exception as exc:  # a crashing solver becomes a row, never a lost run
            status = "failed"
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log.debug("solver %s failed", job.solver.name, exc_info=True)
    total = time.perf_counter() - start
    record = job.record(
        status=status, error=error, total_s=total,
        fit_s=float(diag.get("fit_s", np.nan)), predict_s=float(diag.get("predict_s", np.nan)),
        n_params=float(diag.get("n_params", np.nan)), peak_rss_mb=mem.peak_mb,
        peak_gpu_mb=_gpu_peak(gpu), **metrics, **_reference_fields(ref))
    return record, (pred if status == "ok" else None), dict(extras=checkpoints, diagnostics=diag)


def _validate(pred: Prediction, job: Job) -> None:
    """A prediction must cover the requested times, on the problem's bins, with finite values."""
    if not isinstance(pred, Prediction):
        raise TypeError(f"solve() returned {type(pred).__name__}, not a Prediction")
    if pred.times.shape != job.times.shape or not np.allclose(pred.times, job.times):
        raise ValueError("prediction times differ from the requested times")
    if not np.allclose(pred.edges, job.problem.marginal_edges()):
        raise ValueError("prediction marginals are not on the problem's bins")
    if not pred.finite:
        raise ValueError("prediction contains NaN or inf")


def _gpu_peak_reset(device: str) -> bool:
    if device != "cuda":
        return False
    import torch

    torch.cuda.reset_peak_memory_stats()
    return True


def _gpu_peak(active: bool) -> float:
    if not active:
        return float("nan")
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def reference_for(job: Job, store: Store) -> Reference:
    """The job's certified reference (cached on disk), its curves stored for the reports."""
    ref = compute_reference(job.problem, job.times, store.references_dir)
    if store.curves(job.ref_key) is None:
        store.put_curves(job.ref_key, ref.prediction,
                         diagnostics=dict(kind=ref.kind, bound=ref.bound, settings=ref.settings))
    return ref


def run(jobs: list[Job], store: Store, force: bool = False,
        on_progress: Callable[[str], Callable[..., None]] = lambda name: (lambda f, **i: None),
        checkpoint_every: float | None = None) -> list[dict]:
    """Run (or serve from ``store``) every job; return their stored rows, in order.

    The reference is computed (or read from its cache) once, and only if a job needs running."""
    rows: list[dict | None] = [None if force else store.get(job.key) for job in jobs]
    ref = None
    for i, job in enumerate(jobs):
        if rows[i] is not None:
            rows[i]["served_from_store"] = True
            continue
        if ref is None:
            ref = reference_for(job, store)
        record, pred, kept = execute(job, ref, on_progress(job.solver.name), checkpoint_every)
        store.put(record, pred, **kept)
        rows[i] = dict(record.as_row(), served_from_store=False)
    return rows
