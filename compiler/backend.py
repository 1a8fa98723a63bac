"""An ``onnx.backend.base.Backend`` over the reference interpreter, so onnx's own backend test
suite (node tests and the light model zoo) runs against qnnc's frontend and op semantics.

qnnc compiles static graphs: values that decide shapes (a Reshape's target shape, a Slice's
bounds, ...) must be known at compile time. ONNX node tests often feed such values as graph
inputs, so when an import needs them, the backend specialises the model on the integer inputs
given to ``run`` and imports it again; everything else stays a real graph input.

Sequences and optionals are resolved at compile time (docs/architecture.md, "Sequences and
optionals"), so a sequence- or optional-typed graph input is specialised on what ``run`` is
given: a sequence of n tensors becomes n tensor inputs gathered by SequenceConstruct, an
absent optional an Optional node without input. A sequence output comes back as the list of
its tensors, an absent optional as None.
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
from compiler.frontend.context import Opt, Resolved, Seq
from compiler.frontend.importer import import_with_outputs
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
        self._results: list[Resolved] = []
        if any(i.name not in inits and not i.type.HasField("tensor_type")
               for i in model.graph.input):
            return  # sequences/optionals: specialised on what run() is given
        try:
            self._graph, self._results = import_with_outputs(model)
        except ConversionError as e:
            msg = str(e)
            if "known at compile time" not in msg and "unknown dimension" not in msg:
                raise
            self._graph = None  # specialise on the inputs' shapes (and ints) at run time

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        if isinstance(inputs, dict):
            given = dict(inputs)
        else:
            arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            given = dict(zip(self.input_names, arrays))
        model, feeds = _unpack_sequences(self.model, given)
        graph, results = self._graph, self._results
        if graph is None:
            graph, results = _import_for(model, feeds)
        names = {v.name for v in graph.inputs}
        outs = interpret(graph, {k: v for k, v in feeds.items() if k in names})
        return tuple(_pack(r, outs) for r in results)


def _pack(r: Resolved, outs: dict[str, np.ndarray]) -> Any:
    """A model output as onnx's backend API gives it: an array, a list, or None."""
    if isinstance(r, Seq):
        return [outs[v.name] for v in r.items]
    if isinstance(r, Opt):
        return None if r.value is None else _pack(r.value, outs)
    return outs[r.name]


def _unpack_sequences(
    model: ModelProto, given: dict[str, Any]
) -> tuple[ModelProto, dict[str, np.ndarray]]:
    """``model`` with its sequence and optional inputs made from tensor inputs (or nothing)
    as ``given`` says, and the tensor feeds that go with it."""
    todo = [i for i in model.graph.input
            if i.name in given and not i.type.HasField("tensor_type")]
    unpacked = {i.name for i in todo}
    feeds: dict[str, np.ndarray] = {
        k: np.asarray(a) for k, a in given.items() if k not in unpacked}
    if not todo:
        return model, feeds
    m = ModelProto()
    m.CopyFrom(model)
    taken = {i.name for i in m.graph.input} | {o for n in m.graph.node for o in n.output}
    nodes: list[NodeProto] = []
    inputs: list[onnx.ValueInfoProto] = []

    def fresh(hint: str) -> str:
        name, k = hint, 0
        while name in taken:
            k += 1
            name = f"{hint}_{k}"
        taken.add(name)
        return name

    def build(name: str, t: onnx.TypeProto, v: Any) -> None:
        """Make value ``name`` of type ``t`` from ``v`` (an array, a list, or None)."""
        which = t.WhichOneof("value")
        if which == "optional_type":
            elem = t.optional_type.elem_type
            if v is None:
                nodes.append(helper.make_node("Optional", [], [name], type=elem))
                return
            inner = fresh(f"{name}_value")
            build(inner, elem, v)
            nodes.append(helper.make_node("Optional", [inner], [name]))
        elif which == "sequence_type":
            parts = [fresh(f"{name}_{k}") for k in range(len(v))]
            for part, a in zip(parts, v):
                build(part, t.sequence_type.elem_type, a)
            dtype = t.sequence_type.elem_type.tensor_type.elem_type or onnx.TensorProto.FLOAT
            nodes.append(helper.make_node("SequenceConstruct", parts, [name]) if parts else
                         helper.make_node("SequenceEmpty", [], [name], dtype=dtype))
        else:  # a tensor: a graph input of the fed array's type and shape
            a = np.asarray(v)
            inputs.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)))
            feeds[name] = a

    for inp in todo:
        build(inp.name, inp.type, given[inp.name])
    kept = [i for i in m.graph.input if i.name not in unpacked]
    del m.graph.input[:]
    m.graph.input.extend(kept + inputs)
    old = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(nodes + old)
    return m, feeds


def _import_for(model: ModelProto, feeds: dict[str, np.ndarray]) -> tuple[Graph, list[Resolved]]:
    """Import ``model`` with its inputs' shapes taken from ``feeds``, and its integer inputs
    made constant too if the import needs them. Zero-size inputs hold no data, only a shape
    (which graph inputs may not have), so they always become constants."""
    m = _specialise(model, {k: a for k, a in feeds.items() if a.size == 0}, kinds="biufcV")
    try:
        return import_with_outputs(m, input_shapes=_feed_shapes(m, feeds))
    except ConversionError as e:
        if "known at compile time" not in str(e):
            raise
    m = _specialise(m, feeds)
    while True:
        try:
            return import_with_outputs(m, input_shapes=_feed_shapes(m, feeds))
        except ConversionError as e:
            # a float operand that must be constant (Resize's scales/roi, ...), named as %input
            left = set(_feed_shapes(m, feeds))
            named = set(re.findall(r"\(%([^)\s]+)\)", str(e))) & left
            if "known at compile time" not in str(e) or not left:
                raise
            named = named or left  # the error names no input (a Loop's trip count): all
            # every kind: floats, and ml_dtypes' narrow types (kind "V"); each round makes
            # at least one more input constant, so this ends
            m = _specialise(m, {k: feeds[k] for k in named}, kinds="biufcV")


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
