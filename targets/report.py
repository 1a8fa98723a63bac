"""Per-target reports of a tiled model: report.json, report.txt and roofline.html.

The cost model (targets/cost.py) already knows everything a report shows; this module only
arranges it, so the three files can never disagree with the plans or with each other: the text
and the HTML are rendered from the dict :func:`report_data` returns (which is report.json).

A layer's ops are 2 per MAC on the matrix unit and 1 per useful vector op on the vector unit;
its intensity is ops per off-chip byte and its achieved TOPS is ops over its modelled time, so
each layer is one point under the chip's roofline. The model point counts matrix MACs only,
as :class:`targets.cost.ModelCost` does, so it matches the roofline sentence.

Every layer says where it ran (``ran``: ``staged`` on the chip or ``host``) and why (``why``;
targets/staged/support.host_reason: control flow or its body, a float island, an op not
staged, a layout conversion); the layers of control-flow bodies follow their node, named
``<node>/<body>/<layer>``.

``counters`` are what generated code measured at run time (bytes per link and MACs per
layer). Measured and modelled agree when they differ by at most half a byte or
:data:`AGREE_RTOL` of the modelled figure (modelled bytes may be fractional: partial sums
are averaged over the visits of an output tile).
"""

from __future__ import annotations

import html
import json
import math
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ir.graph import Graph, Node, Value
from targets.cost import OFFCHIP, LayerCost, model_cost, roofline
from targets.cost_stream import stream_cost
from targets.fusion import epilogue_operands, fused_producer
from targets.profiles.schema import Profile
from targets.staged.support import host_reason
from targets.tables import _cell, table
from targets.tiling import TilePlan, TilePlans, layer_keys, order_text
from targets.tiling.problem import DIMS

AGREE_RTOL = 1e-3
REPORT_FILES = ("report.json", "report.txt", "roofline.html")
_SHARED = "no plan: a plan of another kind of layer has this name"


# -- data ---------------------------------------------------------------------------------
def _shape(v: Value | None) -> list[int] | None:
    return None if v is None else [int(d) for d in v.type.shape]


def _layout(node: Node) -> str:
    """The node's layout attribute once a layout pass sets it; plain NCHW / ND before."""
    lay = node.attrs.get("layout")
    if isinstance(lay, str) and lay:
        return lay
    x = node.first_operand()
    rank = len(x.type.shape) if x is not None else len(node.outputs[0].type.shape)
    return "NCHW" if rank == 4 else "ND"


def _node_fields(node: Node | None, name: str, op: str) -> dict[str, Any]:
    if node is None:  # a plan whose node is not in this graph
        return {"name": name, "op": op, "inputs": [], "outputs": [], "layout": "ND"}
    return {"name": name, "op": node.op, "inputs": [_shape(v) for v in node.inputs],
            "outputs": [_shape(v) for v in node.outputs], "layout": _layout(node)}


#: what the report says of a layer planned and generated as a staged kernel
STAGED = "staged on the chip"


def _host(node: Node | None, name: str, op: str, why: str, cost: LayerCost,
          prof: Profile, note: str = "") -> dict[str, Any]:
    """A layer that runs as host C in the staged code (where and why: the ``untiled``
    list), with its modelled cost as the chip would run it (targets/cost_stream.py)."""
    ran = "epilogue" if cost.unit == "fused" else "host"  # fused: in the product's kernel
    d = dict(_node_fields(node, name, op), ran=ran, why=why)
    d.update(_stream_fields(cost, prof))
    return dict(d, note=note) if note else d


def _stream_fields(c: LayerCost, prof: Profile) -> dict[str, Any]:
    off = c.offchip_bytes
    return {"unit": c.unit, "macs": 0, "cycles": float(c.cycles),
            "us": c.cycles / prof.clock_hz * 1e6, "launch_cycles": float(c.launch_cycles),
            "offchip_bytes": float(off), "compulsory_bytes": int(c.compulsory_bytes),
            "offchip_over_compulsory": off / c.compulsory_bytes if c.compulsory_bytes else None,
            "bound": c.bound}


