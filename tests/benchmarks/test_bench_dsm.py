"""One DSM training epoch (fresh paths, loss points, loss, backward, optimiser step) at the
paper's hyperparameters (N = 1000, batch 100, M = 150, width 500, Adam) on bosons, and at the
quick preset's on the moving oscillator from d = 2 to 100: the exact O(d²) ∇(div ·) at d = 2, 4
and 8, Hutchinson's probes (the O(d) path) at d = 8, 32 and 100, so that the per-epoch cost's
growth with d is read off one table (issue 19: at most 15× from d = 8 to 100 with probes).

Skipped by default (addopts has --benchmark-skip); run with
``pytest tests/benchmarks/test_bench_dsm.py --benchmark-only``. The same epoch beside the official
code's: ``python tests/benchmarks/dsm_side_by_side.py OFFICIAL_CHECKOUT``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsm_epoch import epoch, paper_epoch
from problems import Oscillator
from solvers.dsm import PROBES_AUTO, DSMSolver, Settings
from solvers.dsm.nets import ONEDNN_DEFAULT, dnn_weight_grad, linear
from solvers.dsm.train import auto_chunk, chunking, path_threads
from solvers.training import threads


@pytest.mark.parametrize("d", [2, 4])
def test_bench_paper_epoch(benchmark, d):
    loss = benchmark.pedantic(paper_epoch(d), rounds=3, warmup_rounds=1, iterations=1)
    assert np.isfinite(loss)


@pytest.mark.parametrize("d,probes", [(2, -1), (4, -1), (8, -1), (8, PROBES_AUTO),
                                      (32, PROBES_AUTO), (100, PROBES_AUTO)])
def test_bench_quick_epoch(benchmark, d, probes):
    """One quick-preset epoch (compiled, the solver's settings at d) on the oscillator, p0 = 0.5;
    probes -1: exact ∇(div ·), else that many Rademacher probes a point."""
    s = Settings(**{**DSMSolver.presets["quick"], "probes": probes}).for_dimension(d)
    run = epoch(Oscillator(d=d, p0=0.5), s, workers=True)
    benchmark.extra_info.update(d=d, probes=s.probes_for(d))
    loss = benchmark.pedantic(run, rounds=5, warmup_rounds=1, iterations=1)
    assert np.isfinite(loss)


@pytest.mark.parametrize("d", [2, 4])
def test_bench_paper_epoch_matmuls(benchmark, d):
    """The floor under one paper epoch: only its width × width products, at the shapes the
    epoch runs them, through the same backend (oneDNN or torch's) and thread policy. Paths:
    N steps × 2 nets × 2 layers of batch rows. Loss, per chunk, net and layer: forward products
    of chunk rows (value), d·chunk rows (x tangents) and d·chunk rows (adjoints); as many input
    gradients; one weight gradient for each."""
    s = Settings(**DSMSolver.presets["paper"])
    W, P = s.width, s.batch * (s.M + 1)
    k, chunk = chunking(P, auto_chunk(d, W, s.probes_for(d)))
    weight = torch.randn(W, W)  # one net's layer
    x_path = torch.randn(s.batch, W)
    shapes = [chunk, d * chunk, d * chunk]
    rows = [torch.randn(r, W) for r in shapes]
    rows_t = [x.t().contiguous() for x in rows]  # dy as the compiled graph hands it over

    weight_grad = dnn_weight_grad if ONEDNN_DEFAULT else torch.mm

    def matmuls():
        with threads(path_threads(s, torch.device("cpu"))):
            for _ in range(s.N * 2 * 2):  # two nets of two width × width layers a step
                linear(x_path, weight, onednn=ONEDNN_DEFAULT)
        for _ in range(k * 2 * 2):  # per chunk, two nets of two layers
            for x, x_t in zip(rows, rows_t):
                linear(x, weight, onednn=ONEDNN_DEFAULT)  # forward
                linear(x, weight.t(), onednn=ONEDNN_DEFAULT)  # input gradient
                weight_grad(x_t, x)  # weight gradient

    benchmark.extra_info["gflop"] = 2 * W * W * 2 * 2 * (s.N * s.batch + 3 * k * sum(shapes)) / 1e9
    benchmark.pedantic(matmuls, rounds=3, warmup_rounds=1, iterations=1)
