"""Indices read from the input data at run time (Gather's or ScatterND's ``indices`` when
they are not constants): checked before any kernel reads through them.

ONNX leaves an index outside its axis undefined; qnnc stops instead (ir/errors.py,
index_out_of_range), as the interpreter and the host C do. Each such operand goes through a
check kernel of its own that asserts every index lies in [-n, n) for the axis of n entries it
indexes and writes it wrapped into [0, n) as int64; the node's kernel reads those. A failed
assertion raises an IndexError whose message is ``qnnc-check:<node index>`` only (nothing
from the model reaches the generated code); :func:`failure` turns it back into qnnc's
message naming the node, with the names kept in the build's signature (:func:`checked_nodes`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ir.errors import InputError, index_out_of_range
from ir.graph import Graph, Node, Value
from targets.tvm.api import require_tvm, te, tir

PREFIX = "qnnc-check:"

#: op -> its operand whose values index another operand at run time
INDEX_OPERANDS = {"Gather": "indices", "ScatterND": "indices"}


def runtime_indices(node: Node) -> bool:
    """Whether ``node`` reads indices that are only known at run time."""
    name = INDEX_OPERANDS.get(node.op)
    v = node.operand(name) if name else None
    return isinstance(v, Value) and v.data is None


def checked_nodes(graph: Graph) -> dict[str, list[str]]:
    """Node index -> [node name, op] of every node whose indices are checked at run time."""
    return {str(i): [n.name or "(unnamed)", n.op] for i, n in enumerate(graph.nodes)
            if runtime_indices(n)}


def check_func(shape: Sequence[int], dtype: str, dims: Sequence[int], node_index: int) -> Any:
    """The PrimFunc (indices of ``shape`` and ``dtype``) -> int64 indices wrapped into
    [0, dim), asserting each lies in [-dim, dim). ``dims`` holds one dim for every index
    (Gather), or one per entry of the last axis (ScatterND's index tuples)."""
    tvm = require_tvm()
    placeholder = te.placeholder(list(shape), dtype, name="indices")
    rank = len(shape)

    def body(ins: list[Any], outs: list[Any]) -> Any:
        loops = [tir.Var(f"i{k}", "int64") for k in range(rank)]
        v = tir.BufferLoad(ins[0], loops).astype("int64")
        if len(dims) == 1:
            d: Any = tir.const(dims[0], "int64")
        else:  # the dim of the tuple entry the last loop is at
            d = tir.const(dims[-1], "int64")
            for k in range(len(dims) - 2, -1, -1):
                d = tir.Select(loops[-1] == k, tir.const(dims[k], "int64"), d)
        ok = tir.all(v >= -d, v < d)
        # tvm.tirx.AssertStmt's Python wrapper passes (kind, condition) in the order the
        # constructor does not take in 0.27; the constructor itself takes (condition, kind)
        check = tvm.tirx._ffi_api.AssertStmt(
            ok, tvm.ir.StringImm("IndexError"),
            [tvm.ir.StringImm(f"{PREFIX}{node_index}")], None)
        stmt: Any = tir.SeqStmt([
            check,
            tir.BufferStore(outs[0], tir.Select(v < tir.const(0, "int64"), v + d, v), loops)])
        for lv, n in reversed(list(zip(loops, shape))):
            stmt = tir.For(lv, tir.const(0, "int64"), tir.const(n, "int64"),
                           tir.ForKind.SERIAL, stmt)
        return stmt

    wrapped = te.extern([list(shape)], [placeholder], body, dtype="int64", name="wrapped")
    return te.create_prim_func([placeholder, wrapped])


def failure(error: BaseException, checks: Mapping[str, Sequence[str]]) -> InputError | None:
    """qnnc's error for a failed index check raised by a run, or None for another error."""
    found = re.search(re.escape(PREFIX) + r"(\d+)", str(error))
    if found is None:
        return None
    entry = checks.get(found.group(1))
    if entry is None:
        return InputError("an index read from the input data is out of range")
    return InputError(index_out_of_range(entry[0], entry[1]))
