"""Per-tensor weights on a depthwise network: what cross-layer equalisation and bias
correction buy.

Accelerators without per-channel requantisation need one weight scale per layer, which
depthwise layers (whose channels' ranges differ a lot) handle badly. This prints MobileNetV2's
INT8 output SQNR vs f32 for per-channel and per-tensor weights, each with and without bias
correction and equalisation, on the same calibration and test data (N(0, 1) inputs; the
example's weights are random, so trained networks gain more from equalisation).

    python -m benchmarks.per_tensor [--model mobilenetv2] [--calib 8] [--test 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from compiler.examples import build_example
from compiler.frontend.importer import import_model
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.accuracy import ErrorStats, output_stats
from compiler.quant.calibrate import calibrate_model
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir.graph import Graph
from ir.interpreter import run


def _sqnr(fgraph: Graph, qgraph: Graph, test: list[dict[str, np.ndarray]]) -> float:
    stats: dict[str, ErrorStats] = {}
    for feeds in test:
        output_stats(qgraph, run(qgraph, feeds), run(fgraph, feeds), stats)
    return min(s.sqnr_db for s in stats.values())


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilenetv2")
    ap.add_argument("--calib", type=int, default=8)
    ap.add_argument("--test", type=int, default=3)
    ap.add_argument("--method", default="percentile")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    base = run_pipeline(import_model(build_example(args.model)), DEFAULT_PIPELINE)
    rng = np.random.default_rng(0)
    name = base.inputs[0].name
    shape = base.inputs[0].type.shape
    calib = rng.standard_normal((args.calib, *shape)).astype(np.float32)
    test = [{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(args.test)]
    print(f"{args.model}: INT8 output SQNR vs f32 (dB), {args.method} ranges, "
          f"{args.calib} calibration / {args.test} test samples")
    print(f"{'weights':<12}{'equalize':>10}{'bias corr.':>12}{'SQNR dB':>10}")
    for equalize in (False, True):
        graph = run_pipeline(base, ["equalize", "dce"]) if equalize else base
        cal = calibrate_model(graph, {name: calib}, args.method)  # type: ignore[arg-type]
        for per_channel in (True, False):
            for bias_correction in (False, True):
                cfg = QuantConfig(per_channel=per_channel, bias_correction=bias_correction)
                q = quantize_graph(graph, cal.ranges, cfg, cal.channel_means)
                kind = "per-channel" if per_channel else "per-tensor"
                print(f"{kind:<12}{'yes' if equalize else 'no':>10}"
                      f"{'yes' if bias_correction else 'no':>12}{_sqnr(base, q, test):>10.2f}",
                      flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
