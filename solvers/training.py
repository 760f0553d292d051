"""Helpers shared by the training solvers (dsm, pinn): thread control, heap reuse and
loss-curve thinning.

Small matmuls run on one intra-op thread: on an idle machine a second thread gains little when an op's matmul is small (rows × width²
under 10⁸ multiply-adds); on a busy one every op waits at a barrier for a descheduled thread
(measured here under load: 0.3 s vs 5.4 s per PINN epoch; the DSM smoke preset 30× slower)."""

from __future__ import annotations

import contextlib
import ctypes

import numpy as np
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


def for_matmul(rows: int, width: int, fixed: int = 0, small: float = SMALL_MATMUL) -> int | None:
    """``fixed`` threads when set, else 1 for a matmul of fewer than ``small`` multiply-adds
    (rows × width²), else unchanged."""
    if fixed:
        return fixed
    return 1 if rows * width**2 < small else None


def reuse_freed_memory(block: int = 32 << 20, keep: int = 1 << 30) -> bool:
    """Ask glibc's malloc to serve blocks up to ``block`` bytes from its heap and to keep up to
    ``keep`` freed bytes there, instead of mapping fresh pages for each large tensor and handing
    them back when it is freed: a training step allocates the same few-MB tensors again and
    again, and each fresh page costs a fault (measured here, paper epoch d = 4: 3·10⁵ faults
    and 0.6 s of a 4.0 s loss step). Process-wide; False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the loaded symbols, the C library's among them
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
    return bool(mallopt(M_MMAP_THRESHOLD, block)) and bool(mallopt(M_TRIM_THRESHOLD, keep))


def subsample_curve(curve: dict[str, list], keep: int) -> dict[str, list]:
    """At most ``keep`` evenly spread entries of a loss curve (parallel lists keyed by name,
    one of them ``epoch``), first and last included."""
    n = len(curve["epoch"])
    if n <= keep:
        return curve
    idx = np.unique(np.linspace(0, n - 1, keep).round().astype(int))
    return {k: [v[i] for i in idx] for k, v in curve.items()}
