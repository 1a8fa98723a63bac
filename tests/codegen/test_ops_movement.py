"""Split, Tile, DepthToSpace, SpaceToDepth and LRN emitters against the reference interpreter.

The data-movement ops must be exact for every dtype (they only copy), so they compare with
rtol = atol = 0 on f32, i8, u8, i32, i64 and bool; LRN is f32 arithmetic with libm's powf
against numpy's, compared at rtol 1e-5 (a few ulp), except beta = 0.75, whose square-root
form is exact to the interpreter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ir.build import make_node
from ir.graph import Graph
from ir.types import DType, TensorType
from targets.c.emitter import EMITTERS, CodegenError
from targets.c.ops_movement import merge_axes
from tests.codegen.harness import check_graph, op_graph, run_c

DTYPES = [DType.f32, DType.i8, DType.u8, DType.i32, DType.i64, DType.bool]


def distinct(t: TensorType, seed: int) -> np.ndarray:
    """Distinct values (a shuffled arange) so that any misplaced element shows."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(t.shape))
    vals = rng.permutation(n) - n // 2
    if t.dtype is DType.bool:
        vals = vals % 2
    return vals.reshape(t.shape).astype(t.dtype.np)


def cases_graph(op: str, dtype: DType, cases: list[tuple[tuple[int, ...], dict[str, Any]]]
                ) -> Graph:
    """One graph with a node per case (one C build per op and dtype, not per case)."""
    g = Graph(f"test_{op}")
    for k, (shape, attrs) in enumerate(cases):
        x = g.add_input(f"x{k}", TensorType(shape, dtype))
        node = make_node(g, op, [x], attrs, name=f"{op.lower()}_{k}")
        g.outputs += list(node.outputs)
    return g


def check_exact(op: str, dtype: DType, cases: list, tmp_path: Path) -> None:
    g = cases_graph(op, dtype, cases)
    feeds = {v.name: distinct(v.type, k) for k, v in enumerate(g.inputs)}
    check_graph(g, tmp_path, rtol=0, atol=0, feeds=feeds)


SPLIT = [
    ((2, 6, 3, 4), {"axis": 1, "split": [1, 2, 3]}),  # channel slabs: a memcpy per batch
    ((4, 10), {"axis": 1, "split": [5, 5]}),
    ((9, 2, 3), {"axis": 0, "split": [2, 7]}),         # axis 0: one contiguous block each
    ((2, 3, 7), {"axis": 2, "split": [3, 1, 3]}),      # innermost axis: short element loops
    ((1, 5, 1, 16), {"axis": 3, "split": [10, 6]}),
    ((3, 4), {"axis": 1, "split": [4]}),               # a single output is a copy
    ((2, 5, 3), {"axis": 1, "split": [2, 0, 3]}),      # an empty output
]
TILE = [
    ((2, 3), {"repeats": [2, 3]}),
    ((1, 3, 4, 5), {"repeats": [2, 1, 1, 3]}),
    ((4, 9), {"repeats": [1, 1]}),                     # identity
    ((2, 1, 3), {"repeats": [1, 4, 1]}),               # repeating a unit axis
    ((12,), {"repeats": [5]}),
    ((3, 2, 16), {"repeats": [2, 2, 1]}),              # 16-element rows: memcpy
    ((2, 3), {"repeats": [2, 0]}),                     # a zero repeat: an empty output
]
D2S = [(shape, {"blocksize": b, "mode": m}) for m in ("DCR", "CRD") for shape, b in [
    ((1, 8, 2, 3), 2), ((2, 18, 3, 2), 3), ((1, 4, 1, 1), 2), ((2, 16, 4, 5), 2),
    ((1, 3, 5, 4), 1)]]
S2D = [(shape, {"blocksize": b, "mode": m}) for m in ("DCR", "CRD") for shape, b in [
    ((1, 2, 4, 6), 2), ((2, 3, 6, 3), 3), ((1, 1, 2, 2), 2), ((2, 5, 8, 4), 2),
    ((1, 3, 5, 4), 1)]]
CASES = {"Split": SPLIT, "Tile": TILE, "DepthToSpace": D2S, "SpaceToDepth": S2D}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.value)
@pytest.mark.parametrize("op", sorted(CASES))
def test_movement_exact(op: str, dtype: DType, tmp_path: Path) -> None:
    check_exact(op, dtype, CASES[op], tmp_path)


