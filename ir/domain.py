"""Compile-time checks that a graph has one meaning on every path.

The reference interpreter, the host C and the staged C of the accelerators must give the
same answer, or the same error, for every input. Some models carry constants whose meaning
ONNX leaves undefined and whose result would therefore depend on the path that runs it:

- an index outside its axis in a constant operand of Gather, GatherElements, GatherND,
  ScatterElements or ScatterND (the op's ``domain`` trait says which): rejected, naming the
  node and the first bad index;
- a NaN in any floating-point constant: rejected, naming the initializer (quantisation has
  no code for it, and float kernels disagree on how NaN passes through max/min/compare);
- an infinity in a weight of a convolution or matrix product (``tiled`` conv or matmul):
  rejected likewise (inf * 0 is NaN, and INT8 cannot hold it). Infinities elsewhere
  (attention masks of -inf) are kept: every path adds and compares them alike.

docs/architecture.md "Defined meaning" lists what happens at run time instead.
"""

from __future__ import annotations

import numpy as np

from ir.errors import ConversionError
from ir.graph import Graph, Node, Value
from ir.ops.registry import get_op


def check_domain(graph: Graph) -> None:
    """Raise :class:`ConversionError` for the first node (top level or in a region) whose
    constants put it outside its defined meaning."""
    for _, node in graph.walk():
        opdef = get_op(node.op)
        for v in node.inputs:
            if v is not None and v.data is not None:
                _check_constant(node, v, opdef.tiled in ("conv", "matmul"))
        if opdef.domain is None:
            continue
        consts = [None if v is None else v.data for v in node.inputs]
        types = [None if v is None else v.type for v in node.inputs]
        problem = opdef.domain(consts, types, node.attrs)
        if problem:
            raise ConversionError(
                f"node {node.name or node.op!r} ({node.op}): its constant {problem}. ONNX "
                "leaves an index outside its axis undefined, so qnnc refuses to compile it "
                "rather than give a different answer on each target; fix the indices in the "
                "model (valid ones are -size..size-1 along the axis).")


def _check_constant(node: Node, v: Value, weight: bool) -> None:
    assert v.data is not None
    if not v.type.dtype.is_float or not v.data.size:
        return
    data = np.asarray(v.data, dtype=np.float32) if v.data.dtype.kind == "V" else v.data
    try:
        nan = bool(np.isnan(data).any())
        inf = weight and bool(np.isinf(data).any())
    except TypeError:  # a storage-only type numpy cannot test: cast first
        data = np.asarray(v.data, dtype=np.float32)
        nan, inf = bool(np.isnan(data).any()), weight and bool(np.isinf(data).any())
    if not (nan or inf):
        return
    what = "NaN" if nan else "an infinity"
    at = int(np.flatnonzero(np.isnan(data) if nan else np.isinf(data))[0])
    raise ConversionError(
        f"initializer {v.name!r}, read by node {node.name or node.op!r} ({node.op}), holds "
        f"{what} (flat position {at} of {v.data.size}). A weight like that has no INT8 code "
        "and no single float answer (targets disagree on how it propagates), so qnnc "
        "refuses it; retrain or repair the weight (e.g. numpy.nan_to_num) and export again.")
