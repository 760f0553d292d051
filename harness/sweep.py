"""Sweeps: the grid problem × d × solver × seed (``harness run`` is a sweep of one problem and
seed), each run in a child process of its own (``harness.isolate``).

Runs are scheduled on this machine (``local``) or by Dask (``dask``: a LocalCluster, or any
scheduler address, e.g. one started by dask-jobqueue on Slurm/PBS). Wherever a run executes, its
result comes back to this process, the store's only writer, which stores it as soon as it lands:
killing the sweep loses no finished run, and rerunning it resumes (finished keys are skipped).
A run being computed is claimed by a lock file beside the store, so a second sweep on the same
store skips it instead of computing it twice. Ctrl-C kills the running children, cancels what
was queued and keeps what finished."""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

from filelock import FileLock, Timeout

from harness.api import UserError
from harness.isolate import Children, run_isolated
from harness.reference import Reference, ReferenceFailed
from harness.registry import discover
from harness.record import STATUSES, Record
from harness.runner import Job, plan, reference_for, rescore
from harness.store import Store

#: seconds a Dask sweep waits for a worker to come back before it gives up (without --timeout)
NO_WORKER_GRACE = 60.0


class SweepAborted(RuntimeError):
    """The sweep cannot go on (every Dask worker is gone): one line, finished runs kept."""


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
    ladder_rung: bool = False  #: a ladder rung other than the preset's own settings

    def job(self) -> Job:
        reg = registry(self.plugins)
        problem = reg.problem(self.problem, self.d, dict(self.params))
        (job,) = plan(self.problem, problem, [reg.solver(self.solver)], self.preset,
                      dict(self.sets), self.seed, self.device, self.n_times)
        return dataclasses.replace(job, ladder_rung=self.ladder_rung)


@functools.cache
def registry(plugins: tuple[str, ...]):
    return discover(plugins)


def grid(problems: list[str], ds: list[int | None], solvers: list[str], seeds: list[int], *,
         params: dict[str, str], preset: str | None, sets: dict[str, str], device: str,
         n_times: int, plugins: tuple[str, ...] = (), checkpoint_every: float | None = None,
         ladder: bool = False) -> list[Request]:
    """Every combination, each checked (names, parameters, settings) before anything runs; a
    ``deterministic`` solver at the first seed only.

    With ``ladder``, each solver's run becomes the rungs of its work–precision ladder
    (``Solver.ladder``), and a solver without one (a training solver) scores checkpoints every
    ``checkpoint_every`` (default LADDER_CHECKPOINT_S) seconds instead."""
    from harness.settings import split_overrides

    if not problems or not solvers or not seeds:
        raise UserError("the grid is empty: name at least one problem and one solver")
    reg = registry(plugins)
    shares = split_overrides([reg.solver(name) for name in solvers], sets)
    requests = []
    for problem in problems:
        for d in ds:
            for solver in solvers:
                own = tuple(sorted(shares[solver].items()))
                for seed in seeds[:1] if reg.solver(solver).deterministic else seeds:
                    req = Request(problem, d, tuple(sorted(params.items())), solver, preset, own,
                                  seed, device, n_times, plugins, checkpoint_every)
                    job = req.job()  # raises UserError for bad input now, not inside a worker
                    requests += _rungs(req, job) if ladder else [req]
    return requests


#: seconds between scored checkpoints of a training solver in a ladder sweep
LADDER_CHECKPOINT_S = 20.0


def _rungs(req: Request, job: Job) -> list[Request]:
    """The requests of ``req``'s work–precision ladder (itself, checkpointed, without one); a
    solver that refuses the problem runs once, to store its one ``unsupported`` row."""
    solver = job.solver()
    if not solver.supports(job.problem, job.settings)[0]:
        return [req]
    rungs = solver.ladder(job.problem, job.settings)
    if not rungs:
        return [dataclasses.replace(req, checkpoint_every=req.checkpoint_every or LADDER_CHECKPOINT_S)]
    out = []
    for rung in rungs:
        clash = sorted(set(rung) & {k for k, _ in req.sets})
        if clash:
            raise UserError(f"--ladder varies {', '.join(clash)} of {req.solver}; do not --set it")
        rung_req = dataclasses.replace(req, sets=tuple(sorted({**dict(req.sets), **rung}.items())),
                                       ladder_rung=bool(rung))
        rung_req.job()
        out.append(rung_req)
    return out


