"""quantize: calibrate the float graph on sample data and quantise it to INT8.

Calibration runs the graph on the samples and records every float tensor's range with the
chosen observer (``method``; ``auto``, the default, quantises with percentile and with entropy
ranges and keeps the one whose outputs agree with f32 clearly better on the first samples:
compiler/quant/method_choice.py); the quantiser (compiler/quant/quantize.py) then gives every op
its quantised form. ``skip-layers`` and ``skip-op-types`` keep layers in f32; with held-out
evaluation data and a budget (``min-sqnr`` in dB, or ``max-drop`` in top-1 agreement) the most
sensitive layers stay f32 until the budget holds. A graph that arrives quantised (a QDQ or
QOperator model) keeps its own scales: the pass leaves it as it is.

The samples, evaluation data and a progress callback are options Python gives (compile_model
does, from its calibration= / eval_data= / progress= arguments); what the pass learned (the
float graph it started from, the accuracy against it — every layer with its cause and fix,
compiler/quant/accuracy.py —, the mixed-precision choice) goes into the ``outcome`` the caller
passes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.errors import QnncError
from compiler.passes.manager import Pass, option, register
from compiler.quant.calibrate import DEFAULT_METHOD, METHODS
from compiler.quant.observers import DEFAULT_PERCENTILE, percentile_problem
from ir.graph import Graph
from ir.qmath import WEIGHT_RANGES

#: the methods whose ranges depend on the percentile
PERCENTILE_METHODS = ("percentile", "layerwise", "auto")


@dataclass
class QuantizeOutcome:
    """What a quantize run learned, for the caller's reports."""

    float_graph: Graph | None = None
    #: compiler.quant.auto.AutoResult when an accuracy budget was given
    auto_precision: Any = None
    #: compiler.quant.accuracy.AccuracyReport when evaluation data was given
    accuracy: Any = None
    #: what the model was calibrated with: method, number of samples, their sha256
    calibration: dict[str, Any] | None = None


def prequantised(graph: Graph) -> bool:
    """The model came quantised (QDQ or QOperator): its own scales are kept, and there is
    nothing to calibrate."""
    return any(v.type.quant is not None for n in graph.nodes for v in n.outputs)


