"""keep-in-l2: mark the activations the chip's L2 holds between staged layers.

On a target whose profile has an L2 (the Ascend chips), an activation that a staged layer
writes and only staged layers read stays in the L2 while it fits beside the others alive at
that point (targets/tiling/residency.py says how they are chosen). The writer's ``outputs``
and each reader's ``inputs`` operand are annotated ``l2=[...]``; the tile pass then plans
and costs their outermost moves over the L2 link instead of off-chip memory, and the staged
C counts them there. A target without an L2 leaves the graph as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.passes.manager import Pass, register
from compiler.passes.target import require_target, target_option
from ir.graph import Graph
from targets.profiles import Profile
from targets.tiling.residency import choose_resident


@register
@dataclass(frozen=True)
class KeepInL2(Pass):
    name = "keep-in-l2"
    description = "keep activations between staged layers in the chip's L2 where they fit"
    target: Profile | None = target_option()

    def run(self, graph: Graph) -> Graph:
        prof = require_target(self.name, self.target)
        chosen = choose_resident(graph, prof)
        for node in graph.nodes:
            roles = chosen.get(id(node))
            if roles:
                node.attrs["l2"] = list(roles)
            else:
                node.attrs.pop("l2", None)
        return graph
