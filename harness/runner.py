"""One run of a solver on a problem: plan it (settings resolved, sizes checked, before anything
runs), execute it with its clock and memory watched inside one fault boundary, and score it.

Whatever the solver does (refuses, raises, exits, diverges, returns NaN or wrong shapes) becomes
a Record with its status and reason. ``execute`` runs in the process it is called from; the
harness calls it inside a child process of its own (``harness.isolate``), so that a kill, too,
becomes a row."""

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
from harness.metrics import SCHEMA, checkpoint_scores, score
from harness.record import Record, environment, reference_key, run_key
from harness.reference import Reference, compute_reference
from harness.settings import resolve_settings, settings_dict, split_overrides
from harness.store import Store

DEFAULT_TIMES = 100
#: largest prediction (times × coordinates × bins floats) the harness accepts to plan: the
#: reference, the metrics and the store each hold a few copies of it
MAX_PREDICTION_GB = 2.0
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
    ladder_rung: bool = False  #: see Record.ladder_rung; not part of the run key

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
                      seed=self.seed, device=self.device, ladder_rung=self.ladder_rung,
                      ref_key=self.ref_key, **environment(),
                      **fields)


def plan(problem_name: str, problem: Problem, solvers: list[type[Solver]], preset: str | None,
         overrides: dict[str, str], seed: int, device: str, n_times: int = DEFAULT_TIMES) -> list[Job]:
    """Jobs for each solver; bad settings raise UserError here, before anything runs."""
    need = (n_times + 1) * problem.d * problem.n_bins * 8 / 1e9
    if need > MAX_PREDICTION_GB:
        raise UserError(f"{problem_name} d={problem.d} with {n_times} scored times: a prediction "
                        f"of {n_times + 1} × {problem.d} × {problem.n_bins} marginal bins needs "
                        f"{need:.3g} GB, more than the {MAX_PREDICTION_GB:g} GB the harness "
                        f"holds; lower --d or --times")
    times = scored_times(problem, n_times)
    shares = split_overrides(solvers, overrides)
    jobs = []
    for solver in solvers:
        settings = resolve_settings(solver, preset, shares[solver.name])
        jobs.append(Job(problem_name, problem, solver, preset or solver.default_preset,
                        settings, seed, device, times))
    return jobs


def reference_fields(ref: Reference | None) -> dict:
    """The record's columns that describe the reference (empty without one)."""
    if ref is None:
        return {}
    return dict(ref_kind=ref.kind, ref_mean_bound=ref.bound.get("mean", np.nan),
                ref_var_bound=ref.bound.get("var", np.nan),
                ref_density_bound=ref.bound.get("density_l1", np.nan), ref_edge_mass=ref.edge_mass)


def execute(job: Job, ref: Reference | None, no_reference: str = "",
            on_progress: Callable[..., None] = lambda fraction, **info: None,
            checkpoint_every: float | None = None) -> tuple[Record, Prediction | None, dict]:
    """Run one job in this process (no store involved): its record, its prediction (None unless
    ``ok`` or ``unscored``) and what to keep whatever its status, ``dict(extras=checkpoint
    scores, diagnostics=...)``. Without a reference (``ref`` None, ``no_reference`` saying why)
    a valid prediction is kept unscored, to be scored once a reference exists."""
    start = time.perf_counter()
    checkpoints: dict[str, list[float]] = {"wall_s": [], **{m.name: [] for m in SCHEMA if m.checkpoint}}

    def checkpoint(pred: Prediction) -> None:
        if ref is None:
            return
        checkpoints["wall_s"].append(time.perf_counter() - start)
        for name, value in checkpoint_scores(pred, ref.prediction).items():
            checkpoints[name].append(value)

    ctx = Context(seed=job.seed, device=job.device, progress=on_progress, checkpoint=checkpoint,
                  checkpoint_every=checkpoint_every if ref is not None else None)
    status, error, pred, metrics, diag = "ok", "", None, {}, {}
    gpu = _gpu_peak_reset(job.device)
    with PeakMemory() as mem:
        try:
            solver = job.solver()
            supported, reason = _answer(solver.supports(job.problem, job.settings))
            if not supported:
                status, error = "unsupported", reason
            else:
                pred = solver.solve(job.problem, job.times, job.settings, ctx)
                diag = getattr(pred, "diagnostics", None) or {}
                _validate(pred, job)
                if ref is None:
                    status, error = "unscored", no_reference
                else:
                    metrics = score(pred, ref.prediction)
        except SolverDiverged as exc:
            status, error, diag = "diverged", str(exc), exc.diagnostics
        except MemoryError:
            status, error = "oom", "MemoryError"
        except SystemExit as exc:  # a solver must not end the harness: it is a failure
            status, error = "failed", f"solver called sys.exit({exc.code!r})"
        except Exception as exc:  # a crashing solver becomes a row, never a lost run
            status = "failed"
            error = (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]
            log.debug("solver %s failed", job.solver.name, exc_info=True)
    total = time.perf_counter() - start
    record = job.record(
        status=status, error=error, total_s=total,
        fit_s=_number(diag, "fit_s"), predict_s=_number(diag, "predict_s"),
        n_params=_number(diag, "n_params"), peak_rss_mb=mem.peak_mb,
        peak_gpu_mb=_gpu_peak(gpu), **metrics, **reference_fields(ref))
    kept = dict(extras=checkpoints, diagnostics=diag if isinstance(diag, dict) else {})
    return record, (pred if status in ("ok", "unscored") else None), kept


def rescore(record: dict, pred: Prediction, ref: Reference) -> dict:
    """The row of an ``unscored`` run scored against ``ref``, now that a reference exists."""
    return dict(record, status="ok", error="", **score(pred, ref.prediction), **reference_fields(ref))


def _answer(answer) -> tuple[bool, str]:
    """``supports``'s answer checked: a (bool, reason) pair, a reason when it refuses."""
    if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[1], str)):
        raise TypeError(f"supports() returned {answer!r}, not a (bool, reason) pair")
    ok, reason = bool(answer[0]), answer[1]
    return ok, reason if ok or reason else "refused without a reason"


def _number(diag, key: str) -> float:
    """A number the solver reported in its diagnostics (NaN when absent or not a number)."""
    try:
        return float(diag.get(key, np.nan))
    except (TypeError, ValueError, AttributeError):
        return float("nan")


def _validate(pred: Prediction, job: Job) -> None:
    """A prediction must cover the requested times, on the problem's bins, with finite values."""
    if not isinstance(pred, Prediction):
        raise TypeError(f"solve() returned {type(pred).__name__}, not a Prediction")
    if pred.times.shape != job.times.shape or not np.allclose(pred.times, job.times):
        raise ValueError("prediction times differ from the requested times")
    want = (job.times.size, job.problem.d, job.problem.n_bins)
    got = (np.shape(pred.mean), np.shape(pred.var), np.shape(pred.marginals))
    if got != (want[:2], want[:2], want):
        raise ValueError(f"prediction shapes {got} are not (times, d) for the moments and "
                         f"(times, d, bins) = {want} for the marginals")
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


def reference_for(job: Job, store: Store, progress: Callable[[str], None] = lambda line: None) -> Reference:
    """The job's certified reference (cached on disk), its curves stored for the reports;
    ``ReferenceFailed`` when none can be certified. ``progress``: a line per grid run started."""
    ref = compute_reference(job.problem, job.times, store.references_dir, progress=progress)
    if store.curves(job.ref_key) is None:
        store.put_curves(job.ref_key, ref.prediction,
                         diagnostics=dict(kind=ref.kind, bound=ref.bound, settings=ref.settings))
    return ref
