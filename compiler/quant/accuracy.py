"""Per-layer accuracy of a quantised graph against its float original.

Quantisation error has to be located, not just measured at the output: one badly calibrated
layer can cost more than all the others together, and the fix (a better observer, or keeping
that layer in f32) depends on which one it is. So both graphs run on the same held-out
samples with every intermediate kept, and every float tensor of the float graph is matched by
NAME with its counterpart in the quantised graph — the quantiser gives a quantised value its
float value's name, so the counterpart is the layer's (dequantised) result. Tensors with no
counterpart (a Conv's pre-ReLU output once the ReLU is fused into its clamp) are skipped.

Figures per tensor, over all samples together:

- SQNR = 10·log10(Σ ref² / Σ (ref − q)²) in dB (+inf when exact): the signal-to-noise ratio
  of the quantisation noise; every 6 dB is about one bit.
- cosine similarity Σ ref·q / (‖ref‖·‖q‖): the direction, blind to a scale error.
- the largest absolute error.

Every tensor also gets a diagnosis (:class:`Diagnosis`), from the same pass: what limited it
and which setting to change. For a counterpart stored with one scale ``s``, zero point ``z``
and code range [qmin, qmax], whose representable range is [s·(qmin − z), s·(qmax − z)]:

- clipped share: the share of reference values outside that range, and their share of the
  error energy Σ (ref − q)²;
- levels: the reference's RMS over ``s``, how many steps the signal actually spans (rounding
  alone caps the SQNR at about 10.8 + 20·log10(levels) dB);
- outlier channel ratio (3-D/4-D tensors, and 2-D [T, C] with T > 1): the largest
  per-channel max|x| over the median one, channels on axis 1 of [N, C, H, W] and on the last
  axis of [B, T, C] / [T, C] (channels that stay zero, e.g. dead after a ReLU, left out);
- table: the layer is a QLut, a 256-entry table of a non-linearity over its input's codes;
- the worst SQNR among the compared tensors feeding its layer.

From these, one cause, tried in this order: *inherited from X* (at most ``INHERITED_DB``
below the worst input X: its own error is small next to what it received; a layer kept in
f32 always inherits), *range clipped* (clipped values carry at least ``CLIPPED_ERROR_SHARE``
of the error), *outlier channel* (ratio at least ``OUTLIER_RATIO``), *scale too coarse*
(fewer than ``COARSE_LEVELS`` levels), *table resolution* (a QLut), *amplified from X* (none
of these, yet ``AMPLIFIED_DB`` or more below what its own rounding gives: the error came in
through X and grew), else *none dominant*; and one fix naming a real `qnnc compile` setting
(``--calib-method``, ``--skip-layers``).

Only running sums and, per tensor, one maximum per channel are kept, never the tensors, so
memory does not grow with the number of samples.

Example::

    report = compare(float_graph, quantize_graph(float_graph, ranges), "test.npz")
    print(report.format(worst=3))          # the three worst layers, each with cause and fix
    for row in report.worst(3): print(row.diagnosis.cause, row.diagnosis.fix)
    # compiler.quant.accuracy_html.write_report(report, "acc.html") writes a page (or .json)
"""

from __future__ import annotations

import math
import re
import shlex
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.quant.calib_data import calibration_data
from compiler.quant.error_stats import ErrorStats as ErrorStats  # re-exported
from compiler.quant.error_stats import RangeStats, TensorParams, channel_axis
from ir import qmath
from ir.graph import Graph, Node, Value
from ir.interpreter import run

Progress = Callable[[int, int | None], None]
BOUNDARY_OPS = frozenset({"Quantize", "Dequantize", "Requantize"})
#: the quantised op of a unary non-linearity stored as a 256-entry table (ir/qforms.py: lut)
TABLE_OP = "QLut"

