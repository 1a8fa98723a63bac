"""Converters of ONNX's recurrent layers (LSTM, GRU, RNN) and of onnxruntime's
com.microsoft.DynamicQuantizeLSTM, which becomes a float LSTM with its weights dequantised.

Opset differences: ``layout`` exists from opset 14 (before, always 0); opset 22 only adds
element types; opset 1 had ``output_sequence`` (whether Y is produced), which changes nothing
here because the IR ops always produce every output.
"""

from __future__ import annotations

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir import qmath
from ir.graph import Value
from ir.ops.recurrent import ACTIVATIONS, KINDS

_BY_LOWER = {name.lower(): name for name in ACTIVATIONS}
#: activations that read alpha / beta (the others ignore them and consume no entry)
_USES_ALPHA = {"Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu"}
_USES_BETA = {"Affine", "ScaledTanh", "HardSigmoid"}


def _activations(ctx: Ctx, op: str, directions: int, names: list[str] | None,
                 alpha: list[float] | None, beta: list[float] | None
                 ) -> tuple[list[str], list[float], list[float]]:
    """The canonical (names, alphas, betas), one entry per activation of every direction.
    As onnxruntime does, alpha/beta values are consumed in order by the activations that
    take them; the others get their defaults."""
    _, per_dir, defaults, _ = KINDS[op]
    given = [n.decode() if isinstance(n, bytes) else n for n in names] if names else []
    if not given:
        given = list(defaults) * directions
    elif len(given) == per_dir and directions == 2:
        given = given * 2  # one list for both directions
    if len(given) != per_dir * directions:
        raise ctx.fail(f"{op} needs {per_dir} activations per direction ({directions} "
                       f"directions), got {len(given)}: {given}")
    canon = []
    for n in given:
        if n.lower() not in _BY_LOWER:
            raise ctx.fail(f"{op} activation {n!r} is not supported; supported: "
                           f"{', '.join(ACTIVATIONS)}")
        canon.append(_BY_LOWER[n.lower()])
    al, be = list(alpha or []), list(beta or [])
    alphas, betas = [], []
    for n in canon:
        _, da, db = ACTIVATIONS[n]
        alphas.append(float(al.pop(0)) if n in _USES_ALPHA and al else da)
        betas.append(float(be.pop(0)) if n in _USES_BETA and be else db)
    if al or be:
        raise ctx.fail(f"{op} has more activation_alpha/activation_beta values than its "
                       f"activations {canon} take")
    return canon, alphas, betas


def _recurrent(ctx: Ctx, op: str, ins: list[Value | None], *, hidden_size: int | None,
               direction: str | bytes, activations: list[str] | None,
               activation_alpha: list[float] | None, activation_beta: list[float] | None,
               clip: float | None, layout: int, **extra: object) -> list[Value]:
    x, w, r = ins[0], ins[1], ins[2]
    assert x is not None and w is not None and r is not None
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ctx.fail(f"{op} direction {direction!r} is not forward, reverse or bidirectional")
    if layout and ctx.opset < 14:
        raise ctx.fail(f"{op} has attribute layout only from opset 14 (model: {ctx.opset})")
    directions = 2 if direction == "bidirectional" else 1
    gates = KINDS[op][0]
    h = int(r.type.shape[-1]) if len(r.type.shape) == 3 else 0
    if hidden_size is not None and hidden_size != h:
        raise ctx.fail(f"{op} hidden_size {hidden_size} disagrees with R of shape "
                       f"{list(r.type.shape)} (last dimension {h})")
    if len(w.type.shape) != 3 or w.type.shape[0] != directions or w.type.shape[1] != gates * h:
        raise ctx.fail(f"{op} W must have shape [{directions}, {gates * h}, input_size], "
                       f"got {list(w.type.shape)}")
    names, alphas, betas = _activations(ctx, op, directions, activations, activation_alpha,
                                        activation_beta)
    return ctx.ops(op, ins, hidden_size=h, direction=direction, activations=names,
                   activation_alpha=alphas, activation_beta=betas, clip=clip or 0.0,
                   batch_major=bool(layout), **extra)


@converter("LSTM")
def lstm(ctx: Ctx, x: Value, w: Value, r: Value, b: Value | None = None,
         sequence_lens: Value | None = None, initial_h: Value | None = None,
         initial_c: Value | None = None, p: Value | None = None, *,
         hidden_size: int | None = None, direction: str = "forward",
         activations: list[str] | None = None, activation_alpha: list[float] | None = None,
         activation_beta: list[float] | None = None, clip: float | None = None,
         input_forget: int = 0, layout: int = 0, output_sequence: int = 0) -> list[Value]:
    return _recurrent(ctx, "LSTM", [x, w, r, b, sequence_lens, initial_h, initial_c, p],
                      hidden_size=hidden_size, direction=direction, activations=activations,
                      activation_alpha=activation_alpha, activation_beta=activation_beta,
                      clip=clip, layout=layout, input_forget=bool(input_forget))


