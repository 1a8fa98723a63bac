"""The arena planner (reuse, in place, views) and CPU feature detection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from compiler.errors import QnncError
from ir.build import make_node
from ir.graph import Graph
from ir.types import DType, TensorType
from targets.c.emitter import emitter_for
from targets.c.memory import MemoryPlan, plan_memory
from targets.c.names import NameTable, c_comment, ident_part
from targets.host.cpu import arch_flags, detect_level, effective_level, resolve_level


def host_plan(g: Graph, **options: Any) -> MemoryPlan:
    """The host plan of ``g`` (``options``: plan_memory's, e.g. ``contiguous``)."""
    return plan_memory(g, inplace_ok=lambda n: emitter_for(n).inplace,
                       scratch_bytes=lambda n: (emitter_for(n).scratch or (lambda _: 0))(n),
                       **options)


def _chain(ops: list[str], shape: tuple[int, ...] = (64, 64)) -> Graph:
    g = Graph("chain")
    v = g.add_input("x", TensorType(shape, DType.f32))
    for k, op in enumerate(ops):
        attrs = {"perm": [1, 0]} if op == "Transpose" else {}
        (v,) = make_node(g, op, [v], attrs, name=f"n{k}").outputs
    g.outputs = [v]
    return g


def test_buffers_are_reused() -> None:
    g = _chain(["Transpose"] * 6)  # not in place: each needs a fresh buffer, two live at once
    plan = host_plan(g)
    one = 64 * 64 * 4
    assert plan.arena_bytes == 2 * one  # 5 intermediates, ping-pong between two slots
    assert not plan.inplace


def test_elementwise_runs_in_place() -> None:
    g = _chain(["Transpose", "Relu", "Sigmoid", "Transpose"])
    plan = host_plan(g)
    assert plan.inplace == {1, 2}
    assert plan.arena_bytes == 64 * 64 * 4


def test_no_in_place_when_input_lives_on() -> None:
    g = Graph("g")
    x = g.add_input("x", TensorType((8,), DType.f32))
    (t,) = make_node(g, "Neg", [x], {}, name="t").outputs
    (r,) = make_node(g, "Relu", [t], {}, name="r").outputs
    (s,) = make_node(g, "Add", [r, t], {}, name="s").outputs
    g.outputs = [s]
    plan = host_plan(g)
    assert 1 not in plan.inplace  # t is read again by s
    assert plan.storage_of[id(s)].kind == "output"


def test_views_share_storage_and_outputs_are_written_directly() -> None:
    g = Graph("g")
    x = g.add_input("x", TensorType((2, 8), DType.f32))
    (t,) = make_node(g, "Neg", [x], {}, name="t").outputs
    (r,) = make_node(g, "Reshape", [t], {"shape": [16]}, name="r").outputs
    g.outputs = [r]
    plan = host_plan(g)
    assert plan.storage_of[id(t)] is plan.storage_of[id(r)]
    assert plan.storage_of[id(t)].kind == "output"
    assert plan.arena_bytes == 0


def test_names() -> None:
    t = NameTable()
    a, b = t.claim("w", "a.b"), t.claim("w", "a/b")
    assert a != b and a.startswith("w_a_b") and b.startswith("w_a_b")
    assert len(t.claim("w", "x" * 1000)) < 60
    assert ident_part("ünï ☃") == "anon" or ident_part("ünï ☃").isascii()
    s = c_comment('*/ evil\n/* more \x00')
    assert "*/" not in s and "/*" not in s and "\n" not in s and s.isprintable()


CPUINFO = "processor : 0\nflags\t\t: fpu sse sse2 avx avx2 fma {extra}\n"


def test_detect_level() -> None:
    assert detect_level(CPUINFO.format(extra="")) == "avx2"
    assert detect_level(CPUINFO.format(
        extra="avx512f avx512bw avx512vl avx512_vnni")) == "avx512vnni"
    assert detect_level("flags : fpu sse sse2\n") == "generic"
    assert detect_level("") == "generic"


def test_levels_and_flags() -> None:
    assert resolve_level("generic") == "generic"
    assert resolve_level(None) in ("generic", "avx2", "avx512vnni")
    with pytest.raises(QnncError, match="unknown --cpu"):
        resolve_level("pentium")
    assert "-mfma" in arch_flags("avx2") or arch_flags("avx2") == []
    assert np.all([f.startswith("-m") for f in arch_flags("avx512vnni")])
    # native builds have this machine's level (what the u8 tile and the weight codes follow)
    assert effective_level("native") == detect_level()
    assert effective_level("avx2") == "avx2"
