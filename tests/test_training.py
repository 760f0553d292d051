"""What the training solvers share (solvers/training.py): the epoch loop, heap reuse."""

from __future__ import annotations

import platform
import resource
import time

import numpy as np
import pytest
import torch

from harness.api import Context, Prediction, SolverDiverged
from solvers.training import Budget, TrainingLoop, reuse_freed_memory


def _faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_reuse_freed_memory_stops_page_faults_on_repeated_steps():
    """A step that allocates and frees the same few-MB tensors takes their pages from the heap
    after the call: fewer than a quarter of one 8 MB tensor's 2048 pages a step (measured here:
    ~1700 a step without the call, ~200 with it)."""
    def step():
        x = torch.ones(2 << 20)  # 8 MB
        y = x * 2
        return float(((y + x)[: 1 << 20] * 3)[0])

    assert reuse_freed_memory()
    for _ in range(3):
        step()
    before = _faults()
    for _ in range(10):
        step()
    assert _faults() - before < 10 * 2048 / 4


def _step(losses, calls=None):
    """A step whose loss at epoch k is losses[k] (terms a = loss, b = 2·loss)."""
    def step(epoch, progress):
        if calls is not None:
            calls.append((epoch, progress))
        loss = torch.tensor(losses[epoch])
        return loss, {"a": loss, "b": 2 * loss}
    return step


def _no_checkpoint(diagnostics):
    raise AssertionError("no checkpoint was asked for")


def test_loop_logs_every_k_epochs_and_reports_progress():
    seen, calls = [], []
    loop = TrainingLoop("toy", Budget(epochs=7, log_every=3),
                        Context(progress=lambda f, **info: seen.append((f, info["loss"]))), 5)
    loop.run(_step([float(k + 1) for k in range(7)], calls), _no_checkpoint)
    assert [e for e, _ in calls] == list(range(7))
    assert [p for _, p in calls] == pytest.approx([k / 6 for k in range(7)])
    curve = loop.curve
    assert curve["epoch"] == [3, 6, 7] and curve["loss"] == [3.0, 6.0, 7.0]
    assert curve["loss_a"] == [3.0, 6.0, 7.0] and curve["loss_b"] == [6.0, 12.0, 14.0]
    assert seen == [(pytest.approx(3 / 7), 3.0), (pytest.approx(6 / 7), 6.0), (1.0, 7.0)]
    diag = loop.summary()
    assert diag["epochs"] == 7 and not diag["time_limited"] and diag["n_params"] == 5
    assert diag["final_loss"] == 7.0 and diag["checkpoint_s"] == 0.0
    assert diag["s_per_epoch"] == pytest.approx(diag["fit_s"] / 7)


def test_loop_share_leaves_room_for_a_later_stage():
    seen = []
    loop = TrainingLoop("toy", Budget(epochs=4, log_every=2),
                        Context(progress=lambda f, **info: seen.append(f)), 1, share=0.8)
    loop.run(_step([1.0] * 4), _no_checkpoint)
    assert seen == pytest.approx([0.4, 0.8])


def test_loop_stops_at_the_time_limit():
    def slow(epoch, progress):
        time.sleep(0.02)
        return torch.tensor(1.0), {}

    loop = TrainingLoop("toy", Budget(epochs=10_000, time_limit=0.1, log_every=1), Context(), 1)
    loop.run(slow, _no_checkpoint)
    diag = loop.summary()
    assert diag["time_limited"] and 1 <= diag["epochs"] <= 6  # 5 sleeps fill 0.1 s
    assert diag["fit_s"] >= 0.1


def test_loop_raises_diverged_with_what_it_recorded():
    loop = TrainingLoop("toy", Budget(epochs=20, log_every=2), Context(), 1)
    with pytest.raises(SolverDiverged, match="toy: loss is not finite at epoch 6") as err:
        loop.run(_step([1.0] * 4 + [float("nan")] + [1.0] * 15), _no_checkpoint)
    kept = err.value.diagnostics
    assert kept["epochs"] == 6 and kept["loss_curve"]["epoch"] == [2, 4]


def test_loop_raises_diverged_on_blow_up():
    loop = TrainingLoop("toy", Budget(epochs=20, log_every=1, blowup=10.0), Context(), 1)
    with pytest.raises(SolverDiverged, match="blew up at epoch 3"):
        loop.run(_step([2.0, 19.0, 21.0] + [1.0] * 17), _no_checkpoint)
    assert loop.curve["loss"] == [2.0, 19.0]


def test_checkpoints_are_left_out_of_the_training_clock():
    got = []

    def checkpoint(diagnostics):
        time.sleep(0.1)
        got.append(diagnostics)
        return diagnostics

    ctx = Context(checkpoint=lambda pred: None, checkpoint_every=1e-9)
    loop = TrainingLoop("toy", Budget(epochs=6, log_every=2), ctx, 1)
    loop.run(_step([1.0] * 6), checkpoint)
    assert [g["epoch"] for g in got] == [2, 4, 6]
    assert loop.checkpoint_s >= 0.3
    # six trivial steps: well under the 0.1 s that one checkpoint's sleep would add
    assert loop.summary()["fit_s"] < 0.1 and all(g["fit_s"] < 0.1 for g in got)


def test_finish_adds_extra_and_predict_s():
    loop = TrainingLoop("toy", Budget(epochs=2, log_every=1), Context(), 3)
    loop.run(_step([1.0, 0.5]), _no_checkpoint)
    def predict(diagnostics):
        return Prediction(np.zeros(1), np.zeros((1, 1)), np.ones((1, 1)), np.ones((1, 1, 1)),
                          np.array([0.0, 1.0]), diagnostics=diagnostics)

    pred = loop.finish(predict, extra=7)
    diag = pred.diagnostics
    assert diag["extra"] == 7 and diag["predict_s"] >= 0 and diag["final_loss"] == 0.5
    assert diag["loss_curve"]["epoch"] == [1, 2]
