"""``python -m harness.worker IN OUT PROGRESS_FD``: run one request in this fresh process.

IN holds the pickled (Request, Reference or the reason there is none); OUT receives the pickled
result of ``runner.execute``; progress reports go to the pipe PROGRESS_FD as JSON lines. A process
of its own per run keeps a crash or an OOM kill from taking the harness down with it."""

import ctypes
import json
import os
import pickle
import signal
import sys
from pathlib import Path


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the harness that started it dies, and exit if it
    already has: a sweep killed with SIGKILL leaves no orphaned run computing on."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = os.environ.get("QDBENCH_PARENT_PID")
    if parent and os.getppid() != int(parent):
        os._exit(1)


def main(inp: str, out: str, progress_fd: str) -> None:
    die_with_parent()
    from harness.reference import Reference
    from harness.runner import execute

    request, reference = pickle.loads(Path(inp).read_bytes())
    pipe = os.fdopen(int(progress_fd), "w", buffering=1)

    def progress(fraction: float, **info) -> None:
        pipe.write(json.dumps([float(fraction), {k: _plain(v) for k, v in info.items()}]) + "\n")

    ref = reference if isinstance(reference, Reference) else None
    result = execute(request.job(), ref, no_reference="" if ref else str(reference),
                     on_progress=progress, checkpoint_every=request.checkpoint_every)
    Path(out).write_bytes(pickle.dumps(result))


def _plain(value):
    """A progress value as JSON can carry it (numbers stay numbers, the rest becomes text)."""
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


if __name__ == "__main__":
    main(*sys.argv[1:4])
