"""An ``onnx.backend.base.Backend`` over the reference interpreter, so onnx's own backend test
suite (node tests and the light model zoo) runs against qnnc's frontend and op semantics.

qnnc compiles static graphs: values that decide shapes (a Reshape's target shape, a Slice's
bounds, ...) must be known at compile time. ONNX node tests often feed such values as graph
inputs, so when an import needs them, the backend specialises the model on the integer inputs
given to ``run`` and imports it again; everything else stays a real graph input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, helper, numpy_helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from compiler.frontend.loader import check_model
from ir.graph import Graph
from ir.interpreter import run as interpret


class QnncRep(BackendRep):
    """A prepared model: imported once per distinct specialisation, run on the interpreter."""

    def __init__(self, model: ModelProto) -> None:
        self.model = model
        inits = {t.name for t in model.graph.initializer}
        self.input_names = [i.name for i in model.graph.input if i.name not in inits]
        self.output_names = [o.name for o in model.graph.output]
        self._graph: Graph | None = None
        try:
            self._graph = import_model(model)
        except ConversionError as e:
            if "known at compile time" not in str(e):
                raise
            self._graph = None  # specialise on the integer inputs at run time

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            feeds = {k: np.asarray(v) for k, v in inputs.items()}
        else:
            arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            feeds = {n: np.asarray(a) for n, a in zip(self.input_names, arrays)}
        graph = self._graph
        if graph is None:
            graph = import_model(_specialise(self.model, feeds))
        names = {v.name for v in graph.inputs}
        outs = interpret(graph, {k: v for k, v in feeds.items() if k in names})
        by_value = [graph.outputs[i].name for i in range(len(graph.outputs))]
        return tuple(outs[n] for n in by_value)


def _specialise(model: ModelProto, feeds: dict[str, np.ndarray]) -> ModelProto:
    """A copy of ``model`` with its integer/bool inputs turned into initializers."""
    m = ModelProto()
    m.CopyFrom(model)
    for inp in m.graph.input:
        a = feeds.get(inp.name)
        if a is not None and a.dtype.kind in "iub":
            m.graph.initializer.append(numpy_helper.from_array(a, inp.name))
    return m


class QnncBackend(Backend):
    """Runs ONNX models on qnnc's reference interpreter (CPU only)."""

    @classmethod
    def is_compatible(cls, model: ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU

    @classmethod
    def prepare(cls, model: ModelProto, device: str = "CPU", **kwargs: Any) -> QnncRep:
        check_model(model)
        return QnncRep(model)

    @classmethod
    def run_model(
        cls, model: ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any
    ) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: NodeProto,
        inputs: Sequence[np.ndarray],
        device: str = "CPU",
        outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
        **kwargs: Any,
    ) -> tuple[np.ndarray, ...]:
        arrays = [np.asarray(a) for a in inputs]
        vin = [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)
            )
            for name, a in zip(node.input, arrays)
        ]
        vout = [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None)
                for o in node.output]
        graph = helper.make_graph([node], "run_node", vin, vout)
        model = helper.make_model(graph)
        return cls.run_model(model, arrays, device)


prepare = QnncBackend.prepare
run_model = QnncBackend.run_model
run_node = QnncBackend.run_node
supports_device = QnncBackend.supports_device
