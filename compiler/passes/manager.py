"""The pass manager: passes registered by name, pipelines as lists of names.

A pass is a function Graph -> Graph (it may rewrite the graph in place and return it),
registered once with a one-line description. A pipeline is plain data, a list of pass names,
so the CLI can print after a pass or disable one by name, and targets can differ by list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from compiler.errors import QnncError
from ir.graph import Graph
from ir.text import print_graph
from ir.verifier import VerifyError, verify

PassFn = Callable[[Graph], Graph]
OnPrint = Callable[[str, str], None]


class PassError(QnncError):
    """A pipeline names an unknown pass, or a pass could not do its work."""


@dataclass(frozen=True)
class Pass:
    """A registered pass: its name in pipelines, what it does in one line, and the function."""

    name: str
    description: str
    run: PassFn


PASSES: dict[str, Pass] = {}


def register_pass(name: str, description: str) -> Callable[[PassFn], PassFn]:
    """Decorator: register ``fn`` as the pass ``name``."""

    def wrap(fn: PassFn) -> PassFn:
        if name in PASSES:
            raise ValueError(f"pass {name!r} is registered twice")
        PASSES[name] = Pass(name, description, fn)
        return fn

    return wrap


def _check_names(names: Iterable[str], what: str) -> None:
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        known = ", ".join(sorted(PASSES))
        raise PassError(f"unknown pass {', '.join(map(repr, unknown))} in {what}; "
                        f"known passes: {known}")


def run_pipeline(
    graph: Graph,
    pipeline: Sequence[str],
    *,
    verify: bool = False,
    print_after: Iterable[str] = (),
    disabled: Iterable[str] = (),
    on_print: OnPrint | None = None,
) -> Graph:
    """Run the passes named in ``pipeline`` in order and return the resulting graph.

    ``verify`` checks the IR invariants before the first pass and after every pass, naming the
    pass that broke them. ``on_print(name, ir_text)`` is called after each pass listed in
    ``print_after`` (default: print to stdout). Passes in ``disabled`` are skipped.
    """
    print_after, disabled = list(print_after), set(disabled)
    _check_names(pipeline, "the pipeline")
    _check_names(print_after, "print_after")
    _check_names(disabled, "disabled")
    will_run = [n for n in pipeline if n not in disabled]
    idle = [n for n in print_after if n not in will_run]
    if idle:
        raise PassError(f"cannot print after {', '.join(map(repr, idle))}: not run by the "
                        f"pipeline {list(pipeline)} with disabled {sorted(disabled)}")
    if verify:
        _verify(graph, "before the first pass")
    for name in will_run:
        graph = PASSES[name].run(graph)
        if verify:
            _verify(graph, f"after pass {name!r}")
        if name in print_after:
            _print(name, graph, on_print)
    return graph


def _verify(graph: Graph, when: str) -> None:
    try:
        verify(graph)
    except VerifyError as e:
        raise VerifyError(f"{when}: {e}") from e


def _print(name: str, graph: Graph, on_print: OnPrint | None) -> None:
    text = print_graph(graph)
    if on_print is None:
        print(f"// ----- IR after {name} -----\n{text}", end="")
    else:
        on_print(name, text)
