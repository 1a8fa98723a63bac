"""Which activations stay in the chip's L2 between layers instead of going to off-chip memory.

A chip with an on-chip L2 (Ascend's, in its profile's ``l2``) keeps a layer's output there
when the next layers read it soon enough; its graph compiler plans that. qnnc plans it the
same way, once, before tiling:

- a candidate is an activation a staged layer writes and only staged layers read (not a graph
  output, not read by host-side layers or relayouts, which work in plain off-chip memory);
- a staged layer reads its streamed inputs as one operand, so a candidate read together with
  a non-candidate is dropped (until no such reader is left);
- candidates are then placed in graph order while the L2 holds them: a tensor occupies its
  padded bytes (channels rounded up to the layout's channel block) from the layer that
  writes it to the last layer that reads it; one that would overflow the L2 at its writer is
  dropped, and the readers' constraint applied again.

The result marks each staged layer's ``inputs``, ``epilogue`` and/or ``outputs`` operand as
L2-resident; its moves at the outermost level then cross the L2 link instead of the off-chip
one, in the cost model and in the staged C's counters alike. A product with an element-wise
layer in its epilogue (targets/fusion.py) is one staged layer with three operands: its own
inputs, the element-wise layer's other operands (``epilogue``) and the element-wise layer's
result (``outputs``); its own result never leaves the chip, so it takes no L2 space.
"""

from __future__ import annotations

import math

from ir.graph import Graph, Node, Value
from targets.fusion import epilogue_operands, fused_consumer, fused_producer
from targets.profiles.schema import Profile
from targets.staged.support import staged_kind


def _streamed(node: Node) -> list[Value]:
    """The activation operands of a staged layer (constants stay with the weights)."""
    return [v for v in node.inputs if v is not None and v.data is None]


def _groups(graph: Graph, node: Node) -> dict[str, list[Value]]:
    """A staged layer's streamed operands by role (``inputs``, ``epilogue``), each read as
    one operand; an element-wise layer fused into the layer before has none of its own."""
    if fused_producer(graph, node) is not None:
        return {}
    consumer = fused_consumer(graph, node)
    if consumer is None:
        return {"inputs": _streamed(node)}
    return {"inputs": _streamed(node),
            "epilogue": [v for v in epilogue_operands(consumer, node) if v.data is None]}


def _result(graph: Graph, node: Node) -> Value | None:
    """What a staged layer stores: its result, or its fused element-wise layer's."""
    if len(node.outputs) != 1 or fused_producer(graph, node) is not None:
        return None
    consumer = fused_consumer(graph, node)
    return (consumer or node).outputs[0]


def _padded_bytes(v: Value, prof: Profile) -> int:
    shape = list(v.type.shape)
    if len(shape) == 4:
        blk = prof.layout.channel_block
        shape[1] = -(-shape[1] // blk) * blk
    return math.prod(shape) * v.type.dtype.np.itemsize


def choose_resident(graph: Graph, prof: Profile) -> dict[int, tuple[str, ...]]:
    """id(node) -> the operands of that staged layer held in the L2 (``inputs``,
    ``outputs``); layers with none are absent. Empty when the profile has no L2."""
    if prof.l2 is None or prof.l2.bytes <= 0:
        return {}
    staged = {id(n) for n in graph.nodes if staged_kind(n) is not None}
    users = graph.users()
    outputs = {id(v) for v in graph.outputs}
    position = {id(n): i for i, n in enumerate(graph.nodes)}
    groups = {id(n): _groups(graph, n) for n in graph.nodes if id(n) in staged}
    cand: dict[int, Value] = {}
    for n in graph.nodes:
        v = _result(graph, n) if id(n) in staged else None
        if v is None:
            continue
        readers = users.get(id(v), [])
        if readers and id(v) not in outputs and all(id(r) in staged for r in readers):
            cand[id(v)] = v
    while True:
        _drop_mixed_readers(groups, cand)
        over = _first_overflow(graph, cand, users, position, prof)
        if over is None:
            break
        del cand[over]
    out: dict[int, tuple[str, ...]] = {}
    for n in graph.nodes:
        if id(n) not in staged:
            continue
        roles = tuple(role for role, vs in groups[id(n)].items()
                      if vs and all(id(v) in cand for v in vs))
        result = _result(graph, n)
        if result is not None and id(result) in cand:
            roles += ("outputs",)
        if roles:
            out[id(n)] = roles
    return out


def _drop_mixed_readers(groups: dict[int, dict[str, list[Value]]],
                        cand: dict[int, Value]) -> None:
    changed = True
    while changed:
        changed = False
        for roles in groups.values():
            for ins in roles.values():
                inside = [v for v in ins if id(v) in cand]
                if inside and len(inside) < len(ins):
                    for v in inside:
                        del cand[id(v)]
                    changed = True


def _first_overflow(graph: Graph, cand: dict[int, Value], users: dict[int, list[Node]],
                    position: dict[int, int], prof: Profile) -> int | None:
    """The first candidate (in graph order) that does not fit beside the live ones."""
    assert prof.l2 is not None
    last = {k: max(position[id(r)] for r in users[k]) for k in cand}
    live: dict[int, int] = {}
    for i, n in enumerate(graph.nodes):
        for k in [k for k in live if last[k] < i]:
            del live[k]
        for v in n.outputs:
            if id(v) in cand:
                size = _padded_bytes(v, prof)
                if sum(live.values()) + size > prof.l2.bytes:
                    return id(v)
                live[id(v)] = size
    return None
