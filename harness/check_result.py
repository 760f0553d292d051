"""The outcome of one conformance check, the runner that turns a check that raises into a
failed result (its exception as the reason) instead of a crash of the whole kit, and the check
that solvers and problems share: the registry's contract."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.registry import contract_violation


@dataclass(frozen=True)
class CheckResult:
    """One check of a solver or problem: its name, whether it passed and why."""

    name: str
    passed: bool
    detail: str


class CheckFailed(AssertionError):
    """Raised by a check function with the reason it failed."""


def run_checks(checks: Iterable[tuple[str, Callable[[], str]]]) -> list[CheckResult]:
    """Call each check (it returns the detail of a pass or raises); anything raised is a failure."""
    results = []
    for name, check in checks:
        try:
            results.append(CheckResult(name, True, check()))
        except CheckFailed as exc:
            results.append(CheckResult(name, False, str(exc)))
        except Exception as exc:  # a check that crashes is a failed check, never a crashed kit
            results.append(CheckResult(name, False, f"raised {type(exc).__name__}: {exc}"))
    return results


def contract(cls: type) -> str:
    """The registry's own admission test (name, Settings, presets, method signatures)."""
    reason = contract_violation(cls)
    if reason:
        raise CheckFailed(f"the registry refuses {cls.__qualname__}: it {reason}")
    return "the registry accepts it (name, Settings, presets, signatures)"
