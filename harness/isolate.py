"""Run one request in a child Python process of its own (``python -m harness.worker``), so that
whatever happens to it becomes its status: an exception or ``sys.exit`` inside the solver ->
``failed`` (caught in the child), a run past its timeout -> ``timeout``, a kill by SIGKILL (what
the kernel's out-of-memory killer sends) -> ``oom``, any other death -> ``failed``.

The child runs in a session of its own, so a Ctrl-C at the terminal reaches only the harness,
which then kills its children (``Children.kill_all``); a child also dies with the harness process
even when that is killed with SIGKILL (Linux's parent-death signal), so no run is orphaned.
Progress reports travel back over a pipe as JSON lines."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

#: what a run returns: (Record, Prediction | None, dict(extras=..., diagnostics=...))
Result = tuple


class Children:
    """The child processes running now, so that an interrupt can end every one of them."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self.closed = False

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.add(proc)
            if self.closed:  # started after the interrupt: end it at once
                _kill(proc)

    def discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        """Kill every running child (and its own subprocesses) and refuse new ones."""
        with self._lock:
            self.closed = True
            for proc in self._procs:
                _kill(proc)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own process group
    except (ProcessLookupError, PermissionError):
        pass


def thread_env(threads: int | None) -> dict[str, str]:
    """The environment for a child limited to ``threads`` intra-op threads (None: inherited)."""
    env = {**os.environ, "QDBENCH_PARENT_PID": str(os.getpid())}
    if threads is not None:
        n = str(threads)
        env.update(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n)
    return env


def run_isolated(request, reference, timeout: float | None = None, threads: int | None = None,
                 on_progress: Callable[..., None] | None = None,
                 children: Children | None = None) -> Result:
    """Run ``request`` (a ``harness.sweep.Request``) against ``reference`` (a Reference, or a
    string: why there is none) in a fresh child; return what ``runner.execute`` returns."""
    job = request.job()
    with tempfile.TemporaryDirectory(prefix="qdbench-run-") as tmp:
        inp, out, err = Path(tmp) / "in.pkl", Path(tmp) / "out.pkl", Path(tmp) / "stderr"
        inp.write_bytes(pickle.dumps((request, reference)))
        read_fd, write_fd = os.pipe()
        with open(err, "wb") as err_fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.worker", str(inp), str(out), str(write_fd)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_fh,
                pass_fds=(write_fd,), env=thread_env(threads), start_new_session=True)
        os.close(write_fd)
        reader = threading.Thread(target=_relay, args=(read_fd, on_progress), daemon=True)
        reader.start()
        if children is not None:
            children.add(proc)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            proc.wait()
            return job.record(status="timeout", error=f"exceeded the timeout of {timeout:g} s",
                              total_s=timeout), None, {}
        finally:
            if children is not None:
                children.discard(proc)
            reader.join(timeout=5)
        if proc.returncode == 0 and out.exists():
            return pickle.loads(out.read_bytes())
        tail = (err.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
    if proc.returncode == -signal.SIGKILL:
        status, error = "oom", "killed by the OS (SIGKILL), most likely out of memory"
    elif proc.returncode < 0:
        status, error = "failed", f"killed by signal {signal.Signals(-proc.returncode).name}"
    else:
        status, error = "failed", f"worker exited with {proc.returncode}: {tail}"
    return job.record(status=status, error=error), None, {}


def _relay(fd: int, on_progress: Callable[..., None] | None) -> None:
    """Read the child's progress lines until it closes the pipe; hand each to ``on_progress``."""
    with os.fdopen(fd, "r") as pipe:
        for line in pipe:
            if on_progress is None:
                continue
            try:
                fraction, info = json.loads(line)
                on_progress(fraction, **info)
            except (ValueError, TypeError):
                continue
