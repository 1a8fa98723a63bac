"""Tiling: per layer, the tile sizes and loop orders that fit a target's buffers fastest.

``tile_graph(graph, profile)`` returns a :class:`TilePlans` side table keyed by node name (IR
ops reject unknown attributes, so plans are not node attributes yet); ``format_plans`` prints
it the way ``--print-after tile`` will, and :func:`plan_attrs` gives the attributes a plan
would become (``tile`` ints per level, ``tile_order`` strings). :func:`force_plan` re-fits a
plan made for one target to another target's buffers, for comparing targets' tilings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ir.graph import Graph, Node
from targets import cost as costs
from targets.profiles.schema import Profile
from targets.tiling.ops import problem_of, tiled_kind
from targets.tiling.problem import DIMS, Problem, Tile
from targets.tiling.search import TilingError, search, units


@dataclass
class TilePlan:
    """The chosen tiling of one layer and its modelled cost on ``target``."""

    node: str
    op: str
    target: str
    problem: Problem
    schedule: costs.Schedule
    occupancy: dict[str, int]  # buffer -> bytes (double buffering and alignment included)
    cost: costs.LayerCost

    @property
    def tiles(self) -> tuple[Tile, ...]:
        return self.schedule.tiles

    @property
    def orders(self) -> tuple[tuple[int, ...], ...]:
        return self.schedule.orders

    @property
    def bound(self) -> str:
        return self.cost.bound


@dataclass
class TilePlans:
    """Plans of a graph's tiled layers, in graph order, plus the layers left untiled and
    (``streams``) their modelled costs as the chip would run them (targets/cost_stream.py)."""

    target: str
    plans: dict[str, TilePlan]
    untiled: list[str]
    streams: dict[str, costs.LayerCost] = field(default_factory=dict)

    def __iter__(self):  # noqa: ANN204
        return iter(self.plans.values())

    def __len__(self) -> int:
        return len(self.plans)

    def __getitem__(self, node: str) -> TilePlan:
        return self.plans[node]


# (id of the profile, problem without its names) -> (profile kept alive, schedule)
_CACHE: dict[tuple, tuple[Profile, costs.Schedule]] = {}


def _key(prob: Problem, prof: Profile) -> tuple:
    d = dict(prob.__dict__)
    d.pop("name")
    d.pop("op")
    return (id(prof), tuple(sorted(d.items())))


def plan_problem(prob: Problem, prof: Profile) -> TilePlan:
    """Tile one problem (identical layers share one search)."""
    k = _key(prob, prof)
    if k not in _CACHE:
        _CACHE[k] = (prof, search(prob, prof)[0])
    sched = _CACHE[k][1]
    cost = costs.evaluate(prob, prof, sched)
    return TilePlan(prob.name, prob.op, prof.name, prob, sched,
                    costs.occupancy(prob, prof, sched.tiles), cost)


def tile_node(graph: Graph, node: Node, prof: Profile,
              precision: str = "int8") -> TilePlan | None:
    prob = problem_of(graph, node, prof, precision)
    return None if prob is None else plan_problem(prob, prof)


def layer_keys(graph: Graph) -> dict[int, str]:
    """id(node) -> a name unique in the graph: the node's name, or name#k for the k-th
    later node with the same name (a quantised layer and the Dequantize after it can share
    one). Plans, reports and the generated code's counters are keyed by it."""
    seen: dict[str, int] = {}
    out: dict[int, str] = {}
    for node in graph.nodes:
        name = node.name or node.outputs[0].name
        k = seen.get(name, 0)
        seen[name] = k + 1
        out[id(node)] = name if k == 0 else f"{name}#{k}"
    return out


def tile_graph(graph: Graph, prof: Profile, precision: str = "int8") -> TilePlans:
    """Plans for every tiled layer, keyed by :func:`layer_keys`; raises TilingError naming
    the first layer that cannot fit (with the buffer it overflows)."""
    plans: dict[str, TilePlan] = {}
    untiled: list[str] = []
    keys = layer_keys(graph)
    from targets.cost_stream import stream_cost  # cost_stream needs cost, which needs tiling

    streams: dict[str, costs.LayerCost] = {}
    for node in graph.nodes:
        p = tile_node(graph, node, prof, precision)
        if p is None:
            untiled.append(keys[id(node)])
            streams[keys[id(node)]] = stream_cost(node, keys[id(node)], prof)
        else:
            p.node = keys[id(node)]
            plans[p.node] = p
    return TilePlans(prof.name, plans, untiled, streams)


def order_text(order: tuple[int, ...]) -> str:
    return ",".join(DIMS[d] for d in order)


def plan_attrs(plan: TilePlan) -> dict[str, list[int] | list[str] | str]:
    """The node attributes a plan would become: ``tile`` = level-1 tile then each outer
    level's (5 ints per level, n m oh ow c), ``tile_order`` = one loop order per level."""
    return {
        "tile": [v for t in plan.tiles for v in t],
        "tile_order": [order_text(o) for o in plan.orders],
        "tile_target": plan.target,
    }


