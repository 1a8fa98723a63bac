"""Running generated C from tests: a ctypes call of qnnc_run (no Cython), so per-op tests
build in well under a second each, always with -Wall -Werror."""

from __future__ import annotations

import ctypes
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.types import TensorType
from ir.verifier import verify
from targets.host.build import BuildOptions, build_c_library

_counter = itertools.count()


class RunStatus(Exception):
    """qnnc_run returned a nonzero status (model.h lists what each one means)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"qnnc_run returned status {status}")
        self.status = status


def run_c(graph: Graph, feeds: dict[str, np.ndarray], folder: Path,
          opts: BuildOptions | None = None) -> dict[str, np.ndarray]:
    """Build ``graph`` as a plain shared library in ``folder`` and run it once."""
    return c_runner(graph, folder, opts)(feeds)


def c_runner(graph: Graph, folder: Path, opts: BuildOptions | None = None,
             ) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Build ``graph`` as a plain shared library in ``folder`` once; the function returned
    runs it on feeds (for a model called repeatedly, e.g. with a recurrent state)."""
    lib = ctypes.CDLL(str(build_c_library(graph, folder, opts or BuildOptions(werror=True))))

    def call(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ins = [np.ascontiguousarray(feeds[v.name]) for v in graph.inputs]
        outs = [np.empty(v.type.shape, v.type.dtype.np) for v in graph.outputs]
        in_ptrs = (ctypes.c_void_p * max(len(ins), 1))(*[a.ctypes.data for a in ins])
        out_ptrs = (ctypes.c_void_p * max(len(outs), 1))(*[a.ctypes.data for a in outs])
        status = lib.qnnc_run(in_ptrs, out_ptrs)
        if status != 0:
            raise RunStatus(status)
        return {v.name: o for v, o in zip(graph.outputs, outs)}

    return call


def op_graph(op: str, inputs: list[np.ndarray | TensorType | None], attrs: dict[str, Any],
             ) -> Graph:
    """A one-node graph: arrays become constants, TensorTypes become graph inputs."""
    g = Graph(f"test_{op}")
    vals = []
    for k, x in enumerate(inputs):
        if x is None:
            vals.append(None)
        elif isinstance(x, TensorType):
            vals.append(g.add_input(f"x{k}", x))
        else:
            vals.append(g.add_const(x, f"c{k}"))
    node = make_node(g, op, vals, attrs, name=f"{op.lower()}_node")
    g.outputs = list(node.outputs)
    return g


def random_feeds(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for v in graph.inputs:
        if v.type.dtype.is_float:
            out[v.name] = rng.standard_normal(v.type.shape).astype(v.type.dtype.np)
        else:
            out[v.name] = rng.integers(-5, 6, v.type.shape).astype(v.type.dtype.np)
    return out


def check_graph(graph: Graph, folder: Path, *, rtol: float = 1e-4, atol: float = 1e-5,
                feeds: dict[str, np.ndarray] | None = None) -> None:
    """Generated C and the reference interpreter agree on random inputs."""
    feeds = feeds if feeds is not None else random_feeds(graph)
    want = interpret(graph, feeds)
    got = run_c(graph, feeds, folder / f"g{next(_counter)}")
    for name, w in want.items():
        assert got[name].dtype == w.dtype, name
        assert got[name].shape == w.shape, name
        np.testing.assert_allclose(got[name], w, rtol=rtol, atol=atol, err_msg=name)


def expose_island_inputs(graph: Graph) -> Graph:
    """``graph`` with the integer input of every Dequantize (each tensor that leaves for a
    float island) added to its outputs, so a test can check them exactly."""
    graph.outputs = [*graph.outputs, *(n.inputs[0] for n in graph.nodes if n.op == "Dequantize")]
    verify(graph)
    return graph


def check_codes_exact(graph: Graph, feeds: dict[str, np.ndarray], folder: Path, *,
                      rtol: float = 1e-4, atol: float = 1e-5) -> dict[str, np.ndarray]:
    """Host C of a quantised graph against the interpreter: every integer output is 8-bit
    codes, equal bit for bit; float outputs (float islands: libm, not integers) within the
    tolerance. Returns the interpreter's outputs."""
    want = interpret(graph, feeds)
    got = run_c(graph, feeds, folder)
    for v in graph.outputs:
        if v.type.dtype.is_float:
            np.testing.assert_allclose(got[v.name], want[v.name], rtol=rtol, atol=atol)
        else:
            assert v.type.dtype.np in (np.uint8, np.int8), v.name
            np.testing.assert_array_equal(got[v.name], want[v.name], err_msg=v.name)
    return want
