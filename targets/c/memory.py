"""The arena planner: where every intermediate tensor lives in one static buffer.

Generated code never calls malloc. Values are grouped into storages first:
- views (Reshape, Identity, ...) share their input's storage, as long as a storage holds at
  most one external buffer (a graph input, a constant or a graph output);
- a storage holding a graph output *is* the caller's output buffer, so the producing layer
  writes there directly;
- an elementwise op may run in place when its input's storage dies at that op;
- a Concat whose inputs are whole blocks of its result (every axis before the joined one
  has extent 1, e.g. channels of one image) has them computed in place: each input's storage
  moves into the result's at the input's byte offset (``MemoryPlan.within``), so its producer
  writes straight into the joined tensor and the Concat copies only the inputs it could not
  place (a graph input or constant, a value joined twice, one already placed elsewhere).
  Nested Concats (DenseNet's growing blocks) place recursively.
A region body (If, Loop, Scan) is planned on its own (``body=True``): its inputs are arena
buffers the control flow fills before the body runs, alive through the whole body as its
outputs are (the control flow reads them after it), and the body's arena becomes the scratch
space of the node that owns it, so nothing in a body outlives or overlaps wrongly with the
outer graph.

The remaining (arena) storages get offsets by greedy best-fit by size: largest first, each
put in the smallest gap left by storages whose lifetimes overlap its own. Offsets are aligned
to 64 bytes (a cache line, and an AVX-512 register).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ir.graph import Graph, Node, Value

ALIGN = 64

#: ops whose output is the input's bytes, unchanged (row-major reinterpretation)
VIEW_OPS = frozenset({"Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze", "Retype"})


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class Storage:
    """One buffer: external (``kind`` input/output/const with ``index``) or in the arena."""

    kind: str  # "arena" | "input" | "output" | "const"
    index: int = -1
    nbytes: int = 0
    first: int = 0  # node index of the first write
    last: int = 0  # node index of the last read
    offset: int = -1
    members: list[int] = field(default_factory=list)  # ids of the values it holds


@dataclass
class MemoryPlan:
    storage_of: dict[int, Storage]  # id(value) -> its storage
    scratch: dict[int, Storage]  # node index -> its scratch storage
    arena_bytes: int
    inplace: set[int]  # node indices that run in place
    copies: list[tuple[Value, int]]  # graph outputs filled by a copy: (source value, out idx)
    #: id(value) -> its byte offset inside its storage (0 unless a Concat placed it there)
    within: dict[int, int] = field(default_factory=dict)
    #: Concat node index -> positions of the inputs already in place in its result
    placed: dict[int, frozenset[int]] = field(default_factory=dict)

    def at(self, v: Value) -> int:
        """Byte offset of ``v`` inside its storage."""
        return self.within.get(id(v), 0)

    def same_place(self, a: Value, b: Value) -> bool:
        """Whether ``a`` and ``b`` start at the same byte of the same storage."""
        return self.storage_of[id(a)] is self.storage_of[id(b)] and self.at(a) == self.at(b)

    def any_overlap(self, values: list[Value], nbytes: Callable[[Value], int]) -> bool:
        """Whether the bytes of any two of ``values`` (``nbytes`` each) may overlap: two in
        one storage whose byte ranges meet (a value and its view, an element-wise layer run
        in place), not two blocks a Concat placed side by side."""
        spans = sorted((id(self.storage_of[id(v)]), self.at(v), max(nbytes(v), 1))
                       for v in values)
        return any(s == t and lo + n > at for (s, lo, n), (t, at, _) in zip(spans, spans[1:]))

    def storages(self) -> list[Storage]:
        seen: dict[int, Storage] = {}
        for s in list(self.storage_of.values()) + list(self.scratch.values()):
            seen[id(s)] = s
        return list(seen.values())


def plan_memory(
    graph: Graph,
    *,
    inplace_ok: Callable[[Node], bool],
    scratch_bytes: Callable[[Node], int],
    nbytes_of: Callable[[Value], int] = lambda v: v.type.nbytes,
    body: bool = False,
    guard: int = 0,
    written_before: Callable[[Node], bool] = lambda n: False,
    contiguous: Callable[[Value], bool] = lambda v: False,
) -> MemoryPlan:
    """Plan storage for ``graph``. ``inplace_ok(node)`` says if the op may write over its
    first same-shaped input; ``scratch_bytes(node)`` is the temporary space a layer needs;
    ``nbytes_of(value)`` its stored size (a padded layout stores more than its elements).
    ``body``: plan a region body (module docstring). ``guard``: bytes left free after every
    arena buffer, which the sanitizer build poisons (targets/c/guards.py), so an overflow
    into the neighbouring buffer is caught. ``written_before(node)``: the node's outputs are
    written by the node before it (an element-wise layer run in a product's epilogue), so
    they are alive from there. ``contiguous(value)``: the value is stored row-major, exactly its
    elements (no target layout), so a Concat may place it inside its result."""
    st: dict[int, Storage] = {}
    end = len(graph.nodes)
    for k, v in enumerate(graph.inputs):
        if body:
            st[id(v)] = Storage("arena", nbytes=nbytes_of(v), first=-1, last=end,
                                members=[id(v)])
        else:
            st[id(v)] = Storage("input", k, members=[id(v)])
    for v in graph.constants:
        st[id(v)] = Storage("const", members=[id(v)])
    out_index: dict[int, int] = {}
    copies: list[tuple[Value, int]] = []
    for k, v in enumerate(graph.outputs if not body else ()):
        if id(v) in st or id(v) in out_index:
            copies.append((v, k))  # an input/constant/repeated output: copied in qnnc_run
        else:
            out_index[id(v)] = k

    def merge(keep: Storage, gone: Storage) -> None:
        for m in gone.members:
            st[m] = keep
        keep.members += gone.members
        keep.first, keep.last = min(keep.first, gone.first), max(keep.last, gone.last)
        keep.nbytes = max(keep.nbytes, gone.nbytes)

    # 1. every node output gets its own storage; views merge into their input's
    for i, node in enumerate(graph.nodes):
        for v in node.outputs:
            k = out_index.get(id(v))
            s = Storage("output", k) if k is not None else Storage("arena")
            first = i - 1 if i and written_before(node) else i
            s.nbytes, s.first, s.last, s.members = nbytes_of(v), first, i, [id(v)]
            st[id(v)] = s
        src = node.first_operand()
        if node.op in VIEW_OPS and src is not None:
            a, b = st[id(src)], st[id(node.outputs[0])]
            if a.kind == "arena" or b.kind == "arena":
                keep, gone = (b, a) if a.kind == "arena" else (a, b)
                merge(keep, gone)
    # 1b. Concat inputs computed in place inside the Concat's result
    within: dict[int, int] = {}
    placed = _place_concats(graph, st, within, nbytes_of, contiguous)
    packed = {id(st[m]) for m in within}
    # 2. lifetimes: the last node reading any member (a body's outputs: its end)
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v is not None:
                s = st[id(v)]
                s.last = max(s.last, i)
    if body:
        for v in graph.outputs:
            st[id(v)].last = end
    # 3. in place: an elementwise op whose input storage dies here
    inplace: set[int] = set()
    for i, node in enumerate(graph.nodes):
        if not inplace_ok(node) or len(node.outputs) != 1:
            continue
        out = node.outputs[0]
        so = st[id(out)]
        for v in node.inputs:
            if v is None or v.type.shape != out.type.shape or v.type.dtype != out.type.dtype:
                continue
            si = st[id(v)]
            others = [w for w in node.inputs if w is not None and w is not v]
            if (si.kind == "arena" and so.kind == "arena" and si is not so and si.last == i
                    and id(si) not in packed and id(so) not in packed
                    and all(st[id(w)] is not si for w in others)):
                merge(si, so)
                inplace.add(i)
                break
    # 4. scratch space, alive during one node only
    scratch: dict[int, Storage] = {}
    for i, node in enumerate(graph.nodes):
        n = scratch_bytes(node)
        if n > 0:
            scratch[i] = Storage("arena", nbytes=n, first=i, last=i)
    arena = [s for s in {id(s): s for s in st.values()}.values() if s.kind == "arena"]
    arena += list(scratch.values())
    total = _place(arena, guard)
    return MemoryPlan(st, scratch, total, inplace, copies, within, placed)


def _place_concats(graph: Graph, st: dict[int, Storage], within: dict[int, int],
                   nbytes_of: Callable[[Value], int],
                   contiguous: Callable[[Value], bool]) -> dict[int, frozenset[int]]:
    """Move the storage of each Concat input that is a whole block of the result into the
    result's storage at the block's byte offset (``within``); returns, per Concat node index,
    the positions placed. In graph order, so an inner Concat's result, placed into an outer
    one, takes its own placed inputs along."""
    placed: dict[int, frozenset[int]] = {}
    for i, node in enumerate(graph.nodes):
        if node.op != "Concat" or len(node.outputs) != 1:
            continue
        y = node.outputs[0]
        ys = st[id(y)]
        shape = y.type.shape
        if (ys.kind not in ("arena", "output") or not contiguous(y)
                or nbytes_of(y) != y.type.nbytes
                or any(d != 1 for d in shape[:node.attrs["axis"]])):
            continue
        counts: dict[int, int] = {}
        for x in node.inputs:
            if x is not None:
                counts[id(x)] = counts.get(id(x), 0) + 1
        at = within.get(id(y), 0)
        done = []
        for k, x in enumerate(node.inputs):
            if x is None:
                continue
            xs = st[id(x)]
            size = x.type.nbytes
            if (counts[id(x)] == 1 and xs.kind == "arena" and xs is not ys and xs.first >= 0
                    and contiguous(x) and nbytes_of(x) == size and xs.nbytes == size
                    and within.get(id(x), 0) == 0):
                for m in xs.members:
                    st[m] = ys
                    within[m] = within.get(m, 0) + at
                ys.members += xs.members
                ys.first, ys.last = min(ys.first, xs.first), max(ys.last, xs.last)
                done.append(k)
            at += size
        if done:
            placed[i] = frozenset(done)
    return placed


def _place(bufs: list[Storage], guard: int = 0) -> int:
    """Greedy best-fit by size; returns the arena size in bytes.

    Largest first, each buffer goes into the smallest gap between the buffers already
    placed whose lifetimes overlap its own, else above them all. The placed buffers are kept
    sorted by offset in arrays, so each placement is a few vector operations (a Concat of
    5,000 inputs, all alive at once, plans in a fraction of a second)."""
    offs = np.zeros(0, np.int64)  # placed buffers, sorted by offset
    ends = np.zeros(0, np.int64)
    firsts = np.zeros(0, np.int64)
    lasts = np.zeros(0, np.int64)
    total = 0
    for b in sorted(bufs, key=lambda s: (-s.nbytes, s.first)):
        size = align(max(b.nbytes, 1)) + guard
        live = (firsts <= b.last) & (lasts >= b.first)
        lo, hi = offs[live], ends[live]
        # the end of everything below each live buffer: where the gap before it starts
        below = np.maximum.accumulate(np.concatenate(([0], hi)))
        gaps = lo - below[:-1]
        fit = np.flatnonzero(gaps >= size)
        if fit.size:
            b.offset = int(below[fit[np.argmin(gaps[fit])]])
        else:
            b.offset = int(below[-1])
        at = int(np.searchsorted(offs, b.offset, side="right"))
        offs = np.insert(offs, at, b.offset)
        ends = np.insert(ends, at, b.offset + size)
        firsts = np.insert(firsts, at, b.first)
        lasts = np.insert(lasts, at, b.last)
        total = max(total, b.offset + size)
    return total
