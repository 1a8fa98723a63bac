"""tile: choose every staged layer's tiles for the target and record them on the node.

For each layer the target stages (targets/staged/support.py) the tiler searches, from the
profile alone, the tile sizes per buffer level and loop orders with the lowest modelled time
that fit every buffer (targets/tiling). The plan becomes annotations: ``tile`` (n, m, oh, ow, c
per level, innermost level first), ``tile_order`` (one loop order per level) and
``tile_target``; ``--print-after tile`` shows them. A layer no tiling fits fails with the
layer and the buffer named.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.passes.manager import Pass, PassError, register
from compiler.passes.target import require_target, target_option
from ir.graph import Graph
from targets.profiles import Profile
from targets.staged.support import staged_kind
from targets.tiling import TilingError, plan_attrs, tile_node


def tile_graph_attrs(graph: Graph, prof: object) -> Graph:
    for node in graph.nodes:
        if staged_kind(node) is None:
            continue
        try:
            plan = tile_node(graph, node, prof, precision="ir")  # type: ignore[arg-type]
        except TilingError as e:
            raise PassError(f"{e}. Reduce the layer (fewer channels or a smaller input) or "
                            "compile it for a target with larger buffers") from None
        if plan is None:
            continue
        node.attrs.update(plan_attrs(plan))
    return graph


@register
@dataclass(frozen=True)
class Tile(Pass):
    name = "tile"
    description = "choose each staged layer's tiles and loop orders for the target"
    target: Profile | None = target_option()

    def run(self, graph: Graph) -> Graph:
        return tile_graph_attrs(graph, require_target(self.name, self.target))
