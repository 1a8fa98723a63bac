"""Property test: print -> parse -> print is the identity on random valid graphs, the parsed
graph is structurally equal to the original, and it interprets to bitwise the same outputs.

Graphs are random DAGs over the registered ops (whatever infers on the drawn inputs), plus a
test-only op ``_TestAttrs`` that carries attributes of every kind, omitted inputs and several
outputs, so those corners are covered whatever real ops exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ir.build import make_node
from ir.graph import Graph, Value, graphs_equal
from ir.interpreter import InterpreterError, run
from ir.narrow import int_range
from ir.ops.registry import OPS, Attr, Attrs, register
from ir.text import parse_graph, print_graph
from ir.types import DType, QuantParams, TensorType
from ir.verifier import verify

TEST_OP = "_TestAttrs"


class _TestAttrs:
    """Test-only: returns ``n_out`` copies of its first present input (f32 scalar if none)."""

    name = TEST_OP
    inputs = (0, -1)
    outputs = -1
    attrs = {
        "i": Attr("int", 0), "f": Attr("float", 0.0), "s": Attr("str", ""),
        "b": Attr("bool", False), "ints": Attr("ints", []), "floats": Attr("floats", []),
        "strs": Attr("strs", []), "n_out": Attr("int", 1),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        first = next((t for t in ins if t is not None), TensorType((), DType.f32))
        return [first] * a["n_out"]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        first = next((x for x in ins if x is not None), np.zeros((), np.float32))
        return [first.copy() for _ in range(a["n_out"])]


@pytest.fixture(scope="module", autouse=True)
def _test_op() -> Iterator[None]:
    register(_TestAttrs)
    yield
    OPS.pop(TEST_OP)


# -- strategies ---------------------------------------------------------------------------
ODD_CHARS = st.sampled_from(list("/:. -\"\\\n\t%@{}()[],=_é字\x00\x7f\u2028"))
names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,6}", fullmatch=True),
    st.text(ODD_CHARS | st.characters(codec="utf-8"), max_size=8),
)
finite_scales = st.floats(min_value=1e-30, max_value=1e30, allow_nan=False)
zero_points = st.integers(-(2**31), 2**31 - 1)
any_floats = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def quant_params(draw: st.DrawFn, shape: tuple[int, ...]) -> QuantParams | None:
    axes = [i for i, d in enumerate(shape) if d > 0]
    kind = draw(st.sampled_from(["none", "tensor", "axis"] if axes else ["none", "tensor"]))
    if kind == "none":
        return None
    if kind == "tensor":
        return QuantParams.per_tensor(draw(finite_scales), draw(zero_points))
    axis = draw(st.sampled_from(axes))
    n = shape[axis]
    scales = draw(st.lists(finite_scales, min_size=n, max_size=n))
    zps = draw(st.lists(zero_points, min_size=n, max_size=n))
    return QuantParams(tuple(scales), tuple(zps), axis)


def data_of(draw: st.DrawFn, dt: DType, shape: tuple[int, ...]) -> np.ndarray:
    if dt.is_storage_only or dt is DType.bf16:  # ml_dtypes types: drawn through wider ones
        if dt.is_int:
            lo, hi = int_range(dt)
            return draw(arrays(np.int64, shape, elements=st.integers(lo, hi))).astype(dt.np)
        with np.errstate(over="ignore", invalid="ignore"):
            return draw(arrays(np.float64, shape)).astype(dt.np)
    return draw(arrays(dt.np, shape))


@st.composite
def tensor_data(draw: st.DrawFn, dt: DType, shape: tuple[int, ...]) -> np.ndarray:
    return data_of(draw, dt, shape)


def draw_test_attrs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "i": draw(st.integers(-(2**70), 2**70)),
        "f": draw(any_floats),
        "s": draw(st.text(ODD_CHARS | st.characters(codec="utf-8"), max_size=6)),
        "b": draw(st.booleans()),
        "ints": draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4)),
        "floats": draw(st.lists(any_floats, max_size=4)),
        "strs": draw(st.lists(st.text(max_size=4), max_size=3)),
        "n_out": draw(st.integers(1, 3)),
    }


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    g = Graph(draw(names))
    taken: set[str] = set()

    def fresh() -> str:
        """A drawn name; a clash gets a suffix (fresh_name), the empty name is kept once."""
        name = draw(names)
        name = name if name == "" and "" not in taken else g.fresh_name(name)
        taken.add(name)
        return name

    # One shape for the whole graph (plus scalars), so any two values broadcast together.
    shape = draw(st.sampled_from([(), (0,), (3,), (2, 3), (4, 5), (2, 1, 9)]))
    pool: list[Value] = []
    ends: list[Value] = []  # values no node may read
    for _ in range(draw(st.integers(1, 3))):
        dt = draw(st.sampled_from(list(DType)))
        q = draw(quant_params(shape)) if dt.is_int else None
        pool.append(g.add_input(fresh(), TensorType(shape, dt, q)))
    for _ in range(draw(st.integers(0, 4))):
        dt = draw(st.sampled_from(list(DType)))
        shp = draw(st.sampled_from([shape, ()]))
        c = g.add_const(data_of(draw, dt, shp), fresh())
        if dt.is_int:
            c.type = TensorType(shp, dt, draw(quant_params(shp)))
        pool.append(c)
    # A third each: the attribute-carrying test op, the core ops, any registered op.
    ops = st.one_of(st.just(TEST_OP), st.sampled_from(["Add", "Identity", "Relu"]),
                    st.sampled_from(sorted(OPS)))
    for _ in range(draw(st.integers(0, 10))):
        op = draw(ops)
        opdef = OPS[op]
        if op == TEST_OP:
            ins = draw(st.lists(st.none() | st.sampled_from(pool), max_size=4))
            attrs = draw_test_attrs(draw)
        else:
            hi = opdef.max_inputs if opdef.max_inputs >= 0 else opdef.min_inputs + 2
            n = draw(st.integers(opdef.min_inputs, max(opdef.min_inputs, hi)))
            first = draw(st.sampled_from(pool))
            alike = [v for v in pool if v.type.dtype is first.type.dtype]  # for binary ops
            ins = [first] + [draw(st.sampled_from(alike)) for _ in range(n - 1)] if n else []
            attrs = {}
        n_out = attrs.get("n_out", max(opdef.num_outputs, 1))
        try:
            node = make_node(g, op, ins, attrs, name=draw(names),
                             out_names=[fresh() for _ in range(n_out)])
        except Exception:  # noqa: BLE001 - the op rejects these inputs: draw another node
            continue
        # provenance: the model nodes it was made from, any op and name spellings
        node.sources = tuple(draw(st.lists(st.tuples(st.sampled_from(sorted(OPS)) | names,
                                                     names), max_size=3)))
        # a value of data-dependent extent (Unique, NonZero, ...) may only be a graph output
        counted = opdef.counted(node.attrs) if opdef.counted is not None else ()
        dynamic = {id(v) for v, axis in zip(node.outputs, counted) if axis is not None}
        pool.extend(v for v in node.outputs if id(v) not in dynamic)
        ends.extend(v for v in node.outputs if id(v) in dynamic)
    g.outputs = draw(st.lists(st.sampled_from(pool + ends), min_size=1, max_size=3))
    return g


def _outputs_or_error(g: Graph, feeds: dict[str, np.ndarray]) -> Any:
    try:
        with np.errstate(all="ignore"):
            out = run(g, feeds)
    except InterpreterError as e:
        return ("error", str(e))
    return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in out.items()}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=graphs(), max_inline=st.sampled_from([None, 0, 4, 16]), data=st.data())
def test_print_parse_roundtrip(g: Graph, max_inline: int | None, data: st.DataObject) -> None:
    verify(g)
    blobs: dict[str, np.ndarray] = {}
    text = print_graph(g, blobs=blobs, max_inline=max_inline)
    assert print_graph(g, max_inline=max_inline) == text  # deterministic, blobs or not
    parsed = parse_graph(text, blobs)
    assert graphs_equal(parsed, g)
    assert parsed == g
    assert print_graph(parsed, max_inline=max_inline) == text
    verify(parsed)
    feeds = {v.name: data.draw(tensor_data(v.type.dtype, v.type.shape)) for v in g.inputs}
    assert _outputs_or_error(parsed, feeds) == _outputs_or_error(g, feeds)


@given(st.lists(any_floats, min_size=1, max_size=6), st.sampled_from(["f16", "f32", "f64"]))
def test_float_constants_are_bit_exact(values: list[float], dt: str) -> None:
    with np.errstate(over="ignore"):
        data = np.array(values, dtype=np.float64).astype(DType(dt).np)
    g = Graph()
    c = g.add_const(data, "c")
    g.outputs = [c]
    back = parse_graph(print_graph(g))
    assert back.constants[0].data.tobytes() == data.tobytes()
