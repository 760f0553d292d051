"""The built-in problem families, one module per family; the registry finds every concrete
Problem class of this folder (folder discovery), and they are importable from here too."""

from problems.bosons import Bosons
from problems.chain import Anharmonic, DoubleWell
from problems.driven_trap import DrivenTrap
from problems.fermions import Fermions
from problems.free_spread import FreeSpread
from problems.gaussian_network import GaussianNetwork
from problems.harmonic_bosons import HarmonicBosons
from problems.oscillator import Oscillator

__all__ = ["Anharmonic", "Bosons", "DoubleWell", "DrivenTrap", "Fermions", "FreeSpread",
           "GaussianNetwork", "HarmonicBosons", "Oscillator"]
