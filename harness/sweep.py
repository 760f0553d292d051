"""Sweeps: the grid problem × d × solver × seed, each run in its own child process so that a crash,
an out-of-memory kill or a timeout becomes a stored row and the sweep goes on.

Runs are scheduled by a thread pool (``local``) or by Dask (``dask``: a LocalCluster, or any
scheduler address, e.g. one started by dask-jobqueue on Slurm/PBS). Wherever a run executes, its
result comes back to this process, the store's only writer, which stores it as soon as it lands:
killing the sweep loses no finished run, and rerunning it resumes (finished keys are skipped)."""

from __future__ import annotations

import functools
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from harness.api import UserError
from harness.reference import Reference
from harness.registry import discover
from harness.runner import Job, plan, reference_for
from harness.settings import split_overrides
from harness.store import Store


@dataclass(frozen=True)
class Request:
    """One run described by plain values, so that another process can rebuild its Job."""

    problem: str
    d: int | None
    params: tuple[tuple[str, str], ...]
    solver: str
    preset: str | None
    sets: tuple[tuple[str, str], ...]
    seed: int
    device: str
    n_times: int
    plugins: tuple[str, ...] = ()
    checkpoint_every: float | None = None  #: seconds between scored predictions during training

    def job(self) -> Job:
        reg = _registry(self.plugins)
        problem = reg.problem(self.problem, self.d, dict(self.params))
        (job,) = plan(self.problem, problem, [reg.solver(self.solver)], self.preset,
                      dict(self.sets), self.seed, self.device, self.n_times)
        return job


@functools.cache
def _registry(plugins: tuple[str, ...]):
    return discover(plugins)


def grid(problems: list[str], ds: list[int | None], solvers: list[str], seeds: list[int], *,
         params: dict[str, str], preset: str | None, sets: dict[str, str], device: str,
         n_times: int, plugins: tuple[str, ...] = (),
         checkpoint_every: float | None = None) -> list[Request]:
    """Every combination, each checked (names, parameters, settings) before anything runs."""
    reg = _registry(plugins)
    shares = split_overrides([reg.solver(name) for name in solvers], sets)
    requests = []
    for problem in problems:
        for d in ds:
            for solver in solvers:
                own = tuple(sorted(shares[solver].items()))
                for seed in seeds:
                    req = Request(problem, d, tuple(sorted(params.items())), solver, preset, own,
                                  seed, device, n_times, plugins, checkpoint_every)
                    req.job()  # raises UserError for bad input now, not inside a worker
                    requests.append(req)
    return requests


def run_isolated(request: Request, reference: Reference, timeout: float | None,
                 threads: int | None = None):
    """Run one request in a fresh Python process; return what ``runner.execute`` returns.

    ``threads`` caps the child's OpenMP/BLAS threads (runs sharing a machine must not
    oversubscribe it). The child's fate becomes the status: a timeout -> ``timeout``; killed by
    SIGKILL (what the kernel's out-of-memory killer sends) -> ``oom``; any other death -> ``failed``."""
    job = request.job()
    with tempfile.TemporaryDirectory(prefix="qdbench-run-") as tmp:
        inp, out = Path(tmp) / "in.pkl", Path(tmp) / "out.pkl"
        inp.write_bytes(pickle.dumps((request, reference)))
        try:
            proc = subprocess.run([sys.executable, "-m", "harness.worker", str(inp), str(out)],
                                  capture_output=True, text=True, timeout=timeout,
                                  env=thread_env(threads))
        except subprocess.TimeoutExpired:
            return job.record(status="timeout", error=f"exceeded --timeout {timeout:g} s",
                              total_s=timeout), None, {}
        if proc.returncode == 0 and out.exists():
            return pickle.loads(out.read_bytes())
    if proc.returncode == -signal.SIGKILL:
        status, error = "oom", "killed by the OS (SIGKILL), most likely out of memory"
    elif proc.returncode < 0:
        status, error = "failed", f"killed by signal {signal.Signals(-proc.returncode).name}"
    else:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        status, error = "failed", f"worker exited with {proc.returncode}: {tail}"
    return job.record(status=status, error=error), None, {}


def thread_env(threads: int | None) -> dict[str, str] | None:
    """The environment for a child limited to ``threads`` intra-op threads (None: inherited)."""
    if threads is None:
        return None
    n = str(threads)
    return {**os.environ, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


def share(workers: int) -> int:
    """Threads per run when ``workers`` runs share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // workers)


def pending(requests: list[Request], store: Store, force: bool) -> list[Request]:
    """The requests whose run key is not in the store yet (all of them with ``force``)."""
    if force:
        return list(requests)
    done = set(store.table()["run_key"])
    return [r for r in requests if r.job().key not in done]


def execute(requests: list[Request], store: Store, *, executor: str = "local", workers: int = 1,
            scheduler: str | None = None, timeout: float | None = None,
            on_done: Callable[[Request, str], None] = lambda req, status: None) -> None:
    """Run ``requests`` (already filtered by ``pending``) and store each result as it lands."""
    references: dict[tuple, Reference] = {}
    for req in requests:  # one certified reference per problem, computed (or read) once
        job = req.job()
        rkey = (job.problem, job.times.size)
        if rkey not in references:
            references[rkey] = reference_for(job, store)
    tasks = [(req, references[(req.job().problem, req.job().times.size)]) for req in requests]
    for req, (record, pred, kept) in _dispatch(tasks, executor, workers, scheduler, timeout):
        store.put(record, pred, **kept)
        on_done(req, record.status)


def _dispatch(tasks, executor: str, workers: int, scheduler: str | None,
              timeout: float | None) -> Iterator[tuple[Request, tuple]]:
    """Yield (request, result) as runs finish, on threads or on a Dask cluster. Runs on this
    machine split its cores between them; on a remote cluster each run keeps its worker's."""
    n = share(workers) if executor == "local" or not scheduler else None
    if executor == "local":
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run_isolated, req, ref, timeout, n): req for req, ref in tasks}
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        return
    if executor != "dask":
        raise UserError(f"unknown executor {executor!r}; use local or dask")
    from dask.distributed import Client, LocalCluster, as_completed as dask_completed

    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1,
                                                  processes=True, dashboard_address=None)
    with Client(scheduler or cluster) as client:
        futures = {client.submit(run_isolated, req, ref, timeout, n, pure=False): req for req, ref in tasks}
        for fut in dask_completed(futures):
            yield futures[fut], fut.result()
    if cluster is not None:
        cluster.close()
