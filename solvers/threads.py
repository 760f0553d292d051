"""Thread control shared by the torch solvers: small matmuls run on one intra-op thread.

On an idle machine a second thread gains little when an op's matmul is small (rows × width²
under 10⁸ multiply-adds); on a busy one every op waits at a barrier for a descheduled thread
(measured here under load: 0.3 s vs 5.4 s per PINN epoch; the DSM smoke preset 30× slower)."""

from __future__ import annotations

import contextlib

import torch

#: multiply-adds per matmul under which one thread is used
SMALL_MATMUL = 1e8


@contextlib.contextmanager
def threads(n: int | None):
    """Run the block with n intra-op threads (None: unchanged), restoring the count after."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def for_matmul(rows: int, width: int, fixed: int = 0) -> int | None:
    """``fixed`` threads when set, else 1 for a small (rows × width²) matmul, else unchanged."""
    if fixed:
        return fixed
    return 1 if rows * width**2 < SMALL_MATMUL else None
