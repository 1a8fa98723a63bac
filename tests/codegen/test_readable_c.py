"""The generated C reads like hand-written C, on the host and on accelerator targets.

Three small INT8 models (the tiny example CNN; a convolution whose node records the Relu it
absorbed; two branches joined by a Concat ending in a Softmax) are compiled for the host and
for two accelerator profiles, and every file a person would open is read for: lines of at
most 120 characters, layer calls in ``qnnc_run`` without NULL arguments, no identity
arithmetic (``x * 1``, ``+ 0``), no loop that runs once, comments that name the model nodes
a layer computes and, in staged C, no ``(void)`` silencers and counters indexed by name. Each
pattern is first shown to catch a bad line, so that a check cannot pass for want of a match.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.api import compile_model
from compiler.examples import build_example
from compiler.io import random_inputs
from ir.interpreter import run as interpret
from ir.text import parse_graph

TARGETS = ("host", "ascend910b", "mlu370x8")
FILES = ("model.c", "model.h", "weights.c", "main.c")

#: arithmetic that does nothing: a factor of one, a term of zero (not 0.5f, 0x1p-3f, x10)
IDENTITY = re.compile(r"(?<![\w.])(\w+ ?\* ?1|1 ?\* ?\w+)(?![\w.])|[-+] ?0(?![\w.])"
                      r"|(?<![\w.])0 ?\+")
#: a statement that only silences an unused variable
SILENCER = re.compile(r"\(void\)\s*[A-Za-z_]\w*\s*;")
#: a counted loop (variable declared in the loop or before it); one trip if bound <= step
LOOP = re.compile(r"for \((?:int )?(\w+) = 0; \1 < (\d+); (?:\+\+\1|\1 \+= (\d+))\)")
COUNTER = re.compile(r"qnnc_cnt\[([^\]]+)\]\[([^\]]+)\] \+=")
OPSET = [helper.make_opsetid("", 17)]


def once_loops(code: str) -> list[str]:
    """The loops of ``code`` that run exactly once."""
    return [m.group(0) for m in LOOP.finditer(code) if int(m.group(2)) <= int(m.group(3) or 1)]


def code_only(text: str) -> str:
    """``text`` without comments and string literals."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', text)


def run_calls(model_c: str) -> list[str]:
    """The statements of qnnc_run's body."""
    body = model_c[model_c.index("int qnnc_run("):]
    body = body[body.index("{") + 1: body.rindex("}")]
    return [s.strip() for s in code_only(body).split(";") if s.strip()]


def test_the_patterns_catch_what_they_are_for() -> None:
    for bad in ("kh * 1 - 0", "x[i + 0]", "y = 0 + k;", "1 * w", "a*1]", "c - 0;"):
        assert IDENTITY.search(bad), bad
    for good in ("x * 16", "y + 0.5f", "0x1p-3f", "i - 10", "a[0] = 1;", "k * 12 + 1"):
        assert not IDENTITY.search(good), good
    assert SILENCER.search("    (void)x1_slot;") and not SILENCER.search("int f(void);")
    assert once_loops("for (int bn = 0; bn < 1; ++bn)")
    assert once_loops("for (i2c = 0; i2c < 1; ++i2c) {")
    assert once_loops("for (int p0 = 0; p0 < 169; p0 += 176) {")
    assert not once_loops("for (int k = 0; k < 16; ++k) for (int p0 = 0; p0 < 9; p0 += 4)")
    assert COUNTER.findall("qnnc_cnt[1][5] += 64;") == [("1", "5")]


# -- the models -------------------------------------------------------------------------------
FUSED_IR = """
graph @fused(%x: u8[1,2,5,5]{scale=0.05, zp=3}) -> (%y) {
  %w = const i8[3,2,3,3]{scale=[0.01, 0.02, 0.015], zp=[0, 0, 0], axis=0} dense<[WEIGHTS]>
  %b = const i32[3]{scale=[0.0005, 0.001, 0.00075], zp=[0, 0, 0], axis=0} dense<[40, -25, 7]>
  %y: u8[1,3,5,5]{scale=0.1, zp=0} = QConv(%x, %w, %b) {act_max=255, act_min=0, \
dilations=[1,1], group=1, out_dtype="u8", out_scale=0.1, out_zp=0, pads=[1,1,1,1], \
strides=[1,1]} loc("n0" from [Conv "n0", Relu "n1"])
}
""".replace("WEIGHTS", ", ".join(str(v) for v in np.random.default_rng(3).integers(-20, 21, 54)))


