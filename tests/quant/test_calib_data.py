"""Calibration data sources (.npz, .npy, folders, iterables) and every way a sample can be
wrong: each must be an InputError naming the input, the sample or file, and what was expected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.errors import InputError
from compiler.quant.calib_data import CalibrationData, calibration_data
from ir import DType, Graph, TensorType

X = TensorType((1, 3, 2, 2), DType.f32)
IDS = TensorType((1, 4), DType.i64)


def _one_input() -> Graph:
    g = Graph("one")
    g.add_input("x", X)
    return g


def _two_inputs() -> Graph:
    g = Graph("two")
    g.add_input("x", X)
    g.add_input("ids", IDS)
    return g


def _x(k: float = 0.0) -> np.ndarray:
    return np.full(X.shape, k, np.float32)


def _ids(k: int = 0) -> np.ndarray:
    return np.full(IDS.shape, k, np.int64)


def _all(source: Any, graph: Graph) -> list[dict[str, np.ndarray]]:
    return list(calibration_data(source, graph))


def _fails(source: Any, graph: Graph, *needles: str) -> str:
    with pytest.raises(InputError) as info:
        _all(source, graph)
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# -- sources that work ------------------------------------------------------------------------
def test_npz_with_a_sample_axis(tmp_path: Path) -> None:
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.stack([_x(k) for k in range(5)]), ids=np.stack([_ids(k) for k in range(5)]))
    data = calibration_data(path, _two_inputs())
    assert isinstance(data, CalibrationData) and data.count == 5
    samples = list(data)
    assert len(samples) == 5
    for k, s in enumerate(samples):
        assert set(s) == {"x", "ids"}
        np.testing.assert_array_equal(s["x"], _x(k))
        assert s["x"].shape == X.shape and s["ids"].dtype == np.int64


def test_npz_holding_exactly_one_sample(tmp_path: Path) -> None:
    path = tmp_path / "one.npz"
    np.savez(path, x=_x(3))
    data = calibration_data(str(path), _one_input())
    assert data.count == 1
    (s,) = list(data)
    np.testing.assert_array_equal(s["x"], _x(3))


def test_npy_for_a_single_input_model(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.stack([_x(k) for k in range(3)]).astype(np.float64))
    samples = _all(tmp_path / "x.npy", _one_input())
    assert [float(s["x"][0, 0, 0, 0]) for s in samples] == [0.0, 1.0, 2.0]
    assert all(s["x"].dtype == np.float32 for s in samples)  # float64 converted


def test_folder_single_input_in_name_order(tmp_path: Path) -> None:
    for k in (2, 0, 1):
        np.save(tmp_path / f"img_{k:03d}.npy", _x(k))
    (tmp_path / "README.txt").write_text("ignored")
    data = calibration_data(tmp_path, _one_input())
    assert data.count == 3
    assert [float(s["x"].max()) for s in data] == [0.0, 1.0, 2.0]


def test_folder_with_a_subfolder_per_input(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "ids").mkdir()
    for k in range(4):
        np.save(tmp_path / "x" / f"{k}.npy", _x(k))
        np.save(tmp_path / "ids" / f"{k}.npy", _ids(k).astype(np.int32))  # widened safely
    samples = _all(tmp_path, _two_inputs())
    assert len(samples) == 4
    assert [int(s["ids"][0, 0]) for s in samples] == [0, 1, 2, 3]
    assert [float(s["x"].max()) for s in samples] == [0.0, 1.0, 2.0, 3.0]


def test_iterables_of_dicts_and_stacked_dicts() -> None:
    graph = _one_input()
    listed = calibration_data([{"x": _x(k)} for k in range(3)], graph)
    assert listed.count == 3 and len(list(listed)) == 3
    generated = calibration_data(({"x": _x(k)} for k in range(2)), graph)
    assert generated.count is None and len(list(generated)) == 2
    stacked = calibration_data({"x": np.zeros((6, *X.shape))}, graph)
    assert stacked.count == 6
    ints = _all([{"x": np.ones(X.shape, np.int64)}], graph)  # exact in float32
    assert ints[0]["x"].dtype == np.float32


# -- names ------------------------------------------------------------------------------------
def test_unknown_input_name() -> None:
    _fails([{"x": _x(), "y": _x()}], _one_input(), "'y'", "sample 0", "x")
    _fails({"x": np.zeros((2, *X.shape)), "z": np.zeros(3)}, _one_input(), "'z'", "x")


def test_unknown_input_name_in_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "c.npz", image=np.zeros(X.shape, np.float32))
    _fails(tmp_path / "c.npz", _one_input(), "'image'", "c.npz", "x")
    for d in ("x", "ids", "mask"):
        (tmp_path / "f" / d).mkdir(parents=True)
    _fails(tmp_path / "f", _two_inputs(), "'mask'", "subfolder")


def test_missing_input() -> None:
    _fails([{"x": _x(), "ids": _ids()}, {"x": _x()}], _two_inputs(), "'ids'", "sample 1", "i64")
    _fails({"x": np.zeros((2, *X.shape))}, _two_inputs(), "'ids'")


def test_missing_input_folder(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    np.save(tmp_path / "x" / "0.npy", _x())
    _fails(tmp_path, _two_inputs(), "'ids'", "subfolder")
    flat = tmp_path / "flat"
    flat.mkdir()
    np.save(flat / "0.npy", _x())
    _fails(flat, _two_inputs(), "no subfolders", "x, ids")


def test_sample_is_not_a_dict() -> None:
    _fails([_x()], _one_input(), "sample 0", "ndarray", "dict")


# -- shapes -----------------------------------------------------------------------------------
def test_wrong_shape_in_an_iterable() -> None:
    bad = [{"x": _x()}, {"x": np.zeros((3, 2, 2), np.float32)}]
    _fails(bad, _one_input(), "sample 1", "'x'", "[3, 2, 2]", "[1, 3, 2, 2]")


def test_wrong_shape_in_a_file_names_the_file(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", _x())
    np.save(tmp_path / "b.npy", np.zeros((1, 3, 2, 3), np.float32))
    _fails(tmp_path, _one_input(), "sample 1", "b.npy", "'x'", "[1, 3, 2, 3]")


def test_wrong_shape_in_an_npz_suggests_the_layouts(tmp_path: Path) -> None:
    np.savez(tmp_path / "c.npz", x=np.zeros((8, 3, 2, 2), np.float32))  # batch axis, not stacked
    msg = _fails(tmp_path / "c.npz", _one_input(), "'x'", "[8, 3, 2, 2]", "[S, 1, 3, 2, 2]")
    assert "reshape it to (-1, 1, 3, 2, 2)" in msg


def test_different_sample_counts_per_input(tmp_path: Path) -> None:
    np.savez(tmp_path / "c.npz", x=np.zeros((4, *X.shape)), ids=np.zeros((3, *IDS.shape), int))
    _fails(tmp_path / "c.npz", _two_inputs(), "'x': 4 samples", "'ids': 3 samples")
    np.savez(tmp_path / "d.npz", x=np.zeros((4, *X.shape)), ids=_ids())
    _fails(tmp_path / "d.npz", _two_inputs(), "'ids': one sample")
    (tmp_path / "f" / "x").mkdir(parents=True)
    (tmp_path / "f" / "ids").mkdir()
    np.save(tmp_path / "f" / "x" / "0.npy", _x())
    _fails(tmp_path / "f", _two_inputs(), "x: 1", "ids: 0")


# -- dtypes and values ------------------------------------------------------------------------
def test_dtypes_that_cannot_be_cast_safely() -> None:
    _fails([{"x": _x(), "ids": np.full(IDS.shape, 1.5)}], _two_inputs(), "'ids'", "float64",
           "int64", "sample 0")
    big = np.full(X.shape, 2**40 + 1, np.int64)  # not exact in float32
    _fails([{"x": big}], _one_input(), "'x'", "int64", "float32")
    _fails([{"x": np.full(X.shape, "a")}], _one_input(), "'x'", "not numeric")
    g = Graph("small")
    g.add_input("b", TensorType((2,), DType.i8))
    _fails([{"b": np.array([1, 300])}], g, "'b'", "int8")
    assert _all([{"b": np.array([1, -100])}], g)[0]["b"].dtype == np.int8  # values fit


def test_nan_and_inf_are_refused_with_their_position(tmp_path: Path) -> None:
    x = _x()
    x[0, 2, 1, 0] = np.nan
    _fails([{"x": _x()}, {"x": x}], _one_input(), "sample 1", "'x'", "NaN", "[0, 2, 1, 0]")
    stacked = np.zeros((3, *X.shape), np.float32)
    stacked[2, 0, 0, 1, 1] = -np.inf
    np.savez(tmp_path / "c.npz", x=stacked)
    _fails(tmp_path / "c.npz", _one_input(), "sample 2", "c.npz", "inf", "[0, 0, 1, 1]")


def test_overflow_when_narrowing_floats() -> None:
    g = Graph("half")
    g.add_input("h", TensorType((2,), DType.f16))
    _fails([{"h": np.array([1.0, 1e6])}], g, "'h'", "float16", "out of its range")


# -- empty and unreadable sources -------------------------------------------------------------
def test_empty_data_sets(tmp_path: Path) -> None:
    graph = _one_input()
    _fails([], graph, "no samples")

    def nothing() -> Iterator[dict[str, np.ndarray]]:
        yield from ()

    _fails(nothing(), graph, "no samples")
    np.savez(tmp_path / "e.npz", x=np.zeros((0, *X.shape), np.float32))
    _fails(tmp_path / "e.npz", graph, "no samples", "e.npz")
    (tmp_path / "empty").mkdir()
    _fails(tmp_path / "empty", graph, "no .npy files")


def test_unreadable_sources(tmp_path: Path) -> None:
    graph = _one_input()
    _fails(tmp_path / "nope.npz", graph, "does not exist")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    _fails(tmp_path / "bad.npz", graph, "cannot read", "bad.npz")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "0.npy").write_bytes(b"garbage")
    _fails(tmp_path / "d", graph, "cannot read", "0.npy")
    _fails(42, graph, "int")
    np.save(tmp_path / "one.npy", np.zeros((2, *X.shape)))
    _fails(tmp_path / "one.npy", _two_inputs(), "2 inputs")
