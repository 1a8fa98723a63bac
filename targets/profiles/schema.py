"""Target profiles as plain data: the figures a tiler and a cost model need, each with its source.

A profile describes one chip from the point of view of ONE core (cube core, MLU core, NPU core,
CPU core): its matrix unit (MACs per cycle per data type and the block shape it computes in),
its vector unit, the on-chip buffers it stages tiles through, and the off-chip memory all cores
share. Buffers carry a ``level`` (1 = next to the compute units, 2 = the staging buffer that
feeds level 1, ...), the ``roles`` they hold and whether they are double-buffered (ping-pong),
which is what the tiler needs to decide what fits and the cost model to decide what overlaps.

Every figure has a source: a publication, a documentation file, "measured ...", "derived: ..."
(with the arithmetic) or "assumed: ..." (with the reasoning). ``sources`` maps a field name to
its source; :func:`validate` refuses a built-in profile with an unsourced figure and fills a
default ("user file") for user profiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ir.errors import QnncError

#: what a buffer may hold. "vector" is the working memory of the vector unit (Ascend's UB).
ROLES = ("inputs", "weights", "outputs", "accumulators", "vector")
SCOPES = ("core", "cluster", "chip")
ACT_DTYPES = ("u8", "i8")
DTYPE_BYTES = {"i8": 1, "u8": 1, "i16": 2, "f16": 2, "bf16": 2, "i32": 4, "f32": 4}


class ProfileError(QnncError, ValueError):
    """A target profile is malformed; the message names the profile and the field."""


@dataclass(frozen=True)
class Buffer:
    """One on-chip memory a core stages tiles through.

    ``bytes`` is the usable capacity of the whole buffer; a buffer shared by several cores
    (``shared_by`` > 1, e.g. a cluster SRAM) gives each core ``bytes // shared_by``.
    ``fill_bytes_per_cycle`` is the rate at which one core fills this buffer from the level
    above (0 = from off-chip memory at its bandwidth).
    """

    name: str
    bytes: int
    alignment: int
    roles: tuple[str, ...]
    level: int
    scope: str = "core"
    shared_by: int = 1
    double_buffered: bool = False
    fill_bytes_per_cycle: float = 0.0
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def per_core_bytes(self) -> int:
        return self.bytes // self.shared_by

    def holds(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class MatrixUnit:
    """The MAC array. ``block[dtype] = (rows, k, cols)`` is the shape it computes in one step
    (Ascend's cube: 16 pixels x 32 input channels x 16 output channels for INT8): tiles are
    padded up to it, so it also decides the wasted work on small or odd layers."""

    macs_per_cycle: dict[str, int]
    block: dict[str, tuple[int, int, int]]
    sources: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class VectorUnit:
    """SIMD unit for pooling, elementwise ops and depthwise convolutions: ``width_bytes`` per
    instruction, ``units`` of them per core, one instruction per cycle each."""

    width_bytes: int
    units: int = 1
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def elems_per_cycle(self, elem_bytes: int) -> float:
        return self.units * self.width_bytes / elem_bytes


@dataclass(frozen=True)
class Memory:
    """Off-chip memory (or a chip-wide L2): capacity and bandwidth shared by all cores."""

    name: str
    bytes: int
    bandwidth: float  # bytes per second
    #: the fixed cost of one transfer (one tile's DMA descriptor), as the bytes the link
    #: would move in that time: a transfer of b bytes takes (b + setup_bytes) / bandwidth
    setup_bytes: float = 0.0
    sources: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Layout:
    """Preferred activation/weight layouts. ``channel_block`` is the innermost channel group
    (C0 of Ascend's NC1HWC0): activations' channels are padded to a multiple of it."""

    activation: str
    weight: str
    channel_block: int
    sources: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, eq=False)
class Profile:
    """A chip as the tiler sees it. Compared and hashed by identity (profiles are loaded once
    and cached), so per-profile lookups can be memoised."""

    name: str
    description: str
    int8_tops: float  # whole-chip peak used for utilisation (the public figure)
    clock_hz: float
    cores: int
    matrix: MatrixUnit
    vector: VectorUnit
    buffers: tuple[Buffer, ...]
    offchip: Memory
    layout: Layout
    activation_dtype: str
    l2: Memory | None = None
    rated_int8_tops: float | None = None  # the product specification's rating, when it differs
    #: fixed cost of launching one kernel (one layer) and synchronising after it, in µs
    launch_us: float = 0.0
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def launch_cycles(self) -> float:
        """The per-kernel launch cost in clock cycles (every layer but views pays it)."""
        return self.launch_us * 1e-6 * self.clock_hz

    @property
    def levels(self) -> int:
        return max(b.level for b in self.buffers)

    def buffers_at(self, level: int) -> list[Buffer]:
        return [b for b in self.buffers if b.level == level]

    def buffer_for(self, level: int, role: str) -> Buffer | None:
        for b in self.buffers_at(level):
            if b.holds(role):
                return b
        return None

    def buffer(self, name: str) -> Buffer:
        for b in self.buffers:
            if b.name == name:
                return b
        raise KeyError(name)

    def peak_macs_per_cycle(self, dtype: str = "i8") -> int:
        """Whole-chip MACs per cycle of the matrix unit for ``dtype``."""
        return self.cores * self.matrix.macs_per_cycle[dtype]

    def modelled_int8_tops(self) -> float:
        """Peak TOPS the cost model uses (2 ops per MAC), for comparison with int8_tops."""
        return 2 * self.peak_macs_per_cycle("i8") * self.clock_hz / 1e12


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def validate(p: Profile) -> Profile:
    """Check a profile for values no chip can have and for layouts no tiler can use.

    Raises ProfileError naming the profile and the field ("buffers[L0C].alignment ...").
    """

    def bad(where: str, msg: str) -> ProfileError:
        return ProfileError(f"target profile {p.name!r}: {where}: {msg}")

    def positive(where: str, v: float) -> None:
        if not v > 0:
            raise bad(where, f"must be > 0, got {v}")

    positive("clock_hz", p.clock_hz)
    if not p.launch_us >= 0:
        raise bad("launch_us", f"must be >= 0 (0: no per-kernel cost), got {p.launch_us}")
    positive("cores", p.cores)
    positive("int8_tops", p.int8_tops)
    if p.activation_dtype not in ACT_DTYPES:
        raise bad("activation_dtype", f"must be one of {', '.join(ACT_DTYPES)}, "
                  f"got {p.activation_dtype!r}")
    if "i8" not in p.matrix.macs_per_cycle:
        raise bad("matrix.macs_per_cycle", "needs an 'i8' entry (these are INT8 targets)")
    for dt, v in p.matrix.macs_per_cycle.items():
        if dt not in DTYPE_BYTES:
            raise bad(f"matrix.macs_per_cycle.{dt}", f"unknown data type {dt!r}")
        positive(f"matrix.macs_per_cycle.{dt}", v)
        blk = p.matrix.block.get(dt)
        if blk is None or len(blk) != 3:
            raise bad(f"matrix.block.{dt}", "needs [rows, k, cols] for every MAC rate")
        for i, v2 in enumerate(blk):
            positive(f"matrix.block.{dt}[{i}]", v2)
    positive("vector.width_bytes", p.vector.width_bytes)
    positive("vector.units", p.vector.units)
    positive("offchip.bandwidth", p.offchip.bandwidth)
    positive("offchip.bytes", p.offchip.bytes)
    for mem in (p.offchip, p.l2):
        if mem is not None and not mem.setup_bytes >= 0:
            raise bad("setup_bytes", f"must be >= 0 (0: no per-transfer cost), got "
                      f"{mem.setup_bytes}")
    if p.l2 is not None:
        positive("l2.bytes", p.l2.bytes)
        if p.l2.bandwidth < 0:
            raise bad("l2.bandwidth", f"must be >= 0 (0: not modelled), got {p.l2.bandwidth}")
    positive("layout.channel_block", p.layout.channel_block)
    if not p.buffers:
        raise bad("buffers", "a profile needs at least one on-chip buffer")
    names: set[str] = set()
    for b in p.buffers:
        where = f"buffers[{b.name}]"
        if b.name in names:
            raise bad(where, "two buffers have this name")
        names.add(b.name)
        positive(f"{where}.bytes", b.bytes)
        positive(f"{where}.level", b.level)
        positive(f"{where}.shared_by", b.shared_by)
        if b.fill_bytes_per_cycle < 0:
            raise bad(f"{where}.fill_bytes_per_cycle", f"must be >= 0, got "
                      f"{b.fill_bytes_per_cycle}")
        if not _pow2(b.alignment):
            raise bad(f"{where}.alignment", f"must be a power of two, got {b.alignment}")
        if b.scope not in SCOPES:
            raise bad(f"{where}.scope", f"must be one of {', '.join(SCOPES)}, got {b.scope!r}")
        if not b.roles:
            raise bad(f"{where}.roles", "holds nothing")
        for r in b.roles:
            if r not in ROLES:
                raise bad(f"{where}.roles", f"unknown role {r!r}; roles are {', '.join(ROLES)}")
    levels = sorted({b.level for b in p.buffers})
    if levels != list(range(1, len(levels) + 1)):
        raise bad("buffers.level", f"levels must run 1, 2, ... without gaps, got {levels}")
    for lv in levels:
        for r in ROLES:
            holders = [b.name for b in p.buffers_at(lv) if b.holds(r)]
            if len(holders) > 1:
                raise bad("buffers", f"level {lv} has two buffers holding {r}: "
                          f"{', '.join(holders)}")
    for r in ("inputs", "weights", "accumulators"):
        if p.buffer_for(1, r) is None:
            raise bad("buffers", f"no level-1 buffer holds {r}; the matrix unit reads its "
                      "operands from level 1")
    _check_min_tiles(p, bad)
    return p


def _check_min_tiles(p: Profile, bad) -> None:  # noqa: ANN001  (closure from validate)
    """Each level-1 buffer must hold the smallest tile the matrix unit can compute: one INT8
    block of inputs (rows x k), weights (k x cols) and int32 accumulators (rows x cols)."""
    rows, k, cols = p.matrix.block["i8"]
    need = {"inputs": rows * max(k, p.layout.channel_block), "weights": k * cols,
            "accumulators": rows * cols * 4, "outputs": rows * max(cols, p.layout.channel_block)}
    for b in p.buffers_at(1):
        total = 0
        for r in b.roles:
            if r in need:
                a = b.alignment
                total += -(-need[r] // a) * a * (2 if b.double_buffered else 1)
        if total > b.per_core_bytes:
            raise bad(f"buffers[{b.name}].bytes",
                      f"{b.per_core_bytes} bytes per core cannot hold one tile of the minimum "
                      f"shape ({rows}x{k}x{cols} INT8 block, {total} bytes with alignment"
                      f"{' and double buffering' if b.double_buffered else ''})")