def format_plan(plan: TilePlan) -> str:
    c = plan.cost
    lines = [f"{plan.node} = {plan.op} on {plan.target} [{plan.problem.unit}] "
             f"n={plan.problem.sizes[0]} m={plan.problem.sizes[1]} oh={plan.problem.sizes[2]} "
             f"ow={plan.problem.sizes[3]} c={plan.problem.sizes[4]}"]
    for lv, (t, o) in enumerate(zip(plan.tiles, plan.orders), start=1):
        tile = " ".join(f"{d}={v}" for d, v in zip(DIMS, t))
        lines.append(f"  L{lv} tile {tile}  order {order_text(o)}")
    occ = ", ".join(f"{k} {v}" for k, v in plan.occupancy.items())
    moved = ", ".join(f"{k} {int(v)}" for k, v in c.bytes.items())
    lines.append(f"  buffers(bytes): {occ}")
    lines.append(f"  moved(bytes): {moved}; compulsory off-chip {c.compulsory_bytes}")
    lines.append(f"  MACs {c.macs}, {c.steps} steps on {c.cores_used} cores, "
                 f"{c.cycles:.0f} cycles, {c.bound}-bound")
    return "\n".join(lines)


def format_plans(plans: TilePlans) -> str:
    """Text of every plan, in graph order, then the untiled layers."""
    parts = [format_plan(p) for p in plans]
    if plans.untiled:
        parts.append(f"untiled ({len(plans.untiled)}): {', '.join(plans.untiled)}")
    return "\n".join(parts)


def force_plan(plan: TilePlan, prof: Profile) -> TilePlan | None:
    """``plan``'s tiling carried over to ``prof``: tiles rounded to ``prof``'s units and, if
    they do not fit, shrunk (the largest dim halved, then its inner tiles) until they do.

    Levels are matched innermost to innermost and outermost to outermost. Returns None when
    even the smallest tile of the plan's shape does not fit (the plan "does not fit").
    """
    prob = plan.problem
    nl = costs.levels_used(prob, prof)
    src = list(plan.tiles)
    tiles = [src[min(i, len(src) - 1)] if i < nl - 1 else src[-1] for i in range(nl)]
    if nl == 1:
        tiles = [src[0]]
    u = units(prob, prof)
    snapped: list[list[int]] = []
    for lv, t in enumerate(tiles):
        row = []
        for d in range(5):
            v = max(u[d], -(-t[d] // u[d]) * u[d])
            if lv:
                inner = snapped[lv - 1][d]
                v = max(inner, -(-v // inner) * inner)
            row.append(v)
        snapped.append(row)
    orders = [plan.orders[min(i, len(plan.orders) - 1)] for i in range(nl - 1)]
    orders.append(plan.orders[-1])
    for _ in range(200):
        cand = tuple(tuple(r) for r in snapped)
        if costs.overflow(prob, prof, cand) is None:  # type: ignore[arg-type]
            sched = costs.Schedule(cand, tuple(orders))  # type: ignore[arg-type]
            return TilePlan(plan.node, plan.op, prof.name, prob, sched,
                            costs.occupancy(prob, prof, cand),  # type: ignore[arg-type]
                            costs.evaluate(prob, prof, sched))
        if not _shrink(snapped, u, prob, prof):
            return None
    return None


def force_plans(plans: TilePlans, prof: Profile) -> TilePlans | None:
    """Every plan of ``plans`` forced onto ``prof`` (see :func:`force_plan`); None if any
    layer's tiling cannot be made to fit."""
    out: dict[str, TilePlan] = {}
    for p in plans:
        f = force_plan(p, prof)
        if f is None:
            return None
        out[p.node] = f
    return TilePlans(prof.name, out, list(plans.untiled))


def _shrink(tiles: list[list[int]], u: Tile, prob: Problem, prof: Profile) -> bool:
    """Halve the largest shrinkable dim of the outermost overflowing level (keeping tiles
    nested and on the unit grid); False if nothing can shrink."""
    over = costs.overflow(prob, prof, tuple(tuple(r) for r in tiles))  # type: ignore[arg-type]
    lv = over[0].level - 1 if over else len(tiles) - 1
    lv = min(lv, len(tiles) - 1)
    t = tiles[lv]
    floor = tiles[lv - 1] if lv else list(u)
    dims = [d for d in range(5) if t[d] > floor[d]]
    if not dims:
        if lv == 0:
            return False
        # the inner tile is too big for this level: shrink the inner one instead
        return _shrink_level(tiles, lv - 1, u)
    d = max(dims, key=lambda d: t[d] // floor[d])
    t[d] = max(floor[d], (t[d] // floor[d] // 2) * floor[d])
    return True


def _shrink_level(tiles: list[list[int]], lv: int, u: Tile) -> bool:
    t = tiles[lv]
    floor = tiles[lv - 1] if lv else list(u)
    dims = [d for d in range(5) if t[d] > floor[d]]
    if not dims:
        return False if lv == 0 else _shrink_level(tiles, lv - 1, u)
    d = max(dims, key=lambda d: t[d] // floor[d])
    t[d] = max(floor[d], (t[d] // floor[d] // 2) * floor[d])
    return True


__all__ = [
    "TilePlan", "TilePlans", "TilingError", "force_plan", "force_plans", "tiled_kind",
    "format_plan", "layer_keys",
    "format_plans", "plan_attrs", "plan_problem", "problem_of", "tile_graph", "tile_node",
]
