"""The pass manager: names, descriptions, options, pipeline text, verification, printing and
disabling."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from compiler.errors import QnncError
from compiler.passes import (
    DEFAULT_PIPELINE,
    PASSES,
    Pass,
    PassError,
    format_pipeline,
    option,
    parse_pipeline,
    register,
    run_pipeline,
)
from compiler.passes.quantize import Quantize
from compiler.passes.tile import Tile
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
        with pytest.raises(PassError, match=r"(?s)unknown pass 'tiles'.*known passes: "
                                             r"conv-transpose-blocks, dce, (.+, )?"
                                             r"fold-batchnorm, fold-constants"):
            run_pipeline(parse_graph(SOURCE), pipeline, **kwargs)


def test_a_target_pass_without_a_target_says_how_to_give_one() -> None:
    with pytest.raises(PassError, match=r"pass 'tile' works for a target: write it as "
                                        r"tile\{target=ascend910b\}, or compile with --target"):
        run_pipeline(parse_graph(SOURCE), ["tile"])


def test_pipeline_text_reads_options_and_prints_back() -> None:
    text = ('fold-batchnorm,equalize{max-sweeps=20},quantize{method=mse per-channel=false '
            'skip-layers="conv 1",conv2 skip-op-types=Softmax},layout{target=ascend910b},tile')
    passes = parse_pipeline(text)
    assert [p.name for p in passes] == ["fold-batchnorm", "equalize", "quantize", "layout",
                                        "tile"]
    q = passes[2]
    assert isinstance(q, Quantize)
    assert (q.method, q.per_channel, q.skip_layers, q.skip_op_types) == (
        "mse", False, ("conv 1", "conv2"), ("Softmax",))
    assert passes[3].target.name == "ascend910b"  # type: ignore[attr-defined]
    assert isinstance(passes[4], Tile) and passes[4].target is None
    assert format_pipeline(passes) == text  # only options that differ from the default
    assert parse_pipeline(format_pipeline(passes)) == passes
    # commas may separate options too, and None-able options take none
    assert parse_pipeline("quantize{min-sqnr=30, max-drop=0.01}") == [
        Quantize(min_sqnr=30.0, max_drop=0.01)]
    assert parse_pipeline("quantize{min-sqnr=none}") == [Quantize()]


@pytest.mark.parametrize("text, needle", [
    ("fold-constants,tiles", "unknown pass 'tiles' at column 16"),
    ("quantize{metod=mse}", "pass 'quantize' has no option 'metod'"),
    ("quantize{per-channel=maybe}", "must be true or false, got 'maybe'"),
    ("equalize{max-sweeps=1.5}", "must be an integer"),
    ("quantize{method}", "expected '=', got '}'"),
    ("quantize{method=mse", "expected '}'"),
    ("dce,", "expected a pass after ','"),
    ("tile{target=nowhere}", "nowhere"),
    ("tile{target=host}", "has no buffers"),
])
def test_bad_pipeline_text_is_reported_with_a_caret(text: str, needle: str) -> None:
    with pytest.raises(QnncError) as err:  # PassError, or the profile loader's error
        parse_pipeline(text)
    assert needle in str(err.value)


def test_options_are_fields_and_data_options_stay_out_of_the_text() -> None:
    q = dataclasses.replace(Quantize(method="entropy"), calibration={"x": [1.0]})
    assert format_pipeline([q]) == "quantize{method=entropy}"
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.method = "mse"  # type: ignore[misc]


def test_print_after_a_pass_that_does_not_run_is_an_error() -> None:
    with pytest.raises(PassError, match="cannot print after 'dce': not run"):
        run_pipeline(parse_graph(SOURCE), ["dce"], print_after=["dce"], disabled=["dce"])


@pytest.fixture
def broken_pass() -> Iterator[str]:
    @register
    @dataclass(frozen=True)
    class BreakSsa(Pass):
        name = "test-break-ssa"
        description = "test only: reads a value before it is defined"
        times: int = option(1, "how often to reverse the nodes")

        def run(self, graph: Graph) -> Graph:
            for _ in range(self.times):
                graph.nodes.reverse()
            return graph

    yield BreakSsa.name
    PASSES.pop(BreakSsa.name)


def test_verify_names_the_pass_that_broke_the_graph(broken_pass: str) -> None:
    with pytest.raises(VerifyError, match=f"after pass '{broken_pass}': .* before it is defined"):
        run_pipeline(parse_graph(SOURCE), ["dce", broken_pass], verify=True)
    run_pipeline(parse_graph(SOURCE), ["dce", broken_pass])  # not checked without verify


def test_verify_checks_the_input_graph_first() -> None:
    bad = SOURCE.replace("%y: f32[2] = Add", "%y: f32[3] = Add")
    with pytest.raises(VerifyError, match="before the first pass: .*expected f32\\[2\\]"):
        run_pipeline(parse_graph(bad), ["dce"], verify=True)
