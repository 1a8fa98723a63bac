"""Automatic mixed precision: keep in f32 just the layers the accuracy budget needs.

INT8 error is usually concentrated in a few layers (a first conv on raw pixels, a classifier
whose logits span a wide range, an attention product). Keeping those few in f32 buys back
most of the accuracy at a small cost in speed, but which ones they are depends on the model
and its data, so it is measured, not guessed:

1. Baseline: quantise everything. If the budget already holds, nothing is kept in f32.
2. Rank by sensitivity, ONE LAYER QUANTISED AT A TIME: every other node stays f32 (data
   movement too, so no stray Quantize adds noise nobody owns) and the output SQNR over the
   held-out samples measures that layer's own error. Small, independent quantisation noises
   add up in power at the output, so the layer with the largest isolated noise is the one
   whose removal lowers the total most. This costs one run per layer, like the converse
   "all but one quantised" probe, but does not suffer from its flaw: there, one dominant
   layer's noise masks the small differences that should rank all the others. It also
   answers the feasibility question for free: the least sensitive layer's isolated figure
   IS the "all f32 but one" configuration.
   Layers are ranked by output SQNR even when the budget is a user metric (top-1 accuracy,
   say): on a few hundred samples such a metric moves in coarse steps, mostly 0 for one
   layer, while the noise power is continuous.
3. Greedy: skip layers in order of sensitivity, re-measuring the real figure (SQNR or
   metric) after each, until the budget holds.

A "layer" is a node the quantiser turns into integer arithmetic (QConv, QLinear, QAdd,
QMatMul, QLut, ...); keeping it in f32 also keeps the Relu/Clip fused into it in f32, since a
lone quantised activation after a float layer would only add a Quantize and a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from compiler.errors import QnncError
from compiler.quant.accuracy import BOUNDARY_OPS, ErrorStats, output_stats
from compiler.quant.calib_data import calibration_data
from compiler.quant.quantize import QuantConfig, Ranges, quantize_graph
from ir.graph import Graph
from ir.interpreter import run
from ir.qforms import runs_on_codes

Outputs = dict[str, np.ndarray]
Metric = Callable[[list[Outputs]], float]
Phase = Literal["baseline", "rank", "search"]
#: float slack when comparing a metric drop with its budget (accuracies are ratios)
DROP_SLACK = 1e-9


@dataclass(frozen=True)
class Measurement:
    """Figures of one configuration on the held-out samples."""

    sqnr_db: float  # lowest over the graph outputs
    metric: float | None = None
    drop: float | None = None  # float metric − this metric (None without a metric)


@dataclass(frozen=True)
class Sensitivity:
    """A layer measured quantised on its own (everything else f32)."""

    layer: str
    op: str
    sqnr_db: float
    drop: float | None


@dataclass(frozen=True)
class AutoStep:
    """One measurement, for progress reporting; ``layers`` are the ones measured (phase
    "rank": the one layer quantised; otherwise: the layers kept in f32)."""

    phase: Phase
    done: int
    total: int
    layers: tuple[str, ...]
    result: Measurement

    def __str__(self) -> str:
        if self.phase == "rank":
            what = f"only {self.layers[0]} int8"
        elif self.phase == "search":
            what = f"{len(self.layers)} layer(s) f32"
        else:
            what = "all layers int8"
        return f"{self.phase} {self.done}/{self.total}: {what}: {_figures(self.result)}"


@dataclass
class AutoResult:
    """What automatic mixed precision found.

    ``skip_layers`` goes straight into ``QuantConfig.skip_layers`` (see :meth:`config`);
    ``layers_f32`` are the layers it keeps in f32, most sensitive first; ``achieved`` the
    figures of that configuration; ``met`` whether the budget holds. When even one layer
    quantised alone misses the budget, ``met`` is False and ``skip_layers`` keeps the whole
    model in f32 — the only configuration that meets it.
    """

    met: bool
    skip_layers: frozenset[str]
    layers_f32: tuple[str, ...]
    achieved: Measurement
    baseline: Measurement
    float_metric: float | None
    ranking: list[Sensitivity] = field(default_factory=list)
    evaluations: int = 0
    message: str = ""

    def config(self, base: QuantConfig | None = None) -> QuantConfig:
        base = base or QuantConfig()
        return replace(base, skip_layers=base.skip_layers | self.skip_layers)

    def format(self) -> str:
        lines = [self.message, f"all int8: {_figures(self.baseline)}",
                 f"chosen:   {_figures(self.achieved)}; f32 layers: "
                 f"{', '.join(self.layers_f32) or 'none'}"]
        if self.ranking:
            lines.append("sensitivity (each layer int8 alone, most sensitive first):")
            for s in self.ranking:
                drop = "" if s.drop is None else f", drop {s.drop:+.4f}"
                lines.append(f"  {s.layer:<24} {s.op:<12} {_db(s.sqnr_db)} dB{drop}")
        return "\n".join(lines)


def _db(x: float) -> str:
    return "inf" if x == math.inf else f"{x:.2f}"


def _figures(m: Measurement) -> str:
    text = f"output SQNR {_db(m.sqnr_db)} dB"
    if m.metric is not None and m.drop is not None:
        text += f", metric {m.metric:.4f} (drop {m.drop:+.4f})"
    return text


@dataclass(frozen=True)
class QuantLayer:
    """A node the quantiser turns into integer arithmetic: its name, its quantised op, and
    the float node names to skip to keep it in f32 (it and the activation fused into it)."""

    name: str
    op: str
    members: frozenset[str]


def quant_layers(graph: Graph, ranges: Ranges, config: QuantConfig,
                 channel_means: Mapping[str, np.ndarray] | None = None) -> list[QuantLayer]:
    """The layers ``quantize_graph(graph, ranges, config)`` makes integer, in graph order."""
    q = quantize_graph(graph, ranges, config, channel_means)
    float_nodes = {n.name for n in graph.nodes if n.name}
    layers: list[QuantLayer] = []
    for n in q.nodes:
        if n.name not in float_nodes or n.op in BOUNDARY_OPS or runs_on_codes(n.op):
            continue
        if not all(v.type.quant is not None for v in n.outputs):
            continue  # kept in float
        fused = {name for _, name in n.origin() if name}  # the nodes it absorbed
        layers.append(QuantLayer(n.name, n.op, frozenset({n.name} | fused)))
    return layers


class _Evaluator:
    def __init__(self, graph: Graph, ranges: Ranges, samples: list[dict[str, np.ndarray]],
                 config: QuantConfig, metric: Metric | None,
                 channel_means: Mapping[str, np.ndarray] | None = None) -> None:
        self.graph, self.ranges, self.samples, self.config = graph, ranges, samples, config
        self.channel_means = channel_means
        self.metric = metric
        self.reference = [run(graph, s) for s in samples]
        self.float_metric = None if metric is None else float(metric(self.reference))
        self.count = 0

    def measure(self, skip: frozenset[str]) -> Measurement:
        cfg = replace(self.config, skip_layers=self.config.skip_layers | skip)
        q = quantize_graph(self.graph, self.ranges, cfg, self.channel_means)
        stats: dict[str, ErrorStats] = {}
        outs: list[Outputs] = []
        for feeds, ref in zip(self.samples, self.reference):
            got = run(q, feeds)
            output_stats(q, got, ref, stats)
            if self.metric is not None:
                outs.append(got)
        self.count += 1
        sqnr = min((s.sqnr_db for s in stats.values()), default=math.inf)
        if self.metric is None or self.float_metric is None:
            return Measurement(sqnr)
        value = float(self.metric(outs))
        return Measurement(sqnr, value, self.float_metric - value)


def _meets(m: Measurement, min_sqnr_db: float | None, max_drop: float | None) -> bool:
    if min_sqnr_db is not None and not m.sqnr_db >= min_sqnr_db:
        return False
    return max_drop is None or (m.drop is not None and m.drop <= max_drop + DROP_SLACK)


def auto_mixed_precision(
    graph: Graph,
    ranges: Ranges,
    samples: Any,
    *,
    min_sqnr_db: float | None = None,
    max_drop: float | None = None,
    metric: Metric | None = None,
    config: QuantConfig | None = None,
    progress: Callable[[AutoStep], None] | None = None,
    channel_means: Mapping[str, np.ndarray] | None = None,
) -> AutoResult:
    """Find the fewest layers to keep in f32 so that the quantised ``graph`` meets the budget.

    ``samples`` are held-out inputs (anything :func:`calibration_data` accepts; they are read
    once and kept in memory, as every configuration runs on all of them). The budget is
    ``min_sqnr_db`` (the lowest output SQNR vs float, in dB) and/or ``max_drop``: how much
    ``metric(outputs_list)`` — a higher-is-better score of the per-sample output dicts, in
    sample order, e.g. top-1 accuracy with labels captured by the closure — may fall below
    its float value. ``config`` sets the other quantisation options (its skips are kept);
    ``channel_means`` enables bias correction as in the final quantisation.
    """
    if min_sqnr_db is None and max_drop is None:
        raise QnncError("automatic mixed precision needs a budget: min_sqnr_db or max_drop")
    if max_drop is not None and metric is None:
        raise QnncError("max_drop is a drop in a metric: pass metric=callable(outputs_list)")
    cfg = config or QuantConfig()
    feeds = list(calibration_data(samples, graph))
    ev = _Evaluator(graph, ranges, feeds, cfg, metric, channel_means)

    def report(phase: Phase, done: int, total: int, layers: Sequence[str], m: Measurement
               ) -> None:
        if progress is not None:
            progress(AutoStep(phase, done, total, tuple(layers), m))

    def result(met: bool, skip: frozenset[str], f32: Sequence[str], m: Measurement,
               message: str, ranking: list[Sensitivity] | None = None) -> AutoResult:
        return AutoResult(met, skip, tuple(f32), m, baseline, ev.float_metric,
                          ranking or [], ev.count, message)

    baseline = ev.measure(frozenset())
    report("baseline", 1, 1, (), baseline)
    if _meets(baseline, min_sqnr_db, max_drop):
        return result(True, frozenset(), (), baseline,
                      "the budget holds with every layer in int8")
    layers = quant_layers(graph, ranges, cfg, channel_means)
    groups = {layer.name: layer.members for layer in layers}
    every_node = frozenset(n.name for n in graph.nodes if n.name)
    all_float = Measurement(math.inf, ev.float_metric, None if metric is None else 0.0)
    if not groups:
        return result(False, every_node, (), all_float,
                      "the budget does not hold and the model has no integer layer to keep "
                      "in f32 instead; keeping the whole model in f32")

    alone: dict[str, Measurement] = {}
    for k, (name, members) in enumerate(groups.items()):
        alone[name] = ev.measure(every_node - members)
        report("rank", k + 1, len(groups), (name,), alone[name])
    ops = {layer.name: layer.op for layer in layers}
    order = sorted(groups, key=lambda n: alone[n].sqnr_db)  # stable: graph order on ties
    ranking = [Sensitivity(n, ops[n], alone[n].sqnr_db, alone[n].drop) for n in order]
    feasible = [n for n in reversed(order) if _meets(alone[n], min_sqnr_db, max_drop)]
    if not feasible:
        least = order[-1]
        return result(False, every_node, order, all_float,
                      f"the budget cannot be met with any layer in int8: even with every "
                      f"other layer in f32, the least sensitive one ({least}) alone gives "
                      f"{_figures(alone[least])}; keeping the whole model in f32",
                      ranking)

    skip: frozenset[str] = frozenset()
    for k, name in enumerate(order[:-1]):
        skip |= groups[name]
        m = ev.measure(skip)
        report("search", k + 1, len(order) - 1, order[: k + 1], m)
        if _meets(m, min_sqnr_db, max_drop):
            return result(True, skip, order[: k + 1], m,
                          f"the budget holds with {k + 1} of {len(order)} layer(s) in f32",
                          ranking)
    # Interactions (e.g. a quantised data-movement node between float layers) defeated the
    # greedy order; a layer that meets the budget alone is still a valid answer.
    best = feasible[0]
    return result(True, every_node - groups[best], [n for n in order if n != best],
                  alone[best], f"the budget holds only with {best} alone in int8", ranking)


def top1_agreement(graph: Graph, samples: Any) -> Metric:
    """A metric for ``max_drop`` when there are no labels: the fraction of samples whose
    top-1 class (argmax of the first output) is the float model's. The float model scores 1.0,
    so its drop is the fraction of decisions that quantisation changes."""
    name = graph.outputs[0].name
    reference = [int(np.argmax(run(graph, feeds)[name])) for feeds in
                 calibration_data(samples, graph)]

    def agreement(outputs: Sequence[Outputs]) -> float:
        hits = sum(int(np.argmax(o[name])) == r for o, r in zip(outputs, reference))
        return hits / max(len(reference), 1)

    return agreement
