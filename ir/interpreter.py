"""The reference interpreter: runs any graph with numpy, op by op, using each op's
registered ``compute``. It defines what every op means; generated code is checked against it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ir.errors import InputError, index_out_of_range
from ir.graph import Graph, Node, Value
from ir.ops.dynamic import counted_outputs, trim
from ir.ops.registry import get_op

Observer = Callable[[Node, list[np.ndarray]], None]


class InterpreterError(RuntimeError):
    """Running a graph failed: bad feeds, or an op failed on the given data."""


class IndexRangeError(InterpreterError, InputError):
    """An index read at run time is outside its axis: the input data is at fault, and the
    generated C reports the same (an :class:`InputError`, exit code 4)."""


def check_feeds(graph: Graph, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Validate input names, shapes and dtypes; return arrays in the graph's input dtypes."""
    names = {v.name for v in graph.inputs}
    extra = sorted(set(feeds) - names)
    if extra:
        raise InterpreterError(
            f"unknown input name(s) {extra}; the model's inputs are {sorted(names)}"
        )
    out: dict[str, np.ndarray] = {}
    for v in graph.inputs:
        if v.name not in feeds:
            raise InterpreterError(f"input {v.name!r} ({v.type}) was not given")
        a = np.asarray(feeds[v.name])
        if tuple(a.shape) != v.type.shape:
            raise InterpreterError(
                f"input {v.name!r} has shape {list(a.shape)}, the model expects "
                f"{list(v.type.shape)}"
            )
        want = v.type.dtype.np
        if a.dtype != want:
            if not np.can_cast(a.dtype, want, casting="same_kind"):
                raise InterpreterError(
                    f"input {v.name!r} has dtype {a.dtype}, the model expects {want}"
                )
            a = a.astype(want)
        out[v.name] = a
    return out


class Schedule:
    """What :func:`run` works out about a graph before running it, kept for callers that run
    one graph many times (calibration): per node, its op's evaluate, the types it is given,
    where its operands are found and which values it reads last. Valid while the graph is
    not changed."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.steps: list[tuple[Any, ...]] = []
        self.counted = counted_outputs(graph)
        # a counted output's count is read after the last node: never released before
        release = _releases(graph, {id(count) for count, _ in self.counted.values()})
        for node, done in zip(graph.nodes, release):
            outs = [(v, id(v), v.type.dtype.np, v.type.shape) for v in node.outputs]
            op = get_op(node.op)
            # the op's compute itself where Op.evaluate would only pass the call on (one
            # Python frame less per node: calibration runs every node of every sample)
            plain = not op.regions and not op.typed
            keys = [None if v is None else id(v) for v in node.inputs]
            self.steps.append((
                node, op.compute if plain else op.evaluate, plain, node.attrs,
                [None if v is None else v.type for v in node.inputs],
                [v.type for v in node.outputs], node.regions,
                # the operands' keys as a tuple to index with when none is omitted
                tuple(keys) if None not in keys else keys, outs,
                outs[0][1:] if len(outs) == 1 else None, done))


def run(
    graph: Graph,
    feeds: Mapping[str, np.ndarray],
    *,
    observe: Observer | None = None,
    keep: bool = False,
    schedule: Schedule | None = None,
) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``feeds`` (input name -> array) and return output name -> array.

    ``observe(node, outputs)`` is called after each node (calibration uses it). With
    ``keep=True`` every intermediate value is returned too, keyed by value name.
    ``schedule``: ``Schedule(graph)`` made once by a caller that runs the graph many times.
    """
    if schedule is None or schedule.graph is not graph:
        schedule = Schedule(graph)
    env: dict[int, np.ndarray] = {}
    fed = check_feeds(graph, feeds)
    for v in graph.inputs:
        env[id(v)] = fed[v.name]
    for c in graph.constants:
        env[id(c)] = c.data  # type: ignore[assignment]
    everything: dict[str, np.ndarray] = dict(fed) if keep else {}
    ndarray = np.ndarray
    for node, evaluate, plain, attrs, in_types, out_types, regions, keys, outs, single, done \
            in schedule.steps:
        args = [env[k] for k in keys] if type(keys) is tuple else \
            [None if k is None else env[k] for k in keys]
        try:
            results = evaluate(args, attrs) if plain else \
                evaluate(args, attrs, in_types, out_types, regions)
        except IndexError as e:
            raise IndexRangeError(index_out_of_range(node.name or node.op, node.op, str(e))
                                  ) from e
        except Exception as e:  # noqa: BLE001 - re-raised with the node named
            raise InterpreterError(
                f"node {node.name or node.op!r} ({node.op}) failed: {e}"
            ) from e
        if single is not None and len(results) == 1 and not keep:
            # the common case, one result checked against its type without a loop
            r = results[0]
            key, dt, shape = single
            if type(r) is not ndarray or r.dtype is not dt and r.dtype != dt or \
                    r.shape != shape:
                r = _checked(node, outs[0], r)
            env[key] = r
            if observe is not None:
                observe(node, [r])
            for key in done:
                env.pop(key, None)
            continue
        if len(results) != len(outs):
            raise InterpreterError(
                f"node {node.name!r} ({node.op}) produced {len(results)} results, "
                f"expected {len(outs)}"
            )
        for out, r in zip(outs, results):
            r = _checked(node, out, r)
            env[out[1]] = r
            if keep:
                everything[out[0].name] = r
        if observe is not None:
            observe(node, [env[k] for _, k, _, _ in outs])
        if not keep:
            for key in done:
                env.pop(key, None)
    outs_by_name = {v.name: env[id(v)] for v in graph.outputs}
    for k, (count, axis) in schedule.counted.items():  # data-dependent extents
        v = graph.outputs[k]
        outs_by_name[v.name] = trim(outs_by_name[v.name], axis, int(env[id(count)]))
    if keep:
        everything.update(outs_by_name)
        return everything
    return outs_by_name


def _checked(node: Node, out: tuple[Value, int, np.dtype, tuple[int, ...]], r: Any
             ) -> np.ndarray:
    """A node's result ``r`` as an array, refused unless it has its value's dtype and shape
    (``out``: the value, its key, dtype and shape)."""
    v, _, dt, shape = out
    r = np.asarray(r)
    if r.dtype != dt or r.shape != shape:
        raise InterpreterError(
            f"node {node.name!r} ({node.op}) produced {r.dtype}{list(r.shape)} for "
            f"%{v.name}, its type says {v.type}"
        )
    return r


def run_body(body: Graph, args: list[np.ndarray], observe: Observer | None = None,
             ) -> list[np.ndarray]:
    """Run a region body (If, Loop, Scan) on its inputs in order; its outputs in order."""
    outs = run(body, {v.name: a for v, a in zip(body.inputs, args)}, observe=observe)
    return [outs[v.name] for v in body.outputs]


def _releases(graph: Graph, keep: set[int]) -> list[tuple[int, ...]]:
    """For each node, the ids of the computed values it reads last (none that the graph
    outputs, none in ``keep``): the run drops them from its environment once the node has
    run."""
    last: dict[int, int] = {}
    for i, n in enumerate(graph.nodes):
        for v in n.inputs:
            if v is not None and not v.is_const:
                last[id(v)] = i
    kept = {id(v) for v in graph.outputs} | {id(v) for v in graph.inputs} | keep
    out: list[list[int]] = [[] for _ in graph.nodes]
    for key, i in last.items():
        if key not in kept:
            out[i].append(key)
    return [tuple(ids) for ids in out]


def value_by_name(graph: Graph, name: str) -> Value:
    for v in graph.values():
        if v.name == name:
            return v
    raise KeyError(name)