# The diagnosis thresholds: few, and each a plain reading of one figure.
#: "inherited from X": the tensor's SQNR is at most this many dB below X's, the worst tensor
#: feeding its layer — its own noise then adds at most about a quarter to what it received
INHERITED_DB = 1.0
#: "range clipped": the values outside the representable range carry at least this share of
#: the error energy
CLIPPED_ERROR_SHARE = 0.5
#: "outlier channel": the largest channel's max|x| is at least this many times the median
#: channel's, so the other channels get a tenth of the levels or less
OUTLIER_RATIO = 10.0
#: "scale too coarse": the signal's RMS spans fewer than this many quantisation steps
#: (rounding alone then caps the SQNR near 10.8 + 20·log10(8) ≈ 29 dB)
COARSE_LEVELS = 8.0

#: "amplified from X": nothing of its own explains the error (none dominant) and the SQNR is
#: at least this many dB below what its own rounding gives (10.8 + 20·log10(levels)): the
#: error came in through X, the worst tensor feeding its layer, and the layer amplified it
AMPLIFIED_DB = 6.0

#: the causes, as ``Diagnosis.kind`` (``Diagnosis.cause`` adds the tensor for "inherited"
#: and "amplified")
CAUSES = ("range clipped", "scale too coarse", "outlier channel", "table resolution",
          "inherited", "amplified", "none dominant")




@dataclass(frozen=True)
class Diagnosis:
    """What limited one compared tensor, and what to change.

    The figures are None where they do not apply (a counterpart kept in f32 or stored per
    channel has no single representable range). ``kind`` is one of :data:`CAUSES`;
    ``cause`` is the same with the tensor named for "inherited from X"; ``detail`` gives the
    figures behind it; ``fix`` is what to do, and ``fix_args`` the `qnnc compile` arguments
    it names (empty when the fix is elsewhere, e.g. in the layer it inherits from)."""

    kind: str
    cause: str
    detail: str
    fix: str
    fix_args: tuple[str, ...] = ()
    scale: float | None = None
    zero_point: int | None = None
    range_lo: float | None = None
    range_hi: float | None = None
    ref_min: float | None = None
    ref_max: float | None = None
    clipped_share: float | None = None
    clipped_error_share: float | None = None
    levels: float | None = None
    outlier_ratio: float | None = None
    table: bool = False
    input_tensor: str | None = None
    input_sqnr_db: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "cause": self.cause, "detail": self.detail, "fix": self.fix,
                "fix_args": list(self.fix_args), "scale": self.scale,
                "zero_point": self.zero_point, "range_lo": self.range_lo,
                "range_hi": self.range_hi, "ref_min": self.ref_min, "ref_max": self.ref_max,
                "clipped_share": self.clipped_share,
                "clipped_error_share": self.clipped_error_share, "levels": self.levels,
                "outlier_ratio": _json_opt(self.outlier_ratio), "table": self.table,
                "input_tensor": self.input_tensor,
                "input_sqnr_db": _json_opt(self.input_sqnr_db)}


@dataclass(frozen=True)
class LayerRow:
    """One compared tensor: ``layer``/``op`` name the node of the quantised graph that
    computes it (through a Dequantize boundary, the quantised op it dequantises)."""

    tensor: str
    layer: str
    op: str
    sqnr_db: float
    cosine: float
    max_abs_err: float
    diagnosis: Diagnosis | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"tensor": self.tensor, "layer": self.layer, "op": self.op,
                             "sqnr_db": _json_float(self.sqnr_db), "cosine": self.cosine,
                             "max_abs_err": self.max_abs_err}
        if self.diagnosis is not None:
            d.update(cause=self.diagnosis.cause, fix=self.diagnosis.fix,
                     diagnosis=self.diagnosis.to_dict())
        return d


