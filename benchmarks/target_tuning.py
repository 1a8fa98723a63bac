"""Per-target tuning: each target's modelled latency with its own tiling vs every other
target's tiling forced onto it (re-fitted to its buffers), and off-chip bytes vs the
compulsory minimum, for ResNet-50 and the BERT encoder example.

    python benchmarks/target_tuning.py [resnet50 bert_encoder ...]

Rows are the target the model runs on; columns the target whose tiling is used ("own" on the
diagonal). Latencies are modelled (targets/cost.py), not measured.
"""

from __future__ import annotations

import sys

from compiler.examples import build_example
from compiler.frontend import import_model
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from targets.cost import model_cost
from targets.profiles import all_builtin
from targets.tiling import TilePlans, force_plans, tile_graph


def table(model: str) -> str:
    graph = run_pipeline(import_model(build_example(model)), DEFAULT_PIPELINE)
    profs = all_builtin()
    own: dict[str, TilePlans] = {p.name: tile_graph(graph, p) for p in profs}
    names = [p.name for p in profs]
    head = f"{'runs on':<12}" + "".join(f"{n:>12}" for n in names) + "   off-chip MB / min"
    lines = [f"{model}: modelled latency (ms) with each target's tiling", head]
    for p in profs:
        cells = []
        for q in profs:
            plans = own[p.name] if q is p else force_plans(own[q.name], p)
            if plans is None:
                cells.append(f"{'no fit':>12}")
                continue
            ms = model_cost(plans, p).seconds * 1e3
            mark = "*" if q is p else " "
            cells.append(f"{ms:>11.3f}{mark}")
        mc = model_cost(own[p.name], p)
        lines.append(f"{p.name:<12}" + "".join(cells) +
                     f"   {mc.offchip_bytes / 1e6:8.1f} / {mc.compulsory_bytes / 1e6:.1f}"
                     f" ({mc.offchip_bytes / mc.compulsory_bytes:.2f}x)")
    lines.append("* own tiling")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    for model in argv or ["resnet50", "bert_encoder"]:
        print(table(model))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
