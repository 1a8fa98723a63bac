"""Example-based tests of the IR text format: notation, exactness corners, files, errors."""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run
from ir.narrow import int_range
from ir.text import IRParseError, load_ir, parse_graph, print_graph, save_ir
from ir.types import DType, QuantParams, TensorType
from ir.verifier import verify

EXAMPLE = """\
graph @main(%x: f32[1,3,4,4], %"in/q:0": u8[1,64]{scale=0.0123, zp=128}) -> (%y, %"in/q:0") {
  %w = const f32[1,3,4,4] @w
  %b = const f32[4] dense<[0.1, -0.25, 0.5, 1e-07]>
  %pc = const i8[2,3]{scale=[0.5, 0.25], zp=[0, -1], axis=0} dense<[1, -128, 127, 0, 5, 6]>
  %"onnx::Add_3": f32[1,3,4,4] = Add(%x, %w) loc("add/1")
  %y: f32[1,3,4,4] = Relu(%"onnx::Add_3") loc("relu 1")
}
"""


def _example_blobs() -> dict[str, np.ndarray]:
    return {"w": np.arange(48, dtype=np.float32).reshape(1, 3, 4, 4) / 7}


def test_example_parses_verifies_and_prints_back_identically() -> None:
    g = parse_graph(EXAMPLE, _example_blobs())
    verify(g)
    assert [v.name for v in g.inputs] == ["x", "in/q:0"]
    assert g.inputs[1].type.quant == QuantParams.per_tensor(0.0123, 128)
    pc = next(c for c in g.constants if c.name == "pc")
    assert pc.type.quant == QuantParams((0.5, 0.25), (0, -1), 0)
    assert [n.name for n in g.nodes] == ["add/1", "relu 1"]
    blobs: dict[str, np.ndarray] = {}
    assert print_graph(g, blobs=blobs) == EXAMPLE
    assert set(blobs) == {"w"}


def test_inline_threshold_is_a_parameter() -> None:
    g = parse_graph(EXAMPLE, _example_blobs())
    text = print_graph(g, max_inline=None)
    assert "@w" not in text and "dense<[0.0, 0.14285715," in text
    assert parse_graph(text) == g
    refs = [ln.split()[0] for ln in print_graph(g, max_inline=3).splitlines() if "= const" in ln
            and " @" in ln]
    assert refs == ["%w", "%b", "%pc"]  # b has 4 elements, pc 6


def _const_graph(data: np.ndarray) -> Graph:
    g = Graph("consts")
    g.outputs = [g.add_const(data, "c")]
    return g


@pytest.mark.parametrize("dt", list(DType))
def test_every_dtype_extremes_roundtrip_bitwise(dt: DType) -> None:
    npdt = dt.np
    if dt is DType.bool:
        data = np.array([True, False, True])
    elif dt.is_int:
        lo, hi = int_range(dt)
        data = np.array([lo, hi, 0, 1]).astype(npdt)
    else:
        info = ml_dtypes.finfo(npdt)
        specials = [info.min, info.max, info.tiny, info.smallest_subnormal, -0.0, 0.0,
                    np.inf, -np.inf, np.nan, 0.1, 1 / 3]
        with np.errstate(over="ignore", invalid="ignore"):
            data = np.array(specials, dtype=np.float64).astype(npdt)
        data = np.concatenate([data, -data])  # -nan has the sign bit set: printed as bits
    back = parse_graph(print_graph(_const_graph(data), max_inline=None)).constants[0].data
    assert back.dtype == npdt and back.tobytes() == data.tobytes()


def test_all_f16_bit_patterns_roundtrip() -> None:
    data = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    text = print_graph(_const_graph(data), max_inline=None)
    assert parse_graph(text).constants[0].data.tobytes() == data.tobytes()


def test_random_f32_and_f64_bit_patterns_roundtrip() -> None:
    rng = np.random.default_rng(0)
    for bits, dt in ((np.uint32, np.float32), (np.uint64, np.float64)):
        data = rng.integers(0, np.iinfo(bits).max, 20000, dtype=bits, endpoint=True).view(dt)
        text = print_graph(_const_graph(data), max_inline=None)
        assert parse_graph(text).constants[0].data.tobytes() == data.tobytes()


def test_nan_payload_and_sign_print_as_bits() -> None:
    data = np.array([np.nan, -np.nan], dtype=np.float32)
    data = np.append(data, np.array([0x7F800001], dtype=np.uint32).view(np.float32))
    assert "dense<[nan, nan(0xffc00000), nan(0x7f800001)]>" in print_graph(_const_graph(data))


def test_odd_names_and_strings_are_quoted_and_escaped() -> None:
    g = Graph('my "model"')
    x = g.add_input("a b/c:0\n\t\\\x01\u2028é", TensorType((2,), DType.f32))
    make_node(g, "Relu", [x], name='loc "quoted"\n', out_names=["1.out"])
    make_node(g, "Identity", [g.nodes[0].outputs[0]], out_names=[""])
    g.outputs = [g.nodes[1].outputs[0]]
    text = print_graph(g)
    assert text.splitlines()[0] == (
        'graph @"my \\"model\\""(%"a b/c:0\\n\\t\\\\\\u{1}\\u{2028}é": f32[2]) -> (%identity) {'
    )
    assert '%1.out: f32[2] = Relu(%"a b/c:0' in text and 'loc("loc \\"quoted\\"\\n")' in text
    assert parse_graph(text) == g


