"""``harness check``: the conformance kit for solver and problem authors, in the manner of
scikit-learn's ``check_estimator``. ``check_solver(cls)`` and ``check_problem(cls)`` return one
``CheckResult`` per check; ``run_kit`` checks registered names or every class of plugin files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.api import Solver, UserError
from harness.check_problem import check_problem
from harness.check_result import CheckResult
from harness.check_solver import check_solver
from harness.registry import discover, import_plugin, module_classes

__all__ = ["CheckResult", "Target", "check_problem", "check_solver", "plugin_classes", "run_kit",
           "targets"]


@dataclass(frozen=True)
class Target:
    """One solver or problem to check (a problem with its variant's parameter overrides)."""

    kind: str  # "solver" or "problem"
    name: str
    cls: type
    params: dict[str, Any] = field(default_factory=dict)

    def check(self) -> list[CheckResult]:
        if self.kind == "solver":
            return check_solver(self.cls)
        return check_problem(self.cls, self.params)


def targets(names: list[str], plugins: list[str]) -> list[Target]:
    """Registered solvers/problems called ``names`` (plugins included), or, without names, every
    Solver and Problem class the plugin files define; UserError for an unknown name or file."""
    if names:
        reg = discover(plugins)
        out = []
        for name in names:
            found = []
            if name in reg.solvers or name in reg.unavailable:
                found.append(Target("solver", name, reg.solver(name)))
            if name in reg.problems:
                cls, overrides = reg.problems[name]
                found.append(Target("problem", name, cls, dict(overrides)))
            if not found:
                known = sorted({*reg.solvers, *reg.problems})
                raise UserError(f"unknown solver or problem {name!r}; known: {', '.join(known)}")
            out += found
        return out
    if not plugins:
        raise UserError("name solvers or problems to check, or give --plugin FILE")
    out = []
    for path in plugins:
        for cls in plugin_classes(path):
            kind = "solver" if issubclass(cls, Solver) else "problem"
            out.append(Target(kind, str(getattr(cls, "name", cls.__qualname__)), cls))
    return out


def plugin_classes(path: str | Path) -> list[type]:
    """The Solver and Problem classes a plugin file defines, imported as the registry imports
    plugins but not registered: a class that the registry would refuse is then a failed
    ``contract`` check (exit 1), not refused input (exit 2)."""
    classes = module_classes(import_plugin(path))
    if not classes:
        raise UserError(f"plugin {path} defines no Solver or Problem subclass")
    return classes


def run_kit(names: list[str], plugins: list[str], echo: Callable[[str], None] = print) -> bool:
    """Check every target, echoing each check with PASS/FAIL and why, then a summary line;
    True when every check passed. Bad input raises UserError before any check runs."""
    chosen = targets(names, plugins)
    failed, total = [], 0
    for target in chosen:
        echo(f"{target.kind} {target.name} ({target.cls.__module__}.{target.cls.__qualname__})")
        for result in target.check():
            total += 1
            echo(f"  {'PASS' if result.passed else 'FAIL'}  {result.name}: {result.detail}")
            if not result.passed:
                failed.append(f"{target.kind} {target.name}: {result.name}")
    if failed:
        echo(f"{len(failed)} of {total} checks failed: " + "; ".join(failed))
    else:
        echo(f"all {total} checks passed")
    return not failed
