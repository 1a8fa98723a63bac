"""The cost model: per-tile cycles and bytes of a tiled layer, per-layer and per-model totals.

Model (one definition, used by the tiler's search and by the reports):
- A schedule tiles a layer at every buffer level: ``tiles[0]`` is the level-1 tile (what the
  compute unit works on), ``tiles[-1]`` the outermost one; each level loops over its tiles in
  its ``orders[i]`` (outer to inner) within the tile of the level above. Tiles are uniform:
  the last tile along a dim is moved and computed at full size, as fixed-size DMA descriptors
  and kernels do, so the search prefers sizes that divide the layer.
- An operand tile is (re)loaded into a buffer when one of the loop indices it depends on
  changes; loops it does not depend on that run inside the innermost one it does depend on
  reuse it. Outputs are written when their tile changes; if the reduction loop (c) runs
  outside an output loop, partial sums (int32) go out and come back (2 x per extra visit).
- A *step* is one iteration of the outermost level's loops: its compute (MACs padded to the
  MAC array's block, at the profile's rate), its off-chip bytes (at the chip bandwidth shared
  by the active cores) and its on-chip bytes per buffer (at that buffer's fill rate; 0 = not
  modelled). Transfers into a double-buffered buffer overlap compute (max); the others add.
- Every tile moved over an outer link (off-chip, or the L2) is one transfer, which also pays
  the link's ``setup_bytes`` (a DMA descriptor's fixed cost, as bytes at the link's rate):
  in its time, not in the bytes counted.
- Steps are spread over the cores: latency = sum of step times x ceil(S / cores) / S, plus
  the profile's per-kernel launch cost (``launch_us``: launching the layer's kernel and
  synchronising after it), plus the pipeline's fill and drain: a core's first step loads
  before any compute starts and its last step writes after all of it, so
  ``min(step compute, first step's loads + last step's writes)`` over the outer links is
  exposed (compute-bound: the transfers; transfer-bound: one step's compute, which is then
  what no transfer hides; one step: loads + compute + writes, exactly). Only transfers that
  overlap compute count here; single-buffered ones already add to their step's time.
- An operand the L2 holds between layers (``Problem.resident``) crosses the L2 link instead
  of the off-chip one at the outermost level: at the L2's bandwidth where the profile gives
  one, overlapped with compute; free where none is published.
- Layers that are not tiled kernels are costed by targets/cost_stream.py (data movement at
  the off-chip bandwidth, element-wise work on the vector units), so a model's totals cover
  every layer.
Totals are sums over steps, grouped by which loop advanced (steps in a group cost the same).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Protocol

from targets.profiles.schema import Buffer, Profile
from targets.tiling.problem import C, Problem, Tile, cdiv

OFFCHIP = "offchip"


@dataclass(frozen=True)
class Schedule:
    """Tile sizes and loop orders per level; index 0 = level 1 (innermost)."""

    tiles: tuple[Tile, ...]
    orders: tuple[tuple[int, ...], ...]


def outer_link(prob: Problem, prof: Profile, operand: str) -> str:
    """The link ``operand`` crosses into its outermost buffer: the L2 when the layer's
    ``resident`` operands hold it there (targets/tiling/residency.py), else off-chip."""
    if operand in prob.resident and prof.l2 is not None:
        return prof.l2.name
    return OFFCHIP


def levels_used(prob: Problem, prof: Profile) -> int:
    """Vector problems stream through level 1 only; matrix problems use every level."""
    return 1 if prob.unit == "vector" else prof.levels


def staged_buffer(prob: Problem, prof: Profile, operand: str, level: int) -> Buffer | None:
    """The buffer holding ``operand`` at ``level`` (None: it passes through that level)."""
    return _staged(prob.unit, prof, operand, level)


@lru_cache(maxsize=1024)
def _staged(unit: str, prof: Profile, operand: str, level: int) -> Buffer | None:
    if unit == "vector" and level == 1:
        vb = prof.buffer_for(1, "vector")
        if vb is not None:
            return vb
    if operand == "outputs":
        return prof.buffer_for(level, "outputs") or prof.buffer_for(level, "accumulators")
    return prof.buffer_for(level, operand)


def _align(n: int, a: int) -> int:
    return cdiv(n, a) * a if n else 0


@dataclass(frozen=True)
class Region:
    """Where one operand's tile of one level lives: ``buffer`` from ``offset``, ``nbytes``
    per copy (aligned), ``copies`` = 2 when the buffer ping-pongs. ``role`` is inputs,
    weights, outputs or acc (the level-1 accumulators); ``elem`` the bytes of one element
    the region holds (outputs that may hold partial sums hold int32)."""

    buffer: str
    role: str
    level: int
    offset: int
    nbytes: int
    copies: int
    elem: int

    @property
    def end(self) -> int:
        return self.offset + self.nbytes * self.copies


def regions(prob: Problem, prof: Profile, tiles: tuple[Tile, ...]) -> list[Region]:
    """The buffer regions of every operand tile at every level, placed one after another in
    each buffer. The generated kernels allocate exactly these; :func:`occupancy` sums them."""
    out: list[Region] = []
    used: dict[str, int] = {}

    def put(b: Buffer | None, role: str, lv: int, nbytes: int, elem: int) -> None:
        if b is None or not nbytes:
            return
        size = _align(nbytes, b.alignment)
        copies = 2 if b.double_buffered else 1
        at = used.get(b.name, 0)
        out.append(Region(b.name, role, lv, at, size, copies, elem))
        used[b.name] = at + size * copies

    for lv, t in enumerate(tiles, start=1):
        put(staged_buffer(prob, prof, "inputs", lv), "inputs", lv, prob.input_bytes(t, prof),
            prob.in_bytes)
        if prob.has_weights:
            put(staged_buffer(prob, prof, "weights", lv), "weights", lv,
                prob.weight_bytes(t, prof), prob.w_bytes)
        if lv == 1 and prob.acc_bytes:
            acc = (prof.buffer_for(1, "vector") if prob.unit == "vector" else None) or \
                prof.buffer_for(1, "accumulators")
            put(acc, "acc", 1, prob.acc_tile_bytes(t, prof), prob.acc_bytes)
            outb = prof.buffer_for(1, "outputs")
            if prob.epilogue_ops:  # the finished tile goes through the vector buffer instead
                vb = prof.buffer_for(1, "vector")
                box = prob.output_bytes(t, prof, 1)
                put(vb, "epilogue_y", 1, box, 1)  # the product's result
                put(vb, "epilogue_in", 1, prob.epilogue_bytes(t, prof), 1)  # other operands
                put(vb, "epilogue_out", 1, box, 1)  # the element-wise layer's result
            elif outb is not None and outb is not acc and prob.unit == "matrix":
                put(outb, "outputs", 1, prob.output_bytes(t, prof), prob.out_bytes)
        elif lv == 1:
            put(staged_buffer(prob, prof, "outputs", 1), "outputs", 1,
                prob.output_bytes(t, prof), prob.out_bytes)
        else:
            b = staged_buffer(prob, prof, "outputs", lv)
            if b is not None:
                # partial sums pass through when the reduction is split above this level
                partial = prob.acc_bytes and t[C] < prob.sizes[C]
                elem = prob.out_bytes if b.holds("outputs") and not partial else prob.acc_bytes
                put(b, "outputs", lv, prob.output_bytes(t, prof, elem), elem)
    return out


def occupancy(prob: Problem, prof: Profile, tiles: tuple[Tile, ...]) -> dict[str, int]:
    """Bytes each buffer needs for these tiles: aligned parts, doubled where ping-ponged."""
    occ: dict[str, int] = {}
    for r in regions(prob, prof, tiles):
        occ[r.buffer] = max(occ.get(r.buffer, 0), r.end)
    return occ


def overflow(prob: Problem, prof: Profile,
             tiles: tuple[Tile, ...]) -> tuple[Buffer, int] | None:
    """The first buffer these tiles overflow, with the bytes they need (None: all fit)."""
    for name, need in occupancy(prob, prof, tiles).items():
        b = prof.buffer(name)
        if need > b.per_core_bytes:
            return b, need
    return None


# -- per-step costs ----------------------------------------------------------------------


@dataclass(frozen=True)
class StepClass:
    """``count`` steps that cost the same: the steps on which top loop ``advanced`` moved
    (-1: the first step)."""

    advanced: int
    count: int
    compute: float  # cycles of one step
    bytes: dict[str, float]  # link (buffer name or "offchip") -> bytes of one step
    time: float  # cycles of one step on one core


@dataclass
class LayerCost:
    name: str
    op: str
    unit: str
    macs: int
    steps: int
    cores_used: int
    cycles: float
    compute_cycles: float  # sum over steps, one core's view
    link_cycles: dict[str, float]  # sum over steps per link
    bytes: dict[str, float]  # sum over steps per link
    compulsory_bytes: int
    bound: str
    classes: list[StepClass] = field(default_factory=list)
    launch_cycles: float = 0.0  # the profile's per-kernel launch cost, included in cycles
    fill_drain_cycles: float = 0.0  # the pipeline's fill and drain, included in cycles

    @property
    def offchip_bytes(self) -> float:
        return self.bytes.get(OFFCHIP, 0.0)

    def seconds(self, prof: Profile) -> float:
        return self.cycles / prof.clock_hz


def _trips(sched: Schedule, full: Tile) -> list[list[tuple[int, int]]]:
    """Per level (index 0 = level 1): its loops as (dim, trips), outer to inner."""
    out = []
    for lv, (t, order) in enumerate(zip(sched.tiles, sched.orders)):
        above = sched.tiles[lv + 1] if lv + 1 < len(sched.tiles) else full
        out.append([(d, cdiv(above[d], t[d])) for d in order])
    return out


def _loads(loops: list[tuple[int, int]], dims: frozenset[int]) -> int:
    """Tile loads over ``loops``: trips up to the innermost loop the operand depends on."""
    last = -1
    for i, (d, n) in enumerate(loops):
        if n > 1 and d in dims:
            last = i
    total = 1
    for _, n in loops[: last + 1]:
        total *= n
    return total


def _distinct(loops: list[tuple[int, int]], dims: frozenset[int]) -> int:
    total = 1
    for d, n in loops:
        if d in dims:
            total *= n
    return total


def evaluate(prob: Problem, prof: Profile, sched: Schedule) -> LayerCost:
    """The modelled cost of running ``prob`` with ``sched`` on ``prof`` (see module doc),
    the kernel's launch included."""
    c = evaluate_steps(prob, prof, sched)
    return replace(c, cycles=c.cycles + prof.launch_cycles, launch_cycles=prof.launch_cycles)


