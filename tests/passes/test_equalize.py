"""equalize (cross-layer equalisation) on real layer stacks: it keeps the float function
(|y_eq - y| <= 1e-4 * |y| + 1e-5 * max|y|, the rounding of the rescaled weights; measured at
a few hundredths of that bound), it balances every pair (r1_i = r2_i at convergence), and it
makes per-channel weight ranges far more uniform.

MobileNetV2 as the example builds it uses ReLU6 = Clip(0, 6), which equalisation must not
cross, so only its two linear projection -> 1x1 conv pairs equalise. Nagel et al. replace
ReLU6 by ReLU before equalising MobileNetV2; the ReLU variant here does the same, and every
expand -> depthwise -> project chain then equalises.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler.examples import build_example
from compiler.frontend import import_model
from compiler.passes import run_pipeline
from compiler.passes.equalize import find_pairs, input_channels, input_ranges, output_ranges
from ir.build import make_node
from ir.graph import Graph, Node
from ir.interpreter import run
from ir.types import DType, TensorType


def assert_same_function(before: Graph, after: Graph, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    feeds = {v.name: rng.standard_normal(v.type.shape).astype(np.float32) for v in before.inputs}
    want, got = run(before, feeds), run(after, feeds)
    for name, w in want.items():
        w64 = w.astype(np.float64)
        bound = 1e-4 * np.abs(w64) + 1e-5 * np.abs(w64).max()
        assert np.all(np.abs(got[name] - w64) <= bound), name


def ratio(node: Node) -> float:
    """max / min over output channels of the per-channel weight range."""
    w = node.inputs[1]
    assert w is not None and w.data is not None
    r = output_ranges(w.data.astype(np.float64))
    return float(r.max() / r.min())


def assert_balanced(pairs: list[tuple[Node, Node]]) -> None:
    for first, second in pairs:
        assert first.inputs[1] is not None and second.inputs[1] is not None
        w1 = first.inputs[1].data.astype(np.float64)  # type: ignore[union-attr]
        w2 = second.inputs[1].data.astype(np.float64)  # type: ignore[union-attr]
        r1 = output_ranges(w1)
        r2 = input_ranges(w2, input_channels(w2, second.attrs["group"], w1.shape[0]))
        np.testing.assert_allclose(r1, r2, rtol=1e-3, err_msg=f"{first.name} -> {second.name}")


def _folded_mobilenet(relu: bool) -> Graph:
    g = import_model(build_example("mobilenetv2"))
    g = run_pipeline(g, ["fold-constants", "fold-batchnorm", "dce"], verify=True)
    if relu:
        for n in g.nodes:
            if n.op == "Clip":
                n.op, n.attrs = "Relu", {}
    return g


def test_mobilenetv2_equalises_only_pairs_without_relu6() -> None:
    before = _folded_mobilenet(relu=False)
    g = _folded_mobilenet(relu=False)
    pairs = find_pairs(g)
    assert [(a.name, b.name) for a, b in pairs] == [
        ("block0.project.conv", "block1.expand.conv"), ("block16.project.conv", "head.conv")]
    old = {a.name: ratio(a) for a, _ in pairs}
    g = run_pipeline(g, ["equalize", "dce"], verify=True)
    assert_balanced(pairs)
    for a, _ in pairs:
        assert ratio(a) < 0.9 * old[a.name]
    changed = {n.name for n in g.nodes if n.op == "Conv" and n.inputs[1].name.endswith("_eq")}
    assert changed == {n.name for pair in pairs for n in pair}
    assert_same_function(before, g)


def test_mobilenetv2_relu_variant_evens_depthwise_ranges() -> None:
    before = _folded_mobilenet(relu=True)
    g = _folded_mobilenet(relu=True)
    pairs = find_pairs(g)
    assert len(pairs) == 2 + 2 * 17  # the two linear pairs, two per inverted-residual block
    dws = [n for n in g.nodes if n.op == "Conv" and n.attrs["group"] > 1]
    assert len(dws) == 17
    old = [ratio(n) for n in dws]
    g = run_pipeline(g, ["equalize", "dce"], verify=True)
    assert_balanced(pairs)
    new = [ratio(n) for n in dws]
    assert all(b < a for a, b in zip(old, new))
    assert max(new) < max(old) / 2.5  # measured: 7.1 -> 2.4
    assert_same_function(before, g)


def _block(rng: np.random.Generator, spread: float) -> Graph:
    """conv1x1 8->16, relu, depthwise 3x3 stride 2, relu, conv1x1 16->8, with the depthwise
    output channels scaled by factors spread over ``spread`` decades (as BN folding does to
    trained depthwise layers)."""
    g = Graph("block")
    x = g.add_input("x", TensorType((1, 8, 9, 9), DType.f32))

    def conv(v, w, b, **attrs):  # type: ignore[no-untyped-def]
        attrs = {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 1,
                 **attrs}
        ins = [v, g.add_const(w.astype(np.float32), "w"), g.add_const(b.astype(np.float32), "b")]
        return make_node(g, "Conv", ins, attrs, name=f"conv{len(g.nodes)}").outputs[0]

    gain = 10.0 ** rng.uniform(-spread / 2, spread / 2, 16)
    h = conv(x, rng.standard_normal((16, 8, 1, 1)), rng.standard_normal(16))
    h = make_node(g, "Relu", [h]).outputs[0]
    h = conv(h, rng.standard_normal((16, 1, 3, 3)) * gain[:, None, None, None],
             rng.standard_normal(16) * gain, group=16, strides=[2, 2], pads=[1, 1, 1, 1])
    h = make_node(g, "Relu", [h]).outputs[0]
    g.outputs = [conv(h, rng.standard_normal((8, 16, 1, 1)), rng.standard_normal(8))]
    return g


@pytest.mark.parametrize("seed", range(3))
def test_synthetic_block_with_wide_depthwise_ranges(seed: int) -> None:
    before = _block(np.random.default_rng(seed), spread=4.0)
    g = _block(np.random.default_rng(seed), spread=4.0)
    pairs = find_pairs(g)
    assert len(pairs) == 2
    dw = pairs[1][0]
    old = ratio(dw)
    assert old > 100
    g = run_pipeline(g, ["equalize"], verify=True)
    assert_balanced(pairs)
    assert ratio(dw) < old / 30  # measured: 70x to 350x less
    assert_same_function(before, g, seed)
    # a second run finds nothing left to do
    weights = [n.inputs[1] for n in g.nodes if n.op == "Conv"]
    g = run_pipeline(g, ["equalize"])
    for w, n in zip(weights, [n for n in g.nodes if n.op == "Conv"]):
        assert w is not None and n.inputs[1] is not None
        np.testing.assert_allclose(n.inputs[1].data, w.data, rtol=1e-3)