def share(workers: int) -> int:
    """Threads per run when ``workers`` runs share the cores this process may use (its CPU
    affinity where the OS has one: a sweep under ``taskset -c 0`` runs one thread a run)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // workers)


#: ``redo`` for ``--force``: every stored run is computed again
EVERY = frozenset(STATUSES)


def stored_row(store: Store, key: str, redo: Collection[str]) -> dict | None:
    """The stored row of ``key``, or None where there is none or its status is to be redone."""
    row = store.get(key)
    return None if row is None or row["status"] in redo else row


def pending(requests: list[Request], store: Store, redo: Collection[str] = ()) -> list[Request]:
    """The requests with no finished run in the store; an ``unscored`` run is pending too: it is
    scored, not recomputed, once a reference exists; a run stored with a status in ``redo``
    (say ``failed``, after a fix; ``EVERY`` for all) is pending again."""
    table = store.table()
    done = set(table.loc[~table["status"].isin(("unscored", *redo)), "run_key"])
    return [r for r in requests if r.job().key not in done]


def execute(requests: list[Request], store: Store, *, executor: str = "local", workers: int = 1,
            scheduler: str | None = None, timeout: float | None = None,
            redo: Collection[str] = (),
            on_done: Callable[[Request, str], None] = lambda req, status: None,
            on_progress: Callable[[Request], Callable[..., None] | None] = lambda req: None,
            on_note: Callable[[str], None] = lambda text: None) -> None:
    """Run ``requests`` (already filtered by ``pending``) and store each result as it lands.

    ``on_done(request, status)`` follows every stored run (status ``claimed`` for a run another
    process is computing); ``on_note`` receives one-line notices (a reference that failed).
    ``redo``: stored statuses that are run again (as in ``pending``)."""
    if executor not in ("local", "dask"):
        raise UserError(f"unknown executor {executor!r}; use local or dask")
    client = _dask_client(scheduler, workers) if executor == "dask" else None
    try:
        tasks = []
        for req, ref in _with_references(requests, store, on_note):
            stored = stored_row(store, req.job().key, redo)
            if stored is not None and stored["status"] == "unscored":  # score it, do not rerun
                if isinstance(ref, Reference) and _rescore(store, stored, ref):
                    on_done(req, "ok")
                    continue
                if not isinstance(ref, Reference):
                    on_done(req, "unscored")
                    continue
            tasks.append((req, ref))
        dispatch = Dispatch(store, timeout, frozenset(redo))
        runs = dispatch.local(tasks, workers, on_progress) if client is None else \
            dispatch.dask(tasks, client, None if scheduler else share(workers))
        for req, result in runs:
            if result is None:
                on_done(req, "claimed")
                continue
            record, pred, kept = result
            store.put(record, pred, **kept)
            on_done(req, record.status)
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()


def _with_references(requests: list[Request], store: Store, on_note):
    """Each request with its problem's certified reference, computed (or read from the cache)
    once per problem; where none can be certified, the reason instead (runs kept unscored)."""
    refs: dict[tuple, Reference | str] = {}
    for req in requests:
        job = req.job()
        key = (job.problem, job.times.size)
        if key not in refs:
            try:
                refs[key] = reference_for(job, store, on_note)
            except ReferenceFailed as exc:
                refs[key] = str(exc)
                on_note(f"{exc}; the runs are stored unscored, and scored when rerun once a "
                        f"reference can be made")
        yield req, refs[key]


def _rescore(store: Store, stored: dict, ref: Reference) -> bool:
    """Score a stored ``unscored`` run from its stored prediction (no solver run)."""
    pred = store.curves(stored["run_key"])
    if pred is None:
        return False
    row = rescore(stored, pred, ref)
    store.put(Record(**{k: row[k] for k in Record.__dataclass_fields__ if k in row}))
    return True


@dataclass
class Dispatch:
    """Where the runs go: claims each run in the store's ``claims/`` folder while it runs (a
    lock the OS releases if this process dies), so a second sweep skips it; yields (request,
    result) as runs finish, or (request, None) for a run another process holds or has stored."""

    store: Store
    timeout: float | None
    redo: frozenset[str] = frozenset()  #: stored statuses that do not count as finished

    def claim(self, req: Request) -> FileLock | None:
        self.store.claims_dir.mkdir(parents=True, exist_ok=True)
        key = req.job().key
        lock = FileLock(str(self.store.claims_dir / f"{key}.lock"), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        stored = stored_row(self.store, key, self.redo)
        if stored is not None and stored["status"] != "unscored":  # finished meanwhile
            lock.release()
            return None
        return lock

    def local(self, tasks, workers: int, on_progress) -> Iterator:
        """On this machine, ``workers`` runs at a time sharing its cores; on an interrupt the
        running children are killed and what was queued is dropped."""
        children, threads = Children(), share(workers)
        queue, running = list(tasks), {}
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            while queue or running:
                while queue and len(running) < workers:
                    req, ref = queue.pop(0)
                    lock = self.claim(req)
                    if lock is None:
                        yield req, None
                        continue
                    running[pool.submit(run_isolated, req, ref, self.timeout, threads,
                                        on_progress(req), children)] = (req, lock)
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    req, lock = running.pop(fut)
                    try:
                        yield req, fut.result()
                    finally:
                        lock.release()
        except BaseException:
            children.kill_all()
            for _, lock in running.values():
                lock.release()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def dask(self, tasks, client, threads: int | None) -> Iterator:
        """On a Dask cluster; ends with SweepAborted when no worker is left for longer than the
        timeout (or NO_WORKER_GRACE seconds)."""
        from distributed import wait as dask_wait
        from distributed.scheduler import KilledWorker

        futures = {}
        try:
            for req, ref in tasks:
                lock = self.claim(req)
                if lock is None:
                    yield req, None
                    continue
                fut = client.submit(run_isolated, req, ref, self.timeout, threads, pure=False)
                futures[fut] = (req, lock)
            alone_since = None
            while futures:
                try:
                    done = dask_wait(list(futures), timeout=1, return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    done = set()
                for fut in done:
                    req, lock = futures.pop(fut)
                    try:
                        yield req, _dask_result(req, fut, KilledWorker)
                    finally:
                        lock.release()
                if client.nthreads():
                    alone_since = None
                    continue
                alone_since = alone_since or time.monotonic()
                grace = self.timeout or NO_WORKER_GRACE
                if time.monotonic() - alone_since > grace:
                    raise SweepAborted(f"no Dask worker left for {grace:g} s; {len(futures)} runs "
                                       f"not done (finished runs are stored; rerun to resume)")
        finally:
            client.cancel(list(futures))
            for _, lock in futures.values():
                lock.release()


def _dask_result(req: Request, fut, killed_worker: type) -> tuple:
    """A finished Dask future's result; a run whose worker kept dying becomes a failed row."""
    try:
        return fut.result()
    except killed_worker as exc:
        return req.job().record(status="failed", error=f"its Dask worker died: {exc}"), None, {}


def _dask_client(scheduler: str | None, workers: int):
    """A client of the scheduler at ``scheduler`` or of a new LocalCluster of ``workers``
    processes; a malformed or unreachable address is a UserError, found before any work."""
    from distributed import Client, LocalCluster
    from distributed.comm.addressing import parse_address

    if scheduler is None:
        return Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None))
    try:
        parse_address(scheduler, strict=True)
    except ValueError:
        raise UserError(f"--scheduler {scheduler!r} is not a Dask address such as "
                        f"tcp://host:8786") from None
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"cannot reach the Dask scheduler at {scheduler} within 10 s "
                        f"({type(exc).__name__})") from None
