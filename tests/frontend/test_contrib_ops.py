"""onnxruntime's com.microsoft contrib ops (and its default-domain SimplifiedLayerNormalization),
each in a one-node model built with onnx.helper, imported by qnnc and run by its interpreter
against onnxruntime, which implements them. Float outputs agree within rtol 1e-4 / atol 1e-5
(float32 rounding of differently ordered sums; onnxruntime's tanh and erf are approximations
of their own, hence the atol)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import ModelProto, helper, numpy_helper

from compiler.frontend.importer import import_model
from compiler.frontend.loader import check_model
from compiler.frontend.ops.contrib import unpack_bits
from ir.interpreter import run

MS = "com.microsoft"
RNG = np.random.default_rng(0)


def f32(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def one_node(op: str, feeds: dict[str, np.ndarray], consts: dict[str, np.ndarray],
             inputs: list[str], outputs: list[str], domain: str = MS,
             opset: int = 17, **attrs: Any) -> ModelProto:
    node = helper.make_node(op, inputs, outputs, domain=domain, name="n", **attrs)
    vin = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]
    vout = [helper.make_empty_tensor_value_info(o) for o in outputs if o]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    g = helper.make_graph([node], "contrib", vin, vout, initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset),
                                               helper.make_opsetid(MS, 1)])


def check(m: ModelProto, feeds: dict[str, np.ndarray], rtol: float = 1e-4,
          atol: float = 1e-5) -> None:
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    graph = import_model(m)
    got = run(graph, feeds)
    assert len(graph.outputs) == len(want)
    for v, w in zip(graph.outputs, want):
        g = got[v.name]
        assert g.dtype == w.dtype and g.shape == w.shape, (v.name, g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=v.name)


def _activations() -> list[Any]:
    x, b = f32(2, 3, 8, scale=2.0), f32(8)
    return [
        ("Gelu", {"x": x}, {}, ["x"], {}),
        ("FastGelu", {"x": x}, {}, ["x"], {}),
        ("FastGelu", {"x": x}, {"b": b}, ["x", "b"], {}),
        ("BiasGelu", {"x": x}, {"b": b}, ["x", "b"], {}),
        ("QuickGelu", {"x": x}, {}, ["x"], {}),
        ("QuickGelu", {"x": x}, {}, ["x"], {"alpha": 1.0}),
    ]


@pytest.mark.parametrize("op,feeds,consts,inputs,attrs", _activations(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_activations(op: str, feeds: dict, consts: dict, inputs: list[str],
                     attrs: dict) -> None:
    check(one_node(op, feeds, consts, inputs, ["y"], **attrs), feeds)


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("outputs", [["y"], ["y", "", "", "sum"], ["y", "mean", "inv", "sum"]])
def test_skip_layer_normalization(with_bias: bool, outputs: list[str]) -> None:
    feeds = {"x": f32(2, 4, 16), "skip": f32(2, 4, 16)}
    consts = {"gamma": f32(16), "beta": f32(16)} | ({"bias": f32(16)} if with_bias else {})
    m = one_node("SkipLayerNormalization", feeds, consts, ["x", "skip", *consts], outputs,
                 epsilon=1e-5)
    if "mean" in outputs:  # onnxruntime's statistics are [B, S, 1]; compare the normal output
        m.graph.output.pop()
        m.graph.output.pop(1)
        m.graph.output.pop(1)
    check(m, feeds)


@pytest.mark.parametrize("skip", [False, True])
def test_simplified_layer_normalization(skip: bool) -> None:
    feeds = {"x": f32(2, 4, 16)} | ({"skip": f32(2, 4, 16)} if skip else {})
    consts = {"gamma": f32(16)} | ({"bias": f32(16)} if skip else {})
    if skip:
        m = one_node("SkipSimplifiedLayerNormalization", feeds, consts,
                     ["x", "skip", "gamma", "bias"], ["y", "", "", "sum"], epsilon=1e-6)
    else:
        # onnxruntime registers SimplifiedLayerNormalization in the default domain, where
        # onnx's checker knows no schema: qnnc's model check must still accept it
        m = one_node("SimplifiedLayerNormalization", feeds, consts, ["x", "gamma"], ["y"],
                     domain="", axis=-1, epsilon=1e-6)
        m.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", 1, [2, 4, 16]))
        check_model(m)
    check(m, feeds)


@pytest.mark.parametrize("act,params", [("", []), ("Relu", []), ("Tanh", []),
                                        ("Sigmoid", []), ("LeakyRelu", [0.2]),
                                        ("Clip", [-0.5, 0.7]), ("HardSigmoid", [0.3, 0.4])])
def test_fused_conv(act: str, params: list[float]) -> None:
    feeds = {"x": f32(1, 3, 6, 6)}
    consts = {"w": f32(4, 3, 3, 3), "b": f32(4)}
    attrs: dict[str, Any] = {"pads": [1, 1, 1, 1], "strides": [1, 1]}
    if act:
        attrs["activation"] = act
    if params:
        attrs["activation_params"] = params
    check(one_node("FusedConv", feeds, consts, ["x", "w", "b"], ["y"], **attrs), feeds)


@pytest.mark.parametrize("ta,tb,alpha", [(0, 0, 1.0), (1, 0, 0.5), (0, 1, 2.0), (1, 1, 0.25)])
def test_fused_matmul(ta: int, tb: int, alpha: float) -> None:
    a = f32(2, 5, 4) if ta else f32(2, 4, 5)
    b = f32(2, 3, 5) if tb else f32(2, 5, 3)
    feeds = {"a": a, "b": b}
    check(one_node("FusedMatMul", feeds, {}, ["a", "b"], ["y"], transA=ta, transB=tb,
                   alpha=alpha), feeds)


def pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """[..., n] codes < 2**bits -> uint8 [..., n*bits/8], lowest bits first (the inverse of
    unpack_bits, so the layout itself is checked by onnxruntime)."""
    per = 8 // bits
    v = values.astype(np.uint8).reshape(*values.shape[:-1], -1, per)
    out = np.zeros(v.shape[:-1], np.uint8)
    for i in range(per):
        out |= v[..., i] << np.uint8(i * bits)
    return out


def test_unpack_bits_inverts_packing() -> None:
    codes = RNG.integers(0, 16, (3, 8))
    np.testing.assert_array_equal(unpack_bits(pack_bits(codes, 4), 4), codes)
    assert unpack_bits(np.array([0x21], np.uint8), 4).tolist() == [1, 2]


@pytest.mark.parametrize("bits,zp_form,k", [(4, None, 64), (4, "packed", 64), (4, "float", 48),
                                            (8, "packed", 32), (2, "packed", 64)])
def test_matmul_nbits(bits: int, zp_form: str | None, k: int) -> None:
    n, block = 6, 16
    blocks = -(-k // block)
    codes = RNG.integers(0, 1 << bits, (n, blocks, block))
    consts = {"B": pack_bits(codes, bits),
              "scales": (RNG.random((n, blocks)) * 0.1 + 0.01).astype(np.float32)}
    if zp_form == "packed":
        zp = RNG.integers(0, 1 << bits, (n, blocks))
        per = 8 // bits
        pad = (-blocks) % per
        consts["zp"] = pack_bits(np.pad(zp, ((0, 0), (0, pad))), bits)
    elif zp_form == "float":
        consts["zp"] = RNG.integers(0, 1 << bits, (n, blocks)).astype(np.float32)
    consts["bias"] = f32(n)
    feeds = {"a": f32(2, 3, k)}
    ins = ["a", "B", "scales", "zp" if zp_form else "", "", "bias"]
    check(one_node("MatMulNBits", feeds, consts, ins, ["y"], K=k, N=n, bits=bits,
                   block_size=block), feeds, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("per_column,zp", [(False, False), (True, True)])
def test_dynamic_quantize_matmul(per_column: bool, zp: bool) -> None:
    """int8 weights use 7 bits: onnxruntime's x86 u8 x s8 kernels add pairs of products in
    saturating int16 (see test_qlinear_import.py), which full-range weights overflow."""
    feeds = {"a": f32(3, 8)}
    consts: dict[str, np.ndarray] = {
        "B": RNG.integers(-64, 64, (8, 5)).astype(np.int8),
        "b_scale": (RNG.random(5 if per_column else ()) * 0.02 + 0.01).astype(np.float32)}
    if zp:
        consts["B"] = RNG.integers(0, 256, (8, 5)).astype(np.uint8)
        consts["b_zp"] = RNG.integers(100, 150, 5).astype(np.uint8)
    consts["bias"] = f32(5)
    ins = ["a", "B", "b_scale", "b_zp" if zp else "", "bias"]
    check(one_node("DynamicQuantizeMatMul", feeds, consts, ins, ["y"]), feeds)


@pytest.mark.parametrize("rank,interleaved,rot,pos", [
    (3, 0, 0, "ids"), (3, 1, 0, "ids"), (3, 0, 4, "ids"), (4, 0, 0, "ids"), (4, 1, 0, "offset"),
    (3, 0, 0, "offset")])
def test_rotary_embedding(rank: int, interleaved: int, rot: int, pos: str) -> None:
    b, s, heads, head = 2, 5, 2, 8
    half = (rot or head) // 2
    x = f32(b, s, heads * head) if rank == 3 else f32(b, heads, s, head)
    angles = np.arange(16)[:, None] * (1.0 / 10000 ** (np.arange(half) / half))[None]
    consts = {"cos": np.cos(angles).astype(np.float32), "sin": np.sin(angles).astype(np.float32)}
    pids = (RNG.integers(0, 16, (b, s)) if pos == "ids" else np.array([3])).astype(np.int64)
    feeds = {"x": x, "pos": pids}
    attrs: dict[str, Any] = {"interleaved": interleaved}
    if rot:
        attrs |= {"rotary_embedding_dim": rot, "num_heads": heads}
    check(one_node("RotaryEmbedding", feeds, consts, ["x", "pos", "cos", "sin"], ["y"],
                   **attrs), feeds)


def _mask(kind: str, b: int, s: int, t: int) -> np.ndarray | None:
    if kind == "lengths":
        return np.array([t, t - 2][:b], np.int32)
    if kind == "start_end":
        return np.array([t, t - 1, 1, 0][: 2 * b], np.int32)
    if kind == "raw":
        m = np.ones((b, t), np.int32)
        m[1, -3:] = 0
        return m
    if kind == "raw3d":
        return (RNG.random((b, s, t)) > 0.3).astype(np.int32)
    return None


@pytest.mark.parametrize("mask,unidirectional,past,sizes", [
    (None, 0, False, None), ("lengths", 0, False, None), ("start_end", 0, False, None),
    ("raw", 0, False, None), ("raw3d", 1, False, None), ("raw", 1, True, None),
    (None, 0, False, [16, 16, 8])])
def test_attention(mask: str | None, unidirectional: int, past: bool,
                   sizes: list[int] | None) -> None:
    b, s, din, heads = 2, 4, 12, 2
    qkv = sizes or [16, 16, 16]
    feeds: dict[str, np.ndarray] = {"x": f32(b, s, din)}
    consts = {"w": f32(din, sum(qkv), scale=0.3), "bias": f32(sum(qkv), scale=0.1)}
    ins = ["x", "w", "bias", "", ""]
    p = 3 if past else 0
    m = _mask(mask, b, s, s + p) if mask else None
    if m is not None:
        feeds["mask"], ins[3] = m, "mask"
    if past:
        feeds["past"], ins[4] = f32(2, b, heads, p, 8), "past"
    attrs: dict[str, Any] = {"num_heads": heads, "unidirectional": unidirectional}
    if sizes:
        attrs["qkv_hidden_sizes"] = sizes
    outs = ["y", "present"] if past else ["y"]
    check(one_node("Attention", feeds, consts, ins, outs, **attrs), feeds)


@pytest.mark.parametrize("form", ["separate", "bias", "past", "mask", "attention_bias",
                                  "causal"])
def test_multi_head_attention(form: str) -> None:
    b, s, heads, head = 2, 4, 2, 4
    hidden = heads * head
    feeds = {"q": f32(b, s, hidden), "k": f32(b, 5, hidden), "v": f32(b, 5, hidden)}
    consts: dict[str, np.ndarray] = {}
    ins = ["q", "k", "v", "", "", "", "", ""]
    outs = ["y"]
    attrs: dict[str, Any] = {"num_heads": heads}
    if form in ("bias", "past", "causal"):
        consts["bias"] = f32(3 * hidden)
        ins[3] = "bias"
    if form == "mask":
        feeds["mask"], ins[4] = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.int32), "mask"
    if form == "attention_bias":
        feeds["ab"], ins[5] = f32(1, heads, s, 5), "ab"
    if form in ("past", "causal"):
        feeds |= {"pk": f32(b, heads, 3, head), "pv": f32(b, heads, 3, head)}
        ins[6:8] = ["pk", "pv"]
        outs = ["y", "present_key", "present_value"]
    if form == "causal":
        feeds |= {"k": f32(b, s, hidden), "v": f32(b, s, hidden)}
        attrs["unidirectional"] = 1
    check(one_node("MultiHeadAttention", feeds, consts, ins, outs, **attrs), feeds)


@pytest.mark.parametrize("form", ["packed_qkv", "packed_kv"])
def test_multi_head_attention_packed(form: str) -> None:
    """onnxruntime's CPU kernel has no packed forms: qnnc's packed model is checked against
    onnxruntime on the same data passed as separate Q, K and V."""
    b, s, heads, head = 2, 4, 2, 4
    hidden = heads * head
    q, k, v = f32(b, s, hidden), f32(b, s, hidden), f32(b, s, hidden)
    bias = f32(3 * hidden) if form == "packed_qkv" else None
    consts = {"bias": bias} if bias is not None else {}
    sep = {"q": q, "k": k, "v": v}
    ref = one_node("MultiHeadAttention", sep, consts, ["q", "k", "v", "bias" if consts else ""],
                   ["y"], num_heads=heads)
    sess = ort.InferenceSession(ref.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, sep)

    def per_head(*xs: np.ndarray) -> np.ndarray:  # [B, S, N, len(xs), H]
        return np.stack([x.reshape(b, s, heads, head) for x in xs], axis=3)

    if form == "packed_qkv":
        feeds, ins = {"qkv": per_head(q, k, v)}, ["qkv", "", "", "bias"]
    else:
        feeds, ins = {"q": q, "kv": per_head(k, v)}, ["q", "kv"]
    m = one_node("MultiHeadAttention", feeds, consts, ins, ["y"], num_heads=heads)
    graph = import_model(m)
    got = run(graph, feeds)[graph.outputs[0].name]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_fused_conv_with_sum_input() -> None:
    """Z is added to the convolution before the activation."""
    feeds = {"x": f32(1, 3, 5, 5), "z": f32(1, 4, 5, 5)}
    consts = {"w": f32(4, 3, 3, 3), "b": f32(4)}
    check(one_node("FusedConv", feeds, consts, ["x", "w", "b", "z"], ["y"], activation="Relu",
                   pads=[1, 1, 1, 1]), feeds)
