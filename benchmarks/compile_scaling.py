"""How host compile time grows with graph size: C generation (Python) vs the C compiler.

Builds two synthetic graphs at several sizes — a chain of N Relu layers, and N Relu layers
fanned into one Concat — and compiles each for the host with a cold cache, printing the
seconds spent generating C (graph to model.c) and building it (cython, cc, link). Compile
time should grow about linearly; a quadratic step shows as a time that quadruples when N
doubles. Not a test: timings vary by machine (the load average is printed with them).

    python -m benchmarks.compile_scaling                       # chains and concats, 1000..5000
    python -m benchmarks.compile_scaling --sizes 2000,4000 --kinds chain
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import format_table, machine_line
from ir.build import make_node
from ir.graph import Graph
from ir.types import DType, TensorType
from targets.host.build import BuildOptions, build_host

KINDS = ("chain", "concat")


def relu_chain(n: int, width: int = 64) -> Graph:
    """x -> Relu -> Relu -> ... (n layers)."""
    g = Graph(f"chain{n}")
    v = g.add_input("x", TensorType((1, width), DType.f32))
    for i in range(n):
        v = make_node(g, "Relu", [v], {}, name=f"relu{i}").outputs[0]
    g.outputs = [v]
    return g


def relu_concat(n: int, width: int = 64) -> Graph:
    """n Relu layers of x, all alive at once, joined by one Concat of n inputs."""
    g = Graph(f"concat{n}")
    x = g.add_input("x", TensorType((1, width), DType.f32))
    vals = [make_node(g, "Relu", [x], {}, name=f"relu{i}").outputs[0] for i in range(n)]
    g.outputs = list(make_node(g, "Concat", vals, {"axis": 0}, name="join").outputs)
    return g


@dataclass
class Timing:
    kind: str
    nodes: int
    codegen_s: float
    build_s: float

    @property
    def total_s(self) -> float:
        return self.codegen_s + self.build_s


def time_compile(kind: str, n: int, cache_dir: Path) -> Timing:
    """Compile one synthetic graph for the host into an empty cache; time its two halves."""
    graph = relu_chain(n) if kind == "chain" else relu_concat(n)
    marks: dict[int, float] = {}
    start = time.perf_counter()
    build_host(graph, BuildOptions(cpu="auto"), cache_dir=cache_dir,
               progress=lambda done, _total: marks.setdefault(done, time.perf_counter()))
    end = time.perf_counter()
    generated = marks.get(1, start)
    return Timing(kind, len(graph.nodes), generated - start, end - generated)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,2000,5000",
                    help="comma-separated layer counts (default 1000,2000,5000)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="chain, concat or both")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="qnnc-scaling-") as tmp:
        for kind in args.kinds.split(","):
            for n in (int(s) for s in args.sizes.split(",")):
                print(f"compiling {kind} of {n} ...", file=sys.stderr, flush=True)
                t = time_compile(kind, n, Path(tmp) / f"{kind}{n}")
                rows.append([t.kind, t.nodes, f"{t.codegen_s:.1f}", f"{t.build_s:.1f}",
                             f"{t.total_s:.1f}"])
    print(machine_line())
    print(format_table(["graph", "nodes", "codegen s", "cc+link s", "total s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
