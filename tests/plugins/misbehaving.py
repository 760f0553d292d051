"""Solvers that misbehave on purpose, loaded with --plugin by the CLI and sweep tests."""

import os
import signal
import time
from dataclasses import dataclass

import numpy as np

from harness.api import Solver
from harness.observables import prediction_from_samples
from solvers.static import StaticSolver


@dataclass
class Settings:
    pass


class Raises(Solver):
    name = "raises"
    Settings = Settings

    def solve(self, problem, times, settings, ctx):
        raise RuntimeError("deliberate failure")


class Nans(Solver):
    name = "nans"
    Settings = Settings

    def solve(self, problem, times, settings, ctx):
        x = np.full((len(times), 10, problem.d), np.nan)
        return prediction_from_samples(times, x, problem.marginal_edges())


class Refuses(StaticSolver):
    name = "refuses"

    def supports(self, problem, settings=None):
        return False, "refuses every problem"


class Sleeps(Solver):
    name = "sleeps"
    Settings = Settings

    def solve(self, problem, times, settings, ctx):
        time.sleep(300)


class Killed(Solver):
    name = "killed"
    Settings = Settings

    def solve(self, problem, times, settings, ctx):
        os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer sends


class Slow(StaticSolver):
    name = "slow"

    def solve(self, problem, times, settings, ctx):
        time.sleep(1.5)
        return super().solve(problem, times, settings, ctx)