@register
@dataclass(frozen=True)
class Quantize(Pass):
    name = "quantize"
    description = "calibrate on sample data and quantise to INT8 (quantised models are kept)"
    method: str = option(DEFAULT_METHOD, f"range observer: {', '.join(METHODS)}")
    percentile: float = option(DEFAULT_PERCENTILE, "the percentile (and layerwise) method's "
                               "percentile P in (50, 100]: each tail's rarest 100 - P percent "
                               "of a tensor's values are clipped")
    per_channel: bool = option(True, "one weight scale per output channel, else per layer")
    weight_range: str = option("int8", "weight codes: int8, paired (no same-sign pair of "
                               "weights past 128: exact u8 x s8 kernels) or int7")
    skip_layers: tuple[str, ...] = option((), "layers (node names) to keep in f32")
    skip_op_types: tuple[str, ...] = option((), "op types to keep in f32, e.g. Softmax")
    bias_correction: bool = option(True, "correct biases for the mean error of rounded weights")
    smooth: float = option(0.0, "SmoothQuant strength alpha in (0, 1]: move activation outlier "
                           "scale into the weights of products after a norm (0: off)")
    min_sqnr: float | None = option(None, "accuracy budget: output SQNR vs f32 in dB, at least")
    max_drop: float | None = option(None, "accuracy budget: largest fall in top-1 agreement")
    calibration: Any = option(None, "calibration samples (a path, arrays, feed dicts)",
                              text=False)
    eval_data: Any = option(None, "held-out samples for the accuracy report and budget",
                            text=False)
    progress: Any = option(None, "called as progress(done, total) per sample", text=False)
    calibrated: Any = option(None, "ranges already calibrated (compiler.quant.calibrate."
                             "Calibration), e.g. once for every shape profile", text=False)
    outcome: QuantizeOutcome | None = option(None, "filled with what the run learned",
                                             text=False)

    def run(self, graph: Graph) -> Graph:
        if prequantised(graph):
            return graph
        self._check(graph)
        from compiler.quant.blas_threads import limited_blas

        with limited_blas():  # the interpreter runs every sample
            return self._quantize(graph)

    def _quantize(self, graph: Graph) -> Graph:
        from compiler.quant.auto import auto_mixed_precision, top1_agreement
        from compiler.quant.calibrate import calibrate_model
        from compiler.quant.method_choice import resolve
        from compiler.quant.quantize import quantize_graph

        cal = self.calibrated or calibrate_model(
            graph, self.calibration, self.method,  # type: ignore[arg-type]
            percentile=self.percentile, progress=self.progress)
        cfg = self.config()
        cal = resolve(cal, cfg)  # auto's choice (made once, before any shape profile's run)
        if self.smooth > 0:
            from compiler.quant.smooth import smooth

            cal = smooth(graph, cal, self.smooth)
        missing = [v.name for n in graph.nodes for v in n.outputs
                   if v.type.dtype.is_float and v.name not in cal.ranges]
        if missing:
            raise QnncError(f"calibration gave no range to {len(missing)} tensor(s) of this "
                            f"graph (e.g. {missing[:3]}): none of the calibration samples has "
                            "this shape profile's structure; add samples of its shape")
        auto = None
        if self.min_sqnr is not None or self.max_drop is not None:
            metric = top1_agreement(graph, self.eval_data) if self.max_drop is not None else None
            auto = auto_mixed_precision(graph, cal.ranges, self.eval_data,
                                        min_sqnr_db=self.min_sqnr, max_drop=self.max_drop,
                                        metric=metric, config=cfg,
                                        channel_means=cal.channel_means)
            cfg = auto.config(cfg)
        made = cal.take_quantized(graph, cfg) if auto is None and not self.smooth else None
        qgraph = made or quantize_graph(graph, cal.ranges, cfg, cal.channel_means,
                                        cal.weights)
        if self.outcome is not None:
            self.outcome.float_graph, self.outcome.auto_precision = graph, auto
            self.outcome.calibration = {"method": self.method,
                                        **({"chosen": cal.chosen,
                                            "scores_db": cal.choice_scores}
                                           if cal.chosen else {}),
                                        **({"percentile": self.percentile}
                                           if self.method in PERCENTILE_METHODS else {}),
                                        "weight_range": self.weight_range,
                                        **({"smooth": self.smooth} if self.smooth else {}),
                                        "samples": cal.samples,
                                        "samples_sha256": cal.samples_sha256}
            if self.eval_data is not None:
                from compiler.quant.accuracy import compare

                self.outcome.accuracy = compare(graph, qgraph, self.eval_data,
                                                calib_method=self.method)
        return qgraph

    def config(self) -> Any:
        """The quantiser's settings (compiler.quant.quantize.QuantConfig) from the options."""
        from compiler.quant.quantize import QuantConfig

        return QuantConfig(skip_layers=frozenset(self.skip_layers),
                           skip_op_types=frozenset(self.skip_op_types),
                           per_channel=self.per_channel, bias_correction=self.bias_correction,
                           weight_range=self.weight_range)

    def _check(self, graph: Graph) -> None:
        if not 0.0 <= self.smooth <= 1.0:
            raise QnncError(f"quantize: smooth must be in [0, 1] (got {self.smooth:g}): the "
                            "share of each activation channel's range moved into the weights")
        if self.calibration is None and self.calibrated is None:
            raise QnncError(
                "INT8 compilation needs calibration data: give a few hundred representative "
                "input samples (--calib data.npz, or calibration= in the API)")
        if self.method not in METHODS:
            raise QnncError(f"calibration method must be one of {list(METHODS)}, got "
                            f"{self.method!r}")
        if (problem := percentile_problem(self.percentile)) is not None:
            raise QnncError(f"quantize: {problem}")
        if self.weight_range not in WEIGHT_RANGES:
            raise QnncError(f"weight range must be one of {list(WEIGHT_RANGES)}, got "
                            f"{self.weight_range!r}")
        if (self.min_sqnr is not None or self.max_drop is not None) and self.eval_data is None:
            raise QnncError("an accuracy budget (--min-sqnr / --max-drop) needs held-out "
                            "evaluation samples (--eval data.npz, or eval_data= in the API)")
        unknown = sorted(set(self.skip_layers) - {n.name for n in graph.nodes})
        if unknown:
            raise QnncError(f"--skip-layers names {unknown}, which are not layers of the "
                            "model; `qnnc inspect` lists the layer names")
