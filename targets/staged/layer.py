"""A staged layer being generated: its node, problem, schedule, buffer regions and the C
it accumulates (declarations, code at the top and bottom of each loop), plus its geometry."""

from __future__ import annotations

from dataclasses import dataclass

from ir.graph import Node
from targets.c.emitter import CodegenError, LayerCtx
from targets.cost import OFFCHIP, Region, Schedule, regions, staged_buffer
from targets.profiles.schema import Profile
from targets.staged.nest import Nest, make_nest
from targets.staged.views import Views, views
from targets.tiling.problem import M, Problem

I32 = 2**31


@dataclass
class Counters:
    """Counter columns: one per link (buffer name or offchip), then MACs."""

    links: list[str]

    @property
    def macs(self) -> int:
        return len(self.links)

    def col(self, link: str) -> int:
        return self.links.index(link)


@dataclass
class Staged:
    ctx: LayerCtx
    node: Node
    kind: str
    prob: Problem
    sched: Schedule
    prof: Profile
    row: int
    counters: Counters
    layout_of: object

    def __post_init__(self) -> None:
        self.nest: Nest = make_nest(self.prob, self.sched)
        self.regs: list[Region] = regions(self.prob, self.prof, self.sched.tiles)
        self.v: Views = views(self.node, self.kind, self.layout_of,  # type: ignore[arg-type]
                              str(self.node.attrs.get("weight_layout", "")))
        self.before: dict[int, list[str]] = {}
        self.after: dict[int, list[str]] = {}
        self.decl: list[str] = []

    # -- helpers --------------------------------------------------------------------------
    def fail(self, why: str) -> CodegenError:
        return self.ctx.fail(why)

    def region(self, role: str, lv: int) -> Region | None:
        for r in self.regs:
            if r.role == role and r.level == lv:
                return r
        return None

    def count(self, link: str, nbytes: str) -> str:
        return f"qnnc_cnt[{self.row}][{self.counters.col(link)}] += (uint64_t)({nbytes});"

    def link(self, operand: str, lv: int) -> str:
        """The link an operand's level-``lv`` tile crosses when it moves (model's naming)."""
        staged = [k for k in range(1, self.nest.levels + 1)
                  if staged_buffer(self.prob, self.prof, operand, k)]
        i = staged.index(lv)
        if i + 1 < len(staged):
            b = staged_buffer(self.prob, self.prof, operand, lv)
            assert b is not None
            return b.name
        return OFFCHIP

    def ptr(self, reg: Region, name: str, ctype: str) -> None:
        """Declare the slot pointer ``name`` into ``reg`` (and its ping-pong index)."""
        self.decl.append(f"{ctype} *{name} = ({ctype} *)(qnnc_buf_{reg.buffer} + {reg.offset});")
        self.decl.append(f"int {name}_slot = 0; (void){name}_slot;")
        self.decl.append(
            f"_Static_assert({reg.end} <= QNNC_BUF_{reg.buffer}_BYTES, "
            f"\"tile region exceeds buffer {reg.buffer}\");")

    def flip(self, reg: Region, name: str, ctype: str) -> str:
        if reg.copies == 1:
            return ""
        return (f"{name}_slot ^= 1; {name} = ({ctype} *)(qnnc_buf_{reg.buffer} + {reg.offset}"
                f" + {name}_slot * {reg.nbytes});")

    def at(self, where: dict[int, list[str]], pos: int, lines: list[str],
           front: bool = False) -> None:
        cur = where.setdefault(pos, [])
        if front:
            where[pos] = lines + cur
        else:
            cur.extend(lines)


def clamp_lines(var: str, start: str, limit: int) -> list[str]:
    return [f"{var} = {start};", f"if ({var} > {limit}) {var} = {limit};",
            f"if ({var} < 0) {var} = 0;"]


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


