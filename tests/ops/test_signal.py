"""DFT, STFT, the window generators and MelWeightMatrix: qnnc's import and interpreter
against numpy's FFT in float64 (rtol 1e-5, atol 1e-5 on float32 results: onnx's reference
evaluator runs its FFT in float32, whose rounding noise near 0 is larger than that) and
against onnx's reference evaluator for the generators (which fold to constants)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.interpreter import run

rng = np.random.default_rng(9)
TOL = {"rtol": 1e-5, "atol": 1e-5}


def qnnc(op: str, feeds: dict[str, np.ndarray], consts: dict[str, np.ndarray | None],
         opset: int, **attrs: Any) -> tuple[list[str], np.ndarray, Any]:
    """(the IR ops, qnnc's output, the model) of one node; None consts are omitted inputs."""
    names = list(feeds) + [k if v is not None else "" for k, v in consts.items()]
    node = helper.make_node(op, names, ["y"], **attrs)
    vin = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]
    out = helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items() if v is not None]
    model = helper.make_model(helper.make_graph([node], "t", vin, [out], initializer=inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    g = import_model(model)
    got = run(g, {v.name: feeds[v.name] for v in g.inputs})[g.outputs[0].name]
    return [n.op for n in g.nodes if n.op != "Identity"], got, model


def stored(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag], -1)


def complex_of(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x[..., 0] + 1j * x[..., 1] if x.shape[-1] == 2 else x[..., 0]


DFT_CASES = [  # (input shape, axis, dft_length, inverse, onesided)
    ((2, 8, 1), 1, None, 0, 0), ((2, 8, 1), 1, None, 0, 1), ((3, 7, 2), 1, None, 0, 0),
    ((2, 5, 4, 2), 2, None, 0, 0), ((2, 5, 4, 2), 1, 9, 0, 0), ((2, 9, 1), 1, 6, 0, 1),
    ((2, 6, 2), 1, None, 1, 0), ((1, 3, 5, 2), 2, 4, 1, 0), ((2, 5, 2), 1, None, 1, 1),
    ((2, 5, 2), 1, 9, 1, 1), ((2, 4, 2), 1, 5, 1, 1),
]


def numpy_dft(x: np.ndarray, axis: int, n: int, inverse: int, onesided: int) -> np.ndarray:
    z = complex_of(x)
    if inverse and onesided:
        return np.fft.irfft(z, n=n, axis=axis)[..., None]
    y = np.fft.ifft(z, n=n, axis=axis) if inverse else np.fft.fft(z, n=n, axis=axis)
    if onesided:
        y = np.take(y, np.arange(n // 2 + 1), axis=axis)
    return stored(y)


@pytest.mark.parametrize("shape,axis,length,inverse,onesided", DFT_CASES)
@pytest.mark.parametrize("opset", [17, 20])
def test_dft(shape: tuple, axis: int, length: int | None, inverse: int, onesided: int,
             opset: int) -> None:
    x = rng.standard_normal(shape).astype(np.float32)
    consts: dict[str, np.ndarray | None] = {
        "dft_length": None if length is None else np.array(length, np.int64)}
    attrs: dict[str, Any] = {"inverse": inverse, "onesided": onesided}
    if opset >= 20:
        consts["axis"] = np.array(axis - len(shape), np.int64)  # negative: counts from the end
    else:
        attrs["axis"] = axis
    ops, got, _ = qnnc("DFT", {"x": x}, consts, opset, **attrs)
    n = length if length is not None else (
        2 * (shape[axis] - 1) if inverse and onesided else shape[axis])
    assert ops == ["DFT"] and got.dtype == np.float32
    want = numpy_dft(x, axis, n, inverse, onesided)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOL)


def test_dft_rejects_the_storage_axis() -> None:
    x = np.zeros((2, 4, 2), np.float32)
    with pytest.raises(ConversionError, match="signal axis"):
        qnnc("DFT", {"x": x}, {"dft_length": None, "axis": np.array(-1, np.int64)}, 20)


@pytest.mark.parametrize("signal,step,length,window,onesided", [
    ((2, 20, 1), 4, 6, True, 1), ((1, 16, 1), 3, None, True, 0),
    ((2, 11, 1), 2, 5, False, 1), ((1, 13, 2), 3, 4, True, 0), ((1, 7, 1), 1, None, False, 1),
])
def test_stft(signal: tuple, step: int, length: int | None, window: bool,
              onesided: int) -> None:
    x = rng.standard_normal(signal).astype(np.float32)
    n = length or (6 if window else signal[1])
    w = rng.uniform(0, 1, n).astype(np.float32) if window else None
    consts = {"frame_step": np.array(step, np.int64), "window": w,
              "frame_length": None if length is None else np.array(length, np.int64)}
    ops, got, _ = qnnc("STFT", {"x": x}, consts, 17, onesided=onesided)
    assert ops == ["STFT"]
    z = complex_of(x)
    frames = (signal[1] - n) // step + 1
    seg = np.stack([z[:, f * step:f * step + n] for f in range(frames)], 1)
    spec = np.fft.fft(seg * (w if w is not None else 1.0), axis=-1)
    if onesided:
        spec = spec[..., :n // 2 + 1]
    np.testing.assert_allclose(got, stored(spec), **TOL)


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("size", [1, 2, 10, 33])
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("dtype", [TensorProto.FLOAT, TensorProto.DOUBLE])
def test_windows_fold_to_constants(op: str, size: int, periodic: int, dtype: int) -> None:
    consts = {"size": np.array(size, np.int64)}
    ops, got, model = qnnc(op, {}, consts, 17, periodic=periodic, output_datatype=dtype)
    assert ops == []
    with np.errstate(all="ignore"):
        (ref,) = ReferenceEvaluator(model).run(None, {})
    assert got.dtype == ref.dtype
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)


def test_symmetric_windows_are_numpys() -> None:
    for op, fn in (("HannWindow", np.hanning), ("BlackmanWindow", np.blackman)):
        _, got, _ = qnnc(op, {}, {"size": np.array(9, np.int64)}, 17, periodic=0,
                         output_datatype=TensorProto.DOUBLE)
        np.testing.assert_allclose(got, fn(9), atol=1e-15)


@pytest.mark.parametrize("mels,length,rate,lo,hi", [
    (8, 16, 8192, 0.0, 2048.0), (5, 64, 16000, 100.0, 7000.0), (1, 10, 100, 5.0, 40.0),
])
def test_mel_weight_matrix_folds_to_a_constant(mels: int, length: int, rate: int, lo: float,
                                               hi: float) -> None:
    consts = {"num_mel_bins": np.array(mels, np.int64), "dft_length": np.array(length, np.int64),
              "sample_rate": np.array(rate, np.int64), "lower_edge_hertz": np.float32(lo),
              "upper_edge_hertz": np.float32(hi)}
    ops, got, model = qnnc("MelWeightMatrix", {}, consts, 17)
    assert ops == [] and got.shape == (length // 2 + 1, mels)
    (ref,) = ReferenceEvaluator(model).run(None, {})
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)
