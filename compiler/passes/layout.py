"""layout and fold-layout: give each staged layer its target's storage layout, explicitly.

``layout`` walks the graph in order, tracking the layout each value is stored in (graph inputs
and constants are plain). A layer the target stages on 4-D feature maps (convolutions,
pooling, 4-D elementwise ops; see targets/staged/support.py) wants its activations in the
profile's activation layout (NC1HWC0:32 on Ascend, NHWC:64 on MLU370, ...), and stores its
output the same way (``layout`` annotation); a convolution on the matrix unit also reads its
weights in the profile's weight layout (``weight_layout``: FRACTAL_Z on Ascend). Every other
layer wants plain tensors, and so does an element-wise layer that narrows the graph's own
inputs or widens into its outputs (a Quantize of the f32 image, a Dequantize of a score map:
targets/staged/support.stays_plain), so that the conversion moves 8-bit codes. Where a
value's layout differs from what its reader wants, a Relayout node converts it (one per value
and layout, shared by all readers); graph outputs are converted back to plain and keep their
names.

``fold-layout`` removes Relayouts that cancel: one whose input is already stored in the
wanted layout, and the first of two in a row (x -> A -> B is x -> B).
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.passes.dce import dce
from compiler.passes.manager import Pass, register
from compiler.passes.target import require_target, target_option
from ir import layouts
from ir.build import make_node
from ir.graph import Graph, Node, Value
from targets.profiles import Profile
from targets.staged.support import FEATURE_MAP_KINDS, staged_kind, stays_plain


def layout_names(prof: object) -> tuple[str, str]:
    """(activation layout, conv weight layout) names of a profile ('' where plain)."""
    lay = prof.layout  # type: ignore[attr-defined]
    act, weight, cb = lay.activation.upper(), lay.weight.upper(), int(lay.channel_block)
    a = f"NC1HWC0:{cb}" if act.startswith("NC1HWC0") else (
        f"NHWC:{cb}" if act.startswith("NHWC") and cb > 1 else "")
    block = prof.matrix.block.get("i8")  # type: ignore[attr-defined]
    if weight.startswith("FRACTAL_Z") and block:
        w = f"FRACTAL_Z:{block[2]}x{block[1]}"
    elif weight.startswith("OI") and "I" in weight[2:] and block:
        w = f"OI{block[1]}i{block[2]}o"
    elif weight.startswith("NHWC") or weight.startswith("OHWI"):
        w = f"OHWI:{cb}"
    else:
        w = ""
    for name in (a, w):
        layouts.parse(name)
    return a, w


def stored_layout(v: Value, producers: dict[int, Node]) -> str:
    p = producers.get(id(v))
    return "" if p is None else str(p.attrs.get("layout", ""))


def assign_layouts(graph: Graph, act: str, weight: str) -> Graph:
    """The ``layout`` pass for activation layout ``act`` and weight layout ``weight``."""
    have: dict[int, str] = {}  # id(value) -> stored layout
    converted: dict[tuple[int, str], Value] = {}
    old_nodes, graph.nodes = graph.nodes, []

    def want(v: Value, lay: str) -> Value:
        cur = have.get(id(v), "")
        if cur == lay:
            return v
        key = (id(v), lay)
        if key not in converted:
            out = make_node(graph, "Relayout", [v], {"layout": lay, "from_layout": cur},
                            name=f"{v.name}.to_{_tag(lay)}",
                            out_names=[f"{v.name}.{_tag(lay)}"]).outputs[0]
            have[id(out)] = lay
            converted[key] = out
        return converted[key]

    inputs, outputs = {id(v) for v in graph.inputs}, {id(v) for v in graph.outputs}
    for node in old_nodes:
        kind = staged_kind(node)
        fm = act and kind in FEATURE_MAP_KINDS and node.outputs[0].type.rank == 4 and \
            not stays_plain(node, inputs, outputs)
        for k, v in enumerate(node.inputs):
            if v is None or v.data is not None:
                continue
            node.inputs[k] = want(v, act if fm and v.type.rank == 4 else "")
        if fm:
            node.attrs["layout"] = act
            for v in node.outputs:
                have[id(v)] = act
            if kind == "conv" and weight:
                node.attrs["weight_layout"] = weight
        graph.nodes.append(node)
    for k, v in enumerate(graph.outputs):
        if have.get(id(v), ""):
            name = v.name
            plain = want(v, "")
            graph.rename(v, graph.fresh_name(f"{name}.stored"))
            graph.rename(plain, name)
            graph.outputs[k] = plain
    return graph


def _tag(lay: str) -> str:
    return (lay or "plain").replace(":", "_").lower()


@register
@dataclass(frozen=True)
class Layout(Pass):
    name = "layout"
    description = "store each staged layer's tensors in the target's layouts (explicit Relayout)"
    target: Profile | None = target_option()

    def run(self, graph: Graph) -> Graph:
        act, weight = layout_names(require_target(self.name, self.target))
        return assign_layouts(graph, act, weight)


def fold_layout(graph: Graph) -> Graph:
    producers = graph.producers()
    outputs = {id(v) for v in graph.outputs}
    kept: list[Node] = []
    for node in graph.nodes:
        if node.op == "Relayout":
            x = node.x
            assert x is not None
            src = producers.get(id(x))
            if src is not None and src.op == "Relayout" and src.x is not None:
                x = src.x  # A -> B -> C is A -> C
                node.set_operand("x", x)
                node.attrs["from_layout"] = src.attrs["from_layout"]
            y = node.outputs[0]
            if node.attrs["layout"] == stored_layout(x, producers) and id(y) not in outputs:
                graph.replace_uses(y, x)
                graph.release_name(y.name)
                continue
        kept.append(node)
    graph.nodes = kept
    return dce(graph)  # Relayouts left without readers (their reader now skips them) are dead


@register
@dataclass(frozen=True)
class FoldLayout(Pass):
    name = "fold-layout"
    description = "remove Relayout ops that cancel"

    def run(self, graph: Graph) -> Graph:
        return fold_layout(graph)
