"""A qnnc graph as a TVM IRModule: a Relax ``main`` taking the graph's inputs and returning
a tuple of its outputs, calling one TIR PrimFunc per node through ``call_tir``.

Constants (weights, tables) become Relax constants, one per IR constant however many nodes
read it. PrimFuncs are named ``k<index>_<node name>`` with the name reduced to a safe
identifier (targets/c/names.py), so nothing from the model reaches a symbol unsanitised.
Every node whose op has no kernel is reported in one error before anything is lowered.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ir.errors import UnsupportedModelError
from ir.graph import Graph, Node, Value
from targets.c.names import NameTable
from targets.tvm.api import relax, te
from targets.tvm.checks import check_func
from targets.tvm.context import Kernel, tvm_dtype
from targets.tvm.registry import Builder, kernels

MAX_LISTED = 20


def unsupported(graph: Graph) -> dict[str, list[str]]:
    """Op -> the names of the nodes of ``graph`` whose op has no tvm kernel."""
    known = kernels()
    missing: dict[str, list[str]] = defaultdict(list)
    for node in graph.nodes:
        if node.op not in known or node.regions or not known[node.op].accepts(node):
            missing[node.op].append(node.name or "(unnamed)")
    return dict(missing)


def check_supported(graph: Graph) -> None:
    """One UnsupportedModelError naming every op without a kernel and its nodes."""
    missing = unsupported(graph)
    if not missing:
        return
    lines = []
    for op, names in sorted(missing.items()):
        shown = ", ".join(repr(n) for n in names[:MAX_LISTED])
        more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
        lines.append(f"  {op} ({len(names)}): {shown}{more}")
    raise UnsupportedModelError(
        f"the tvm target has no kernel for {len(missing)} op(s) of this model:\n"
        + "\n".join(lines) + "\nits kernels cover the quantised ops (QLSTM and QGRU too), "
        "data movement and the float ops of CNNs and encoders (docs/tvm.md lists them): "
        "compile for target='host' to run the others")


def _tensor_type(v: Value) -> Any:
    return relax.TensorType(list(v.type.shape), tvm_dtype(v.type))


def lower(graph: Graph) -> Any:
    """The IRModule of ``graph`` (see the module doc); checks support first."""
    check_supported(graph)
    builders = kernels()
    names = NameTable(reserved=("main",))
    bb = relax.BlockBuilder()
    params = [relax.Var(names.claim("in", v.name), _tensor_type(v)) for v in graph.inputs]
    env: dict[int, Any] = {id(v): p for v, p in zip(graph.inputs, params)}

    def constant(data: np.ndarray) -> Any:
        # the dtype given: relax.const would narrow int64 to int32 and float64 to float32
        return relax.const(data, str(data.dtype))

    def bind(v: Value) -> Any:
        if id(v) not in env:
            assert v.data is not None, f"value %{v.name} is used before it is defined"
            env[id(v)] = constant(np.asarray(v.data, order="C"))
        return env[id(v)]

    def checker(index: int, symbol: str) -> Any:
        def checked(v: Value, dims: list[int]) -> Any:
            shape = list(v.type.shape)
            func = check_func(shape, tvm_dtype(v.type), dims, index)
            name = names.claim(symbol, "check")
            gvar = bb.add_func(func.with_attr("global_symbol", name), name)
            return bb.emit(relax.call_tir(gvar, relax.Tuple([bind(v)]),
                                          relax.TensorType(shape, "int64")))
        return checked

    with bb.function("main", params):
        with bb.dataflow():
            for index, node in enumerate(graph.nodes):
                symbol = names.claim(f"k{index}", node.name)
                _emit(bb, node, builders[node.op].build, symbol,
                      Kernel(node, bind, constant, checker(index, symbol)), env)
            result = relax.Tuple([bind(v) for v in graph.outputs])
            out = bb.emit_output(result)
        bb.emit_func_output(out)
    return bb.get()


def _emit(bb: Any, node: Node, builder: Builder, symbol: str, k: Kernel,
          env: dict[int, Any]) -> None:
    results = builder(k)
    func = te.create_prim_func([*k.placeholders, *results]).with_attr("global_symbol", symbol)
    gvar = bb.add_func(func, symbol)
    types = [_tensor_type(v) for v in node.outputs]
    call = relax.call_tir(gvar, relax.Tuple(k.args), types[0] if len(types) == 1 else types)
    bound = bb.emit(call)
    if len(types) == 1:
        env[id(node.outputs[0])] = bound
        return
    for i, v in enumerate(node.outputs):
        env[id(v)] = bb.emit(relax.TupleGetItem(bound, i))