@converter("GRU")
def gru(ctx: Ctx, x: Value, w: Value, r: Value, b: Value | None = None,
        sequence_lens: Value | None = None, initial_h: Value | None = None, *,
        hidden_size: int | None = None, direction: str = "forward",
        activations: list[str] | None = None, activation_alpha: list[float] | None = None,
        activation_beta: list[float] | None = None, clip: float | None = None,
        linear_before_reset: int = 0, layout: int = 0, output_sequence: int = 0) -> list[Value]:
    return _recurrent(ctx, "GRU", [x, w, r, b, sequence_lens, initial_h],
                      hidden_size=hidden_size, direction=direction, activations=activations,
                      activation_alpha=activation_alpha, activation_beta=activation_beta,
                      clip=clip, layout=layout, linear_before_reset=bool(linear_before_reset))


@converter("RNN")
def rnn(ctx: Ctx, x: Value, w: Value, r: Value, b: Value | None = None,
        sequence_lens: Value | None = None, initial_h: Value | None = None, *,
        hidden_size: int | None = None, direction: str = "forward",
        activations: list[str] | None = None, activation_alpha: list[float] | None = None,
        activation_beta: list[float] | None = None, clip: float | None = None,
        layout: int = 0, output_sequence: int = 0) -> list[Value]:
    return _recurrent(ctx, "RNN", [x, w, r, b, sequence_lens, initial_h],
                      hidden_size=hidden_size, direction=direction, activations=activations,
                      activation_alpha=activation_alpha, activation_beta=activation_beta,
                      clip=clip, layout=layout)


def _dequantized(ctx: Ctx, q: Value | None, scale: Value | None, zp: Value | None,
                 what: str) -> np.ndarray:
    """Real weights (D, K, G·H) from DynamicQuantizeLSTM's codes, per direction and (when
    the scales have G·H entries) per output column."""
    codes = np.asarray(ctx.value_of(q, what))
    s = np.asarray(ctx.value_of(scale, f"{what}_scale"), np.float32).reshape(codes.shape[0], -1)
    z = np.asarray(ctx.value_of(zp, f"{what}_zero_point")).reshape(codes.shape[0], -1)
    if s.shape[1] not in (1, codes.shape[2]):
        raise ctx.fail(f"DynamicQuantizeLSTM {what}_scale of shape {list(s.shape)} is neither "
                       "per direction nor per output column")
    axis = None if s.shape[1] == 1 else 2
    return np.stack([qmath.dequantize(codes[d], s[d] if axis else s[d, 0],
                                      z[d] if axis else z[d, 0], None if axis is None else 1)
                     for d in range(codes.shape[0])])


@converter("DynamicQuantizeLSTM", domain="com.microsoft", ir_ops=("LSTM",),
           note="its int8 weights are dequantised at import: a float LSTM, which the "
                "calibration quantiser may quantise again")
def dynamic_quantize_lstm(
    ctx: Ctx, x: Value, w: Value, r: Value, b: Value | None = None,
    sequence_lens: Value | None = None, initial_h: Value | None = None,
    initial_c: Value | None = None, p: Value | None = None, w_scale: Value | None = None,
    w_zero_point: Value | None = None, r_scale: Value | None = None,
    r_zero_point: Value | None = None, *, hidden_size: int | None = None,
    direction: str = "forward", activations: list[str] | None = None,
    activation_alpha: list[float] | None = None, activation_beta: list[float] | None = None,
    clip: float | None = None, input_forget: int = 0,
) -> list[Value]:
    # onnxruntime stores W as (D, I, 4H) and R as (D, H, 4H), transposed from ONNX's LSTM
    wf = _dequantized(ctx, w, w_scale, w_zero_point, "W").transpose(0, 2, 1)
    rf = _dequantized(ctx, r, r_scale, r_zero_point, "R").transpose(0, 2, 1)
    wv = ctx.const(np.ascontiguousarray(wf), f"{ctx.node_name}_W")
    rv = ctx.const(np.ascontiguousarray(rf), f"{ctx.node_name}_R")
    return _recurrent(ctx, "LSTM", [x, wv, rv, b, sequence_lens, initial_h, initial_c, p],
                      hidden_size=hidden_size, direction=direction, activations=activations,
                      activation_alpha=activation_alpha, activation_beta=activation_beta,
                      clip=clip, layout=0, input_forget=bool(input_forget))