def _bodies(node: Node, prefix: str, prof: Profile) -> list[dict[str, Any]]:
    """The layers of ``node``'s bodies, named ``<node>/<body>/<layer>``: host C, since the
    control flow around them is; their modelled costs are part of ``node``'s."""
    out = []
    for body in node.regions:
        keys = layer_keys(body)
        for n in body.nodes:
            name = f"{prefix}/{body.name}/{keys[id(n)]}"
            out.append(_host(n, name, n.op, f"control flow: in the body of {prefix} "
                             f"({node.op})", stream_cost(n, name, prof), prof,
                             note=f"counted in {prefix}"))
            out += _bodies(n, name, prof)
    return out


def _mark_epilogues(graph: Graph, keys: dict[int, str], layers: list[dict[str, Any]],
                    untiled: list[dict[str, Any]]) -> None:
    """Name, on each staged layer and the element-wise layer in its epilogue, the other."""
    rows = {d["name"]: d for d in layers + untiled}
    for node in graph.nodes:
        prod = fused_producer(graph, node)
        if prod is None or keys[id(prod)] not in rows or keys[id(node)] not in rows:
            continue
        staged, fused = rows[keys[id(prod)]], rows[keys[id(node)]]
        staged["epilogue"] = {"name": keys[id(node)], "op": node.op,
                              "operands": len(epilogue_operands(node, prod))}
        fused["in_epilogue_of"] = keys[id(prod)]


def _graph_position(graph: Graph) -> Any:
    """A sort key putting report rows in graph order (a body's layers after their owner's
    row, plans without a node at the end)."""
    keys = layer_keys(graph)
    pos = {keys[id(n)]: i for i, n in enumerate(graph.nodes)}

    def key(d: dict[str, Any]) -> tuple[int, str]:
        top = d["name"].split("/", 1)[0]
        return (pos.get(d["name"], pos.get(top, len(pos))), d["name"])
    return key


def _ops(macs: int, unit: str) -> int:
    return 2 * macs if unit == "matrix" else macs


def _agree(measured: float, modelled: float) -> bool:
    return abs(measured - modelled) <= max(0.5, AGREE_RTOL * abs(modelled))


def _counters(measured: Mapping[str, int], modelled: dict[str, float]) -> dict[str, Any]:
    keys = list(modelled) + [k for k in measured if k not in modelled]
    rows = {}
    for k in keys:
        mod = modelled.get(k, 0.0)
        if k in measured:
            rows[k] = {"measured": int(measured[k]), "modelled": mod,
                       "agree": _agree(float(measured[k]), mod)}
        else:
            rows[k] = {"measured": None, "modelled": mod, "agree": None}
    checked = [r["agree"] for r in rows.values() if r["agree"] is not None]
    return {"items": rows, "agree": all(checked) if checked else None}


