"""The loop nest of a staged layer: where each tile is loaded and each output tile visited.

One definition shared with the cost model (targets/cost.py), made concrete: the levels' loops
run outermost level first, each in its ``tile_order``; an operand tile staged at level ``lv``
is (re)loaded at the top of the body of the innermost loop it depends on (with more than one
trip) among the loops of levels ``lv`` up to, but not including, the outermost level; if there
is none, at the innermost such loop of the outermost level (or once, before all loops). An
output tile staged at level ``lv`` is *visited* by the body of the innermost loop over an
output dim among the loops of levels ``lv`` and above: a visit starts by fetching the partial
sums back unless it is the first visit (every reduction loop outside it at index 0) and ends
by writing them out, or the final values on the last visit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from targets.c.cond import Cond, all_of, eq
from targets.c.expr import Const, Expr, Var, add
from targets.c.stmt import loop
from targets.cost import Schedule
from targets.tiling.problem import DIMS, C, Problem, cdiv


@dataclass(frozen=True)
class Loop:
    level: int
    dim: int
    trips: int
    pos: int  # index in the flattened nest, outermost first

    @property
    def var(self) -> str:
        return f"i{self.level}{DIMS[self.dim]}"

    @property
    def index(self) -> Expr:
        """The loop's index; 0 for a loop of one trip, which is not written at all."""
        return Var(self.var, 0, self.trips - 1) if self.trips > 1 else Const(0)


@dataclass
class Nest:
    prob: Problem
    sched: Schedule
    loops: list[Loop] = field(default_factory=list)

    @property
    def levels(self) -> int:
        return len(self.sched.tiles)

    @property
    def inside(self) -> int:
        """The position of the innermost body (every loop encloses it)."""
        return len(self.loops)

    def tile(self, lv: int) -> tuple[int, ...]:
        return self.sched.tiles[lv - 1]

    def origin(self, lv: int, d: int, at: int) -> Expr:
        """The origin, in dim ``d``, of the current level-``lv`` tile, as seen by code in the
        body of the loop at position ``at``: the loops that do not enclose it are at 0 there
        (they have not started, or have run out), so only the enclosing ones count."""
        return add(*(lp.index * self.tile(lp.level)[d] for lp in self.loops
                     if lp.dim == d and lp.level >= lv and lp.pos <= at))

    def load_point(self, lv: int, dims: frozenset[int]) -> int:
        """Position of the loop whose body (re)loads an operand of level ``lv`` that depends
        on ``dims`` (-1: once, before every loop)."""
        nl = self.levels
        inner = [lp for lp in self.loops if lv <= lp.level < nl]
        dep = [lp for lp in inner if lp.dim in dims and lp.trips > 1]
        if dep:
            return dep[-1].pos
        top = [lp for lp in self.loops if lp.level == nl and lp.dim in dims and lp.trips > 1]
        return top[-1].pos if top else -1

    def visit_point(self, lv: int, out_dims: frozenset[int]) -> int:
        nest = [lp for lp in self.loops if lp.level >= lv]
        dep = [lp for lp in nest if lp.dim in out_dims and lp.trips > 1]
        return dep[-1].pos if dep else -1

    def reduction_outside(self, lv: int, point: int) -> list[Loop]:
        """Reduction (c) loops with trips, of levels >= lv, enclosing position ``point``."""
        return [lp for lp in self.loops
                if lp.level >= lv and lp.dim == C and lp.trips > 1 and lp.pos < point]

    def first(self, lv: int, point: int) -> Cond:
        """Whether the visit at ``point`` is the first (every reduction loop outside at 0)."""
        return all_of(*(eq(lp.index, 0) for lp in self.reduction_outside(lv, point)))

    def last(self, lv: int, point: int) -> Cond:
        return all_of(*(eq(lp.index, lp.trips - 1) for lp in self.reduction_outside(lv, point)))


def make_nest(prob: Problem, sched: Schedule) -> Nest:
    nest = Nest(prob, sched)
    nl = len(sched.tiles)
    pos = 0
    for lv in range(nl, 0, -1):
        t = sched.tiles[lv - 1]
        above = sched.tiles[lv] if lv < nl else prob.sizes
        for d in sched.orders[lv - 1]:
            nest.loops.append(Loop(lv, d, cdiv(above[d], t[d]), pos))
            pos += 1
    return nest


def render(nest: Nest, before: dict[int, list[str]], after: dict[int, list[str]],
           body: list[str]) -> list[str]:
    """The nest as C: ``before[p]`` / ``after[p]`` open and close the body of loop ``p``
    (-1: the whole nest), ``body`` is the innermost body. A loop of one trip is not written;
    its body's code stands in the enclosing one."""
    lines = list(before.get(-1, []))
    ind = ""
    for lp in nest.loops:
        head, _ = loop(lp.var, lp.trips)
        if head is not None:
            lines.append(f"{ind}{head} {{")
            ind += "  "
        lines += [ind + ln for ln in before.get(lp.pos, [])]
    lines += [ind + ln for ln in body]
    for lp in reversed(nest.loops):
        lines += [ind + ln for ln in after.get(lp.pos, [])]
        if lp.trips > 1:
            ind = ind[2:]
            lines.append(f"{ind}}}")
    lines += after.get(-1, [])
    return lines