def test_attributes_of_every_kind_keep_their_values() -> None:
    text = (
        "graph @g(%x: f32[2]) -> (%y) {\n"
        "  %y: f32[2] = Identity(%x) {b=true, e=[], f=-0.0, fs=[1.0, inf, -inf, nan], i=-7, "
        'is=[1,2], s="q\\"\\u{0}", ss=["", "a"]}\n'
        "}\n"
    )
    g = parse_graph(text)
    a = g.nodes[0].attrs
    assert a["b"] is True and a["e"] == [] and a["i"] == -7 and a["is"] == [1, 2]
    assert isinstance(a["f"], float) and np.signbit(a["f"])
    assert a["fs"][:3] == [1.0, np.inf, -np.inf] and np.isnan(a["fs"][3])
    assert a["s"] == 'q"\x00' and a["ss"] == ["", "a"]
    assert print_graph(g) == text


def test_omitted_inputs_and_multiple_outputs_are_printed() -> None:
    # Printing and parsing do not need the op to exist: the verifier judges ops, not the parser.
    text = """graph @g(%x: f32[2]) -> (%a, %b) {
  %a: f32[2], %b: f32[2] = SomeFutureOp(%x, _, %x)
}
"""
    g = parse_graph(text)
    assert g.nodes[0].inputs[1] is None and len(g.nodes[0].outputs) == 2
    assert print_graph(g) == text


def test_save_and_load_with_blob(tmp_path: Path) -> None:
    g = parse_graph(EXAMPLE, _example_blobs())
    path = tmp_path / "model.ir"
    save_ir(g, path)
    assert (tmp_path / "model.ir.npz").exists()
    back = load_ir(path)
    assert back == g
    x = np.random.default_rng(1).standard_normal((1, 3, 4, 4)).astype(np.float32)
    feeds = {"x": x, "in/q:0": np.zeros((1, 64), np.uint8)}
    assert run(back, feeds)["y"].tobytes() == run(g, feeds)["y"].tobytes()


def test_blob_names_with_any_characters_survive_the_npz(tmp_path: Path) -> None:
    g = Graph()
    for name in ("a/b", "../x", "", "n\x00ul"):
        g.add_const(np.arange(20, dtype=np.int16), name)
    g.outputs = list(g.constants)
    save_ir(g, tmp_path / "m.ir")
    assert load_ir(tmp_path / "m.ir") == g


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("graph @m(%x: f31[2]) -> () {}", (1, 14), "unknown element type 'f31'; expected one of"),
        ("graph @m(%x: f32[2] -> () {}", (1, 21), "unexpected '-'; expected ')', ',', '{'"),
        ("graph @m() -> () {\n  %y: f32[2] = Relu(%z)\n}", (2, 21),
         "value %z is used before it is defined"),
        ("graph @m(%x: f32[2]) -> () {\n  %x = const f32[1] dense<[1.0]>\n}", (2, 3),
         "value %x is defined twice"),
        ("graph @m() -> (%q) {\n}", (1, 16), "value %q is used before it is defined"),
        ("graph @m() -> () {\n  %c = const i8[2] dense<[1, 300]>\n}", (2, 30),
         "300 is out of range for i8"),
        ("graph @m() -> () {\n  %c = const f16[1] dense<[1e5]>\n}", (2, 28),
         "1e5 is out of range for float16"),
        ("graph @m() -> () {\n  %c = const i8[3] dense<[1, 2]>\n}", (2, 3),
         "constant of type i8[3] needs 3 elements, got 2"),
        ("graph @m() -> () {\n  %c = const i32[2] dense<[1, 2.5]>\n}", (2, 31),
         "expected an integer, got 2.5"),
        ("graph @m() -> () {\n  %c = const f32[3] @c\n}", (2, 21),
         "constant data @c is not in the blobs given to the parser"),
        ("graph @m() -> () {\n  %c = const i8[2] dense<[1, $]>\n}", (2, 30),
         "expected an integer, got $"),
        ("graph @m() -> () {\n  %c = const i8[2] dense<[1 2]>\n}", (2, 29),
         "unexpected '2'; expected ','"),
        ("graph @m() -> () {\n  %c = const u8[2] dense<[1,\n 256]>\n}", (3, 2),
         "256 is out of range for u8"),
        ("graph @m() -> () {\n  %c = const f32[1] dense<[1.0]> @c\n}", (2, 34),
         "unexpected '@c'; expected"),
        ('graph @m(%"a\\q": f32[]) -> () {}', (1, 10), "unknown escape \\q"),
        ("graph @m(%x: u8[2]{scale=[0.5], zp=1}) -> () {}", (1, 14),
         "per-axis quant params need lists for scale and zp and an axis"),
        ("graph @m(%x: u8[2]{scale=-1.0, zp=1}) -> () {}", (1, 14),
         "quantisation scale must be positive"),
        ("graph @m(%x: u8[2]{scale=1.0, zq=1}) -> () {}", (1, 31), "unknown quant field 'zq'"),
        ("graph @m(%x: f32[2]) -> () {\n  %y: f32[2] = Relu(%x) {a=1, a=2}\n}", (2, 31),
         "attribute 'a' is given twice"),
        ("graph @m() -> () {", (1, 18), "unexpected end of input; expected '}'"),
    ],
)
def test_parse_errors_name_line_column_and_what_was_expected(
    text: str, where: tuple[int, int], message: str
) -> None:
    with pytest.raises(IRParseError) as info:
        parse_graph(text)
    err = info.value
    assert (err.line, err.column) == where
    assert message in str(err)
    assert str(err).startswith(f"line {where[0]}, column {where[1]}: ")
    assert "^" in str(err)  # the offending line is shown with a caret


def test_blob_with_wrong_type_is_rejected() -> None:
    with pytest.raises(IRParseError, match=r"blob @w holds float64\[1, 3, 4, 4\]"):
        parse_graph(EXAMPLE, {"w": np.zeros((1, 3, 4, 4))})
