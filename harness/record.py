"""One run = one Record (DESIGN §8): long enough to reproduce it, flat enough for a table. Its
metric columns are generated from ``harness.metrics.SCHEMA``."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

import harness
from harness.metrics import SCHEMA

#: ``unscored``: the prediction was stored but no reference could be certified to score it
STATUSES = ("ok", "failed", "diverged", "timeout", "oom", "unsupported", "unscored")
#: the metric columns, in schema order
METRICS = tuple(m.name for m in SCHEMA)
NAN = float("nan")


def run_key(problem: str, params: dict, solver: str, settings: dict, seed: int, device: str,
            n_times: int) -> str:
    """A stable hash of everything that determines a run's result."""
    blob = json.dumps(dict(problem=problem, params=params, solver=solver, settings=settings,
                           seed=seed, device=device, n_times=n_times, qdbench=harness.__version__),
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reference_key(problem: str, params: dict, n_times: int) -> str:
    """The key under which a problem's reference curves are stored."""
    blob = json.dumps(dict(problem=problem, params=params, n_times=n_times), sort_keys=True)
    return "ref-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class RunColumns:
    """The columns of a row besides the metrics: what ran, how it ended, its reference and its
    environment; params and settings are JSON strings so the table is flat."""

    run_key: str
    problem: str
    d: int
    params: str
    solver: str
    preset: str
    settings: str
    seed: int
    device: str
    #: a rung of a work–precision ladder (``sweep --ladder``) whose settings are not the
    #: preset's own: a point of the work–precision line, not a row of the fixed-budget table
    ladder_rung: bool = False
    status: str = "ok"
    error: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    ref_key: str = ""
    ref_kind: str = ""
    ref_mean_bound: float = NAN
    ref_var_bound: float = NAN
    ref_density_bound: float = NAN
    ref_edge_mass: float = NAN
    threads: int = 0
    qdbench_version: str = ""
    python_version: str = ""
    numpy_version: str = ""
    torch_version: str = ""
    jax_version: str = ""
    netket_version: str = ""
    git_commit: str = ""
    host_cpu: str = ""
    host_gpu: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    def as_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Record = dataclasses.make_dataclass(
    "Record", [(name, float, field(default=NAN)) for name in METRICS], bases=(RunColumns,),
    namespace={"__module__": __name__,
               "__doc__": "A row of the results table: the RunColumns, then one float column per "
                          "metric of the schema (NaN unless set), all taken by keyword."})


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def _cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def environment() -> dict[str, Any]:
    """Versions, thread count, git commit and host of this process (fixed for its lifetime)."""
    import numpy
    import torch

    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return dict(
        threads=torch.get_num_threads(),
        qdbench_version=harness.__version__,
        python_version=platform.python_version(),
        numpy_version=numpy.__version__,
        torch_version=torch.__version__,
        jax_version=_version("jax"),
        netket_version=_version("netket"),
        git_commit=commit,
        host_cpu=f"{_cpu_model()} ({psutil.cpu_count(logical=True)} logical CPUs)",
        host_gpu=gpu,
    )
