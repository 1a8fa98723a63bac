"""Tiling: plans fit every buffer, traffic never undercuts the compulsory minimum, the cost
model's totals are sums over tiles, a hand-checked matmul, and clear errors."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from targets import cost as costs
from targets.profiles import all_builtin, profile_from_data
from targets.tiling import (
    TilingError,
    format_plans,
    plan_attrs,
    problem_of,
    tile_graph,
    tile_node,
)
from targets.tiling.problem import OH, OW, C, M, N, cdiv
from targets.tiling.search import TOP_ORDERS
from tests.targets.fakes import conv_graph, matmul_graph, tiny_data, two_level_data

PROFILES = all_builtin()
TINY = profile_from_data(tiny_data(), default_source="test")
TINY2 = profile_from_data(two_level_data(), default_source="test")
#: tiny2 whose transfers each pay a fixed setup (worth 24 bytes at the link's rate)
TINY2_SETUP = profile_from_data({**two_level_data(), "offchip": {
    **two_level_data()["offchip"], "setup_bytes": 24.0}}, default_source="test")


def test_hand_checked_matmul() -> None:
    """x[8,16] @ w[16,8] on `tiny` (16 MACs/cycle in 1x4x4 blocks, 1 byte/cycle off-chip,
    nothing overlaps) with 4x4 output tiles, K split in two, order oh, m, c."""
    g, node = matmul_graph(8, 16, 8)
    prob = problem_of(g, node, TINY)
    assert prob is not None and prob.sizes == (1, 8, 8, 1, 16)
    sched = costs.Schedule(((1, 4, 4, 1, 8),), ((N, OH, OW, M, C),))
    c = costs.evaluate(prob, TINY, sched)
    # 8 steps (oh 2 x m 2 x c 2); a tile: x 4x8 = 32 B, w 8x4 = 32 B, y 4x4 = 16 B
    assert c.steps == 8
    # x and w change on every step (c is innermost): 8 x 32 B each; y is written once per
    # output tile (c is inner to both output loops): 4 x 16 B
    assert c.bytes == {costs.OFFCHIP: 8 * 32 + 8 * 32 + 4 * 16}
    assert c.compulsory_bytes == 8 * 16 + 16 * 8 + 8 * 8
    # compute: 4 x 4 x 8 = 128 MACs a step at 16 per cycle = 8 cycles
    assert c.compute_cycles == 8 * 8
    # single-buffered: step time = compute + bytes. First step 80 B; c advancing (4 steps)
    # 64 B; m advancing (2 steps) and oh advancing (1 step) 80 B each.
    assert c.cycles == (8 + 80) + 4 * (8 + 64) + 2 * (8 + 80) + (8 + 80) == 640
    assert c.macs == 8 * 8 * 16 and c.bound == "memory (offchip)"
    # the search finds something at least as fast, and this one fits
    assert costs.overflow(prob, TINY, sched.tiles) is None
    best = tile_node(g, node, TINY)
    assert best is not None and best.cost.cycles <= 640


def _brute_force(prob, prof, sched):  # noqa: ANN001, ANN202
    """Walk every iteration of the loop nest; load an operand's tile into a buffer whenever
    its index there changes; sum bytes and step times over the outermost steps."""
    nl = len(sched.tiles)
    loops = []
    for lv in reversed(range(nl)):
        above = sched.tiles[lv + 1] if lv + 1 < nl else prob.sizes
        for d in sched.orders[lv]:
            loops.append((lv, d, cdiv(above[d], sched.tiles[lv][d])))
    ntop = len(sched.orders[-1])
    flows = []
    for op in prob.operands:
        staged = [lv for lv in range(nl) if costs.staged_buffer(prob, prof, op, lv + 1)]
        for i, lv in enumerate(staged):
            buf = costs.staged_buffer(prob, prof, op, lv + 1)
            link = buf.name if i + 1 < len(staged) else costs.OFFCHIP
            flows.append((op, lv, buf, link))
    last: dict = {}
    loads: dict = defaultdict(lambda: defaultdict(int))
    seen: dict = defaultdict(set)
    for idx in itertools.product(*[range(n) for _, _, n in loops]):
        for f in flows:
            op, lv = f[0], f[1]
            key = tuple(v for v, (l, d, _) in zip(idx, loops)
                        if l >= lv and d in prob.dims_of(op))
            seen[f].add(key)
            if last.get(f) != key:
                last[f] = key
                loads[idx[:ntop]][f] += 1
    steps = list(loads) + [s for s in itertools.product(
        *[range(n) for _, _, n in loops[:ntop]]) if s not in loads]
    total_visits = {f: sum(loads[s][f] for s in loads) for f in flows}
    cores = min(prof.cores, len(steps))
    off_bw = prof.offchip.bandwidth / prof.clock_hz / cores
    compute = prob.tile_work(sched.tiles[0], prof) * len(
        list(itertools.product(*[range(n) for lv, _, n in loops if lv < nl - 1])))
    totals: dict = defaultdict(float)
    time = 0.0
    edge = 0.0  # the first step's overlapped loads and writes: the pipeline's fill and drain
    for s in steps:
        nb: dict = defaultdict(float)
        off = {True: 0.0, False: 0.0}
        for f in flows:
            op, lv, buf, link = f
            t = sched.tiles[lv]
            if op == "inputs":
                per = prob.input_bytes(t, prof)
            elif op == "weights":
                per = prob.weight_bytes(t, prof)
            else:
                r = total_visits[f] / len(seen[f])
                split = any(d == C and n > 1 for l, d, n in loops if l >= lv)
                r = r if split else 1.0
                per = prob.output_bytes(t, prof, 1) * (prob.out_bytes
                                                        + 2 * (r - 1) * prob.acc_bytes) / r
            b = loads[s][f] * per
            nb[link] += b
            totals[link] += b
            if link == costs.OFFCHIP:
                setup = prof.offchip.setup_bytes  # every load is a transfer, with its setup
                off[buf.double_buffered] += b + loads[s][f] * setup
                if s == steps[0] and buf.double_buffered:
                    edge += (b + loads[s][f] * setup) / off_bw
        overlap, serial = [compute, off[True] / off_bw], off[False] / off_bw
        for name, b in nb.items():
            if name != costs.OFFCHIP and prof.buffer(name).fill_bytes_per_cycle:
                bf = prof.buffer(name)
                (overlap.append if bf.double_buffered else lambda x: None)(
                    b / bf.fill_bytes_per_cycle)
                serial += 0 if bf.double_buffered else b / bf.fill_bytes_per_cycle
        time += max(overlap) + serial
    return {k: v for k, v in totals.items() if v}, time, len(steps), min(compute, edge)


def test_hand_checked_pipeline_fill_and_drain() -> None:
    """tiny with its buffer ping-ponged and 64 bytes/cycle off-chip: x[8,8] @ w[8,4] in two
    steps of 4 rows. A step computes 4 x 4 x 8 = 128 MACs in 8 cycles; the first loads x
    (32 B) and w (32 B), the second x only; each writes 16 B. Transfers overlap compute, so
    steps take 8 cycles each, and the pipeline adds what nothing hides: the first step's loads
    and the last one's write, (64 + 16) / 64 = 1.25 cycles. One step of all 8 rows: loads +
    compute + write, nothing overlapping."""
    data = tiny_data()
    data["offchip"]["bandwidth"] = 64e9
    data["buffers"][0]["double_buffered"] = True
    prof = profile_from_data(data, default_source="test")
    g, node = matmul_graph(8, 8, 4)
    prob = problem_of(g, node, prof)
    assert prob is not None and prob.sizes == (1, 4, 8, 1, 8)
    two = costs.evaluate(prob, prof, costs.Schedule(((1, 4, 4, 1, 8),), ((N, OH, OW, M, C),)))
    assert (two.steps, two.compute_cycles) == (2, 16)
    assert two.fill_drain_cycles == (32 + 32 + 16) / 64
    assert two.cycles == 8 + 8 + 1.25
    one = costs.evaluate(prob, prof, costs.Schedule(((1, 4, 8, 1, 8),), ((N, OH, OW, M, C),)))
    assert one.steps == 1
    loads, write = (64 + 32) / 64, 32 / 64
    assert one.cycles == loads + 16 + write


@pytest.mark.parametrize("order", TOP_ORDERS)
@pytest.mark.parametrize("prof", [TINY, TINY2, TINY2_SETUP],
                         ids=["tiny", "tiny2", "tiny2-setup"])
def test_totals_are_sums_over_tiles(prof, order) -> None:  # noqa: ANN001
    g, node = conv_graph(1, 8, 9, 7, 12, 3, pad=1)
    prob = problem_of(g, node, prof)
    assert prob is not None
    if prof.levels == 1:
        sched = costs.Schedule(((1, 4, 3, 4, 4),), (order,))
    else:
        sched = costs.Schedule(((1, 4, 2, 4, 4), (1, 8, 4, 8, 8)), (TOP_ORDERS[1], order))
    assert costs.overflow(prob, prof, sched.tiles) is None
    c = costs.evaluate(prob, prof, sched)
    nbytes, time, steps, fill_drain = _brute_force(prob, prof, sched)
    assert c.steps == steps
    assert c.bytes == pytest.approx(nbytes, rel=1e-12)
    assert sum(k.count for k in c.classes) == steps
    assert sum(k.count * k.time for k in c.classes) == pytest.approx(time, rel=1e-12)
    assert c.fill_drain_cycles == pytest.approx(fill_drain, rel=1e-12)
    assert c.cycles == pytest.approx(time * cdiv(steps, c.cores_used) / steps + fill_drain,
                                     rel=1e-12)


def test_no_legal_tiling_names_layer_and_buffer() -> None:
    g, node = conv_graph(1, 4, 20, 20, 4, 15)  # 15x15 kernel: 3600 B of weights alone
    with pytest.raises(TilingError, match=r"layer 'conv' \(Conv\): no tiling fits buffer "
                       r"'BUF' of target 'tiny'.*has 4096 per core"):
        tile_node(g, node, TINY)


def _check(plan, prof) -> None:  # noqa: ANN001
    for name, used in plan.occupancy.items():
        assert used <= prof.buffer(name).per_core_bytes, (prof.name, plan.node, name)
    assert plan.occupancy == costs.occupancy(plan.problem, prof, plan.tiles)
    for inner, outer in zip(plan.tiles, plan.tiles[1:]):
        assert all(1 <= a <= b for a, b in zip(inner, outer))
    c = plan.cost
    assert c.offchip_bytes >= c.compulsory_bytes > 0
    assert c.cycles >= c.compute_cycles * cdiv(c.steps, c.cores_used) / c.steps - 1e-6


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.sampled_from([1, 2]), c=st.integers(1, 96), h=st.integers(3, 40),
       m=st.integers(1, 160), k=st.sampled_from([1, 3, 5]), s=st.sampled_from([1, 2]),
       depthwise=st.booleans())
def test_conv_plans_fit_every_buffer(n: int, c: int, h: int, m: int, k: int, s: int,
                                     depthwise: bool) -> None:
    if depthwise:
        m = c
    g, node = conv_graph(n, c, h, h + 3, m, k, stride=s, pad=k // 2,
                         group=c if depthwise else 1)
    for prof in PROFILES:
        plan = tile_node(g, node, prof)
        assert plan is not None
        _check(plan, prof)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(1, 200), k=st.integers(1, 400), cols=st.integers(1, 400),
       batch=st.sampled_from([0, 0, 3]))
def test_matmul_plans_fit_every_buffer(rows: int, k: int, cols: int, batch: int) -> None:
    g, node = matmul_graph(rows, k, cols, batch)
    for prof in PROFILES:
        plan = tile_node(g, node, prof)
        assert plan is not None
        _check(plan, prof)


def test_graph_side_table_and_printer() -> None:
    g, _ = conv_graph(1, 16, 14, 14, 32, 3, pad=1)
    plans = tile_graph(g, PROFILES[0])
    assert list(plans.plans) == ["conv"] and plans.untiled == []
    text = format_plans(plans)
    assert text.startswith("conv = Conv on ascend910b [matrix]")
    assert "L1 tile n=1" in text and "L2 tile" in text and "-bound" in text
    attrs = plan_attrs(plans["conv"])
    assert len(attrs["tile"]) == 5 * len(plans["conv"].tiles)
    assert all(set(o.split(",")) == {"n", "m", "oh", "ow", "c"} for o in attrs["tile_order"])
