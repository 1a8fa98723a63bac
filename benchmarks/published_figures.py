"""The cost model against published figures: each chip's published ResNet-50 INT8 throughput
(targets/profiles/published.py, with sources) beside what qnnc models for the same model,
batch and precision, and the ratio.

    python -m benchmarks.published_figures [--targets ascend310p,mlu370x8]

qnnc's figure is the modelled latency of `qnnc compile --target T` (the same passes: import
at the batch, quantise, layout, tile; every layer modelled, per-kernel launch included), for
the light-zoo ResNet-50 example with its batch dimension opened (its flatten reshape made
batch-agnostic). Calibration ranges do not change the model's cycles, so one random sample
at the batch calibrates. Besides the per-batch ratios it prints the split of each side's time
into a fixed part and a per-image part (two batch sizes): the fixed part of the published
figures is what the profiles' launch estimates come from (so the batch-1 ratio checks them
only partly), while the per-image part checks the tiled kernels' model independently.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper

from benchmarks.common import format_table
from compiler.examples import build_example
from compiler.modelled import model_only
from targets.cost import model_cost
from targets.profiles import load_target
from targets.profiles.published import PUBLISHED, Published, split_fixed


def batched_resnet50() -> onnx.ModelProto:
    """The light-zoo ResNet-50 with a symbolic batch dimension."""
    model = build_example("resnet50")
    for v in list(model.graph.input) + list(model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_param = "N"
    for init in model.graph.initializer:  # the flatten before the classifier: [1, 2048]
        a = numpy_helper.to_array(init)
        if a.dtype == np.int64 and a.ndim == 1 and a.size == 2 and a[0] == 1:
            init.CopyFrom(numpy_helper.from_array(np.array([-1, a[1]], np.int64), init.name))
    return model


def modelled_ms(model: onnx.ModelProto, target: str, batch: int) -> tuple[float, int, float]:
    """qnnc's modelled latency (ms) of ``model`` at ``batch`` on ``target``, its layers, and
    the matrix unit's multiply-accumulates per image."""
    name = model.graph.input[0].name
    shape = (batch, 3, 224, 224)
    sample = {name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    graph, plans, prof = model_only(model, target, [sample], {name: shape})
    mc = model_cost(plans, prof)
    return mc.seconds * 1e3, len(graph.nodes), mc.matrix_macs / batch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default="ascend310p,mlu370x8",
                    help="comma-separated targets with published figures")
    args = ap.parse_args(argv)
    model = batched_resnet50()
    wanted = args.targets.split(",")
    rows, sources, splits, marginal = [], {}, [], []
    start = time.perf_counter()
    for target in wanted:
        figures = [p for p in PUBLISHED if p.target == target]
        if not figures:
            print(f"no published figures for {target}", file=sys.stderr)
            return 1
        ours: dict[int, float] = {}
        macs = 0.0
        for p in figures:
            ms, layers, macs = modelled_ms(model, target, p.batch)
            ours[p.batch] = ms
            rows.append(_row(p, ms, layers))
            sources[p.source] = p.device
        # the time an image's MACs take at the chip's rated INT8 peak
        floor_us = 2 * macs / (load_target(target).int8_tops * 1e12) * 1e6
        pub = {p.batch: p.ms_per_batch for p in figures}
        sizes = sorted(ours)
        for b1, b2 in zip(sizes, sizes[1:]):
            dp = (pub[b2] - pub[b1]) / (b2 - b1) * 1e3
            dq = (ours[b2] - ours[b1]) / (b2 - b1) * 1e3
            note = "below the peak-compute floor" if dp < floor_us else ""
            marginal.append([target, f"{b1}->{b2}", f"{dp:.1f}", f"{dq:.1f}",
                             f"{dq / dp:.2f}" if dp > 0 else "-", f"{floor_us:.1f}", note])
        small, large = min(ours), max(ours)
        fixed, per_image = split_fixed(target, small, large)
        our_per = (ours[large] - ours[small]) / (large - small)
        splits.append([target, f"{small}/{large}", f"{fixed * 1e3:.0f}",
                       f"{(ours[small] - small * our_per) * 1e3:.0f}",
                       f"{per_image * 1e3:.1f}", f"{our_per * 1e3:.1f}",
                       f"{our_per / per_image:.2f}"])
    print("ResNet-50 INT8, 224x224: published device throughput vs qnnc's cost model")
    print(format_table(["target", "device measured", "batch", "published img/s",
                        "published ms", "qnnc ms", "qnnc img/s", "qnnc / published", "layers"],
                       rows))
    print()
    print("each side's time split into fixed + batch x per-image (from its two batch sizes):")
    print(format_table(["target", "batches", "published fixed us", "qnnc fixed us",
                        "published us/image", "qnnc us/image", "per-image ratio"], splits))
    print()
    print("the time one more image adds, between consecutive published batch sizes (a figure "
          "below\nthe floor - the image's MACs at the chip's rated peak - is no single-chip "
          "time to model):")
    print(format_table(["target", "batches", "published us/image", "qnnc us/image",
                        "ratio", "peak floor us", "note"], marginal))
    print()
    print("sources:")
    for src, device in sources.items():
        print(f"  {device}: {src}")
    print(f"\nwall time {time.perf_counter() - start:.0f} s (modelled figures: the machine's "
          "load does not change them)")
    return 0


def _row(p: Published, ms: float, layers: int) -> list[str]:
    ips = p.batch / ms * 1e3
    return [p.target, p.device, str(p.batch), f"{p.images_per_s:g}", f"{p.ms_per_batch:.3f}",
            f"{ms:.3f}", f"{ips:.0f}", f"{ips / p.images_per_s:.2f}", str(layers)]


if __name__ == "__main__":
    sys.exit(main())
