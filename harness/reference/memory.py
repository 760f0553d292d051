"""The reference's memory budget, checked before any grid-sized array is made: a grid that
cannot fit raises GridTooLarge, whatever d (the size is computed in logarithms, never as n^d)."""

from __future__ import annotations

import math
import os

from harness.api import Problem
from harness.reference.errors import GridTooLarge

#: bytes held per grid point during a run: ψ, the two phase factors, the density and FFT scratch
BYTES_PER_POINT = 5 * 16
#: fewest points per axis of any grid run (none resolves a state with fewer): the floor checked
#: before the first grid is even chosen, which needs samples of ψ0 (n × d numbers)
MIN_POINTS = 8


def memory_budget_gb() -> float:
    """The reference's memory budget: $QDBENCH_REFERENCE_GB, default 8 GB."""
    return float(os.environ.get("QDBENCH_REFERENCE_GB", 8))


def _gb(log10_bytes: float) -> str:
    """A size given by its log10 in bytes, in GB, readable even past the float range."""
    log10_gb = log10_bytes - 9
    return f"{10**log10_gb:.3g}" if log10_gb < 300 else f"10^{math.floor(log10_gb)}"


def check_fits(problem: Problem, n: int, dims: int, *, at_least: bool = False) -> None:
    """Raise GridTooLarge when a grid of ``n``^``dims`` points passes the budget (``at_least``:
    the message says the grid needs at least that much, for the MIN_POINTS floor)."""
    log10_need = dims * math.log10(n) + math.log10(BYTES_PER_POINT)
    budget = memory_budget_gb()
    if budget > 0 and log10_need <= math.log10(budget) + 9:
        return
    least = "at least " if at_least else ""
    raise GridTooLarge(f"no certified reference for {problem.name} d={problem.d}: its grid of {least}{n}^{dims} "
                       f"points needs {least}{_gb(log10_need)} GB, budget {budget:g} GB (QDBENCH_REFERENCE_GB)")
