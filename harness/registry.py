"""Find problems and solvers by name: built-ins (every module of the ``problems`` and ``solvers``
folders), third-party ones through entry points (``qdbench.problems``, ``qdbench.solvers``) and
plugin files given with ``--plugin``.

A built-in solver whose module cannot be imported (a missing optional dependency) is not dropped
silently: it stays listed with the import error as the reason it is unavailable. A class that
breaks the contract (no ``Settings`` dataclass, no presets, a name already taken) is refused when
it is loaded, with one line naming where it came from and why."""

from __future__ import annotations

import importlib
import importlib.util
import dataclasses
import inspect
import pkgutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import problems as problems_pkg
import solvers as solvers_pkg
from harness.api import Problem, Solver, UserError
from harness.settings import coerce_params


#: the methods the harness calls on a solver, with the arguments it passes
SIGNATURES = {"supports": ("self", "problem", "settings"),
              "solve": ("self", "problem", "times", "settings", "ctx")}


def contract_violation(cls: type) -> str | None:
    """Why ``cls`` (a Solver or Problem subclass) cannot be registered, or None when it can."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip() or "," in name or name != name.strip():
        return "has no valid `name` (a non-empty string without commas or outer spaces)"
    if issubclass(cls, Problem):
        return None if dataclasses.is_dataclass(cls) else "is not a dataclass (use @dataclass(frozen=True))"
    settings = getattr(cls, "Settings", None)
    if not (isinstance(settings, type) and dataclasses.is_dataclass(settings)):
        return "has no `Settings` dataclass"
    presets = getattr(cls, "presets", None)
    if not isinstance(presets, Mapping) or not presets:
        return "has no `presets` (a mapping such as {'smoke': {...}, 'quick': {}, 'paper': {}})"
    if cls.default_preset not in presets:
        return f"has no preset named {cls.default_preset!r} (its default_preset)"
    if not all(isinstance(v, Mapping) for v in presets.values()):
        return "has a preset that is not a mapping of setting overrides"
    for method, signature in SIGNATURES.items():
        try:
            inspect.signature(getattr(cls, method)).bind(None, *signature[1:])
        except TypeError:
            return f"has `{method}` with a signature other than {method}({', '.join(signature)})"
    return None


def module_classes(module) -> list[type]:
    """The concrete Solver and Problem classes defined in ``module`` (or its submodules)."""
    found = []
    for _, obj in inspect.getmembers(module, inspect.isclass):
        own = obj.__module__ == module.__name__ or obj.__module__.startswith(module.__name__ + ".")
        if own and not inspect.isabstract(obj) and issubclass(obj, (Solver, Problem)):
            found.append(obj)
    return found


def import_plugin(path: str | Path):
    """Import the plugin file at ``path`` as a module; UserError (one line) when it is missing
    or fails to import."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"plugin file {path} does not exist")
    name = f"qdbench_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"plugin {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # a broken plugin is the user's input: report it in one line
        if isinstance(exc, KeyboardInterrupt):
            raise
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"plugin {path} failed to import: {type(exc).__name__}: {reason}") from exc
    return module


@dataclass
class Registry:
    """Problems (registry name -> (class, parameter overrides)) and solvers (name -> class)."""

    problems: dict[str, tuple[type[Problem], dict[str, Any]]] = field(default_factory=dict)
    solvers: dict[str, type[Solver]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # solver name -> import error

    def add_problem(self, cls: type[Problem], origin: str = "") -> None:
        """Register a problem family and its variants (UserError on a broken class or a name
        already taken)."""
        self._admit(cls, origin)
        names = [cls.name, *cls.variants]
        taken = [n for n in names if n in self.problems]
        if taken:
            raise UserError(f"{self._where(cls, origin)}: problem name {taken[0]!r} is already "
                            f"registered by {self._owner(self.problems[taken[0]][0])}")
        self.problems[cls.name] = (cls, {})
        for variant, overrides in cls.variants.items():
            self.problems[variant] = (cls, dict(overrides))

    def add_solver(self, cls: type[Solver], origin: str = "") -> None:
        """Register a solver (UserError on a broken class or a name already taken)."""
        self._admit(cls, origin)
        if cls.name in self.solvers:
            raise UserError(f"{self._where(cls, origin)}: solver name {cls.name!r} is already "
                            f"registered by {self._owner(self.solvers[cls.name])}")
        self.solvers[cls.name] = cls
        self.unavailable.pop(cls.name, None)

    @staticmethod
    def _owner(cls: type) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    def _where(self, cls: type, origin: str) -> str:
        return f"{origin}: class {cls.__qualname__}" if origin else self._owner(cls)

    def _admit(self, cls: type, origin: str) -> None:
        if not (isinstance(cls, type) and issubclass(cls, (Solver, Problem))):
            raise UserError(f"{origin or cls!r}: {cls!r} is not a Solver or Problem subclass")
        reason = contract_violation(cls)
        if reason:
            raise UserError(f"{self._where(cls, origin)} {reason}")

    def add_module(self, module, origin: str = "") -> int:
        """Register every Problem and Solver class defined in ``module``; return how many."""
        classes = module_classes(module)
        for cls in classes:
            (self.add_solver if issubclass(cls, Solver) else self.add_problem)(cls, origin)
        return len(classes)

    def load_plugin(self, path: str | Path) -> None:
        """Import a plugin file and register what it defines; UserError if it defines nothing,
        fails to import, or a class in it breaks the contract."""
        if not self.add_module(import_plugin(path), origin=f"plugin {path}"):
            raise UserError(f"plugin {path} defines no Solver or Problem subclass")

    # -- lookups ------------------------------------------------------------------------------
    def problem(self, name: str, d: int | None = None, params: dict[str, str] | None = None) -> Problem:
        """Build problem ``name`` with the variant's overrides, then ``d`` and user ``params``."""
        if name not in self.problems:
            raise UserError(f"unknown problem {name!r}; known: {', '.join(sorted(self.problems))}")
        cls, overrides = self.problems[name]
        if "d" in (params or {}):
            raise UserError("the dimension is set with --d, not --param d=...")
        values = dict(overrides)
        values.update(coerce_params(cls, params or {}, what=f"problem {name}"))
        if d is not None:
            values["d"] = d
        return cls(**values)

    def solver(self, name: str) -> type[Solver]:
        """The solver class registered as ``name`` (UserError when unknown or unavailable)."""
        if name in self.unavailable:
            raise UserError(f"solver {name!r} is unavailable: {self.unavailable[name]}")
        if name not in self.solvers:
            raise UserError(f"unknown solver {name!r}; known: {', '.join(sorted(self.solvers))}")
        return self.solvers[name]


def discover(plugins: list[str] | tuple[str, ...] = ()) -> Registry:
    """The registry of built-ins, installed entry points and the given plugin files."""
    reg = Registry()
    for info in pkgutil.iter_modules(problems_pkg.__path__):
        reg.add_module(importlib.import_module(f"{problems_pkg.__name__}.{info.name}"))
    for info in pkgutil.iter_modules(solvers_pkg.__path__):
        module_name = f"{solvers_pkg.__name__}.{info.name}"
        try:
            reg.add_module(importlib.import_module(module_name))
        except ImportError as exc:
            reg.unavailable[info.name] = f"{type(exc).__name__}: {exc}"
    for group, add in (("qdbench.problems", reg.add_problem), ("qdbench.solvers", reg.add_solver)):
        for ep in entry_points(group=group):
            add(ep.load(), origin=f"entry point {ep.name} ({ep.value})")
    for path in plugins:
        reg.load_plugin(path)
    return reg
