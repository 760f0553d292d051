"""Find problems and solvers by name: built-ins (the ``problems`` package and every module of the
``solvers`` folder), third-party ones through entry points (``qdbench.problems``,
``qdbench.solvers``) and plugin files given with ``--plugin``.

A built-in solver whose module cannot be imported (a missing optional dependency) is not dropped
silently: it stays listed with the import error as the reason it is unavailable."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import solvers as solvers_pkg
from harness.api import Problem, Solver, UserError
from harness.settings import coerce_params
from problems import BUILTIN


@dataclass
class Registry:
    """Problems (registry name -> (class, parameter overrides)) and solvers (name -> class)."""

    problems: dict[str, tuple[type[Problem], dict[str, Any]]] = field(default_factory=dict)
    solvers: dict[str, type[Solver]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # solver name -> import error

    def add_problem(self, cls: type[Problem]) -> None:
        self.problems[cls.name] = (cls, {})
        for variant, overrides in cls.variants.items():
            self.problems[variant] = (cls, dict(overrides))

    def add_solver(self, cls: type[Solver]) -> None:
        self.solvers[cls.name] = cls
        self.unavailable.pop(cls.name, None)

    def add_module(self, module) -> int:
        """Register every Problem and Solver class defined in ``module``; return how many."""
        found = 0
        for _, obj in inspect.getmembers(module, inspect.isclass):
            own = obj.__module__ == module.__name__ or obj.__module__.startswith(module.__name__ + ".")
            if not own or inspect.isabstract(obj):
                continue
            if issubclass(obj, Solver):
                self.add_solver(obj)
                found += 1
            elif issubclass(obj, Problem):
                self.add_problem(obj)
                found += 1
        return found

    def load_plugin(self, path: str | Path) -> None:
        """Import a plugin file and register what it defines; UserError if it defines nothing."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"plugin file {path} does not exist")
        name = f"qdbench_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # a broken plugin is the user's input: report it in one line
            raise UserError(f"plugin {path} failed to import: {type(exc).__name__}: {exc}") from exc
        if not self.add_module(module):
            raise UserError(f"plugin {path} defines no Solver or Problem subclass")

    # -- lookups ------------------------------------------------------------------------------
    def problem(self, name: str, d: int | None = None, params: dict[str, str] | None = None) -> Problem:
        """Build problem ``name`` with the variant's overrides, then ``d`` and user ``params``."""
        if name not in self.problems:
            raise UserError(f"unknown problem {name!r}; known: {', '.join(sorted(self.problems))}")
        cls, overrides = self.problems[name]
        values = dict(overrides)
        values.update(coerce_params(cls, params or {}, what=f"problem {name}"))
        if d is not None:
            values["d"] = d
        return cls(**values)

    def solver(self, name: str) -> type[Solver]:
        if name in self.unavailable:
            raise UserError(f"solver {name!r} is unavailable: {self.unavailable[name]}")
        if name not in self.solvers:
            raise UserError(f"unknown solver {name!r}; known: {', '.join(sorted(self.solvers))}")
        return self.solvers[name]


def discover(plugins: list[str] | tuple[str, ...] = ()) -> Registry:
    """The registry of built-ins, installed entry points and the given plugin files."""
    reg = Registry()
    for cls in BUILTIN:
        reg.add_problem(cls)
    for info in pkgutil.iter_modules(solvers_pkg.__path__):
        module_name = f"{solvers_pkg.__name__}.{info.name}"
        try:
            reg.add_module(importlib.import_module(module_name))
        except ImportError as exc:
            reg.unavailable[info.name] = f"{type(exc).__name__}: {exc}"
    for group, add in (("qdbench.problems", reg.add_problem), ("qdbench.solvers", reg.add_solver)):
        for ep in entry_points(group=group):
            add(ep.load())
    for path in plugins:
        reg.load_plugin(path)
    return reg