def _layer(node: Node | None, plan: TilePlan, prof: Profile,
           counters: Mapping[str, Mapping[str, int]] | None) -> dict[str, Any]:
    c = plan.cost
    d = dict(_node_fields(node, plan.node, plan.op), ran="staged", why=STAGED)
    occ = {}
    for name, nbytes in plan.occupancy.items():
        cap = prof.buffer(name).per_core_bytes
        occ[name] = {"bytes": int(nbytes), "capacity": cap, "percent": 100.0 * nbytes / cap}
    ops = _ops(c.macs, c.unit)
    secs = c.cycles / prof.clock_hz
    off = c.offchip_bytes
    kind, _, link = c.bound.partition(" ")
    d.update({
        "unit": plan.problem.unit,
        "sizes": dict(zip(DIMS, plan.problem.sizes)),
        "tiles": [{"level": lv, "tile": dict(zip(DIMS, t)), "order": order_text(o)}
                  for lv, (t, o) in enumerate(zip(plan.tiles, plan.orders), start=1)],
        "occupancy": occ,
        "bytes": {k: float(v) for k, v in c.bytes.items()},
        "offchip_bytes": float(off),
        "compulsory_bytes": int(c.compulsory_bytes),
        "offchip_over_compulsory": off / c.compulsory_bytes if c.compulsory_bytes else None,
        "macs": int(c.macs),
        "ops": ops,
        "steps": c.steps,
        #: how the layer's work is split over the cores: the outermost level's loops (dim,
        #: trips) whose steps the cores share, as the tile search chose them
        "split": [{"dim": DIMS[d], "trips": -(-plan.problem.sizes[d] // plan.tiles[-1][d])}
                  for d in plan.orders[-1]
                  if -(-plan.problem.sizes[d] // plan.tiles[-1][d]) > 1],
        "cores_used": c.cores_used,
        "cycles": float(c.cycles),
        "us": secs * 1e6,
        "intensity": ops / off if off else None,
        "achieved_tops": ops / secs / 1e12 if secs else 0.0,
        "bound": c.bound,
        "launch_cycles": float(c.launch_cycles),
        "fill_drain_cycles": float(c.fill_drain_cycles),
        "bound_kind": kind,
        "bound_link": link.strip("()") or None,
    })
    if counters is not None:
        measured = counters.get(plan.node)
        modelled = {k: float(v) for k, v in c.bytes.items()}
        modelled["macs"] = float(c.macs)
        d["counters"] = None if measured is None else _counters(measured, modelled)
    return d


def _target(prof: Profile) -> dict[str, Any]:
    return {
        "name": prof.name, "description": prof.description,
        "int8_tops": prof.int8_tops, "modelled_int8_tops": prof.modelled_int8_tops(),
        "rated_int8_tops": prof.rated_int8_tops, "clock_hz": prof.clock_hz,
        "cores": prof.cores, "launch_us": prof.launch_us,
        "launch_source": prof.sources.get("launch_us", ""),
        "offchip": {"name": prof.offchip.name, "bytes": prof.offchip.bytes,
                    "bandwidth": prof.offchip.bandwidth},
        "ridge": prof.int8_tops * 1e12 / prof.offchip.bandwidth,
        "channel_block": prof.layout.channel_block,
        "buffers": [{"name": b.name, "level": b.level, "per_core_bytes": b.per_core_bytes,
                     "roles": list(b.roles), "double_buffered": b.double_buffered}
                    for b in prof.buffers],
    }


def report_data(graph: Graph, plans: TilePlans, prof: Profile,
                counters: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, Any]:
    """Everything the reports show, JSON-ready (no NaN or infinity: missing figures are None).

    Layers are in graph order; plans without a node in ``graph`` follow at the end.
    """
    keys = layer_keys(graph)
    by_key = {keys[id(n)]: n for n in graph.nodes}
    owner = {keys[id(n)]: i for i, n in enumerate(graph.nodes)
             if keys[id(n)] in plans.plans and plans[keys[id(n)]].op == n.op}
    layers, untiled, seen = [], [], set()
    for i, node in enumerate(graph.nodes):
        k = keys[id(node)]
        if owner.get(k) == i:
            layers.append(_layer(node, plans[k], prof, counters))
            seen.add(k)
        elif k in plans.plans:
            cost = plans.streams.setdefault(k, stream_cost(node, k, prof))
            untiled.append(_host(node, k, node.op, host_reason(node), cost, prof, _SHARED))
        elif k in plans.untiled:
            cost = plans.streams.setdefault(k, stream_cost(node, k, prof))
            untiled.append(_host(node, k, node.op, host_reason(node), cost, prof))
            untiled += _bodies(node, k, prof)
    layers += [_layer(None, p, prof, counters) for p in plans if p.node not in seen]
    _mark_epilogues(graph, keys, layers, untiled)
    gone = [k for k in plans.untiled if k not in by_key]
    if gone:
        raise ValueError(f"tile plans name layers this graph does not have: {gone}")
    mc = model_cost(plans, prof)
    ridge = prof.int8_tops * 1e12 / prof.offchip.bandwidth
    data: dict[str, Any] = {
        "target": _target(prof),
        "model": {
            "graph": graph.name,
            "latency_ms": mc.seconds * 1e3, "cycles": mc.cycles,
            "achieved_tops": mc.achieved_tops, "utilisation": mc.utilisation,
            "macs": mc.macs, "matrix_macs": mc.matrix_macs,
            "offchip_bytes": mc.offchip_bytes, "compulsory_bytes": mc.compulsory_bytes,
            "offchip_over_compulsory": (mc.offchip_bytes / mc.compulsory_bytes
                                        if mc.compulsory_bytes else None),
            "intensity": mc.intensity if mc.offchip_bytes else None,
            "bound": "memory" if mc.intensity < ridge else "compute",
            "tiled_layers": len(layers), "untiled_layers": len(untiled),
            "fill_drain_us": sum(p.cost.fill_drain_cycles for p in plans) / prof.clock_hz * 1e6,
            "roofline": roofline(mc, prof),
        },
        "layers": layers,
        "untiled": untiled,
        #: every layer's name in graph order (bodies' layers right after their control op)
        "order": [d["name"] for d in sorted(layers + untiled, key=_graph_position(graph))],
    }
    if counters is not None:
        known = {d["name"] for d in layers}
        data["unmatched_counters"] = sorted(k for k in counters if k not in known)
        checked = [d["counters"]["agree"] for d in layers
                   if d.get("counters") and d["counters"]["agree"] is not None]
        data["model"]["counters_agree"] = all(checked) if checked else None
    return data


# -- text ---------------------------------------------------------------------------------
def _size(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def _kib(n: int) -> str:
    """Buffer capacities are powers of two: KiB / MiB read better than decimal units."""
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n / 1024:g} KiB"


def _dims(shape: list[int] | None) -> str:
    return "-" if shape is None else "x".join(str(d) for d in shape) or "scalar"


def _tiles_text(d: dict[str, Any]) -> tuple[str, str]:
    tiles = " / ".join("x".join(str(v) for v in t["tile"].values()) for t in d["tiles"])
    return tiles, " / ".join(t["order"] for t in d["tiles"])


def _counter_text(d: dict[str, Any]) -> str:
    c = d.get("counters")
    if c is None:
        return "-"
    if c["agree"]:
        return "agree"
    bad = [f"{k} {r['measured']} vs {r['modelled']:.0f}" for k, r in c["items"].items()
           if r["agree"] is False]
    return "DIFFER: " + ", ".join(bad) if bad else "not measured"


REPORT_WIDTH = 100  # report.txt keeps within this many columns


def _wrap(text: str, indent: str = "  ") -> list[str]:
    """One paragraph of the report, wrapped within REPORT_WIDTH (continuation indented)."""
    return textwrap.wrap(_cell(text), REPORT_WIDTH, subsequent_indent=indent,
                         break_on_hyphens=False, break_long_words=True) or [""]


def _head(data: dict[str, Any]) -> list[str]:
    """The target, then the model's totals (each figure once)."""
    t, m = data["target"], data["model"]
    ratio = m["offchip_over_compulsory"]
    out = _wrap(f"target {t['name']}: {t['description']}")
    out += _wrap(f"  {t['int8_tops']:g} INT8 TOPS ({t['modelled_int8_tops']:.1f} modelled), "
                 f"{t['cores']} cores at {t['clock_hz'] / 1e9:.2f} GHz, {t['offchip']['name']} "
                 f"{t['offchip']['bandwidth'] / 1e9:.1f} GB/s, ridge {t['ridge']:.1f} ops/byte",
                 "    ")
    out += _wrap("  buffers per core: " + ", ".join(f"{b['name']} {_kib(b['per_core_bytes'])}"
                                                     for b in t["buffers"]), "    ")
    out += _wrap(f"model {m['graph']}: {m['latency_ms']:.4f} ms modelled ({m['cycles']:.0f} "
                 f"cycles), {m['achieved_tops']:.2f} TOPS = {100 * m['utilisation']:.1f}% of "
                 "peak")
    if m["intensity"] is not None:
        roof = min(t["int8_tops"], m["intensity"] * t["offchip"]["bandwidth"] / 1e12)
        side = "below" if m["bound"] == "memory" else "above"
        out += _wrap(f"  {m['bound']}-bound: intensity {m['intensity']:.1f} ops/byte, {side} "
                     f"the ridge {t['ridge']:.1f}; the roof there is {roof:.1f} TOPS", "    ")
    out += _wrap(f"  off-chip {_size(m['offchip_bytes'])}B vs compulsory "
                 f"{_size(m['compulsory_bytes'])}B"
                 + (f" ({ratio:.2f}x)" if ratio is not None else ""), "    ")
    views = sum(1 for u in data["untiled"] if u.get("unit") == "view")
    fused = sum(1 for u in data["untiled"] if u.get("unit") == "fused")
    out += _wrap(f"  every layer modelled: {m['tiled_layers']} staged on the chip as tiled "
                 + (f"kernels ({fused} with an element-wise layer in their epilogue), "
                    if fused else "kernels, ")
                 + f"{m['untiled_layers'] - fused} around them (data movement at the off-chip "
                 f"bandwidth, element-wise work on the vector units; {views} views, free)",
                 "    ")
    if t.get("launch_us"):
        out += _wrap(f"  each kernel also pays {t['launch_us']:g} us to launch and synchronise "
                     f"({t['launch_source']})", "    ")
    if m.get("fill_drain_us"):
        out += _wrap(f"  the tiled kernels' pipelines fill and drain for "
                     f"{m['fill_drain_us']:.1f} us in all (a core's first loads and last "
                     "writes, which no compute hides)", "    ")
    if "counters_agree" in m:
        verdict = {True: "agree with the model", False: "DIFFER from the model",
                   None: "not measured"}[m["counters_agree"]]
        out.append(f"  measured counters {verdict}")
    return out


def _time_table(data: dict[str, Any]) -> list[str]:
    with_counters = "counters_agree" in data["model"]
    total = data["model"]["cycles"] or 1.0
    headers = ["layer", "op", "unit", "MACs", "us", "%", "off-chip", "bound by"] + (
        ["counters"] if with_counters else [])
    by_name = {d["name"]: d for d in data["layers"] + data["untiled"]}
    rows = []
    for name in data["order"]:
        d = by_name[name]
        share = "-" if d.get("note", "").startswith("counted in ") else \
            f"{100 * d['cycles'] / total:.1f}"
        bound = d["bound"]
        if bound.startswith("memory ("):
            bound = bound[len("memory ("):-1]
        row = [name, d["op"], d["unit"], _size(d["macs"]) if d["macs"] else "-",
               f"{d['us']:.3f}", share, _size(d["offchip_bytes"]), bound]
        c = d.get("counters")
        rows.append(row + ([("-" if c is None else "agree" if c["agree"] else "DIFFER"
                             if c["agree"] is False else "not measured")]
                           if with_counters else []))
    return [*_wrap("every layer: modelled time and off-chip traffic (unit: matrix or vector "
                   "for tiled kernels; dma, vector, view or control around them; fused: in the "
                   "epilogue of the staged layer above it; %: share of "
                   "the model's time; bound by: compute, or the link that limits)", ""),
            table(headers, rows, right=(3, 4, 5, 6), max_width=REPORT_WIDTH)]


def _detail(d: dict[str, Any]) -> list[str]:
    """One staged layer's shapes, tiling and buffers, as a short block."""
    tiles, orders = _tiles_text(d)
    occ = " ".join(f"{k} {v['percent']:.0f}%" for k, v in d["occupancy"].items())
    moved = " ".join(f"{k} {_size(v)}" for k, v in d["bytes"].items() if k != OFFCHIP)
    ins = _dims(d["inputs"][0] if d["inputs"] else None)
    outs = _dims(d["outputs"][0] if d["outputs"] else None)
    out = _wrap(f"- {d['name']} ({d['op']}): {ins} -> {outs}, layout {d['layout']}, {STAGED}",
                "    ")
    out += _wrap(f"    tiles (L1 / L2 ...) {tiles}; orders {orders}", "      ")
    x = d["offchip_over_compulsory"]
    split = " x ".join(f"{s['dim']} {s['trips']}" for s in d["split"]) or "one step"
    out += _wrap(f"    buffers used {occ or '-'}; bytes moved on chip {moved or '-'}", "      ")
    out += _wrap(f"    {d['steps']} steps on {d['cores_used']} cores, split by {split}", "      ")
    out += _wrap(f"    {d['cycles']:.0f} cycles; off-chip {_size(d['offchip_bytes'])}B"
                 + (f" = {x:.2f}x the compulsory {_size(d['compulsory_bytes'])}B"
                    if x is not None else ""), "      ")
    if d.get("epilogue"):
        e = d["epilogue"]
        out += _wrap(f"    epilogue: {e['name']} ({e['op']}) runs on each finished tile in the "
                     f"vector buffer ({e['operands']} other operand(s) loaded per tile); only "
                     "its result goes to memory", "      ")
    if d.get("counters") is not None:
        out += _wrap(f"    counters {_counter_text(d)}", "      ")
    return out


def report_text(data: dict[str, Any]) -> str:
    """report.txt, within REPORT_WIDTH columns: the target and the model's totals; a table of
    every layer's modelled time and traffic; each staged layer's tiling; the layers around
    the tiled kernels with why they are not staged."""
    parts = _head(data) + [""]
    if data["layers"]:
        parts += _time_table(data) + ["", "tiling and buffers per staged layer:"]
        for d in data["layers"]:
            parts += _detail(d)
    else:
        parts.append("no layers staged on the chip")
    if data["untiled"]:
        parts += ["", *_wrap(f"layers around the tiled kernels ({len(data['untiled'])}; host C "
                             "in the staged code, modelled as the chip would stream them, or "
                             "run in a staged layer's epilogue):", "")]
        for u in data["untiled"]:
            outs = _dims(u["outputs"][0] if u["outputs"] else None)
            if u.get("in_epilogue_of"):
                parts += _wrap(f"- {u['name']} ({u['op']}): {outs}, on the chip in the epilogue "
                               f"of {u['in_epilogue_of']}", "    ")
                continue
            parts += _wrap(f"- {u['name']} ({u['op']}): {outs}, host: {u['why']}"
                           + (f" ({u['note']})" if u.get("note") else ""), "    ")
    if data.get("unmatched_counters"):
        parts += [""] + _wrap("counters for layers without a plan: "
                              + ", ".join(data["unmatched_counters"]))
    return "\n".join(parts) + "\n"


# -- roofline.html ------------------------------------------------------------------------
_W, _H = 720, 460  # plot area
_L, _T, _R, _B = 80, 30, 220, 60  # margins (the legend sits in the right one)
_COLOURS = {"compute": "#1f6fb4", "memory": "#d2452b"}


def _decades(lo: float, hi: float) -> tuple[float, float]:
    return 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi))


def _positive(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v) and v > 0]


class _Axes:
    """Log-log mapping from (ops/byte, TOPS) to SVG pixels, clamped to the plot."""

    def __init__(self, xs: list[float], ys: list[float]) -> None:
        self.x0, self.x1 = _decades(min(xs) / 2, max(xs) * 2)
        self.y0, self.y1 = _decades(min(ys) / 2, max(ys) * 1.25)

    def px(self, x: float | None) -> float:
        x = self.x1 if x is None else min(max(x, self.x0), self.x1)
        f = math.log10(x / self.x0) / math.log10(self.x1 / self.x0)
        return _L + f * _W

    def py(self, y: float) -> float:
        y = min(max(y, self.y0), self.y1)
        f = math.log10(y / self.y0) / math.log10(self.y1 / self.y0)
        return _T + (1 - f) * _H

    def ticks(self, lo: float, hi: float) -> list[float]:
        return [10.0 ** k for k in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]


def _axes_svg(ax: _Axes) -> list[str]:
    out = [f'<rect x="{_L}" y="{_T}" width="{_W}" height="{_H}" fill="none" stroke="#444"/>']
    for v in ax.ticks(ax.x0, ax.x1):
        x = ax.px(v)
        out.append(f'<line x1="{x:.1f}" y1="{_T}" x2="{x:.1f}" y2="{_T + _H}" stroke="#ddd"/>'
                   f'<text x="{x:.1f}" y="{_T + _H + 18}" text-anchor="middle">{v:g}</text>')
    for v in ax.ticks(ax.y0, ax.y1):
        y = ax.py(v)
        out.append(f'<line x1="{_L}" y1="{y:.1f}" x2="{_L + _W}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{_L - 8}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    out.append(f'<text x="{_L + _W / 2}" y="{_T + _H + 45}" text-anchor="middle">'
               "intensity (ops per off-chip byte, log)</text>")
    out.append(f'<text transform="translate(22 {_T + _H / 2}) rotate(-90)" '
               'text-anchor="middle">TOPS (INT8, log)</text>')
    return out


def _point_title(d: dict[str, Any]) -> str:
    inten = d["intensity"]
    where = f"{inten:.2f} ops/byte" if inten is not None else "no off-chip bytes"
    return (f"{d['name']} ({d['op']}, {d['unit']}): {where}, {d['achieved_tops']:.4g} TOPS, "
            f"{d['us']:.3f} us, {d['macs']} MACs, {d['bound']}-bound")


ROOFLINE_LABELS = 5  # the slowest layers are named beside their points


def roofline_html(data: dict[str, Any]) -> str:
    """A self-contained page: the chip's roofline and one point per tiled layer plus the model
    (area ~ MACs, colour = bound, hover for figures; the slowest layers named beside their
    points). Model-derived text is escaped."""
    esc = html.escape
    t, m, layers = data["target"], data["model"], data["layers"]
    peak, bw, ridge = t["int8_tops"], t["offchip"]["bandwidth"], t["ridge"]
    xs = _positive([d["intensity"] for d in layers] + [m["intensity"], ridge])
    ys = _positive([d["achieved_tops"] for d in layers] + [m["achieved_tops"], peak])
    ax = _Axes(xs, ys)
    x_start = max(ax.x0, ax.y0 * 1e12 / bw)  # where the bandwidth slope enters the plot
    roof = [(x_start, x_start * bw / 1e12), (ridge, peak), (ax.x1, peak)]
    svg = _axes_svg(ax)
    pts = " ".join(f"{ax.px(x):.1f},{ax.py(y):.1f}" for x, y in roof)
    svg.append(f'<polyline class="roof" points="{pts}" fill="none" stroke="#222" '
               'stroke-width="2"/>')
    svg.append(f'<line x1="{ax.px(ridge):.1f}" y1="{ax.py(peak):.1f}" x2="{ax.px(ridge):.1f}" '
               f'y2="{_T + _H}" stroke="#888" stroke-dasharray="4 3"/>'
               f'<text x="{ax.px(ridge) + 4:.1f}" y="{_T + _H - 6}" fill="#555">ridge '
               f"{ridge:.1f}</text>")
    svg.append(f'<text x="{_L + _W - 4}" y="{ax.py(peak) - 6:.1f}" text-anchor="end">'
               f"INT8 peak {peak:g} TOPS</text>")
    biggest = max((d["macs"] for d in layers), default=1) or 1
    for d in sorted(layers, key=lambda d: -d["macs"]):  # small points drawn last, on top
        r = 3 + 11 * math.sqrt(d["macs"] / biggest)
        kind = "compute" if d["bound_kind"] == "compute" else "memory"
        svg.append(f'<circle class="layer {kind}" cx="{ax.px(d["intensity"]):.1f}" '
                   f'cy="{ax.py(d["achieved_tops"]):.1f}" r="{r:.1f}" '
                   f'fill="{_COLOURS[kind]}" fill-opacity="0.65" stroke="#333">'
                   f"<title>{esc(_point_title(d))}</title></circle>")
    for d in sorted(layers, key=lambda d: -d["cycles"])[:ROOFLINE_LABELS]:
        svg.append(f'<text class="label" x="{ax.px(d["intensity"]) + 8:.1f}" '
                   f'y="{ax.py(d["achieved_tops"]) - 8:.1f}" fill="#333">{esc(d["name"])}'
                   "</text>")
    mx, my = ax.px(m["intensity"]), ax.py(m["achieved_tops"])
    svg.append(f'<path class="model" d="M{mx:.1f},{my - 9:.1f} L{mx + 9:.1f},{my:.1f} '
               f'L{mx:.1f},{my + 9:.1f} L{mx - 9:.1f},{my:.1f} Z" fill="#f2c12e" '
               f'stroke="#000"><title>whole model: {esc(m["roofline"])}</title></path>')
    lx = _L + _W + 20
    legend = [(f'<circle cx="{lx + 6}" cy="{{y}}" r="6" fill="{_COLOURS["compute"]}"/>',
               "compute-bound layer"),
              (f'<circle cx="{lx + 6}" cy="{{y}}" r="6" fill="{_COLOURS["memory"]}"/>',
               "memory-bound layer"),
              (f'<rect x="{lx}" y="{{y0}}" width="12" height="12" fill="#f2c12e" '
               'stroke="#000" transform="rotate(45 {cx} {y})"/>', "whole model"),
              (f'<line x1="{lx}" y1="{{y}}" x2="{lx + 14}" y2="{{y}}" stroke="#222" '
               'stroke-width="2"/>', "roofline"),
              ("", "point area ~ MACs")]
    svg.append('<g class="legend">')
    for i, (shape, label) in enumerate(legend):
        y = _T + 10 + 24 * i
        svg.append(shape.format(y=y, y0=y - 6, cx=lx + 6)
                   + f'<text x="{lx + 22}" y="{y + 4}">{label}</text>')
    svg.append("</g>")
    title = f"{t['name']}: {m['graph']}"
    width, height = _L + _W + _R, _T + _H + _B
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Roofline - {esc(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}svg text{font-size:12px}"
        "p{max-width:60em}</style></head><body>",
        f"<h1>Roofline of {esc(title)}</h1>",
        f"<p>{esc(m['roofline'])}</p>",
        f"<p>{len(layers)} layers staged on the chip as tiled kernels plotted; the other "
        f"{m['untiled_layers']} (data movement, element-wise work on the vector units, views) "
        "are in the modelled total but not plotted (report.txt lists them). The "
        f"{min(ROOFLINE_LABELS, len(layers))} slowest layers are named; hover over any point "
        "for its figures.</p>",
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="roofline">',
        *svg,
        "</svg></body></html>",
        "",
    ])