def test_merge_fuses_contiguous_axes() -> None:
    # a channel slab of a (2, 6, 3, 4) tensor: 3 channels x 12 = 36 contiguous per batch
    assert merge_axes((2, 3, 3, 4), (72, 12, 4, 1)) == ([2, 36], [72, 1])
    assert merge_axes((1, 5, 1), (9, 1, 7)) == ([5], [1])
    assert merge_axes((2, 3), (0, 1)) == ([2, 3], [0, 1])  # a broadcast axis stays apart
    assert merge_axes((2, 3), (0, 0)) == ([6], [0])


def test_split_moves_slabs_with_memcpy(tmp_path: Path) -> None:
    """The point of merging: a channel split of NCHW copies whole slabs, not elements."""
    g = op_graph("Split", [TensorType((2, 6, 8, 8), DType.u8)], {"axis": 1, "split": [2, 4]})
    x = distinct(g.inputs[0].type, 0)
    got = run_c(g, {"x0": x}, tmp_path / "split")
    src = (tmp_path / "split" / "model.c").read_text()
    assert src.count("memcpy(") == 2  # one slab copy per output and image
    np.testing.assert_array_equal(got[g.outputs[1].name], x[:, 2:])


def test_float16_is_refused(tmp_path: Path) -> None:
    g = op_graph("Tile", [TensorType((2, 3), DType.f16)], {"repeats": [1, 2]})
    with pytest.raises(CodegenError, match="f16"):
        run_c(g, {"x0": np.zeros((2, 3), np.float16)}, tmp_path / "f16")


LRN = [
    ((1, 8, 5, 5), {"size": 5}),
    ((2, 7, 3, 4), {"size": 3, "alpha": 0.01, "beta": 0.5, "bias": 2.0}),
    ((1, 4, 6), {"size": 1}),
    ((1, 6, 2, 2, 3), {"size": 4, "alpha": 1e-3, "beta": 0.9}),  # even window: lopsided
    ((1, 3, 4, 4), {"size": 9, "alpha": 0.5, "beta": 1.0}),      # window wider than C
    ((1, 64, 7, 7), {"size": 5, "alpha": 1e-4, "beta": 0.75}),   # Inception v1's settings
]


def test_lrn(tmp_path: Path) -> None:
    g = cases_graph("LRN", DType.f32, LRN)
    rng = np.random.default_rng(3)
    feeds = {v.name: rng.standard_normal(v.type.shape).astype(np.float32) * 3
             for v in g.inputs}
    check_graph(g, tmp_path, rtol=1e-5, atol=0, feeds=feeds)


def test_lrn_three_quarters_bit_exact(tmp_path: Path) -> None:
    """beta = 0.75 (AlexNet's, GoogLeNet's) is sqrt(t) * sqrt(sqrt(t)) in the interpreter and
    in the C, vector lanes and scalar tail alike: the same bits, so an INT8 model's float
    LRN island requantises exactly as the interpreter's. Planes of 1..17 values cover the
    eight-lane loop and its tail; large inputs make t far from 1."""
    cases = [((1, 6, s), {"size": 5, "alpha": 0.3, "beta": 0.75, "bias": 1.5})
             for s in (1, 7, 8, 9, 17)]
    cases.append(((2, 64, 5, 5), {"size": 5, "alpha": 1e-4, "beta": 0.75}))
    g = cases_graph("LRN", DType.f32, cases)
    rng = np.random.default_rng(7)
    feeds = {v.name: (rng.standard_normal(v.type.shape) * 30).astype(np.float32)
             for v in g.inputs}
    check_graph(g, tmp_path, rtol=0, atol=0, feeds=feeds)


def test_lrn_f64(tmp_path: Path) -> None:
    g = op_graph("LRN", [TensorType((1, 5, 3, 3), DType.f64)], {"size": 3, "alpha": 0.2})
    x = np.random.default_rng(4).standard_normal((1, 5, 3, 3))
    check_graph(g, tmp_path, rtol=1e-12, atol=0, feeds={"x0": x})


def test_registered() -> None:
    for op in ("LRN", "Split", "Tile", "DepthToSpace", "SpaceToDepth"):
        assert op in EMITTERS, op
