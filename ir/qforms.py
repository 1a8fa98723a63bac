"""Quantised forms: how a float op becomes integer ops, written once.

Two drivers turn float ops into the quantised ops of ir/ops/q*.py: the calibration quantiser
(compiler/quant/quantize.py), which chooses every tensor's parameters from calibrated ranges,
and the QDQ lowering (compiler/passes/lower_qdq.py), which takes them from the
QuantizeLinear/DequantizeLinear pairs of a pre-quantised model. Both apply the same form, the
``quantized`` trait of the op (ir/ops/registry.py): a function ``form(ctx, node)`` that reads
the node's operands by name, asks the driver's :class:`QuantContext` for the quantised
operands, the output parameters and the weights, and emits the integer ops. What differs
between the drivers is only where parameters come from and what a graph looks like around a
node, which is what the context answers; a form raises :class:`NoQuantForm` when the node
(or its surroundings) has no integer form, and the node stays float.

Forms shared by many ops live here (tables, ops on codes, pooling, products); an op's own form
(Conv, Gemm, MatMul, Mul, BatchNormalization) lives beside the op. Every float → code
conversion they make goes through ir/qmath.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from ir import qmath
from ir.graph import Node, Value
from ir.ops.registry import OPS
from ir.types import DType

Form = TypeVar("Form", bound=Callable[..., None])


class NoQuantForm(Exception):
    """This node, with these operands and readers, has no integer form: it stays float."""


@dataclass(frozen=True)
class OutParams:
    """The 8-bit type a result is stored in: element type, scale, zero point."""

    dtype: DType
    scale: float
    zero_point: int

    def attrs(self) -> dict[str, object]:
        """The out_* attributes of a quantised op producing this type."""
        return {"out_dtype": self.dtype.value, "out_scale": self.scale,
                "out_zp": self.zero_point}


class QuantContext(Protocol):
    """What a form asks of its driver. Values are those of the float graph: ``act(x)`` is the
    quantised version of the float activation ``x``, ``out_params(y)`` the type the result
    standing for ``y`` must have, ``emit`` makes the integer node stand for the ``results``."""

    def skipped(self, node: Node) -> bool:
        """The user keeps ``node`` in float (never true for the QDQ lowering)."""

    def act(self, v: Value | None) -> Value:
        """The quantised (8-bit, per tensor) version of activation ``v``."""

    def is_constant(self, v: Value | None) -> bool:
        """``v`` is known at compile time (a constant, or a dequantised constant)."""

    def constant(self, v: Value | None) -> np.ndarray | None:
        """The real value of a constant operand (dequantised if stored as codes), else None."""

    def other(self, v: Value | None) -> Value | None:
        """An operand that passes unchanged into the integer op (indices, shapes)."""

    def sole_reader(self, v: Value) -> Node | None:
        """The only node reading ``v`` in the float graph (None: several, none, or an
        output of the graph)."""

    def out_params(self, v: Value) -> OutParams:
        """The parameters the quantised result standing for ``v`` must have."""

    def rescale(self, v: Value, to: OutParams, node: Node) -> Value:
        """The quantised version of ``v`` requantised to ``to`` (a Concat's input)."""

    def weights(self, node: Node, x: Value, xq: Value, w: Value | np.ndarray,
                b: Value | np.ndarray | None, *, transpose: bool = False, alpha: float = 1.0,
                beta: float = 1.0, groups: int = 1) -> tuple[Value, Value | None]:
        """int8 weights (per output channel, on axis 0; transposed first if asked, scaled by
        ``alpha``) and the int32 bias at s_x·s_w[c] (scaled by ``beta``) of a layer reading
        the activation ``x``. ``w`` / ``b`` are operands, or arrays the form derived."""

    def emit(self, op: str, ins: Sequence[Value | None], attrs: dict[str, object],
             covers: Sequence[Node | None], results: Sequence[Value]) -> list[Value]:
        """The integer node ``op`` standing for ``results`` (values of the float graph), in
        place of the nodes ``covers`` (the node first, then what it absorbed)."""


# -- shared pieces of forms ----------------------------------------------------------------------


def fused_activation(ctx: QuantContext, out: Value) -> tuple[Node | None, Value]:
    """(the Relu/Clip-like op a producer of ``out`` can absorb as clamp bounds, the value
    the producer's result then stands for): the activation when it is ``out``'s only
    reader, else (None, out)."""
    act = ctx.sole_reader(out)
    if act is None or OPS[act.op].clamp is None or ctx.skipped(act):
        return None, out
    return act, act.outputs[0]


def result_attrs(ctx: QuantContext, result: Value, act: Node | None) -> dict[str, object]:
    """out_* attributes for ``result`` and, with a fused activation, its clamp bounds."""
    p = ctx.out_params(result)
    attrs = p.attrs()
    if act is not None:
        clamp = OPS[act.op].clamp
        assert clamp is not None
        lo, hi = clamp(act, p.dtype, p.scale, p.zero_point)
        attrs.update(act_min=lo, act_max=hi)
    return attrs


def clamp_between(lo: float, hi: float, dtype: DType, scale: float,
                  zero_point: int) -> tuple[int, int]:
    """The codes of [lo, hi]: quantisation is monotone, so clamping the real value before
    quantising equals clamping the code after."""
    b = qmath.quantize(np.array([lo, hi], np.float32), scale, zero_point, dtype)
    return int(b[0]), int(b[1])


@dataclass(frozen=True)
class InputMeans:
    """Where a layer whose form corrects its bias with its input's per-channel means finds
    them: the operand holding its weight (no means when that is not a constant) and the
    input's channel axis, the last (MatMul, Gemm) or axis 1 (a convolution, at any rank)."""

    weight: str
    channels_last: bool


def with_input_means(weight: str, *, channels_last: bool) -> Callable[[Form], Form]:
    """Mark a form whose weights the calibration quantiser corrects with the per-channel
    means of the layer's input (bias correction): calibration then collects those means."""
    def mark(form: Form) -> Form:
        form.input_means = InputMeans(weight, channels_last)  # type: ignore[attr-defined]
        return form
    return mark


def input_means(op: str) -> InputMeans | None:
    """How ``op``'s quantised form reads its input's channel means, or None (it does not)."""
    opdef = OPS.get(op)
    return None if opdef is None else getattr(opdef.quantized, "input_means", None)


def needs(cond: bool) -> None:
    """A form's precondition: NoQuantForm unless ``cond``."""
    if not cond:
        raise NoQuantForm


# -- forms -----------------------------------------------------------------------------------


def lut(ctx: QuantContext, node: Node) -> None:
    """A unary non-linearity → QLut: the table is the op's own reference compute applied to
    every 8-bit input code, quantised to the result's parameters (exact by construction)."""
    needs(len(node.inputs) == 1 and len(node.outputs) == 1)
    xq = ctx.act(node.x)
    qx = xq.type.quant
    assert qx is not None
    out = node.outputs[0]
    p = ctx.out_params(out)
    opdef, attrs = OPS[node.op], node.attrs

    def fn(v: np.ndarray) -> np.ndarray:
        return opdef.compute([v.astype(np.float32)], attrs)[0]

    table = qmath.make_lut(fn, qx.scale[0], qx.zero_point[0], xq.type.dtype, p.scale,
                           p.zero_point, p.dtype)
    ctx.emit("QLut", [xq], {"table": [int(t) for t in table], **p.attrs()}, [node], [out])


def scalar_lut(ctx: QuantContext, node: Node) -> bool:
    """A binary element-wise op with one operand a constant scalar is a unary function of
    the other, so → QLut (the op's reference compute on every 8-bit code with the constant,
    quantised to the result's parameters: exactly what the float op between a dequantise
    and a quantise gives). True if emitted; False if the node is not of that shape."""
    if len(node.inputs) != 2 or len(node.outputs) != 1:
        return False
    a, b = node.inputs
    if ctx.is_constant(a) == ctx.is_constant(b):
        return False
    x_first = not ctx.is_constant(a)
    x, c = (a, b) if x_first else (b, a)
    cv = ctx.constant(c)
    out = node.outputs[0]
    if x is None or cv is None or np.asarray(cv).size != 1 or out.type.shape != x.type.shape:
        return False
    xq = ctx.act(x)
    qx = xq.type.quant
    assert qx is not None
    p = ctx.out_params(out)
    const = np.asarray(cv, dtype=np.float32).reshape(())
    opdef, attrs = OPS[node.op], node.attrs

    def fn(v: np.ndarray) -> np.ndarray:
        vf = v.astype(np.float32)
        return opdef.compute([vf, const] if x_first else [const, vf], attrs)[0]

    table = qmath.make_lut(fn, qx.scale[0], qx.zero_point[0], xq.type.dtype, p.scale,
                           p.zero_point, p.dtype)
    ctx.emit("QLut", [xq], {"table": [int(t) for t in table], **p.attrs()}, [node], [out])
    return True


def with_scalar_lut(base: Callable[[QuantContext, Node], None] | None = None
                    ) -> Callable[[QuantContext, Node], None]:
    """A binary op's form: :func:`scalar_lut` where one operand is a constant scalar, else
    ``base`` (None: no integer form)."""

    def form(ctx: QuantContext, node: Node) -> None:
        if scalar_lut(ctx, node):
            return
        if base is None:
            raise NoQuantForm
        base(ctx, node)

    form.__doc__ = "with a constant scalar operand → QLut" + (
        f"; else {base.__doc__}" if base is not None and base.__doc__ else "")
    form.__name__ = "scalar_lut_or_" + (base.__name__ if base is not None else "float")
    return form


def on_codes(ctx: QuantContext, node: Node) -> None:
    """An op that moves or selects elements (Reshape, Concat, MaxPool, nearest Resize, ...)
    runs on the 8-bit codes unchanged, its results keeping its inputs' parameters: exact,
    since it never combines two values. A Concat's inputs are first rescaled to its own
    parameters where they differ; Pad's fill value becomes its code."""
    if node.op == "Pad":
        needs(node.value is None and node.attrs["mode"] == "constant")
    if node.op == "Resize":
        needs(node.attrs["mode"] == "nearest")
    ins: list[Value | None] = []
    if OPS[node.op].variadic:
        target = ctx.out_params(node.outputs[0])
        for v in node.inputs:
            q = ctx.act(v)
            qp = q.type.quant
            assert qp is not None
            if (q.type.dtype, qp.scale[0], qp.zero_point[0]) != (
                    target.dtype, target.scale, target.zero_point):
                q = ctx.rescale(v, target, node)
            ins.append(q)
    else:  # the first operand carries the codes (Gather's indices pass unchanged)
        first, *rest = OPS[node.op].operands
        ins = [ctx.act(node.operand(first)), *(ctx.other(node.operand(n)) for n in rest)]
        while ins and ins[-1] is None:  # omitted optional operands stay omitted
            ins.pop()
    attrs = dict(node.attrs)
    if node.op == "Pad":
        t = ins[0].type  # type: ignore[union-attr]
        assert t.quant is not None
        code = qmath.quantize(np.float32(attrs["value"]), t.quant.scale[0],
                              t.quant.zero_point[0], t.dtype)
        attrs["value"] = float(code)
    ctx.emit(node.op, ins, attrs, [node], list(node.outputs))


def runs_on_codes(op: str) -> bool:
    """Quantised, ``op`` runs on the codes unchanged (its form is :func:`on_codes`)."""
    opdef = OPS.get(op)
    return opdef is not None and opdef.quantized is on_codes


def passes_codes_on(op: str) -> bool:
    """Quantised, ``op``'s result is its first input's codes with that input's parameters
    (a MaxPool, a nearest Resize, a Reshape): it runs on codes and, unlike a Concat, which
    takes parameters of its own, has one input that carries them."""
    return runs_on_codes(op) and not OPS[op].variadic


def rescaling(qop: str, fuse: bool = False):  # noqa: ANN201 - a form factory
    """The form of an op with an integer counterpart of the same operands and attributes
    that rescales to the result's parameters: AveragePool → QAveragePool, Add → QAdd
    (``fuse``: absorbing a following Relu/Clip), ..."""

    def form(ctx: QuantContext, node: Node) -> None:
        act, result = fused_activation(ctx, node.outputs[0]) if fuse else (None, node.outputs[0])
        ins = [ctx.act(v) for v in node.inputs]
        attrs = {**node.attrs, **result_attrs(ctx, result, act)}
        ctx.emit(qop, ins, attrs, [node, act], [result])

    form.__doc__ = f"the op → {qop} on its quantised operands" + (
        " (with a following Relu/Clip as clamp bounds)" if fuse else "")
    form.__name__ = f"as_{qop}"
    return form


def relu_clamp(node: Node, dtype: DType, scale: float, zero_point: int) -> tuple[int, int]:
    """Relu as clamp bounds: [code of 0, top]."""
    return clamp_between(0.0, np.inf, dtype, scale, zero_point)


def clip_clamp(node: Node, dtype: DType, scale: float, zero_point: int) -> tuple[int, int]:
    """Clip(min, max) as clamp bounds: the codes of min and max."""
    return clamp_between(float(node.attrs["min"]), float(node.attrs["max"]), dtype, scale,
                         zero_point)
