"""Regions (If, Loop, Scan bodies): text round trip, scopes, verifier, interpreter, copies."""

from __future__ import annotations

import numpy as np
import pytest

from ir.interpreter import InterpreterError, run
from ir.text import IRParseError, parse_graph, print_graph
from ir.verifier import VerifyError, verify

IF = """graph @m(%c: bool[], %x: f32[2]) -> (%y) {
  %y: f32[2] = If(%c, %x) loc("if1")
    graph @then_branch(%x: f32[2]) -> (%t) {
      %t: f32[2] = Relu(%x)
    }
    graph @else_branch(%x: f32[2]) -> (%x) {
    }
}
"""

LOOP_SCAN = """graph @m(%n: i64[], %x: f32[2]) -> (%y, %s, %z, %w) {
  %k = const f32[2] dense<[5.0, 5.0]>
  %y: f32[2], %s: f32[3,2] = Loop(%n, _, %x, %k) {captures=1, trip_count=3}
    graph @body(%i: i64[], %c: bool[], %x: f32[2], %k: f32[2]) -> (%c, %t, %t) {
      %d = const f32[2] dense<[1.0, 2.0]>
      %t: f32[2] = Add(%x, %d)
    }
  %z: f32[2], %w: f32[2,3] = Scan(%x, %s) {captures=0, num_scan_inputs=1, \
scan_input_axes=[], scan_input_directions=[1], scan_output_axes=[1], scan_output_directions=[]}
    graph @body(%a: f32[2], %b: f32[2]) -> (%t, %t) {
      %t: f32[2] = Add(%a, %b)
    }
}
""".replace("\\\n", "")


def test_regions_round_trip_and_copy() -> None:
    for text in (IF, LOOP_SCAN):
        g = parse_graph(text)
        verify(g)
        assert print_graph(g) == text
        blobs: dict = {}
        assert parse_graph(print_graph(g, blobs=blobs, max_inline=0), blobs) == g
        c = g.copy()
        assert c == g and c.nodes[-1].regions[0] is not g.nodes[-1].regions[0]


def test_a_body_is_its_own_scope() -> None:
    # %x of the outer graph is not visible in the body: captures are explicit operands
    bad = IF.replace("If(%c, %x)", "If(%c)").replace("(%x: f32[2]) -> (%t)", "() -> (%t)")
    with pytest.raises(IRParseError, match="used before it is defined"):
        parse_graph(bad)


def test_if_semantics() -> None:
    g = parse_graph(IF)
    x = np.array([-1, 2], np.float32)
    assert run(g, {"c": np.array(True), "x": x})["y"].tolist() == [0, 2]
    assert run(g, {"c": np.array(False), "x": x})["y"].tolist() == [-1, 2]


def test_loop_and_scan_semantics() -> None:
    g = parse_graph(LOOP_SCAN)
    out = run(g, {"n": np.array(3), "x": np.array([-1, 2], np.float32)})
    assert out["s"].tolist() == [[0, 4], [1, 6], [2, 8]]
    assert out["y"].tolist() == [2, 8]
    # reversed input direction: the slices come last first; outputs stacked on axis 1
    assert out["w"].tolist() == [[1, 2, 2], [10, 16, 20]]
    assert out["z"].tolist() == [2, 20]
    with pytest.raises(InterpreterError, match="static trip count of 3"):
        run(g, {"n": np.array(2), "x": np.zeros(2, np.float32)})


def test_loop_cond_stops_early() -> None:
    g = parse_graph("""graph @m(%x: f32[]) -> (%y) {
  %n = const i64[] dense<[100]>
  %y: f32[] = Loop(%n, _, %x) {captures=0, trip_count=-1}
    graph @body(%i: i64[], %c: bool[], %x: f32[]) -> (%go, %t) {
      %one = const f32[] dense<[1.0]>
      %lim = const f32[] dense<[4.0]>
      %t: f32[] = Add(%x, %one)
      %go: bool[] = Less(%t, %lim)
    }
}
""")
    verify(g)
    assert run(g, {"x": np.array(0, np.float32)})["y"] == 4


@pytest.mark.parametrize("edit, why", [
    (("-> (%x) {\n    }", "-> (%c) {\n    }"), "different types"),
    (("If(%c, %x)", "If(%x, %x)"), "cond must be one bool"),
    (("graph @else_branch(%x: f32[2])", "graph @else_branch(%x: f32[3])"),
     "input 0 .* has type f32\\[3\\]"),
])
def test_verifier_checks_bodies(edit: tuple[str, str], why: str) -> None:
    text = IF.replace(*edit)
    if "(%c) {" in edit[1]:
        text = text.replace("graph @else_branch(%x: f32[2])",
                            "graph @else_branch(%x: f32[2], %c: bool[])")
        text = text.replace("If(%c, %x)", "If(%c, %x, %c)").replace(
            "graph @then_branch(%x: f32[2])", "graph @then_branch(%x: f32[2], %c: bool[])")
    with pytest.raises(VerifyError, match=why):
        verify(parse_graph(text))


def test_verifier_names_the_body_with_the_broken_node() -> None:
    text = LOOP_SCAN.replace("%t: f32[2] = Add(%x, %d)", "%t: f32[3] = Add(%x, %d)")
    with pytest.raises(VerifyError, match="region body @body: node #0"):
        verify(parse_graph(text))


def test_blob_names_of_two_scopes_do_not_collide() -> None:
    g = parse_graph("""graph @m(%c: bool[], %x: f32[2]) -> (%y, %w) {
  %w = const f32[2] dense<[1.0, 2.0]>
  %y: f32[2] = If(%c, %x)
    graph @then_branch(%x: f32[2]) -> (%t) {
      %w = const f32[2] dense<[3.0, 4.0]>
      %t: f32[2] = Add(%x, %w)
    }
    graph @else_branch(%x: f32[2]) -> (%x) {
    }
}
""")
    blobs: dict = {}
    text = print_graph(g, blobs=blobs, max_inline=0)
    assert "@w.1" in text and sorted(blobs) == ["w", "w.1"]
    assert parse_graph(text, blobs) == g
