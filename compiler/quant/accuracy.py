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

Only running sums are kept (five numbers per tensor), never the tensors, so memory does not
grow with the number of samples.

Example::

    report = compare(float_graph, quantize_graph(float_graph, ranges), "test.npz")
    print(report.format())
    for row in report.worst(3): ...
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.quant.calib_data import calibration_data
from ir import qmath
from ir.graph import Graph, Node, Value
from ir.interpreter import run

Progress = Callable[[int, int | None], None]
BOUNDARY_OPS = frozenset({"Quantize", "Dequantize", "Requantize"})


@dataclass
class ErrorStats:
    """Streaming sums comparing a reference tensor with an approximation of it."""

    sum_ref2: float = 0.0
    sum_got2: float = 0.0
    sum_dot: float = 0.0
    sum_err2: float = 0.0
    max_err: float = 0.0
    count: int = 0

    def update(self, ref: np.ndarray, got: np.ndarray) -> None:
        r = np.asarray(ref, dtype=np.float64).reshape(-1)
        g = np.asarray(got, dtype=np.float64).reshape(-1)
        if r.shape != g.shape:
            raise ValueError(f"cannot compare tensors of {r.size} and {g.size} elements")
        e = r - g
        self.sum_ref2 += float(r @ r)
        self.sum_got2 += float(g @ g)
        self.sum_dot += float(r @ g)
        self.sum_err2 += float(e @ e)
        if e.size:
            self.max_err = max(self.max_err, float(np.max(np.abs(e))))
        self.count += r.size

    @property
    def sqnr_db(self) -> float:
        """+inf when exact; −inf when the reference is all zero but the approximation not."""
        if self.sum_err2 == 0.0:
            return math.inf
        if self.sum_ref2 == 0.0:
            return -math.inf
        return 10.0 * math.log10(self.sum_ref2 / self.sum_err2)

    @property
    def cosine(self) -> float:
        """1.0 when both tensors are all zero (identical), 0.0 when only one is."""
        if self.sum_ref2 == 0.0 or self.sum_got2 == 0.0:
            return 1.0 if self.sum_ref2 == self.sum_got2 else 0.0
        return self.sum_dot / math.sqrt(self.sum_ref2 * self.sum_got2)


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

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "layer": self.layer, "op": self.op,
                "sqnr_db": _json_float(self.sqnr_db), "cosine": self.cosine,
                "max_abs_err": self.max_abs_err}


@dataclass
class AccuracyReport:
    """Per-layer rows in the float graph's order, the graph outputs, and the sample count."""

    layers: list[LayerRow]
    outputs: list[LayerRow]
    samples: int
    title: str = field(default="quantised vs float")

    def worst(self, k: int = 5) -> list[LayerRow]:
        """The ``k`` layers with the lowest SQNR (ties: lower cosine first), worst first."""
        order = sorted(self.layers, key=lambda r: (r.sqnr_db, r.cosine))
        return order[: max(k, 0)]

    @property
    def output_sqnr_db(self) -> float:
        """The lowest SQNR over the graph outputs (the one figure a budget is judged by)."""
        return min((r.sqnr_db for r in self.outputs), default=math.inf)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; infinite SQNRs are the strings "inf"/"-inf"."""
        return {"samples": self.samples, "layers": [r.to_dict() for r in self.layers],
                "outputs": [r.to_dict() for r in self.outputs]}

    def format(self, *, worst: int = 0) -> str:
        """A plain-text table; with ``worst`` > 0 only that many worst layers, worst first."""
        rows = self.worst(worst) if worst > 0 else self.layers
        head = f"{self.title} on {self.samples} sample(s)"
        lines = [head, _table(rows, "layer"), "", _table(self.outputs, "output")]
        return "\n".join(lines)


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _fmt_db(x: float) -> str:
    return "inf" if x == math.inf else ("-inf" if x == -math.inf else f"{x:.2f}")


def _table(rows: list[LayerRow], first: str) -> str:
    header = (first, "op", "tensor", "SQNR dB", "cosine", "max |err|")
    body = [(r.layer, r.op, r.tensor, _fmt_db(r.sqnr_db), f"{r.cosine:.6f}",
             f"{r.max_abs_err:.4g}") for r in rows]
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


def _layer_of(node: Node, producers: dict[int, Node]) -> Node:
    """Look through Dequantize boundaries to the op whose result they convert."""
    while node.op == "Dequantize" and node.x is not None:
        src = producers.get(id(node.x))
        if src is None:
            break
        node = src
    return node


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
        out.append(_Pair(v.name, layer.name if layer else v.name,
                         layer.op if layer else "input", c))
    return out


def compare(
    float_graph: Graph,
    quant_graph: Graph,
    samples: Any,
    *,
    progress: Progress | None = None,
) -> AccuracyReport:
    """Run both graphs on ``samples`` (anything :func:`calibration_data` accepts: a path, a
    dict of stacked arrays, an iterable of feed dicts) and compare them tensor by tensor.

    ``progress(done, total)`` is called after each sample (``total`` None when unknown).
    """
    out_names = {v.name for v in float_graph.outputs}
    inner = [v for n in float_graph.nodes for v in n.outputs if v.name not in out_names]
    layer_pairs = _pairs(float_graph, quant_graph, inner)
    output_pairs = _pairs(float_graph, quant_graph, list(float_graph.outputs))
    stats = {p.tensor: ErrorStats() for p in layer_pairs + output_pairs}
    data = calibration_data(samples, float_graph)
    n = 0
    for feeds in data:
        ref = run(float_graph, feeds, keep=True)
        got = run(quant_graph, feeds, keep=True)
        for p in layer_pairs + output_pairs:
            approx = as_float(p.value, got[p.value.name])
            assert approx is not None
            stats[p.tensor].update(ref[p.tensor], approx)
        n += 1
        if progress is not None:
            progress(n, data.count)

    def rows(pairs: list[_Pair]) -> list[LayerRow]:
        return [LayerRow(p.tensor, p.layer, p.op, stats[p.tensor].sqnr_db,
                         stats[p.tensor].cosine, stats[p.tensor].max_err) for p in pairs]

    return AccuracyReport(rows(layer_pairs), rows(output_pairs), n)


def output_stats(graph: Graph, outputs: dict[str, np.ndarray],
                 reference: dict[str, np.ndarray], into: dict[str, ErrorStats]) -> None:
    """Fold one sample's graph outputs (real-valued) into per-output ``ErrorStats``."""
    for v in graph.outputs:
        approx = as_float(v, outputs[v.name])
        if approx is not None:
            into.setdefault(v.name, ErrorStats()).update(reference[v.name], approx)
