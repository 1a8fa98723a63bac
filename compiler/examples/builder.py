"""A small helper for writing ONNX graphs by hand: named nodes, initializers, one model.

The hand-built examples (MobileNetV2, the BERT encoder, the tiny CNN) read like the
network they describe — ``b.conv(x, 32, 3, stride=2)`` — instead of walls of
onnx.helper calls. Names are deterministic, so a model's bytes depend only on its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, helper, numpy_helper

#: IR version written with opset 17 (what onnx's own table pairs with it)
IR_VERSION = 8
OPSET = 17


class GraphBuilder:
    """Accumulates nodes and initializers; each helper returns its output's name."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self._counts: dict[str, int] = {}

    def fresh(self, stem: str) -> str:
        """A new unique name: stem, stem_1, stem_2, ..."""
        n = self._counts.get(stem, 0)
        self._counts[stem] = n + 1
        return stem if n == 0 else f"{stem}_{n}"

    def const(self, stem: str, array: np.ndarray) -> str:
        name = self.fresh(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, stem: str, values: Sequence[int]) -> str:
        return self.const(stem, np.asarray(values, dtype=np.int64))

    def op(
        self, op_type: str, inputs: Sequence[str], stem: str | None = None, **attrs: object
    ) -> str:
        out = self.fresh(stem or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def model(
        self,
        name: str,
        inputs: Sequence[tuple[str, int, Sequence[int]]],
        outputs: Sequence[tuple[str, int, Sequence[int]]],
        doc: str,
        opset: int = OPSET,
    ) -> ModelProto:
        """Wrap the graph in a model; ``inputs``/``outputs`` are (name, elem_type, shape)."""
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
            [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in outputs],
            initializer=self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", opset)],
            producer_name="qnnc.examples",
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        return model


F32 = TensorProto.FLOAT
I64 = TensorProto.INT64
