"""A residual QAdd run in the epilogue of the QConv before it (fuse-epilogue's second rule):
the host C adds each finished tile of rows to the residual, bit-exact with the interpreter on
every convolution path (the fused tile kernel, the per-row store, and, adding after the
layer, depthwise and per-channel scale), either operand order, one and two threads, and
generic, AVX2 and AVX-512 VNNI builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.passes import run_pipeline
from ir import DType, Graph
from ir.build import make_node
from ir.interpreter import run as interpret
from targets.host.build import BuildOptions
from tests.codegen.harness import run_c
from tests.codegen.test_epilogue_lut import CONVS, big_multiplier
from tests.codegen.test_ops_int8 import GEMM_CPUS, feeds_for, graph, out_attrs, rand_q, weights

#: CONVS and a plane wide enough for several column chunks (and chunks shared by threads)
CASES = {**CONVS, "dense_chunks": (dict(x=(1, 8, 40, 44), w=(10, 8, 3, 3), s=[1, 1],
                                        p=[1, 1, 1, 1], g=1), False)}


def residual_graph(case: str, conv_first: bool, seed: int) -> Graph:
    """x -> QConv -> QAdd(with the input r, in either order, relu-clamped)."""
    kw, big = CASES[case]
    rng = np.random.default_rng(seed)
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": kw["g"], "dilations": [1, 1],
             **out_attrs(rng, DType.u8, "relu")}
    attrs = big_multiplier(attrs) if big else attrs
    bias = (rng.integers(-3000, 3000, kw["w"][0]).astype(np.int32), None)
    g = graph("QConv", [rand_q(rng, kw["x"], DType.u8), weights(rng, kw["w"], True), bias],
              attrs)
    y = g.outputs[0]
    r = g.add_input("r", rand_q(rng, y.type.shape, DType.u8))
    ins = [y, r] if conv_first else [r, y]
    add = make_node(g, "QAdd", ins, out_attrs(rng, DType.u8, "relu"), name="add")
    g.outputs = list(add.outputs)
    return g


def fused(g: Graph) -> Graph:
    g = run_pipeline(g, "fuse-epilogue")
    conv, add = g.nodes
    assert conv.attrs.get("epilogue") in ("a", "b") and add.attrs.get("fused") == "epilogue"
    return g


@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("conv_first", [True, False])
@pytest.mark.parametrize("case", ["dense_fused", "dense_rowstore", "dense_chunks",
                                  "depthwise_plane", "channel_scale"])
def test_residual_in_the_epilogue_is_exact(case: str, conv_first: bool, threads: int,
                                           cpu: str, tmp_path: Path) -> None:
    g = fused(residual_graph(case, conv_first, sorted(CASES).index(case)))
    feeds = feeds_for(g, 1)
    want = interpret(g, feeds)
    got = run_c(g, feeds, tmp_path / "m", BuildOptions(cpu=cpu, threads=threads, werror=True))
    (name,) = want
    np.testing.assert_array_equal(got[name], want[name])


def test_the_residual_computed_after_the_convolution_moves_it(tmp_path: Path) -> None:
    """Two convolutions of one input added: the first moves past the second (whose result
    is its residual) to run the add in its epilogue, and the second stays a plain layer."""
    rng = np.random.default_rng(11)
    conv = {"strides": [1, 1], "pads": [1, 1, 1, 1], "group": 1, "dilations": [1, 1]}
    g = graph("QConv", [rand_q(rng, (1, 6, 10, 10), DType.u8),
                        weights(rng, (12, 6, 3, 3), True), None],
              {**conv, **out_attrs(rng, DType.u8, "relu")})
    a = g.outputs[0]
    b = make_node(g, "QConv", [g.inputs[0], *g.nodes[0].inputs[1:]],
                  {**conv, **out_attrs(rng, DType.u8, "relu")}, name="second").outputs[0]
    add = make_node(g, "QAdd", [a, b], out_attrs(rng, DType.u8), name="add")
    g.outputs = list(add.outputs)
    feeds = feeds_for(g, 2)
    want = interpret(g, feeds)
    g = run_pipeline(g, "fuse-epilogue")
    assert [n.name for n in g.nodes] == ["second", g.nodes[1].name, "add"]
    assert g.nodes[1].attrs["epilogue"] == "a" and "epilogue" not in g.nodes[0].attrs
    for threads in (1, 2):
        got = run_c(g, feeds, tmp_path / f"t{threads}",
                    BuildOptions(cpu=GEMM_CPUS[0], threads=threads, werror=True))
        np.testing.assert_array_equal(got["add"], want["add"])
