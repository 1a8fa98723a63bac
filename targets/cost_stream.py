"""The modelled cost of the layers that are not tiled kernels: what the chip would spend on
them, so that a model's modelled latency covers every layer.

qnnc's staged C runs these layers as plain C between the staged kernels (the report says
which and why); on the chip, its graph compiler runs them as streams that read their
inputs from off-chip memory and write their outputs back. The model follows that, in three
kinds, each costed from the profile's figures only:

- ``view`` — Reshape, Flatten, Squeeze, Unsqueeze, Identity, BitCast, Retype: a new shape or
  type for the same bytes. No data moves and no kernel is launched: 0 cycles.
- ``dma`` — ops that only move elements (the ops' ``moves_data`` trait: Relayout, Concat,
  Slice, Transpose, Gather, Pad, ...): every input byte read and every output byte written
  once, at the off-chip bandwidth shared by all cores.
- ``vector`` — everything else (element-wise ops, tables, requantisation, float islands such
  as Softmax or LayerNorm, reductions, resizes): its FLOPs (ir/ops/cost.py; at least one per
  output element) on the vector units of every core, ``width_bytes / element bytes`` lanes
  each per cycle, overlapped with streaming its bytes in and out (double-buffered: the
  larger of the two). Float work counts at its own element size (f32: 4 bytes).
- ``fused`` — an element-wise layer that runs in the epilogue of the staged product before
  it (pass fuse-eltwise, targets/fusion.py): its traffic and vector work are the product's
  (targets/cost.py), and it launches nothing: 0 cycles here.
- Control flow (If, Loop, Scan) costs the layers of its bodies once each (a Loop's trip
  count is not known when compiling: one trip is modelled, and the report says so).

Every layer that launches a kernel (all but views) also pays the profile's per-kernel
launch cost (``launch_cycles``), as the tiled layers do.
"""

from __future__ import annotations

from ir.graph import Node, Value
from ir.ops.cost import rule_of
from ir.ops.registry import OPS
from targets.cost import OFFCHIP, LayerCost
from targets.profiles.schema import Profile

#: ops that change only a tensor's shape or type, never its bytes
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "BitCast",
                      "Retype"})


def _bytes(values: list[Value | None]) -> int:
    """Bytes of the streamed (non-constant) tensors among ``values``."""
    total = 0
    for v in values:
        if v is None or v.is_const:
            continue
        nbytes = getattr(v.type, "nbytes", None)
        total += int(nbytes) if nbytes is not None else 0
    return total


def _elem_bytes(node: Node) -> int:
    sizes = [v.type.dtype.np.itemsize for v in list(node.inputs) + list(node.outputs)
             if v is not None and hasattr(v.type, "dtype") and hasattr(v.type.dtype, "np")]
    return max(sizes, default=1)


def stream_kind(node: Node) -> str:
    """``view``, ``dma``, ``vector``, ``fused`` or ``control`` (see the module docstring)."""
    if node.regions:
        return "control"
    if node.attrs.get("fused") == "epilogue":
        return "fused"
    if node.op in VIEW_OPS:
        return "view"
    opdef = OPS.get(node.op)
    return "dma" if opdef is not None and opdef.moves_data else "vector"


def stream_cost(node: Node, name: str, prof: Profile) -> LayerCost:
    """The modelled cost of one untiled layer on ``prof``'s chip."""
    kind = stream_kind(node)
    if kind == "control":
        parts = [stream_cost(n, f"{name}/{body.name}/{n.name}", prof)
                 for body in node.regions for n in body.nodes]
        nbytes = sum(p.offchip_bytes for p in parts)
        cycles = sum(p.cycles for p in parts)
        compute = sum(p.compute_cycles for p in parts)
        return _cost(name, node.op, kind, cycles, compute, nbytes, prof, launches=0)
    if kind in ("view", "fused"):
        return _cost(name, node.op, kind, 0.0, 0.0, 0, prof, launches=0)
    nbytes = _bytes(list(node.inputs)) + _bytes(list(node.outputs))
    bw = prof.offchip.bandwidth / prof.clock_hz  # bytes per cycle, all cores together
    move = nbytes / bw
    if kind == "dma":
        return _cost(name, node.op, kind, move, 0.0, nbytes, prof)
    outs = sum(int(getattr(v.type, "size", 0)) for v in node.outputs if v is not None)
    work = max(rule_of(node)(node)[1], outs)
    lanes = prof.vector.elems_per_cycle(_elem_bytes(node)) * prof.cores
    compute = work / lanes
    return _cost(name, node.op, kind, max(compute, move), compute, nbytes, prof)


def _cost(name: str, op: str, kind: str, cycles: float, compute: float, nbytes: int,
          prof: Profile, launches: int = 1) -> LayerCost:
    bw = prof.offchip.bandwidth / prof.clock_hz
    link = nbytes / bw
    if kind in ("view", "fused"):
        bound = {"view": "free", "fused": "epilogue"}[kind]
    else:
        bound = "compute" if compute >= link and compute > 0 else f"memory ({OFFCHIP})"
    launch = launches * prof.launch_cycles
    return LayerCost(name, op, kind, 0, 1, prof.cores, cycles + launch, compute,
                     {OFFCHIP: link} if nbytes else {},
                     {OFFCHIP: float(nbytes)} if nbytes else {}, nbytes, bound,
                     launch_cycles=launch)
