"""Tile plans read back from a tiled graph's annotations, with their modelled costs: what the
reports and the counter checks compare the generated code against."""

from __future__ import annotations

from ir.graph import Graph
from targets import cost as costs
from targets.cost_stream import stream_cost
from targets.profiles.schema import Profile
from targets.staged.renderer import schedule_of
from targets.staged.support import staged_kind
from targets.tiling import TilePlan, TilePlans, layer_keys, problem_of


def plans_of(graph: Graph, prof: Profile) -> TilePlans:
    """A TilePlans of every node the tile pass annotated, keyed like the run-time counters
    (node name, or name#k for the k-th repeat of a name); the other nodes are untiled."""
    plans: dict[str, TilePlan] = {}
    untiled: list[str] = []
    streams: dict[str, costs.LayerCost] = {}
    keys = layer_keys(graph)
    for node in graph.nodes:
        prob = problem_of(graph, node, prof, "ir") if "tile" in node.attrs and \
            staged_kind(node) is not None else None
        if prob is None:
            untiled.append(keys[id(node)])
            streams[keys[id(node)]] = stream_cost(node, keys[id(node)], prof)
            continue
        sched = schedule_of(node)
        key = keys[id(node)]
        plans[key] = TilePlan(key, node.op, prof.name, prob, sched,
                              costs.occupancy(prob, prof, sched.tiles),
                              costs.evaluate(prob, prof, sched))
    return TilePlans(prof.name, plans, untiled, streams)


def modelled_counters(plan: TilePlan) -> dict[str, int]:
    """The counters the generated code must show for ``plan``: bytes per link and MACs."""
    out = {k: int(round(v)) for k, v in plan.cost.bytes.items() if v}
    out["macs"] = plan.cost.macs
    return out
