"""Element-wise layers between float layers stay float.

The quantiser gives an Add or a Mul its integer form whenever its inputs can be quantised,
even when every input comes from a layer that stayed float and every reader of its result is
a float layer again: the integer form then quantises both inputs and dequantises the result
at once, for no integer work saved, and each of those quantisations may lose the signal. A
magnitude sqrt(re^2 + im^2) shows how badly (Silero VAD's STFT): the squares span twice the
dynamic range of re and im in dB, so one scale calibrated on loud chunks leaves the squares
of a quiet chunk at 0-3 dB, and the model's speech decision flips. This pass-within-the-
quantiser finds such sandwiches in the quantised graph — a QAdd or QMul whose every operand
is a Quantize read by nothing else and whose result only Dequantize nodes read, without a
fused activation clamp — and puts the float op back in their place.
"""

from __future__ import annotations

import numpy as np

from ir.build import make_node
from ir.graph import Graph, Node

#: integer element-wise ops and the float op each stands for
FLOAT_OF = {"QAdd": "Add", "QMul": "Mul"}


def _clamped(node: Node) -> bool:
    """Whether the op's integer form fuses an activation (act_min/act_max narrower than its
    type): the float op alone would not compute it."""
    a = node.attrs
    if "act_min" not in a:
        return False
    info = np.iinfo(node.outputs[0].type.dtype.np)
    return int(a["act_min"]) > int(info.min) or int(a["act_max"]) < int(info.max)


def keep_float_sandwiches(graph: Graph) -> int:
    """Replace each sandwiched QAdd/QMul (module docstring) by its float op, in place;
    returns how many were replaced."""
    replaced = 0
    while True:
        producers, users = graph.producers(), graph.users()
        outputs = {id(v) for v in graph.outputs}
        found = next((m for m in (_match(n, producers, users, outputs) for n in graph.nodes)
                      if m is not None), None)
        if found is None:
            return replaced
        node, quants, readers = found
        gone = {id(node), *(id(r) for r in readers), *(id(q) for q in quants)}
        at = graph.nodes.index(node)
        at -= sum(1 for n in graph.nodes[:at] if id(n) in gone)  # its place once they go
        graph.nodes = [n for n in graph.nodes if id(n) not in gone]
        name = node.outputs[0].name  # the model's name of the sum or product
        for n in [node, *readers, *quants]:
            for v in n.outputs:
                graph.release_name(v.name)
        fop = FLOAT_OF[node.op]
        same = tuple(node.sources) == ((fop, node.name),)  # nothing to tell in loc(...)
        new = make_node(graph, fop, [q.operand("x") for q in quants], {}, name=node.name,
                        append=False, out_names=[name], sources=() if same else node.sources)
        graph.nodes.insert(at, new)
        for r in readers:
            graph.replace_uses(r.outputs[0], new.outputs[0])
        replaced += 1


def _match(node: Node, producers: dict, users: dict,
           outputs: set[int]) -> tuple[Node, list[Node], list[Node]] | None:
    if node.op not in FLOAT_OF or len(node.outputs) != 1 or _clamped(node):
        return None
    quants = [producers.get(id(v)) if v is not None else None for v in node.inputs]
    for q, v in zip(quants, node.inputs):
        if q is None or q.op != "Quantize" or len(users.get(id(v), [])) != 1 \
                or id(v) in outputs:
            return None
    y = node.outputs[0]
    readers = users.get(id(y), [])
    if not readers or id(y) in outputs or any(r.op != "Dequantize" for r in readers):
        return None
    return node, quants, readers  # type: ignore[return-value]
