"""What a golden records about the compiled model besides its outputs: the target it ran on,
its precision, a hash of its IR and the quantisation step of each dequantised output.

They let a failing check say more than "the numbers moved": whether the compiled IR changed
too, and how many integer codes an INT8 output is off by.
"""

from __future__ import annotations

import hashlib

import numpy as np

from compiler.api import CompiledModel
from compiler.compiled import model_precision as model_precision  # re-exported
from compiler.errors import QnncError
from ir.graph import Graph
from targets.registry import target_names

INTERP = "interp"


def golden_targets() -> tuple[str, ...]:
    """Targets a golden can be recorded for: the reference interpreter and every target
    compile_model builds (so accelerator targets join as soon as the compiler has them)."""
    return (INTERP, *target_names())


def compile_target(target: str) -> str | None:
    """compile_model's ``target`` for a golden target name (None: the interpreter)."""
    if target not in golden_targets():
        raise QnncError(
            f"unknown golden target {target!r}; goldens can be recorded for: "
            f"{', '.join(golden_targets())}"
        )
    return None if target == INTERP else target


def target_of(cm: CompiledModel) -> str:
    """The golden target name ``cm`` was compiled for."""
    return cm.target or INTERP


def ir_hash(graph: Graph) -> str:
    """sha256 of the compiled IR text, with the bytes of the constants printed as blob
    references folded in (so a changed weight changes the hash)."""
    from ir.text import print_graph

    blobs: dict[str, np.ndarray] = {}
    h = hashlib.sha256(print_graph(graph, blobs=blobs).encode())
    for name in sorted(blobs):
        a = np.ascontiguousarray(blobs[name])
        h.update(f"\n@{name} {a.dtype.str} {list(a.shape)}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def quant_steps(graph: Graph) -> dict[str, float]:
    """Output name -> quantisation step, for outputs produced by a per-tensor Dequantize."""
    producers = graph.producers()
    steps: dict[str, float] = {}
    for out in graph.outputs:
        node = producers.get(id(out))
        q = node.x.type.quant if node is not None and node.op == "Dequantize" else None
        if q is not None and len(q.scale) == 1:
            steps[out.name] = float(q.scale[0])
    return steps