def concat_softmax() -> onnx.ModelProto:
    """x[1,3,6,6] -> two Conv+Relu branches -> Concat -> GlobalAveragePool -> Flatten ->
    Softmax."""
    rng = np.random.default_rng(1)
    inits, nodes = [], []
    for k in range(2):
        w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3
        inits.append(numpy_helper.from_array(w, f"w{k}"))
        nodes += [helper.make_node("Conv", ["x", f"w{k}"], [f"c{k}"], name=f"conv{k}",
                                   pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{k}"], [f"r{k}"], name=f"relu{k}")]
    nodes += [helper.make_node("Concat", ["r0", "r1"], ["cat"], name="cat", axis=1),
              helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
              helper.make_node("Softmax", ["flat"], ["y"], name="softmax", axis=1)]
    graph = helper.make_graph(
        nodes, "concat_softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], inits)
    return helper.make_model(graph, opset_imports=OPSET)


def _compile(model: object, target: str, out: Path, quantise: bool = True) -> object:
    if not quantise:
        return compile_model(model, target=target, output_dir=out, cache_dir=out.parent / "cache")
    cm0 = compile_model(model)
    cal = [random_inputs(cm0.input_types, seed=k) for k in range(2)]
    return compile_model(model, precision="int8", calibration=cal, target=target,
                         output_dir=out, cache_dir=out.parent / "cache")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """(model, target) -> the folder of its generated C."""
    root = tmp_path_factory.mktemp("readable")
    models = {"tiny_cnn": (build_example("tiny_cnn"), True),
              "concat_softmax": (concat_softmax(), True),
              "fused": (parse_graph(FUSED_IR), False)}
    out = {}
    for name, (model, quantise) in models.items():
        for target in TARGETS:
            folder = root / f"{name}_{target}"
            cm = _compile(model, target, folder, quantise)
            if name == "fused":  # a graph of our own: the C must still compute it exactly
                feeds = random_inputs(cm.input_types, seed=5)
                want = interpret(model, feeds)  # type: ignore[arg-type]
                for k, got in zip(cm.output_names, cm.run(None, feeds)):
                    np.testing.assert_array_equal(got, want[k])
            out[(name, target)] = folder
    return out


CASES = [(m, t) for m in ("tiny_cnn", "concat_softmax", "fused") for t in TARGETS]


@pytest.mark.parametrize(("model", "target"), CASES)
def test_lines_fit_120_columns(built: dict, model: str, target: str) -> None:
    for f in FILES:
        for k, line in enumerate((built[(model, target)] / f).read_text().splitlines()):
            assert len(line) <= 120, f"{f}:{k + 1}: {len(line)} columns"


@pytest.mark.parametrize(("model", "target"), CASES)
def test_layer_calls_pass_no_null_and_no_weights(built: dict, model: str, target: str) -> None:
    src = (built[(model, target)] / "model.c").read_text()
    calls = [c for c in run_calls(src) if c.startswith("layer_")]
    assert calls
    for call in calls:
        assert "NULL" not in call and "w_" not in call, call


@pytest.mark.parametrize(("model", "target"), CASES)
def test_no_identity_arithmetic(built: dict, model: str, target: str) -> None:
    for f in ("model.c", "weights.c"):
        code = code_only((built[(model, target)] / f).read_text())
        found = [ln.strip() for ln in code.splitlines() if IDENTITY.search(ln)]
        assert not found, f"{f}: {found[:5]}"


@pytest.mark.parametrize(("model", "target"), CASES)
def test_no_loop_runs_once(built: dict, model: str, target: str) -> None:
    code = code_only((built[(model, target)] / "model.c").read_text())
    assert not once_loops(code), once_loops(code)[:3]


@pytest.mark.parametrize(("model", "target"), [c for c in CASES if c[1] != "host"])
def test_staged_c_has_no_silencers_and_named_counters(built: dict, model: str,
                                                                      target: str) -> None:
    src = (built[(model, target)] / "model.c").read_text()
    code = code_only(src)
    assert not SILENCER.search(code), SILENCER.search(code)
    uses = COUNTER.findall(code)
    assert uses, "a staged model counts its bytes and MACs"
    for row, col in uses:
        assert row.startswith("QNNC_LAYER_") and re.fullmatch(r"QNNC_(LINK_\w+|MACS)", col), \
            (row, col)
    header = (built[(model, target)] / "model.h").read_text()
    for row, col in uses:
        assert re.search(rf"\b{row},", header) and re.search(rf"\b{col},", header)


@pytest.mark.parametrize("target", TARGETS)
def test_the_comment_names_the_fused_nodes(built: dict, target: str) -> None:
    src = (built[("fused", target)] / "model.c").read_text()
    assert "/* QConv 'n0': Conv n0 + Relu n1" in src


@pytest.mark.parametrize("target", TARGETS)
def test_a_quantised_model_names_what_each_layer_absorbed(built: dict, target: str) -> None:
    """The quantiser records the Relu each QConv absorbed; the comment says so."""
    src = (built[("tiny_cnn", target)] / "model.c").read_text()
    assert "/* QConv 'conv0': Conv conv0 + Relu relu0" in src
    assert "/* QConv 'conv1': Conv conv1 + Relu relu1" in src
    assert "/* QLinear 'logits': Gemm logits" in src


def test_parameters_carry_the_values_names(built: dict) -> None:
    src = (built[("fused", "host")] / "model.c").read_text()
    sig = re.search(r"static QNNC_NOINLINE void layer_\w+\(([^)]*)\)", src)
    assert sig is not None
    params = re.findall(r"\*\s*(?:QNNC_RESTRICT\s+)?(\w+)(?:,|$)", sig.group(1))
    assert params == ["x", "y", "scratch"], sig.group(1)  # the weights are globals, not here
    # the host kernel packs the weight and folds the bias: neither is emitted as it was
    assert not re.search(r"\bw_[wb]\b", src)
    staged = (built[("fused", "ascend910b")] / "model.c").read_text()
    assert re.search(r"\bw_b\[", staged)  # the staged kernel adds the bias as it is


def test_parameters_named_like_locals_or_macros_still_compute(tmp_path: Path) -> None:
    """A value called ``a`` meets the binary emitter's local ``a``; ``x`` the unary one's;
    ``NULL`` and ``123`` are no identifiers to take as they are."""
    from ir.build import make_node
    from ir.graph import Graph
    from ir.types import DType, TensorType
    from tests.codegen.harness import run_c

    g = Graph("locals")
    a = g.add_input("a", TensorType((2, 3), DType.f32))
    b = g.add_input("b", TensorType((2, 3), DType.f32))
    (x,) = make_node(g, "Add", [a, b], {}, name="add", out_names=["x"]).outputs
    (n,) = make_node(g, "Sigmoid", [x], {}, name="sig", out_names=["NULL"]).outputs
    (s,) = make_node(g, "Mul", [n, a], {}, name="mul", out_names=["123"]).outputs
    g.outputs = [s]
    feeds = {"a": np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3),
             "b": np.ones((2, 3), np.float32)}
    got = run_c(g, feeds, tmp_path / "c")
    np.testing.assert_allclose(got["123"], interpret(g, feeds)["123"], rtol=1e-6)
    src = (tmp_path / "c" / "model.c").read_text()
    assert re.search(r"layer_\w+_add\(const float \*QNNC_RESTRICT a_?\d*, "
                     r"const float \*QNNC_RESTRICT b_?\d*,", src)
    assert "*QNNC_RESTRICT v_NULL" in src and "*QNNC_RESTRICT v123" in src