def evaluate_steps(prob: Problem, prof: Profile, sched: Schedule) -> LayerCost:
    """:func:`evaluate` without the launch, which every schedule of a layer pays alike: what
    the tiler compares (a constant added to every candidate would only blur near-ties)."""
    nl = len(sched.tiles)
    full = prob.sizes
    loops = _trips(sched, full)  # loops[lv]: level lv+1
    top = [(d, n) for d, n in loops[-1] if n > 1]
    steps = 1
    for _, n in top:
        steps *= n
    cores = min(prof.cores, steps)
    off_bw = prof.offchip.bandwidth / prof.clock_hz / cores  # bytes per cycle per core
    l2_name = prof.l2.name if prof.l2 is not None else None
    # the L2's bandwidth per core, or 0 where no figure is published (its moves then cost
    # nothing beyond the compute they overlap)
    l2_bw = prof.l2.bandwidth / prof.clock_hz / cores if prof.l2 is not None else 0.0
    tiles_per_step = 1
    for lv in range(nl - 1):
        for _, n in loops[lv]:
            tiles_per_step *= n
    compute = prob.tile_work(sched.tiles[0], prof) * tiles_per_step
    all_loops = [x for level in reversed(loops) for x in level]
    out_dims = prob.dims_of("outputs")
    if prob.epilogue_ops:
        # the vector unit runs the epilogue of each finished output tile while the matrix
        # unit goes on with the next (a pipeline): a step takes the longer of the two
        finals = _distinct(all_loops, out_dims)
        compute = max(compute, prob.epilogue_work(sched.tiles[0], prof) * finals / steps)

    # per operand: (link, dims, bytes per load, the loops inside a step, partial-sum factor)
    flows = []
    for op in prob.operands:
        staged = [lv for lv in range(1, nl + 1) if staged_buffer(prob, prof, op, lv)]
        dims = prob.dims_of(op)
        for i, lv in enumerate(staged):
            buf = staged_buffer(prob, prof, op, lv)
            assert buf is not None
            parent_on_chip = i + 1 < len(staged)
            link = buf.name if parent_on_chip else outer_link(prob, prof, op)
            t = sched.tiles[lv - 1]
            inner = [x for level in reversed(loops[lv - 1: nl - 1]) for x in level]
            if op == "inputs":
                per = float(prob.input_bytes(t, prof))
            elif op == "weights":
                per = float(prob.weight_bytes(t, prof))
            else:
                nest = [x for level in reversed(loops[lv - 1:]) for x in level]
                visits = _loads(nest, dims)
                distinct = _distinct(nest, dims)
                reduce_split = any(d == C and n > 1 for d, n in nest)
                r = visits / distinct if reduce_split else 1.0
                avg = (prob.out_bytes + 2 * (r - 1) * prob.acc_bytes) / r
                per = float(prob.output_bytes(t, prof, 1)) * avg
            flows.append((op, link, buf, dims, per, inner))
    if prob.epilogue_ops:
        # the epilogue's operands: one level-1 output tile each, loaded once per finished
        # tile (the last of its visits), into the vector buffer
        vb = prof.buffer_for(1, "vector")
        assert vb is not None
        visits, distinct = _loads(all_loops, out_dims), _distinct(all_loops, out_dims)
        per = float(prob.epilogue_bytes(sched.tiles[0], prof)) * distinct / visits
        inner = [x for level in reversed(loops[: nl - 1]) for x in level]
        flows.append(("epilogue", outer_link(prob, prof, "epilogue"), vb, out_dims, per, inner))

    # one tile moved over an outer link is one transfer, which also pays the link's setup
    setup = {OFFCHIP: prof.offchip.setup_bytes}
    if l2_name is not None and prof.l2 is not None:
        setup[l2_name] = prof.l2.setup_bytes

    def link_time(link: str, nbytes: float) -> float:
        """Cycles of ``nbytes`` (setups included) over an outer link, one core's share."""
        if link == OFFCHIP:
            return nbytes / off_bw
        return nbytes / l2_bw if link == l2_name and l2_bw else 0.0

    classes: list[StepClass] = []
    counts = [(-1, 1)]
    prefix = 1
    for p, (_, n) in enumerate(top):
        counts.append((p, prefix * (n - 1)))
        prefix *= n
    setups: dict[str, float] = {}  # per outer link: the setups' bytes over all steps
    edge = {"fill": 0.0, "drain": 0.0}  # the first step's loads, the last one's writes
    for adv, count in counts:
        nbytes: dict[str, float] = {}
        extra: dict[str, float] = {}  # per outer link: the setups' bytes of one step
        off = {True: 0.0, False: 0.0}  # off-chip bytes into ping-pong / single buffers
        for op, link, buf, dims, per, inner in flows:
            if any(n > 1 and d in dims for d, n in inner):
                k = _loads(inner, dims)
            else:
                last = max((i for i, (d, _) in enumerate(top) if d in dims), default=-2)
                k = 1 if adv == -1 or adv <= last else 0
            if not k:
                continue
            nbytes[link] = nbytes.get(link, 0.0) + k * per
            cost = k * (per + setup.get(link, 0.0))
            if link in setup:
                extra[link] = extra.get(link, 0.0) + k * setup[link]
            if link == OFFCHIP:
                off[buf.double_buffered] += cost
            if adv == -1 and link in setup and (buf.double_buffered or link != OFFCHIP):
                # only transfers that overlap compute (ping-pong, or from the L2) leave a
                # pipeline to fill and drain; the others already add to their step
                edge["drain" if op == "outputs" else "fill"] += link_time(link, cost)
        overlap = [compute, off[True] / off_bw]
        serial = off[False] / off_bw
        for name, nb in extra.items():
            setups[name] = setups.get(name, 0.0) + count * nb
        for name, nb in nbytes.items():
            if name == l2_name:  # transfers from the L2 overlap compute, as off-chip ones do
                overlap.append(link_time(name, nb + extra.get(name, 0.0)))
                continue
            b = prof.buffer(name) if name != OFFCHIP else None
            if b is not None and b.fill_bytes_per_cycle > 0:
                if b.double_buffered:
                    overlap.append(nb / b.fill_bytes_per_cycle)
                else:
                    serial += nb / b.fill_bytes_per_cycle
        classes.append(StepClass(adv, count, compute, nbytes, max(overlap) + serial))

    total_time = sum(c.count * c.time for c in classes)
    totals: dict[str, float] = {}
    for c in classes:
        for k, v in c.bytes.items():
            totals[k] = totals.get(k, 0.0) + c.count * v
    link_cycles = {k: link_time(k, v + setups.get(k, 0.0)) if k in setup else
                   v / (prof.buffer(k).fill_bytes_per_cycle or float("inf"))
                   for k, v in totals.items()}
    compute_total = compute * steps
    worst = max(link_cycles.items(), key=lambda kv: kv[1], default=("", 0.0))
    bound = "compute" if compute_total >= worst[1] else f"memory ({worst[0]})"
    # each core's pipeline fills (its first step's loads before any compute) and drains (its
    # last step's writes after all of it): what no compute hides, at most one step's compute
    # when the transfers dominate (then one step's compute is what no transfer hides)
    fill_drain = min(compute, edge["fill"] + edge["drain"])
    cycles = total_time * cdiv(steps, cores) / steps + fill_drain
    return LayerCost(prob.name, prob.op, prob.unit, prob.macs, steps, cores, cycles,
                     compute_total, link_cycles, totals, prob.compulsory_bytes(), bound,
                     classes, fill_drain_cycles=fill_drain)


