"""Search for the tiling of one layer with the lowest modelled time, from the profile alone.

Candidates per dim are multiples of the dim's unit (the MAC array's block for m and c, the
channel block for vector ops, 1 for pixels) by powers of two and by the divisors of the dim
(divisors avoid padded edge tiles); each outer level's tile is a multiple of the inner one.
Level 1 keeps the maximal tiles that fit (no dim can grow to its next candidate), ranked by
padding waste and by bytes per MAC; the best few are combined with every maximal outer tile
(and halvings of it, so that there are steps enough for every core), each under the loop
orders that matter: the three groups pixels (n, oh, ow), m and c in every order at the
outermost level, and with c innermost (accumulators stay put) inside it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import lru_cache

from targets import cost as costs
from targets.profiles.schema import Buffer, Profile
from targets.tiling.problem import DIMS, OH, OW, C, M, N, Problem, Tile, cdiv

KEEP_LEVEL1 = 6
REFINE_STARTS = 4
_GROUPS = {"p": (N, OH, OW), "m": (M,), "c": (C,)}
TOP_ORDERS: tuple[tuple[int, ...], ...] = tuple(
    tuple(d for g in perm for d in _GROUPS[g]) for perm in itertools.permutations("pmc")
)
INNER_ORDERS: tuple[tuple[int, ...], ...] = tuple(o for o in TOP_ORDERS if o[-1] == C)


class TilingError(ValueError):
    """No tiling of a layer fits the target's buffers."""


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0] if n <= 4096 else [1, n]


@lru_cache(maxsize=4096)
def _multiples(size: int, unit: int) -> tuple[int, ...]:
    """Tile sizes for a dim of ``size``: unit x (powers of two | divisors), up to padded full."""
    k = cdiv(size, unit)
    ks = set(_divisors(k))
    p = 1
    while p < k:
        ks.add(p)
        p *= 2
    return tuple(sorted(unit * x for x in ks))


def units(prob: Problem, prof: Profile) -> Tile:
    if prob.unit == "vector":
        return (1, prob.block(prof) if not prob.has_weights else 1, 1, 1, 1)
    _, k0, n0 = prof.matrix.block[prob.dtype]
    return (1, n0, 1, 1, k0)


def _maximal(cands: list[list[int]], fits: Callable[[Tile], bool]) -> list[Tile]:
    """The fitting tiles of the grid ``cands`` that cannot grow in any one dim and still fit.

    Walks the grid dim by dim: for each choice of the first four dims it takes the largest
    fitting value of the last (fits is monotone in each dim)."""
    out: list[Tile] = []
    for head in itertools.product(*cands[:4]):
        best = None
        for v in cands[4]:
            t = head + (v,)
            if fits(t):
                best = t
            else:
                break
        if best is not None:
            out.append(best)  # type: ignore[arg-type]
    last = {t[:4]: t[4] for t in out}

    def grows(t: Tile) -> bool:
        for d in range(4):
            i = cands[d].index(t[d])
            if i + 1 < len(cands[d]):
                g = list(t[:4])
                g[d] = cands[d][i + 1]
                v = last.get(tuple(g))
                if v is not None and v >= t[4]:
                    return True
        return False

    return [t for t in out if not grows(t)]


def _min_overflow(prob: Problem, prof: Profile, tiles: tuple[Tile, ...]) -> TilingError:
    over = costs.overflow(prob, prof, tiles)
    assert over is not None
    buf, need = over
    return TilingError(
        f"layer {prob.name!r} ({prob.op}): no tiling fits buffer {buf.name!r} of target "
        f"{prof.name!r}: the smallest tile ({_fmt(tiles[0])}) needs {need} bytes, the buffer "
        f"has {buf.per_core_bytes} per core")


def _fmt(t: Tile) -> str:
    return " ".join(f"{d}={v}" for d, v in zip(DIMS, t))


def _level_fits(prob: Problem, prof: Profile, level: int, inner: tuple[Tile, ...],
                nl: int) -> Callable[[Tile], bool]:
    """Does ``t`` fit as the tile of ``level`` (with the outer levels at least as big)?"""
    bufs: list[Buffer] = [b for b in prof.buffers if b.level >= level]

    def fits(t: Tile) -> bool:
        occ = costs.occupancy(prob, prof, inner + (t,) * (nl - level + 1))
        return all(occ.get(b.name, 0) <= b.per_core_bytes for b in bufs)

    return fits


