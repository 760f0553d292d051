"""The reference solution every solver is scored against (DESIGN §6): exact where the problem
has one, otherwise a certified split-operator grid run, cached on disk.

The package's modules: ``compute`` (the entry point, ``compute_reference``), ``grid_settings``
(one run's grid and its refinements), ``certification`` (grid runs and the refine-and-compare
loop), ``geometry`` (the full grid, or the relative coordinates after splitting off the centre
of mass with the Helmert transform), ``memory`` (the budget, checked before allocating),
``errors`` (why a reference fails) and ``cache`` (the disk cache). Everything a caller needs is
importable from ``harness.reference`` itself.
"""

from harness.reference.certification import EDGE_MAX, TAIL_MAX, GridRun, difference, run_grid
from harness.reference.compute import ALGORITHM, Reference, compute_reference
from harness.reference.errors import BoxTooSmall, GridTooLarge, NotCertified, ReferenceFailed
from harness.reference.geometry import helmert
from harness.reference.grid_settings import GridSettings, default_tol, initial_settings
from harness.reference.memory import bytes_per_point, memory_budget_gb

__all__ = ["BoxTooSmall", "GridTooLarge", "NotCertified", "ReferenceFailed", "GridSettings", "Reference",
           "compute_reference", "initial_settings", "run_grid",
           # also imported by name (tests, tools)
           "ALGORITHM", "EDGE_MAX", "TAIL_MAX", "GridRun", "bytes_per_point", "default_tol",
           "difference", "helmert", "memory_budget_gb"]
