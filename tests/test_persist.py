"""harness/persist.py: atomic writes with the umask's mode, and the npz round trip of a
Prediction, named arrays and meta, with a clear error for a corrupt file."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from harness.api import Prediction
from harness.persist import CorruptFile, atomic_path, load_npz, save_npz


def _prediction(samples: bool = True) -> Prediction:
    rng = np.random.default_rng(0)
    k, d, b = 3, 2, 5
    return Prediction(np.linspace(0, 1, k), rng.normal(size=(k, d)), rng.random((k, d)),
                      rng.random((k, d, b)), np.linspace(-1, 1, b + 1), n_samples=1000,
                      samples=rng.normal(size=(k, 4, d)) if samples else None,
                      diagnostics={"loss_curve": {"epoch": np.arange(3), "loss": np.array([3.0, 2.0, 1.5])},
                                   "fit_s": np.float32(1.5), "steps": np.int64(7)})


def test_round_trip_of_prediction_arrays_and_meta(tmp_path) -> None:
    pred = _prediction()
    path = tmp_path / "run.npz"
    save_npz(path, pred, arrays={"scores": np.array([0.1, 0.2]), "epochs": [1, 2]},
             meta={"kind": "split-operator", "bound": {"var": np.float64(1e-7)}, "n": np.int32(4)})
    back, arrays, meta = load_npz(path)
    for name in ("times", "mean", "var", "marginals", "edges", "samples"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pred, name))
    assert back.n_samples == 1000
    assert back.diagnostics == {"loss_curve": {"epoch": [0, 1, 2], "loss": [3.0, 2.0, 1.5]},
                                "fit_s": 1.5, "steps": 7}
    np.testing.assert_array_equal(arrays["scores"], [0.1, 0.2])
    np.testing.assert_array_equal(arrays["epochs"], [1, 2])
    assert set(arrays) == {"scores", "epochs"}
    assert meta == {"kind": "split-operator", "bound": {"var": 1e-7}, "n": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_without_prediction_and_without_samples(tmp_path) -> None:
    save_npz(tmp_path / "a.npz", arrays={"x": np.zeros(2)})
    assert load_npz(tmp_path / "a.npz")[0] is None
    save_npz(tmp_path / "b.npz", _prediction(samples=False))
    back, arrays, meta = load_npz(tmp_path / "b.npz")
    assert back.samples is None and arrays == {} and meta == {}


def test_object_arrays_are_refused(tmp_path) -> None:
    with pytest.raises(TypeError, match="Python objects"):
        save_npz(tmp_path / "a.npz", arrays={"bad": np.array([{"a": 1}], dtype=object)})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_take_the_umask_mode(tmp_path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        save_npz(tmp_path / "curves.npz", _prediction())
        with atomic_path(tmp_path / "table.parquet", ".parquet") as tmp:
            tmp.write_bytes(b"rows")
    finally:
        os.umask(old)
    for name in ("curves.npz", "table.parquet"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode
    assert (tmp_path / "table.parquet").read_bytes() == b"rows"


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    path = tmp_path / "sub" / "table.parquet"
    with atomic_path(path, ".parquet") as tmp:
        assert tmp.parent == path.parent and tmp.name.endswith(".parquet") and tmp.exists()
        tmp.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="writer died"):
        with atomic_path(path, ".parquet") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert not tmp.exists()
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["table.parquet"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_corrupt_file_raises_corrupt_file_naming_it(tmp_path, damage: str) -> None:
    path = tmp_path / "ref.npz"
    if damage == "foreign":
        np.savez(path, times=np.zeros(3))  # an npz, but not one save_npz wrote
    else:
        save_npz(path, _prediction())
        blob = path.read_bytes()
        path.write_bytes(blob[: len(blob) // 2] if damage == "truncate" else b"\x00garbage" * 50)
    with pytest.raises(CorruptFile, match="ref.npz") as info:
        load_npz(path)
    assert info.value.path == path and isinstance(info.value, ValueError)


def test_missing_file_is_not_corrupt(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "absent.npz")