# -- per model ---------------------------------------------------------------------------


class _Planned(Protocol):
    cost: LayerCost


@dataclass
class ModelCost:
    """Totals over every layer of a model: the tiled ones and the streamed ones."""

    target: str
    layers: int
    cycles: float
    seconds: float
    macs: int
    matrix_macs: int
    offchip_bytes: float
    compulsory_bytes: int
    compute_cycles: float
    peak_tops: float  # the profile's published INT8 TOPS

    @property
    def achieved_tops(self) -> float:
        return 2 * self.matrix_macs / self.seconds / 1e12 if self.seconds else 0.0

    @property
    def utilisation(self) -> float:
        """Achieved INT8 ops per second (matrix layers' useful MACs x 2) / the peak."""
        return self.achieved_tops / self.peak_tops

    @property
    def intensity(self) -> float:
        """Useful ops per off-chip byte (the roofline's x axis)."""
        return 2 * self.matrix_macs / self.offchip_bytes if self.offchip_bytes else 0.0


def model_cost(plans: Iterable[_Planned], prof: Profile) -> ModelCost:
    """Sum the layer costs of ``plans`` (layers run one after another), with the streamed
    layers' costs when ``plans`` carries them (TilePlans.streams)."""
    items = [p.cost for p in plans] + list(getattr(plans, "streams", {}).values())
    cycles = sum(c.cycles for c in items)
    return ModelCost(
        target=prof.name, layers=len(items), cycles=cycles, seconds=cycles / prof.clock_hz,
        macs=sum(c.macs for c in items),
        matrix_macs=sum(c.macs for c in items if c.unit == "matrix"),
        offchip_bytes=sum(c.offchip_bytes for c in items),
        compulsory_bytes=sum(c.compulsory_bytes for c in items),
        compute_cycles=sum(c.compute_cycles for c in items), peak_tops=prof.int8_tops)


def roofline(mc: ModelCost, prof: Profile) -> str:
    """One paragraph: where the model sits against the chip's compute and bandwidth roofs."""
    ridge = prof.int8_tops * 1e12 / prof.offchip.bandwidth  # ops per byte at the ridge
    attainable = min(prof.int8_tops, mc.intensity * prof.offchip.bandwidth / 1e12)
    side = "memory" if mc.intensity < ridge else "compute"
    return (
        f"{prof.name}: {mc.seconds * 1e3:.3f} ms modelled, {mc.achieved_tops:.2f} of "
        f"{prof.int8_tops:g} INT8 TOPS ({100 * mc.utilisation:.1f}%); intensity "
        f"{mc.intensity:.1f} ops/byte vs ridge {ridge:.1f} -> {side}-bound side, roof "
        f"{attainable:.1f} TOPS; off-chip {mc.offchip_bytes / 1e6:.1f} MB = "
        f"{mc.offchip_bytes / max(mc.compulsory_bytes, 1):.2f}x the compulsory "
        f"{mc.compulsory_bytes / 1e6:.1f} MB")