def write_reports(folder: Path, graph: Graph, plans: TilePlans, prof: Profile,
                  counters: Mapping[str, Mapping[str, int]] | None = None) -> list[Path]:
    """Write report.json, report.txt and roofline.html into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = report_data(graph, plans, prof, counters)
    texts = (json.dumps(data, indent=2, allow_nan=False) + "\n", report_text(data),
             roofline_html(data))
    paths = [folder / name for name in REPORT_FILES]
    for p, text in zip(paths, texts):
        p.write_text(text, encoding="utf-8")
    return paths


def write_profile_reports(folder: Path, sections: list[tuple[str, Graph, TilePlans]],
                          prof: Profile) -> list[Path]:
    """The reports of a model compiled for several shape profiles: report.json with one entry
    per profile, report.txt with one section each, and roofline_<k>.html per profile."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    datas = [(title, report_data(graph, plans, prof)) for title, graph, plans in sections]
    js = {"profiles": [{"shapes": title, **data} for title, data in datas]}
    texts = []
    for k, (title, data) in enumerate(datas):
        head = f"shape profile {k}: {title}"
        texts.append(f"{head}\n{'=' * len(head)}\n\n{report_text(data)}")
    paths = [folder / "report.json", folder / "report.txt"]
    paths[0].write_text(json.dumps(js, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    paths[1].write_text("\n\n".join(texts), encoding="utf-8")
    for k, (_, data) in enumerate(datas):
        p = folder / f"roofline_{k}.html"
        p.write_text(roofline_html(data), encoding="utf-8")
        paths.append(p)
    return paths
