"""`qnnc bench MODEL --target host --profile`: where the time goes, layer by layer.

The model's host C is built once more with a clock read after every layer
(targets/host/profile.py: same kernels, flags and threads) and run ``--repeat`` times; the
table lists the slowest layers with their share of the run and, for layers that multiply,
the INT8 or float operations per second they reach; a second table sums the time per op
kind. The layers' times add up to the run's (the few nanoseconds of each clock read aside).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from compiler.api import CompiledModel
from compiler.errors import QnncError
from compiler.flops import graph_costs
from targets.host.build import BuildOptions
from targets.host.profile import profile_layers
from targets.tables import table

PROFILE_TOP = 15


def _shape(t: Any) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


def layer_profile(cm: CompiledModel, feeds: dict[str, Any], *, threads: int, cpu: str,
                  runs: int, warmup: int) -> dict[str, Any]:
    """Per-layer milliseconds of ``cm``'s host C (a dict that --json prints as it is)."""
    if cm.target != "host":
        raise QnncError("--profile times the host C layer by layer: use it with --target host "
                        "(an accelerator's per-layer figures are in its report.txt)")
    graph = cm.graph
    times = profile_layers(graph, feeds, opts=BuildOptions(cpu=cpu, threads=threads),
                           runs=runs, warmup=warmup)
    layers = []
    for node, cost, ms in zip(graph.nodes, graph_costs(graph), times.per_layer_ms):
        layers.append({"name": cost.name, "op": node.op,
                       "output": _shape(node.outputs[0].type) if node.outputs else "",
                       "ms": ms, "macs": int(cost.macs)})
    return {"runs": runs, "kept_runs": len(times.kept), "threads": threads,
            "total_ms": times.kept_ms, "layers": layers}


def profile_text(data: dict[str, Any], top: int = PROFILE_TOP) -> str:
    layers, total = data["layers"], max(data["total_ms"], 1e-12)
    ranked = sorted(layers, key=lambda r: -r["ms"])
    rows, running = [], 0.0
    for r in ranked[:top]:
        running += r["ms"]
        gops = f"{2 * r['macs'] / r['ms'] / 1e6:.1f}" if r["macs"] and r["ms"] > 0 else ""
        rows.append([r["name"], r["op"], r["output"], f"{r['ms']:.3f}",
                     f"{100 * r['ms'] / total:.1f}", f"{100 * running / total:.1f}", gops])
    kinds: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for r in layers:
        kinds[r["op"]][0] += r["ms"]
        kinds[r["op"]][1] += 1
    kind_rows = [[op, str(int(n)), f"{ms:.3f}", f"{100 * ms / total:.1f}"]
                 for op, (ms, n) in sorted(kinds.items(), key=lambda kv: -kv[1][0])]
    head = (f"per-layer profile: {len(layers)} layers, {data['total_ms']:.3f} ms per run "
            f"(mean of the faster {data.get('kept_runs', data['runs'])} of {data['runs']} "
            f"runs, {data['threads']} thread"
            f"{'s' * (data['threads'] > 1)}); the {min(top, len(layers))} slowest:")
    return "\n".join([
        head,
        table(["layer", "op", "output", "ms", "%", "cum %", "GOPS"], rows,
              right=(3, 4, 5, 6)),
        "",
        "by op kind:",
        table(["op", "layers", "ms", "%"], kind_rows, right=(1, 2, 3)),
    ])
