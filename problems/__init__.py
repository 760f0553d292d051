"""The built-in problem families; each module registers one family (and its named variants)."""

from problems.bosons import Bosons
from problems.chain import Anharmonic, DoubleWell
from problems.driven_trap import DrivenTrap
from problems.free_spread import FreeSpread
from problems.oscillator import Oscillator

BUILTIN = (Bosons, Oscillator, DrivenTrap, FreeSpread, DoubleWell, Anharmonic)

__all__ = ["BUILTIN", "Anharmonic", "Bosons", "DoubleWell", "DrivenTrap", "FreeSpread", "Oscillator"]
