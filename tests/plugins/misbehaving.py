"""Solvers that misbehave on purpose, loaded with --plugin by the CLI and sweep tests."""

import os
import sys
import signal
import time
from dataclasses import dataclass

import numpy as np

from harness.api import Solver, SolverDiverged
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


class Diverges(StaticSolver):
    """Hands over one checkpoint, then blows up with the loss curve it recorded."""

    name = "diverges"

    def solve(self, problem, times, settings, ctx):
        if ctx.checkpoint_every:
            ctx.checkpoint(super().solve(problem, times, settings, ctx))
        raise SolverDiverged("loss blew up at epoch 3",
                             {"epochs": 3, "loss_curve": {"epoch": [1, 2, 3], "loss": [1.0, 9.0, 1e9]}})


class Slow(StaticSolver):
    name = "slow"

    def solve(self, problem, times, settings, ctx):
        time.sleep(1.5)
        return super().solve(problem, times, settings, ctx)


class SupportsRaises(StaticSolver):
    name = "supports_raises"

    def supports(self, problem, settings=None):
        raise RuntimeError("supports exploded")


class Exits(Solver):
    name = "exits"
    Settings = Settings

    def solve(self, problem, times, settings, ctx):
        sys.exit(3)


class WrongShapes(Solver):
    name = "wrong_shapes"
    Settings = Settings

    def solve(self, problem, times, settings, ctx):
        pred = StaticSolver().solve(problem, times, settings, ctx)
        pred.mean = pred.mean[:-1]
        return pred


class Halts(Solver):
    """Reports progress, then waits: for interrupt tests."""

    name = "halts"
    Settings = Settings

    def solve(self, problem, times, settings, ctx):
        ctx.progress(0.5, stage="waiting")
        time.sleep(600)


class Counted(StaticSolver):
    """Leaves one file per computation in $QDBENCH_TEST_MARKS, taking a second to do so."""

    name = "counted"

    def solve(self, problem, times, settings, ctx):
        marks = os.environ["QDBENCH_TEST_MARKS"]
        with open(os.path.join(marks, f"{ctx.seed}-{os.getpid()}"), "x"):
            pass
        time.sleep(1.0)
        return super().solve(problem, times, settings, ctx)
