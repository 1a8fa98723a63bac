"""keep-in-l2's choice (targets/tiling/residency.py) where the L2 runs out: candidates are
placed in graph order while they fit beside the tensors still alive, and one that does not
fit stays off-chip along with its readers' inputs; no L2 in the profile keeps nothing."""

from __future__ import annotations

import dataclasses

import numpy as np

from compiler.passes import as_passes, run_pipeline
from ir.graph import Graph
from ir.text import parse_graph
from targets.profiles import load_target
from targets.tiling.residency import choose_resident

_POOL = ('MaxPool(%{src}) {{ceil_mode=false, dilations=[1,1], indices=false, '
         'kernel_shape=[1,1], pads=[0,0,0,0], storage_order=0, strides=[1,1]}} loc("{name}")')
_T = "u8[1,32,8,8]{scale=0.1, zp=0}"


def _chain() -> Graph:
    """x -> pool a -> pool b -> pool c -> y, u8 maxpools (staged on every chip)."""
    lines = [f"graph @chain(%x: {_T}) -> (%c) {{"]
    for src, name in (("x", "a"), ("a", "b"), ("b", "c")):
        lines.append(f"  %{name}: {_T} = " + _POOL.format(src=src, name=name))
    text = "\n".join(lines + ["}"])
    return run_pipeline(parse_graph(text), as_passes("layout{target=ascend910b},fold-layout"))


def _roles(g: Graph, chosen: dict[int, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    return {n.name: chosen.get(id(n), ()) for n in g.nodes if n.op == "MaxPool"}


def test_what_fits_stays_on_chip() -> None:
    g = _chain()
    got = _roles(g, choose_resident(g, load_target("ascend910b")))
    # a's and b's outputs are read only by staged pools; c's output leaves through a relayout
    assert got == {"a": ("outputs",), "b": ("inputs", "outputs"), "c": ("inputs",)}


def test_a_tensor_that_does_not_fit_beside_the_live_ones_stays_off_chip() -> None:
    g = _chain()
    prof = load_target("ascend910b")
    one = 32 * 8 * 8  # one activation's bytes (32 channels fill the channel block)
    # room for one tensor at a time: a's output is alive while b writes, so b's is dropped
    small = dataclasses.replace(prof, l2=dataclasses.replace(prof.l2, bytes=one + one // 2))
    got = _roles(g, choose_resident(g, small))
    assert got == {"a": ("outputs",), "b": ("inputs",), "c": ()}
    none = dataclasses.replace(prof, l2=None)
    assert choose_resident(g, none) == {}
    assert np.all([n.attrs.get("l2") is None for n in g.nodes])  # choosing marks nothing
