"""onnxruntime as the peer: a session on one model and its ``quantize_static`` INT8 twin, set
up the one way qnnc's benchmarks and ``qnnc bench --compare onnxruntime`` compare against.

quantize_static runs with QDQ format, per-channel int8 weights, u8 activations and MinMax
calibration on the caller's samples; models below opset 13 are converted first (QDQ per
channel needs it), and a model with If nodes goes through onnxruntime's basic graph
optimisation first (:func:`inline_ifs`): quantize_static does not look inside If branches, so
a model whose layers all sit in a branch chosen by a constant (Silero VAD's sample-rate
switch) would otherwise come back unquantised. onnxruntime is optional for qnnc itself:
:func:`require` says how to get it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from compiler.errors import QnncError

Feeds = Mapping[str, np.ndarray]
#: the lowest opset quantize_static's per-channel QDQ handles
ORT_MIN_OPSET = 13


def require() -> Any:
    """The onnxruntime module, or a QnncError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise QnncError("comparing with onnxruntime needs it installed: pip install "
                        "onnxruntime (or pip install 'qnnc[bench]')") from None
    return onnxruntime


def ort_session(model: bytes | str, threads: int, spin: bool = True) -> Any:
    """An onnxruntime CPU session with ``threads`` intra-op threads, run sequentially;
    ``spin=False`` makes its worker threads sleep between parallel sections instead of
    spin-waiting (session.intra_op.allow_spinning)."""
    ort = require()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def ort_quantize(model: onnx.ModelProto, calib: Sequence[Feeds], folder: Path,
                 exclude: list[str] | None = None) -> str:
    """quantize_static as in the module docstring, ``exclude`` naming nodes to leave in
    float; the quantised model's path (in ``folder``)."""
    require()
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calib)

        def get_next(self) -> Any:
            return next(self.it, None)

    model = onnx.ModelProto.FromString(model.SerializeToString())  # quantize_static edits it
    if any(n.op_type == "If" for n in model.graph.node):
        model = inline_ifs(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    if opset < ORT_MIN_OPSET:
        model = version_converter.convert_version(model, ORT_MIN_OPSET)
    path = str(folder / ("ort_int8_excluding.onnx" if exclude else "ort_int8.onnx"))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static's advice to pre-process, on every call
    try:
        quantize_static(model, path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude)
    finally:
        root.setLevel(level)
    return path


def inline_ifs(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` after onnxruntime's basic graph optimisation (constant folding, which inlines
    the branch an If with a constant condition takes); Ifs whose condition depends on the
    input stay."""
    ort = require()

    with tempfile.TemporaryDirectory(prefix="qnnc-ort-") as tmp:
        path = str(Path(tmp) / "inlined.onnx")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = path
        opts.log_severity_level = 3
        ort.InferenceSession(model.SerializeToString(), opts,
                             providers=["CPUExecutionProvider"])
        return onnx.load(path)
