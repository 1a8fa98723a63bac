"""Calibration samples of a small network run through the interpreter together.

A small convolutional network (the digits CNN: 8x8 images, nine layers) costs calibration
its per-node calls, not its arithmetic: numpy's overhead on each layer of each sample. When
every op of the graph says how it stacks (the registry's ``stacks`` trait), up to
:data:`STACK_MAX` samples run as one stack along axis 0, and each sample's tensors are the
slices of the stack, bit for bit the tensors it gets alone:

- ``"together"`` ops compute on the stack: Conv, Relu and MaxPool per element, per window
  or one matmul per sample, in the order a single sample takes; the integer layers
  (Quantize, QConv, QLinear, Dequantize) exactly, as integer sums have no order;
- ``"alone"`` ops (Gemm, MatMul) run sample by sample on the slices, as BLAS would pick
  another kernel (another order of sums) for another row count;
- ``"view"`` ops (Reshape) reshape the stack, the sample axis kept in front.

A graph qualifies when every computed value has the sample on axis 0 (extent 1 in the
graph's types), every ``together`` or ``view`` node reads computed data through its first
operand only, and none has a second output (MaxPool's indices number the whole batch).
The observers then take each sample's slices in sample order, as if each had run alone
(compiler/quant/calibrate.py), and ``auto`` runs its kept samples through each candidate's
INT8 graph as one stack (compiler/quant/method_choice.py). Tests:
tests/quant/test_sample_stack.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ir.graph import Graph, Node
from ir.interpreter import check_feeds
from ir.ops import get_op

#: at most this many samples in one stack
STACK_MAX = 64
#: ... and at most this many elements of computed values per stack (the values of every node,
#: as the interpreter keeps them until the observers have taken each sample's slices)
STACK_ELEMENTS = 1 << 21

Feeds = Mapping[str, np.ndarray]
#: one sample's run: every node's outputs (as the interpreter hands them to an observer) and
#: the graph's outputs by name
SampleRun = tuple[list[list[np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class _Step:
    kind: str
    compute: Callable[[list[np.ndarray | None]], list[np.ndarray]]
    ins: list[int | None]  # value ids (None: an omitted operand)
    outs: list[tuple[int, tuple[int, ...], np.dtype]]  # value ids, per-sample shapes, dtypes


class StackPlan:
    """How ``graph`` runs a stack of samples, and how many samples a stack holds."""

    def __init__(self, graph: Graph, steps: list[_Step], per_sample: int) -> None:
        self.graph = graph
        self.steps = steps
        self.size = max(1, min(STACK_MAX, STACK_ELEMENTS // max(per_sample, 1)))

    @staticmethod
    def make(graph: Graph) -> StackPlan | None:
        """The plan, or None when ``graph`` does not qualify (module docstring)."""
        consts = {id(c) for c in graph.constants}
        if not graph.inputs or not all(_sampled(v.type.shape) for v in graph.inputs) or \
                any(id(v) in consts for v in graph.outputs):
            return None
        steps: list[_Step] = []
        per_sample = 0
        for node in graph.nodes:
            op = get_op(node.op)
            if op.stacks is None or op.regions or node.regions:
                return None
            computed = [k for k, v in enumerate(node.inputs)
                        if v is not None and id(v) not in consts]
            if not computed or not all(_sampled(node.inputs[k].type.shape) for k in computed):
                return None
            if op.stacks != "alone" and (computed != [0] or len(node.outputs) != 1):
                return None
            if not all(_sampled(v.type.shape) for v in node.outputs):
                return None
            per_sample += sum(v.type.size for v in node.outputs)
            steps.append(_Step(op.stacks, _call(node),
                               [None if v is None else id(v) for v in node.inputs],
                               [(id(v), v.type.shape, v.type.dtype.np)
                                for v in node.outputs]))
        return StackPlan(graph, steps, per_sample)

    def run(self, samples: Sequence[Feeds]) -> list[SampleRun]:
        """Each sample's run (the interpreter's, bit for bit). Raises what the ops raise; the
        caller then runs the samples one by one, which names the failing one."""
        g, n = self.graph, len(samples)
        fed = [check_feeds(g, feeds) for feeds in samples]
        env: dict[int, np.ndarray] = {id(v): np.concatenate([f[v.name] for f in fed])
                                      for v in g.inputs}
        consts = {id(c) for c in g.constants}
        for c in g.constants:
            env[id(c)] = c.data  # type: ignore[assignment]
        for step in self.steps:
            args = [None if k is None else env[k] for k in step.ins]
            if step.kind == "together":
                results = step.compute(args)
            elif step.kind == "view":
                results = [np.reshape(args[0], (n, *step.outs[0][1][1:]))]
            else:  # alone: each sample's slices, the constants whole
                each = [step.compute([a if k is None or k in consts else a[i:i + 1]
                                      for k, a in zip(step.ins, args)]) for i in range(n)]
                results = [np.concatenate(rs) for rs in zip(*each)]
            for (key, shape, dt), r in zip(step.outs, results):
                r = np.asarray(r)
                if r.shape != (n, *shape[1:]) or r.dtype != dt:
                    raise ValueError(f"a stacked result is {r.dtype}{list(r.shape)}")
                env[key] = r
        runs: list[SampleRun] = []
        for i in range(n):
            outs = [[env[key][i:i + 1] for key, _, _ in step.outs] for step in self.steps]
            result = {v.name: env[id(v)][i:i + 1] for v in g.outputs}
            runs.append((outs, result))
        return runs


def _call(node: Node) -> Callable[[list[np.ndarray | None]], list[np.ndarray]]:
    """The node's computation on its operands (a typed op also gets the node's types: their
    quantisation parameters, the same for every sample)."""
    op, attrs = get_op(node.op), node.attrs
    if not op.typed:
        return lambda args: op.compute(args, attrs)
    in_types = [None if v is None else v.type for v in node.inputs]
    out_types = [v.type for v in node.outputs]
    return lambda args: op.evaluate(args, attrs, in_types, out_types)


def _sampled(shape: tuple[int, ...]) -> bool:
    """A value of one sample whose axis 0 stacks samples."""
    return len(shape) >= 1 and shape[0] == 1
