"""A staged layer being generated: its node, problem, schedule, buffer regions and the C
it accumulates (declarations, code at the top and bottom of each loop), plus its geometry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ir.graph import Node
from targets.c.emitter import CodegenError, LayerCtx, plus
from targets.c.expr import Const, Expr, Var, lift
from targets.c.names import NameTable
from targets.cost import Region, Schedule, outer_link, regions, staged_buffer
from targets.profiles.schema import Profile
from targets.staged.nest import Nest, make_nest
from targets.staged.views import Views, views
from targets.tiling.problem import M, Problem

if TYPE_CHECKING:
    from targets.staged.epilogue import Epilogue

I32 = 2**31


@dataclass
class Counters:
    """The counter columns, each named by an enumerator: one per link (a buffer of the
    profile, then off-chip), then MACs."""

    links: list[str]
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        table = NameTable()
        self.names = [table.claim("QNNC_LINK", link.upper()) for link in self.links]
        self.names.append("QNNC_MACS")

    @property
    def macs(self) -> str:
        return self.names[-1]

    def col(self, link: str) -> str:
        """The column of a link (or the MACs column, by its own name)."""
        return link if link == self.macs else self.names[self.links.index(link)]


@dataclass
class Staged:
    ctx: LayerCtx
    node: Node
    kind: str
    prob: Problem
    sched: Schedule
    prof: Profile
    row: str  # the layer's enumerator, its counter row
    counters: Counters
    layout_of: object
    #: the element-wise layer run in this layer's epilogue (targets/staged/epilogue.py)
    epi: Epilogue | None = None

    def __post_init__(self) -> None:
        self.nest: Nest = make_nest(self.prob, self.sched)
        self.regs: list[Region] = regions(self.prob, self.prof, self.sched.tiles)
        self.v: Views = views(self.node, self.kind, self.layout_of,  # type: ignore[arg-type]
                              str(self.node.attrs.get("weight_layout", "")))
        self.before: dict[int, list[str]] = {}
        self.after: dict[int, list[str]] = {}
        self.decl: list[str] = []
        #: the origin of each staged tile, per box (x1, w2, y1, ...) and coordinate
        self.box: dict[str, dict[str, Expr]] = {}

    # -- helpers --------------------------------------------------------------------------
    def fail(self, why: str) -> CodegenError:
        return self.ctx.fail(why)

    def region(self, role: str, lv: int) -> Region | None:
        for r in self.regs:
            if r.role == role and r.level == lv:
                return r
        return None

    def count(self, link: str, nbytes: Expr | int | str) -> str:
        return f"qnnc_cnt[{self.row}][{self.counters.col(link)}] += {nbytes};"

    def link(self, operand: str, lv: int) -> str:
        """The link an operand's level-``lv`` tile crosses when it moves (model's naming)."""
        staged = [k for k in range(1, self.nest.levels + 1)
                  if staged_buffer(self.prob, self.prof, operand, k)]
        i = staged.index(lv)
        if i + 1 < len(staged):
            b = staged_buffer(self.prob, self.prof, operand, lv)
            assert b is not None
            return b.name
        return outer_link(self.prob, self.prof, operand)

    def ptr(self, reg: Region, name: str, ctype: str) -> None:
        """Declare the pointer ``name`` into ``reg`` (and its ping-pong slot, if two)."""
        base = plus(f"qnnc_buf_{reg.buffer}", reg.offset)
        self.decl.append(f"{ctype} *{name} = ({ctype} *){_primary(base)};")
        if reg.copies > 1:
            self.decl.append(f"int {name}_slot = 0;")
        self.decl.append(
            f"_Static_assert({reg.end} <= QNNC_BUF_{reg.buffer}_BYTES, "
            f"\"tile region exceeds buffer {reg.buffer}\");")

    def flip(self, reg: Region, name: str, ctype: str) -> list[str]:
        """Switch ``name`` to the other copy of a double-buffered region."""
        if reg.copies == 1:
            return []
        at = Var(f"qnnc_buf_{reg.buffer}") + reg.offset + Var(f"{name}_slot") * reg.nbytes
        return [f"{name}_slot ^= 1;", f"{name} = ({ctype} *)({at});"]

    def at(self, where: dict[int, list[str]], pos: int, lines: list[str],
           front: bool = False) -> None:
        cur = where.setdefault(pos, [])
        if front:
            where[pos] = lines + cur
        else:
            cur.extend(lines)


def _primary(text: str) -> str:
    return text if text.isidentifier() else f"({text})"


def clamped(name: str, e: Expr | int, limit: int) -> tuple[list[str], Expr]:
    """(declaration, value) of ``e`` clamped to [0, limit]: a constant, ``e`` itself where
    the range needs no clamp, else a local with only the comparisons that can matter."""
    e = lift(e)
    if e.value is not None:
        return [], Const(max(0, min(e.value, limit)))
    lo, hi = e.lo, e.hi
    if lo is not None and lo >= limit:
        return [], Const(max(0, limit))
    if hi is not None and hi <= 0 and limit >= 0:
        return [], Const(0)
    over = hi is None or hi > limit
    under = lo is None or min(lo, limit) < 0
    if not over and not under:
        return ([], e) if isinstance(e, Var) else \
            ([f"const int {name} = {e};"], Var(name, lo, hi))
    lines = [f"int {name} = {e};"]
    if over:
        lines.append(f"if ({name} > {limit}) {name} = {limit};")
    if under:
        lines.append(f"if ({name} < 0) {name} = 0;")
    lo2 = None if lo is None else max(0, min(lo, limit))
    hi2 = limit if hi is None else max(0, min(hi, limit))
    return lines, Var(name, lo2, hi2)


# -- geometry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geo:
    H: int
    W: int
    sh: int
    sw: int
    dh: int
    dw: int
    kh: int
    kw: int
    pt: int
    pl: int
    per_group: int  # output channels per input group (0: every m reads every c)
    cg: int  # input channels per group
    groups: int


def geometry(st: Staged) -> Geo:
    p, a = st.prob, st.node.attrs
    pads = list(a.get("pads") or [0, 0, 0, 0]) if st.kind in ("conv", "dwconv", "pool") else []
    if st.node.op.startswith(("QGlobal", "Global")):
        pads = []
    pt, pl = (pads[0], pads[1]) if pads else (0, 0)
    cin = st.v.x_dims[1]
    if p.inputs_depend_on_m:
        per = p.m_per_group or 1
        cg = cin // max(1, p.sizes[M] // per) if p.m_per_group else 1
        groups = p.sizes[M] // per
    else:
        per, cg, groups = p.sizes[M], cin, 1
    return Geo(p.in_hw[0], p.in_hw[1], p.strides[0], p.strides[1], p.dilations[0],
               p.dilations[1], p.kernel[0], p.kernel[1], pt, pl, per, cg, groups)


