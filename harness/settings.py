"""Typed parameters from strings: problem parameters (``--param k=v``) and solver settings
(a preset's overrides, then ``--set k=v``), checked against the dataclass fields they fill."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from harness.api import Solver, UserError


def parse_pairs(pairs: tuple[str, ...] | list[str], option: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without '=' or a key given twice
    is a UserError."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"{option} expects key=value, got {pair!r}")
        if key in out:
            raise UserError(f"{option} {key} is given twice ({out[key]!r} and {value.strip()!r})")
        out[key] = value.strip()
    return out


def _convert(value: Any, kind: Any, name: str, what: str) -> Any:
    """Convert ``value`` (a string from the command line, or a preset's value) to ``kind``."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        kind = options[0]
    if not isinstance(value, str):
        return value
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if kind is float:
            number = float(value)
            if math.isnan(number):
                raise ValueError(value)
            return number
    except ValueError:
        raise UserError(f"{what}: {name}={value!r} is not a valid {kind.__name__}") from None
    return value


def coerce_params(cls: type, values: dict[str, Any], what: str) -> dict[str, Any]:
    """Check names against the dataclass ``cls`` and convert each value to its field's type."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for name, value in values.items():
        if name not in fields:
            raise UserError(f"{what} has no parameter {name!r}; known: {', '.join(sorted(fields))}")
        out[name] = _convert(value, hints[name], name, what)
    return out


def split_overrides(solvers: list[type[Solver]], overrides: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each solver's share of ``--set`` overrides (the keys its Settings has); a key that no
    chosen solver has is a UserError."""
    shares = {s.name: {k: v for k, v in overrides.items() if k in s.Settings.__dataclass_fields__}
              for s in solvers}
    unknown = set(overrides) - {k for share in shares.values() for k in share}
    if unknown:
        raise UserError(f"no chosen solver has a setting named {', '.join(sorted(unknown))}")
    return shares


def resolve_settings(solver: type[Solver], preset: str | None, overrides: dict[str, str]):
    """The solver's Settings: defaults, then the preset's overrides, then the user's."""
    preset = preset or solver.default_preset
    if preset not in solver.presets:
        raise UserError(f"solver {solver.name} has no preset {preset!r}; "
                        f"known: {', '.join(solver.presets)}")
    what = f"solver {solver.name}"
    values = coerce_params(solver.Settings, dict(solver.presets[preset]), what)
    values.update(coerce_params(solver.Settings, overrides, what))
    try:
        return solver.Settings(**values)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, UserError):
            raise
        raise UserError(f"{what}: {exc}") from exc


def settings_dict(settings: Any) -> dict[str, Any]:
    """A settings dataclass as a plain dict (for the record and the run key)."""
    return dataclasses.asdict(settings)
