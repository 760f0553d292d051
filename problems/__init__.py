"""The built-in problem families; each module registers one family (and its named variants)."""

from problems.bosons import Bosons
from problems.oscillator import Oscillator

BUILTIN = (Bosons, Oscillator)

__all__ = ["BUILTIN", "Bosons", "Oscillator"]
