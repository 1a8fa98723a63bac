"""The pass manager: names, descriptions, verification, printing and disabling."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compiler.passes import DEFAULT_PIPELINE, PASSES, PassError, run_pipeline
from compiler.passes.manager import register_pass
from ir.graph import Graph
from ir.text import parse_graph
from ir.verifier import VerifyError

SOURCE = """graph @g(%x: f32[2]) -> (%y) {
  %a = const f32[2] dense<[1.0, 2.0]>
  %b: f32[2] = Relu(%a)
  %dead: f32[2] = Relu(%x)
  %y: f32[2] = Add(%x, %b)
}
"""


def test_registry_names_and_descriptions() -> None:
    assert {"fold-constants", "dce", "fold-batchnorm"} <= set(PASSES)
    for name, p in PASSES.items():
        assert p.name == name and p.description and "\n" not in p.description
    assert set(DEFAULT_PIPELINE) <= set(PASSES)


def test_runs_in_order_and_prints_after_requested_passes() -> None:
    printed: list[tuple[str, str]] = []
    g = run_pipeline(parse_graph(SOURCE), ["fold-constants", "dce"], verify=True,
                     print_after=["fold-constants", "dce"],
                     on_print=lambda name, text: printed.append((name, text)))
    assert [n for n, _ in printed] == ["fold-constants", "dce"]
    assert "%b = const f32[2] dense<[1.0, 2.0]>" in printed[0][1] and "%dead" in printed[0][1]
    assert "%dead" not in printed[1][1] and "%a =" not in printed[1][1]
    assert [n.op for n in g.nodes] == ["Add"]


def test_print_after_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    run_pipeline(parse_graph(SOURCE), ["dce"], print_after=["dce"])
    out = capsys.readouterr().out
    assert out.startswith("// ----- IR after dce -----\ngraph @g(")


def test_disabled_passes_are_skipped() -> None:
    g = run_pipeline(parse_graph(SOURCE), ["fold-constants", "dce"], disabled=["dce"])
    assert [n.op for n in g.nodes] == ["Relu", "Add"]  # folded, but nothing removed


def test_unknown_pass_names_list_the_known_ones() -> None:
    for kwargs in ({}, {"print_after": ["tiles"]}, {"disabled": ["tiles"]}):
        pipeline = ["dce"] if kwargs else ["dce", "tiles"]
        with pytest.raises(PassError, match=r"unknown pass 'tiles' in .*; known passes: "
                                             r"dce, (.+, )?fold-batchnorm, fold-constants"):
            run_pipeline(parse_graph(SOURCE), pipeline, **kwargs)


def test_a_target_pass_without_a_target_says_how_to_give_one() -> None:
    with pytest.raises(PassError, match="pass 'tile' works for a target: compile with --target"):
        run_pipeline(parse_graph(SOURCE), ["tile"])


def test_print_after_a_pass_that_does_not_run_is_an_error() -> None:
    with pytest.raises(PassError, match="cannot print after 'dce': not run"):
        run_pipeline(parse_graph(SOURCE), ["dce"], print_after=["dce"], disabled=["dce"])


@pytest.fixture
def broken_pass() -> Iterator[str]:
    name = "_test-break-ssa"

    @register_pass(name, "test only: reads a value before it is defined")
    def _break(graph: Graph) -> Graph:
        graph.nodes.reverse()
        return graph

    yield name
    PASSES.pop(name)


def test_verify_names_the_pass_that_broke_the_graph(broken_pass: str) -> None:
    with pytest.raises(VerifyError, match=f"after pass '{broken_pass}': .* before it is defined"):
        run_pipeline(parse_graph(SOURCE), ["dce", broken_pass], verify=True)
    run_pipeline(parse_graph(SOURCE), ["dce", broken_pass])  # not checked without verify


def test_verify_checks_the_input_graph_first() -> None:
    bad = SOURCE.replace("%y: f32[2] = Add", "%y: f32[3] = Add")
    with pytest.raises(VerifyError, match="before the first pass: .*expected f32\\[2\\]"):
        run_pipeline(parse_graph(bad), ["dce"], verify=True)