@dataclass
class AccuracyReport:
    """Per-layer rows in the float graph's order, the graph outputs, and the sample count."""

    layers: list[LayerRow]
    outputs: list[LayerRow]
    samples: int
    title: str = field(default="quantised vs float")
    #: the calibration method the ranges came from, when known (it shapes the fixes)
    calib_method: str | None = None

    def worst(self, k: int = 5) -> list[LayerRow]:
        """The ``k`` layers with the lowest SQNR (ties: lower cosine first), worst first."""
        order = sorted(self.layers, key=lambda r: (r.sqnr_db, r.cosine))
        return order[: max(k, 0)]

    @property
    def output_sqnr_db(self) -> float:
        """The lowest SQNR over the graph outputs (the one figure a budget is judged by)."""
        return min((r.sqnr_db for r in self.outputs), default=math.inf)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (strict JSON: infinite figures are the strings "inf"/"-inf"); every row
        carries its cause, fix and diagnosis figures."""
        return {"title": self.title, "samples": self.samples,
                "calib_method": self.calib_method,
                "output_sqnr_db": _json_float(self.output_sqnr_db),
                "thresholds": {"inherited_db": INHERITED_DB,
                               "clipped_error_share": CLIPPED_ERROR_SHARE,
                               "outlier_ratio": OUTLIER_RATIO, "coarse_levels": COARSE_LEVELS},
                "layers": [r.to_dict() for r in self.layers],
                "outputs": [r.to_dict() for r in self.outputs]}

    def format(self, *, worst: int = 0) -> str:
        """A plain-text table with each row's cause; with ``worst`` > 0 only that many worst
        layers, worst first. Under the table, one paragraph per layer shown: its cause with
        the figures behind it, and the fix (lines stay under 120 columns)."""
        rows = self.worst(worst) if worst > 0 else self.layers
        head = f"{self.title} on {self.samples} sample(s)"
        lines = [head, _table(rows, "layer")]
        notes = [_note(r) for r in rows if r.diagnosis is not None]
        if notes:
            lines += ["", "what limited them, and what to do:", *notes]
        lines += ["", _table(self.outputs, "output")]
        return "\n".join(lines)


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _json_opt(x: float | None) -> float | str | None:
    return None if x is None else _json_float(x)


def _fmt_db(x: float) -> str:
    return "inf" if x == math.inf else ("-inf" if x == -math.inf else f"{x:.2f}")


def _note(r: LayerRow) -> str:
    """Two paragraphs wrapped under 120 columns: what limited ``r``, and the fix (a flag is
    never parted from its value)."""
    d = r.diagnosis
    assert d is not None
    why = f"{r.layer} ({r.tensor}): {d.cause}" + (f" - {d.detail}" if d.detail else "")
    fix = re.sub(r"(--[a-z-]+) (?=\S)", lambda m: m.group(1) + _GLUE, d.fix)
    wrap = textwrap.TextWrapper(width=118, subsequent_indent="        ",
                                break_on_hyphens=False)
    return "\n".join([wrap.fill("  " + why), wrap.fill("      fix: " + fix).replace(_GLUE, " ")])


_GLUE = "\0"  # stands for the space between a flag and its value while wrapping


def _table(rows: list[LayerRow], first: str) -> str:
    header = (first, "op", "tensor", "SQNR dB", "cosine", "max |err|", "cause")
    body = [(r.layer, r.op, r.tensor, _fmt_db(r.sqnr_db), f"{r.cosine:.6f}",
             f"{r.max_abs_err:.4g}", r.diagnosis.kind if r.diagnosis else "")
            for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *body)]
    right = {3, 4, 5}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths))]
                     + [line(b) for b in body])


def as_float(value: Value, array: np.ndarray) -> np.ndarray | None:
    """``array`` as real numbers: dequantised with its type's quant params, or unchanged
    when float; None for plain integer/bool tensors, which carry no real values."""
    q = value.type.quant
    if q is not None:
        return qmath.dequantize(array, q.scale_array(), q.zero_point_array(), q.axis)
    if value.type.dtype.is_float:
        return np.asarray(array)
    return None


@dataclass(frozen=True)
class _Pair:
    tensor: str
    layer: str
    op: str
    value: Value  # the quantised graph's counterpart
    params: TensorParams | None  # its per-tensor parameters (through a Dequantize)
    node: Node | None  # the layer computing it
    kept_float: bool  # that layer runs in f32


def _layer_of(node: Node, producers: dict[int, Node]) -> Node:
    """Look through Dequantize boundaries to the op whose result they convert."""
    while node.op == "Dequantize" and node.x is not None:
        src = producers.get(id(node.x))
        if src is None:
            break
        node = src
    return node


def _params(c: Value, producers: dict[int, Node]) -> TensorParams | None:
    """The per-tensor parameters of counterpart ``c``, or of the codes a Dequantize turns
    into ``c``; None when it is float or stored per channel."""
    node = producers.get(id(c))
    while c.type.quant is None and node is not None and node.op == "Dequantize":
        src = node.first_operand()
        if src is None:
            break
        c, node = src, producers.get(id(src))
    q = c.type.quant
    if q is None or q.per_channel:
        return None
    qmin, qmax = qmath.qrange(c.type.dtype)
    return TensorParams(q.scale[0], q.zero_point[0], qmin, qmax)


def _feeding(layer: Node, producers: dict[int, Node], names: set[str],
             own: str) -> tuple[str, ...]:
    """The compared tensors (``names``, but not ``own``) ``layer`` reads, looking through
    Quantize/Dequantize/Requantize boundaries (a float layer reads its quantised inputs
    through a Dequantize)."""
    out: list[str] = []
    for v in layer.inputs:
        while v is not None and v.name not in names:
            src = producers.get(id(v))
            v = src.first_operand() if src is not None and src.op in BOUNDARY_OPS else None
        if v is not None and v.name != own and v.name not in out:
            out.append(v.name)
    return tuple(out)


def _pairs(fgraph: Graph, qgraph: Graph, values: list[Value]) -> list[_Pair]:
    qvalues = {v.name: v for n in qgraph.nodes for v in n.outputs}
    qvalues.update({v.name: v for v in qgraph.inputs})
    producers = qgraph.producers()
    out = []
    for v in values:
        c = qvalues.get(v.name)
        if c is None or not v.type.dtype.is_float or c.type.shape != v.type.shape:
            continue
        if c.type.quant is None and not c.type.dtype.is_float:
            continue
        node = producers.get(id(c))
        layer = _layer_of(node, producers) if node is not None else None
        params = _params(c, producers)
        kept = layer is not None and params is None and all(
            o.type.quant is None and o.type.dtype.is_float for o in layer.outputs)
        out.append(_Pair(v.name, layer.name if layer else v.name,
                         layer.op if layer else "input", c, params, layer, kept))
    return out


def compare(
    float_graph: Graph,
    quant_graph: Graph,
    samples: Any,
    *,
    progress: Progress | None = None,
    calib_method: str | None = None,
) -> AccuracyReport:
    """Run both graphs on ``samples`` (anything :func:`calibration_data` accepts: a path, a
    dict of stacked arrays, an iterable of feed dicts) and compare them tensor by tensor,
    diagnosing each (:class:`Diagnosis`).

    ``progress(done, total)`` is called after each sample (``total`` None when unknown).
    ``calib_method``, the calibration method the quantised graph's ranges came from, shapes
    the fixes (--calib-method minmax is no fix for clipping that minmax already made).
    """
    out_names = {v.name for v in float_graph.outputs}
    inner = [v for n in float_graph.nodes for v in n.outputs if v.name not in out_names]
    layer_pairs = _pairs(float_graph, quant_graph, inner)
    output_pairs = _pairs(float_graph, quant_graph, list(float_graph.outputs))
    pairs = layer_pairs + output_pairs
    stats = {p.tensor: ErrorStats() for p in pairs}
    ranges = {p.tensor: RangeStats(p.params, channel_axis(p.value.type.shape))
              for p in pairs if p.params is not None}
    data = calibration_data(samples, float_graph)
    n = 0
    for feeds in data:
        ref = run(float_graph, feeds, keep=True)
        got = run(quant_graph, feeds, keep=True)
        for p in pairs:
            approx = as_float(p.value, got[p.value.name])
            assert approx is not None
            stats[p.tensor].update(ref[p.tensor], approx)
            if p.tensor in ranges:
                ranges[p.tensor].update(ref[p.tensor], approx)
        n += 1
        if progress is not None:
            progress(n, data.count)

    producers, names = quant_graph.producers(), {p.tensor for p in pairs}
    feeding = {p.tensor: _feeding(p.node, producers, names, p.tensor) if p.node else ()
               for p in pairs}
    diag = _diagnose(pairs, feeding, stats, ranges, calib_method)

    def rows(ps: list[_Pair]) -> list[LayerRow]:
        return [LayerRow(p.tensor, p.layer, p.op, stats[p.tensor].sqnr_db,
                         stats[p.tensor].cosine, stats[p.tensor].max_err, diag[p.tensor])
                for p in ps]

    return AccuracyReport(rows(layer_pairs), rows(output_pairs), n, calib_method=calib_method)


# -- diagnosis ------------------------------------------------------------------------------


def _skip_fix(layer: str) -> tuple[str, tuple[str, ...]]:
    return (f"keep {layer} in f32 with --skip-layers {shlex.quote(layer)}",
            ("--skip-layers", layer))


def _figures(s: ErrorStats, r: RangeStats | None) -> dict[str, Any]:
    """The diagnosis figures of a tensor with a single representable range ({} without)."""
    if r is None:
        return {}
    return dict(scale=r.params.scale, zero_point=r.params.zero_point, range_lo=r.params.lo,
                range_hi=r.params.hi, ref_min=r.ref_min if s.count else None,
                ref_max=r.ref_max if s.count else None,
                clipped_share=r.clipped / s.count if s.count else 0.0,
                clipped_error_share=r.clipped_err2 / s.sum_err2 if s.sum_err2 else 0.0,
                levels=s.rms / r.params.scale, outlier_ratio=r.outlier_ratio)


def _own_cause(p: _Pair, s: ErrorStats, f: dict[str, Any],
               method: str | None) -> tuple[str, str, str, tuple[str, ...]]:
    """(kind, detail, fix, fix_args) from the tensor's own figures ``f``, inheritance
    aside."""
    skip, skip_args = _skip_fix(p.layer)
    if s.sqnr_db == math.inf:
        return "none dominant", "exact", "nothing to do", ()
    if not f:
        if p.kept_float:
            return "none dominant", "kept in f32", "nothing to do here", ()
        return "none dominant", "no single representable range", skip, skip_args
    lo, hi, scale, levels = f["range_lo"], f["range_hi"], f["scale"], f["levels"]
    clip_share, clip_err, ratio = f["clipped_share"], f["clipped_error_share"], f["outlier_ratio"]
    if clip_err >= CLIPPED_ERROR_SHARE:
        detail = (f"{clip_share:.2%} of values outside [{lo:.4g}, {hi:.4g}] (they reach "
                  f"[{f['ref_min']:.4g}, {f['ref_max']:.4g}]) carry {clip_err:.0%} of the "
                  "error")
        if method == "minmax":  # minmax already covers all the calibration data did
            return ("range clipped", detail, "calibrate on data reaching the values seen "
                    f"here (--calib), or {skip}", skip_args)
        return ("range clipped", detail, "--calib-method minmax, on calibration data that "
                "reaches these values", ("--calib-method", "minmax"))
    if ratio is not None and ratio >= OUTLIER_RATIO:
        detail = (f"one channel reaches {ratio:.1f}x the median channel's max|x|; "
                  "per-channel activation scales are not available")
        return "outlier channel", detail, skip, skip_args
    if levels < COARSE_LEVELS:
        detail = (f"the signal's RMS spans {levels:.2f} steps of {scale:.4g} in "
                  f"[{lo:.4g}, {hi:.4g}]")
        other = {"percentile": "mse", "mse": "percentile"}.get(method or "")
        if other is not None:
            return "scale too coarse", detail, f"--calib-method {other}", (
                "--calib-method", other)
        return ("scale too coarse", detail, "--calib-method percentile (or mse)",
                ("--calib-method", "percentile"))
    if p.op == TABLE_OP:
        detail = "a 256-entry table of the function at its input's codes"
        x = p.node.first_operand() if p.node is not None else None
        table_in = _params(x, {}) if x is not None else None
        if table_in is not None:
            detail += (f", {table_in.scale:.4g} apart over [{table_in.lo:.4g}, "
                       f"{table_in.hi:.4g}]")
        return "table resolution", detail, skip, skip_args
    detail = (f"{levels:.1f} levels, {clip_share:.2%} clipped"
              + (f", channel ratio {ratio:.1f}" if ratio is not None else ""))
    return ("none dominant", detail, f"plain rounding noise; --skip-layers {shlex.quote(p.layer)}"
            " keeps it in f32 if that is too much", skip_args)


def _rounding_db(levels: float) -> float:
    """The SQNR rounding alone gives a signal whose RMS spans ``levels`` steps: uniform
    noise of variance step²/12, so 10·log10(12·levels²) = 10.8 + 20·log10(levels) dB."""
    return 10.0 * math.log10(12.0 * levels * levels)


def _diagnose(pairs: list[_Pair], feeding: dict[str, tuple[str, ...]],
              stats: dict[str, ErrorStats], ranges: dict[str, RangeStats],
              method: str | None) -> dict[str, Diagnosis]:
    """Every tensor's own cause, then "inherited from X" where its SQNR is at most
    INHERITED_DB below X's, X the worst tensor its layer reads (always, for a layer kept in
    f32: it adds no error); the fix of an inherited error is that of the chain's origin."""
    figures = {p.tensor: _figures(stats[p.tensor], ranges.get(p.tensor)) for p in pairs}
    own = {p.tensor: _own_cause(p, stats[p.tensor], figures[p.tensor], method) for p in pairs}
    layer_of = {p.tensor: p.layer for p in pairs}
    worst_in: dict[str, tuple[float, str]] = {}
    inherits: dict[str, str] = {}
    for p in pairs:
        ins = [(stats[t].sqnr_db, t) for t in feeding[p.tensor]]
        if not ins:
            continue
        worst_in[p.tensor] = min(ins)
        sqnr, (worst_db, worst) = stats[p.tensor].sqnr_db, worst_in[p.tensor]
        if sqnr != math.inf and (p.kept_float or sqnr >= worst_db - INHERITED_DB):
            inherits[p.tensor] = worst

    amplified: set[str] = set()
    for p in pairs:
        lv, sqnr = figures[p.tensor].get("levels"), stats[p.tensor].sqnr_db
        if (p.tensor in inherits or p.tensor not in worst_in or own[p.tensor][0] !=
                "none dominant" or not lv or not math.isfinite(sqnr)):
            continue
        if sqnr <= _rounding_db(lv) - AMPLIFIED_DB:
            inherits[p.tensor] = worst_in[p.tensor][1]
            amplified.add(p.tensor)

    def origin(t: str) -> str:
        seen = {t}
        while t in inherits and inherits[t] not in seen:
            t = inherits[t]
            seen.add(t)
        return t

    out = {}
    for p in pairs:
        s = stats[p.tensor]
        kind, detail, fix, args = own[p.tensor]
        cause = kind
        src_db, src = worst_in.get(p.tensor, (None, None))
        if p.tensor in inherits:
            assert src is not None and src_db is not None
            base = origin(src)
            _, _, base_fix, args = own[base]
            also = f"; its own figures also say: {kind}" if kind != "none dominant" else ""
            if p.tensor in amplified:
                kind, cause = "amplified", f"amplified from {src}"
                detail = (f"SQNR {_fmt_db(s.sqnr_db)} dB where its own rounding "
                          f"({figures[p.tensor]['levels']:.1f} levels) gives about "
                          f"{_rounding_db(figures[p.tensor]['levels']):.0f} dB; it reads "
                          f"{src} at {_fmt_db(src_db)} dB")
            else:
                kind, cause = "inherited", f"inherited from {src}"
                detail = (f"SQNR {_fmt_db(s.sqnr_db)} dB, {_fmt_db(src_db)} dB in {src}, "
                          f"which it reads{also}")
            fix = f"at {layer_of[base]} ({own[base][0]}): {base_fix}"
        out[p.tensor] = Diagnosis(kind, cause, detail, fix, args, table=p.op == TABLE_OP,
                                  input_tensor=src, input_sqnr_db=src_db,
                                  **figures[p.tensor])
    return out


def output_stats(graph: Graph, outputs: dict[str, np.ndarray],
                 reference: dict[str, np.ndarray], into: dict[str, ErrorStats]) -> None:
    """Fold one sample's graph outputs (real-valued) into per-output ``ErrorStats``."""
    for v in graph.outputs:
        approx = as_float(v, outputs[v.name])
        if approx is not None:
            into.setdefault(v.name, ErrorStats()).update(reference[v.name], approx)
