"""The streaming model of the layers around the tiled kernels (targets/cost_stream.py): views
are free, data movement costs its bytes at the off-chip bandwidth, vector work the larger of
its lanes' time and its bytes' time, and every kernel the profile's launch cost."""

from __future__ import annotations

import numpy as np
import pytest

from ir.graph import Graph, Node
from ir.types import DType, TensorType
from targets.cost import OFFCHIP
from targets.cost_stream import stream_cost, stream_kind
from targets.profiles import load_target


def _node(op: str, shapes: list[tuple[int, ...]], out: tuple[int, ...], dtype: DType = DType.i8,
          attrs: dict | None = None, consts: tuple = ()) -> Node:
    g = Graph()
    ins = [g.add_input(f"x{k}", TensorType(s, dtype)) for k, s in enumerate(shapes)]
    ins += [g.add_const(c) for c in consts]
    y = g.new_value(TensorType(out, dtype), "y")
    return g.add_node(Node(op, ins, [y], attrs or {}, "n"))


@pytest.fixture
def prof():  # noqa: ANN201
    return load_target("ascend310p")


def test_views_are_free(prof) -> None:  # noqa: ANN001
    n = _node("Reshape", [(2, 8)], (16,), consts=(np.array([16], np.int64),))
    c = stream_cost(n, "n", prof)
    assert stream_kind(n) == "view"
    assert (c.cycles, c.offchip_bytes, c.launch_cycles, c.bound) == (0.0, 0.0, 0.0, "free")


def test_data_movement_is_its_bytes_at_the_bandwidth(prof) -> None:  # noqa: ANN001
    n = _node("Concat", [(1, 64, 8, 8), (1, 64, 8, 8)], (1, 128, 8, 8), attrs={"axis": 1})
    c = stream_cost(n, "n", prof)
    nbytes = 2 * 64 * 64 + 128 * 64  # both inputs read, the output written, 1 byte each
    assert stream_kind(n) == "dma" and c.bytes == {OFFCHIP: float(nbytes)}
    per_cycle = prof.offchip.bandwidth / prof.clock_hz
    assert c.cycles == pytest.approx(nbytes / per_cycle + prof.launch_cycles)
    assert c.launch_cycles == prof.launch_cycles > 0 and c.bound == "memory (offchip)"


def test_vector_work_is_lanes_or_bytes_whichever_is_longer(prof) -> None:  # noqa: ANN001
    big = (1, 256, 64, 64)
    n = _node("Exp", [big], big, dtype=DType.f32)
    c = stream_cost(n, "n", prof)
    elems = 256 * 64 * 64
    lanes = prof.vector.width_bytes // 4 * prof.vector.units * prof.cores  # f32 lanes
    per_cycle = prof.offchip.bandwidth / prof.clock_hz
    compute, move = elems / lanes, 2 * 4 * elems / per_cycle
    assert stream_kind(n) == "vector"
    assert c.compute_cycles == pytest.approx(compute)
    assert c.cycles == pytest.approx(max(compute, move) + prof.launch_cycles)
    assert c.bound == ("compute" if compute >= move else "memory (offchip)")


def test_a_profile_without_a_launch_figure_adds_nothing() -> None:
    from targets.profiles.loader import profile_from_data, profile_to_data

    data = profile_to_data(load_target("thinker2"))
    data.pop("launch_us")
    quiet = profile_from_data(data, default_source="user file")
    n = _node("Relu", [(1, 16, 8, 8)], (1, 16, 8, 8))
    assert quiet.launch_us == 0 and stream_cost(n, "n", quiet).launch_cycles == 0.0
    data["launch_us"] = -1.0
    with pytest.raises(ValueError, match="launch_us"):
        profile_from_data(data, default_source="user file")
