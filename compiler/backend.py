"""An ``onnx.backend.base.Backend`` over the reference interpreter, so onnx's own backend test
suite (node tests and the light model zoo) runs against qnnc's frontend and op semantics.

qnnc compiles static graphs: values that decide shapes (a Reshape's target shape, a Slice's
bounds, ...) must be known at compile time. ONNX node tests often feed such values as graph
inputs, so when an import needs them, the backend specialises the model on the integer inputs
given to ``run`` and imports it again; everything else stays a real graph input.
"""

from __future__ import annotations

import re
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
            msg = str(e)
            if "known at compile time" not in msg and "unknown dimension" not in msg:
                raise
            self._graph = None  # specialise on the inputs' shapes (and ints) at run time

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            feeds = {k: np.asarray(v) for k, v in inputs.items()}
        else:
            arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            feeds = {n: np.asarray(a) for n, a in zip(self.input_names, arrays)}
        graph = self._graph
        if graph is None:
            graph = _import_for(self.model, feeds)
        names = {v.name for v in graph.inputs}
        outs = interpret(graph, {k: v for k, v in feeds.items() if k in names})
        by_value = [graph.outputs[i].name for i in range(len(graph.outputs))]
        return tuple(outs[n] for n in by_value)


def _import_for(model: ModelProto, feeds: dict[str, np.ndarray]) -> Graph:
    """Import ``model`` with its inputs' shapes taken from ``feeds``, and its integer inputs
    made constant too if the import needs them. Zero-size inputs hold no data, only a shape
    (which graph inputs may not have), so they always become constants."""
    m = _specialise(model, {k: a for k, a in feeds.items() if a.size == 0}, kinds="biufc")
    try:
        return import_model(m, input_shapes=_feed_shapes(m, feeds))
    except ConversionError as e:
        if "known at compile time" not in str(e):
            raise
    m = _specialise(m, feeds)
    while True:
        try:
            return import_model(m, input_shapes=_feed_shapes(m, feeds))
        except ConversionError as e:
            # a float operand that must be constant (Resize's scales/roi, ...), named as %input
            named = set(re.findall(r"\(%([^)\s]+)\)", str(e))) & set(_feed_shapes(m, feeds))
            if "known at compile time" not in str(e) or not named:
                raise
            m = _specialise(m, {k: feeds[k] for k in named}, kinds="biufc")


def _feed_shapes(model: ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, tuple]:
    """The shapes of the fed inputs that are still graph inputs (not initializers)."""
    consts = {t.name for t in model.graph.initializer}
    return {i.name: feeds[i.name].shape for i in model.graph.input
            if i.name in feeds and i.name not in consts}


def _specialise(
    model: ModelProto, feeds: dict[str, np.ndarray], kinds: str = "iub"
) -> ModelProto:
    """A copy of ``model`` with its inputs of these dtype kinds (ints, bools) turned into
    initializers."""
    m = ModelProto()
    m.CopyFrom(model)
    done = {t.name for t in m.graph.initializer}
    for inp in m.graph.input:
        a = feeds.get(inp.name)
        if a is not None and a.dtype.kind in kinds and inp.name not in done:
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
