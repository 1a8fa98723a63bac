"""ONNX tensors (initializers, Constant values, tensor attributes) as numpy arrays, with the
element type and the byte count checked against the dims first, so a damaged tensor is an
error naming it rather than a numpy traceback."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

from compiler.errors import ModelLoadError, UnsupportedModelError

# element types stored below one byte per element, packed: their bits per element
_PACKED_BITS = {"INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2}
# packed types whose byte count is left to onnx's own reader to check
_UNSIZED = {"STRING", "FLOAT6E2M3", "FLOAT6E3M2"}


def elem_type_name(elem_type: int) -> str:
    """``FLOAT`` for 1; ``type 999`` for a number ONNX does not define."""
    if elem_type in onnx.TensorProto.DataType.values():
        return str(onnx.TensorProto.DataType.Name(elem_type))
    return f"{elem_type} (not an ONNX type)"


def tensor_array(t: onnx.TensorProto, what: str) -> np.ndarray:
    """The data of ``t`` as an array of its dims; ``what`` names it in errors."""
    if t.data_type not in onnx.TensorProto.DataType.values() or t.data_type == 0:
        raise UnsupportedModelError(
            f"{what} has element type {elem_type_name(t.data_type)}, which ONNX does not "
            "define; the file is damaged or written for a newer ONNX. Re-export the model."
        )
    if any(d < 0 for d in t.dims):
        raise ModelLoadError(f"{what} has a negative dimension {list(t.dims)}; re-export the "
                             "model")
    count = math.prod(int(d) for d in t.dims)
    name = elem_type_name(t.data_type)
    if t.HasField("raw_data") and name not in _UNSIZED:
        bits = _PACKED_BITS.get(name)
        want = -(-count * bits // 8) if bits else count * _itemsize(t.data_type)
        if len(t.raw_data) != want:
            raise ModelLoadError(
                f"{what} declares {list(t.dims)} {name} ({want} bytes) but holds "
                f"{len(t.raw_data)} bytes of data; the file is damaged. Re-export the model."
            )
    try:
        arr = numpy_helper.to_array(t)
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise ModelLoadError(f"{what} cannot be read as {list(t.dims)} {name}: {e}; "
                             "re-export the model") from None
    if arr.size != count:
        raise ModelLoadError(f"{what} declares {list(t.dims)} ({count} elements) but holds "
                             f"{arr.size}; re-export the model")
    return arr


def _itemsize(data_type: int) -> int:
    try:
        return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).itemsize)
    except (KeyError, TypeError, ValueError):
        raise UnsupportedModelError(
            f"element type {elem_type_name(data_type)} is not one qnnc reads") from None