def search(prob: Problem, prof: Profile) -> tuple[costs.Schedule, costs.LayerCost]:
    """The schedule of ``prob`` on ``prof`` with the lowest modelled cycles."""
    nl = costs.levels_used(prob, prof)
    u = units(prob, prof)
    grid1 = [list(_multiples(s, un)) for s, un in zip(prob.sizes, u)]
    smallest = tuple(g[0] for g in grid1)
    fits1 = _level_fits(prob, prof, 1, (), nl)
    if not fits1(smallest):
        raise _min_overflow(prob, prof, (smallest,) * nl)
    level1 = _with_halvings(_maximal(grid1, fits1), grid1)
    by_shape = sorted(level1, key=lambda t: _rank1(prob, prof, t))
    by_time = sorted(level1, key=lambda t: costs.evaluate_steps(
        prob, prof, costs.Schedule((t,) * nl, (TOP_ORDERS[0],) * nl)).cycles)
    level1 = list(dict.fromkeys(by_shape[:KEEP_LEVEL1 // 2] + by_time[:KEEP_LEVEL1]))
    best: tuple[float, costs.Schedule, costs.LayerCost] | None = None
    seeds: list[tuple[float, costs.Schedule, costs.LayerCost]] = []
    inner_orders = INNER_ORDERS if nl > 1 else TOP_ORDERS
    for t1 in level1[:KEEP_LEVEL1]:
        for outer in _outer_tiles(prob, prof, (t1,), nl):
            tiles = (t1,) + outer
            if best is not None and _compute_floor(prob, prof, tiles) >= best[0]:
                continue  # even with free memory traffic this cannot win
            for orders in itertools.product(*([inner_orders] * (nl - 1) + [TOP_ORDERS])):
                sched = costs.Schedule(tiles, tuple(orders))
                c = costs.evaluate_steps(prob, prof, sched)
                seeds.append((c.cycles, sched, c))
                if best is None or c.cycles < best[0] - 1e-9:
                    best = (c.cycles, sched, c)
    if best is not None:
        # hill-climb from the best few distinct tilings (the grid ranks level-1 heuristically)
        seeds.sort(key=lambda x: x[0])
        starts = list({s[1].tiles: s for s in seeds}.values())[:REFINE_STARTS]
        found = [_refine(prob, prof, s[1], s[2], grid1) for s in starts]
        return min(found, key=lambda x: x[1].cycles)
    if best is None:
        # every level-1 tile overflowed an outer level: report the first one's problem
        t1 = level1[0]
        outer = tuple(t1 for _ in range(nl - 1))
        raise _min_overflow(prob, prof, (t1,) + outer)
    return best[1], best[2]


def _with_halvings(tiles: list[Tile], grid: list[list[int]]) -> list[Tile]:
    """``tiles`` plus, for each, its pixel and m dims halved down the grid (smaller level-1
    tiles give more steps to spread over the cores)."""
    out = dict.fromkeys(tiles)
    for t in tiles:
        for d in (M, OH, OW):
            cur = list(t)
            while True:
                smaller = [v for v in grid[d] if v <= cur[d] // 2]
                if not smaller:
                    break
                cur[d] = smaller[-1]
                out[tuple(cur)] = None  # type: ignore[index]
    return list(out)


def _compute_floor(prob: Problem, prof: Profile, tiles: tuple[Tile, ...]) -> float:
    """Cycles of compute alone for these tiles (the same under every loop order)."""
    per = prob.tile_work(tiles[0], prof)
    tiles_total = 1
    steps = 1
    for d in range(5):
        tiles_total *= cdiv(prob.sizes[d], tiles[0][d])
        steps *= cdiv(prob.sizes[d], tiles[-1][d])
    cores = min(prof.cores, steps)
    return per * tiles_total * cdiv(steps, cores) / steps


def _rank1(prob: Problem, prof: Profile, t: Tile) -> tuple[float, float]:
    """Padding waste first (cycles per useful MAC), then bytes loaded per cycle of work."""
    work = prob.tile_work(t, prof)
    useful = max(1, t[N] * min(t[M], prob.sizes[M]) * min(t[OH], prob.sizes[OH])
                 * min(t[OW], prob.sizes[OW]) * min(t[C], prob.sizes[C]))
    moved = prob.input_bytes(t, prof) + prob.weight_bytes(t, prof) + prob.output_bytes(t, prof)
    return (round(work / useful, 6), moved / max(work, 1e-9))


def _outer_tiles(prob: Problem, prof: Profile, inner: tuple[Tile, ...],
                 nl: int) -> list[tuple[Tile, ...]]:
    """Tiles for levels 2..nl (nested multiples), each maximal or halved for parallelism."""
    if len(inner) == nl:
        return [()]
    lv = len(inner) + 1
    prev = inner[-1]
    grid = [[prev[d] * k for k in _multiples(cdiv(prob.sizes[d], prev[d]), 1)]
            for d in range(5)]
    fits = _level_fits(prob, prof, lv, inner, nl)
    if not fits(prev):
        return []
    cands = set(_maximal(grid, fits))
    for t in list(cands):  # smaller variants so that every core gets steps
        cur = t
        for _ in range(6):
            d = max((d for d in (M, OH, OW, N) if cur[d] > prev[d]),
                    key=lambda d: cur[d] // prev[d], default=None)
            if d is None:
                break
            g = list(cur)
            g[d] = max(prev[d], prev[d] * (cur[d] // prev[d] // 2))
            cur = tuple(g)  # type: ignore[assignment]
            cands.add(cur)
    out: list[tuple[Tile, ...]] = []
    for t in sorted(cands):
        for rest in _outer_tiles(prob, prof, inner + (t,), nl):
            out.append((t,) + rest)
    return out


def _moves(prob: Problem, sched: costs.Schedule, grid1: list[list[int]],
           far: bool = True) -> list[tuple[int, int, int]]:
    """Single tile moves ``(level, dim, new size)``: one dim of one level to its next smaller
    or larger candidate, or (``far``) halved/doubled or quartered/quadrupled."""
    out: list[tuple[int, int, int]] = []
    tiles = sched.tiles
    for lv in range(len(tiles)):
        for d in range(5):
            if lv == 0:
                vals = grid1[d]
            else:
                vals = [tiles[lv - 1][d] * k
                        for k in _multiples(cdiv(prob.sizes[d], tiles[lv - 1][d]), 1)]
            if tiles[lv][d] not in vals:
                continue
            i = vals.index(tiles[lv][d])
            moves = {vals[j] for j in (i - 1, i + 1) if 0 <= j < len(vals)}
            # halving or quartering in one move: spreading a layer over more cores can pay
            # only after two halvings (ceil(steps / cores) rounds), past a local optimum
            if far:
                moves |= {v for k in (2, 4) for v in (tiles[lv][d] * k, tiles[lv][d] // k)
                          if v in vals}
            out += [(lv, d, v) for v in sorted(moves)]
    return out


def _moved(sched: costs.Schedule, moves: tuple[tuple[int, int, int], ...]
           ) -> costs.Schedule | None:
    """``sched`` with ``moves`` applied in turn (outer levels equal to a moved tile move
    along); None when the levels would no longer nest."""
    tiles = list(sched.tiles)
    nl = len(tiles)
    for lv, d, v in moves:
        old = tiles[lv][d]
        for k in range(lv, nl):
            if k == lv or tiles[k][d] == old:
                t = list(tiles[k])
                t[d] = v
                tiles[k] = tuple(t)  # type: ignore[assignment]
    ok = all(tiles[k][e] <= tiles[k + 1][e] and tiles[k + 1][e] % tiles[k][e] == 0
             for k in range(nl - 1) for e in range(5))
    return costs.Schedule(tuple(tiles), sched.orders) if ok else None


def _neighbours(prob: Problem, sched: costs.Schedule,
                grid1: list[list[int]]) -> list[costs.Schedule]:
    """Schedules one step away: one tile move (:func:`_moves`) or another loop order."""
    out = [n for m in _moves(prob, sched, grid1) if (n := _moved(sched, (m,))) is not None]
    nl = len(sched.tiles)
    for lv in range(nl):
        for o in (TOP_ORDERS if lv == nl - 1 or nl == 1 else INNER_ORDERS):
            if o != sched.orders[lv]:
                orders = list(sched.orders)
                orders[lv] = o
                out.append(costs.Schedule(sched.tiles, tuple(orders)))
    return out


def _swaps(prob: Problem, sched: costs.Schedule,
           grid1: list[list[int]]) -> list[costs.Schedule]:
    """Schedules two moves away that trade one dim for another: one shrinks (at any level),
    another grows (at that level or an outer one). Filling the buffers another way often
    needs both at once: each alone overflows a buffer or costs more."""
    moves = _moves(prob, sched, grid1, far=False)
    shrink = [m for m in moves if m[2] < sched.tiles[m[0]][m[1]]]
    grow = [m for m in moves if m[2] > sched.tiles[m[0]][m[1]]]
    out = []
    for a in shrink:
        for b in grow:
            if b[1] != a[1] and b[0] >= a[0]:
                n = _moved(sched, (a, b))
                if n is not None:
                    out.append(n)
    return out


def _refine(prob: Problem, prof: Profile, sched: costs.Schedule, cost: costs.LayerCost,
            grid1: list[list[int]]) -> tuple[costs.Schedule, costs.LayerCost]:
    """Hill-climb from the best schedule found: take the best fitting neighbour while it is
    faster, trying swaps when no neighbour is (the grid search ranks level-1 tiles by a
    heuristic; this repairs its misses)."""
    for _ in range(200):
        best = (cost.cycles, sched, cost)
        for around in (_neighbours, _swaps):  # swaps only where no single move helps
            for nb in around(prob, sched, grid1):
                if costs.overflow(prob, prof, nb.tiles) is not None:
                    continue
                c = costs.evaluate_steps(prob, prof, nb)
                if c.cycles < best[0] * (1 - 1e-12):
                    best = (c.cycles, nb, c)
            if best[1] is not sched:
                break
        if best[1] is sched:
            break
        _, sched, cost = best
    return sched, cost
