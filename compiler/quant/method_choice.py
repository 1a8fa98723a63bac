"""The ``auto`` calibration method: percentile ranges, or KL-entropy ranges where the whole
model agrees with f32 clearly better with them.

Neither observer suits every trained model. Percentile (clip each tail's rarest values) keeps
the extremes that carry the signal of a recogniser or a language model: with entropy ranges
PP-OCRv4 read no character right and the llama example kept 33 of 240 greedy tokens. Entropy
(KL divergence, clipping hard) gives the narrow channels of a tensor more steps where a wide
range would round them away: on PP-Structure's layout detector, whose HardSwish outputs have
channels 7-30 times apart in range before depthwise layers that amplify the narrow ones, its
boxes kept an F1 of 0.84 against f32's where percentile kept 0.43 (benchmarks.layout_int8).

So ``auto`` calibrates once, derives both ranges of every tensor from the same histograms,
quantises the model with each, and runs the first calibration samples (kept by the
calibrator: one image, or up to four small inputs) through both and through f32. The score
is the mean over the model's real-valued outputs of their SQNR in dB over those samples
(each output counts once, whatever its size; an exact output counts as :data:`CAP_DB`).
Entropy is taken only when it is at least :data:`MARGIN_DB` ahead: the percentile default
stays where the two are close.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from compiler.quant.accuracy import output_stats
from compiler.quant.calibrate import Calibration
from compiler.quant.error_stats import ErrorStats
from compiler.quant.quantize import QuantConfig, quantize_graph
from compiler.quant.sample_stack import StackPlan
from ir.graph import Graph
from ir.interpreter import run

#: the method kept unless another is clearly better
BASE = "percentile"
#: how far (dB of mean output SQNR) a candidate must be ahead of BASE to be chosen
MARGIN_DB = 1.0
#: an output's SQNR counts at most this much (an exact output would count +inf)
CAP_DB = 100.0


def _score(stats: Mapping[str, ErrorStats]) -> float:
    """Mean over the outputs of their SQNR (dB, capped at CAP_DB); -inf when every
    reference is zero."""
    dbs = [min(s.sqnr_db, CAP_DB) for s in stats.values() if s.sum_ref2 > 0.0]
    return float(np.mean(dbs)) if dbs else -math.inf


def _outputs(q: Graph, samples: list[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """``q``'s outputs on each sample: as one stack where the graph allows (the same values:
    compiler/quant/sample_stack.py), else one run each."""
    plan = StackPlan.make(q) if len(samples) > 1 else None
    if plan is not None and plan.size >= len(samples):
        try:
            return [result for _, result in plan.run(samples)]
        except Exception:  # noqa: BLE001 - run alone, a failure names its node
            pass
    return [run(q, feeds) for feeds in samples]


def resolve(cal: Calibration, config: QuantConfig) -> Calibration:
    """``cal`` with the ``auto`` choice made: the chosen method's ranges, its name in
    ``chosen`` and every candidate's score in ``choice_scores``, the candidates and kept
    samples dropped. A calibration with no candidates (another method, or resolved already)
    is returned as it is."""
    alternatives, kept = cal.alternatives, cal.kept
    if not alternatives:
        return cal
    if BASE not in alternatives or len(alternatives) < 2 or not kept:
        return replace(cal, ranges=dict(alternatives.get(BASE, cal.ranges)), alternatives={},
                       kept=[], kept_outputs=[], chosen=BASE)
    refs = cal.kept_outputs if len(cal.kept_outputs) == len(kept) else \
        [run(g, feeds) for g, feeds in kept]
    groups: dict[int, tuple[Graph, list[tuple[Mapping[str, np.ndarray], dict]]]] = {}
    for (g, feeds), ref in zip(kept, refs):  # each graph's (shape profile's) samples
        groups.setdefault(id(g), (g, []))[1].append((feeds, ref))
    scores: dict[str, float] = {}
    made: dict[str, list[tuple[Graph, Graph, QuantConfig]]] = {}
    for method, ranges in alternatives.items():
        stats: dict[str, ErrorStats] = {}  # per output, over every kept sample
        for g, samples in groups.values():
            q = quantize_graph(g, ranges, config, cal.channel_means, cal.weights)
            made.setdefault(method, []).append((g, q, config))
            for got, (_, ref) in zip(_outputs(q, [feeds for feeds, _ in samples]), samples):
                output_stats(q, got, ref, stats)
        scores[method] = _score(stats)
    best = max(scores, key=scores.__getitem__)
    if best != BASE and not scores[best] >= scores[BASE] + MARGIN_DB:
        best = BASE
    return replace(cal, ranges=dict(alternatives[best]), alternatives={}, kept=[],
                   kept_outputs=[], chosen=best, choice_scores=scores,
                   quantized=made[best])
