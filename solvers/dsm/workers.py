"""CPU worker threads of one intra-op thread each, shared by DSM's loss chunks and prediction
batches. Measured here with the other core busy (niced jobs): a d = 100 quick-preset epoch
took 0.30 s on one thread and 6.9 s (median; 0.81 best) on torch's two intra-op threads, and a
compiled Heun step over 5000 paths 2.9 s against 12.5 s: every op of a multi-threaded torch
waits at a barrier for a descheduled thread, a worker per core has no barrier to wait at.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch


class Workers:
    """``n`` threads of one intra-op thread each, the calling thread one of them (call ``map``
    inside ``training.threads(1)``). ``warm=False``: the first ``map`` runs every part in the
    calling thread, so that a compiled function compiles once before threads call it."""

    def __init__(self, n: int, warm: bool = True):
        self.n = n
        self.pool = ThreadPoolExecutor(n - 1, initializer=torch.set_num_threads,
                                       initargs=(1,)) if n > 1 else None
        self.warm = warm

    def map(self, fn, parts) -> list:
        """[fn(part) for part in parts], the first in this thread, the others in the pool (in
        order: results, and the first exception, come back as a serial loop's would)."""
        if self.pool is None or not self.warm:
            self.warm = True
            return [fn(part) for part in parts]
        futures = [self.pool.submit(fn, part) for part in parts[1:]]
        first = fn(parts[0])
        return [first] + [f.result() for f in futures]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cpu_workers(settings, device: torch.device, at_most: int | None = None) -> int:
    """How many workers a run uses: on the CPU ``threads`` if set, else torch's intra-op thread
    count (at most ``at_most``); elsewhere one (the device runs the work)."""
    if device.type != "cpu":
        return 1
    n = settings.threads or torch.get_num_threads()
    return max(1, min(n, at_most) if at_most else n)
