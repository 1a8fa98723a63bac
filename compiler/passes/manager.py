"""The pass manager: passes are small classes registered by name, pipelines are lists of
pass instances that read and print as text.

A pass is a frozen dataclass deriving from :class:`Pass`, with a ``name`` and a one-line
``description`` as class attributes, its options as fields and its work in :meth:`Pass.run`::

    @register
    @dataclass(frozen=True)
    class Equalize(Pass):
        name = "equalize"
        description = "cross-layer weight equalisation of Conv -> Relu -> Conv pairs"
        max_sweeps: int = option(50, "sweeps over all pairs at most")

        def run(self, graph: Graph) -> Graph: ...

A pipeline is written like MLIR's: pass names separated by commas, each with its options in
braces, separated by spaces, lists by commas, names with dashes::

    fold-batchnorm,equalize{max-sweeps=20},quantize{method=mse skip-op-types=Softmax,Gemm}

:func:`parse_pipeline` reads that text into pass instances and :func:`format_pipeline` prints
instances back as text (options that differ from their defaults only), so a pipeline can be
printed, edited and given back. Options that text cannot carry (calibration data, progress
callbacks) are fields too, set from Python (``dataclasses.replace``); nothing reaches a pass
through hidden state.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, Union

from compiler.errors import QnncError
from ir.graph import Graph
from ir.text import print_graph
from ir.text.syntax import quote, unquote
from ir.verifier import VerifyError, verify

OnPrint = Callable[[str, str], None]


class PassError(QnncError):
    """A pipeline names an unknown pass or option, or a pass could not do its work."""


def option(default: Any, doc: str, *, text: bool = True,
           parse: Callable[[str], Any] | None = None,
           show: Callable[[Any], str] | None = None) -> Any:
    """A pass option: its default and meaning. ``text=False`` for values only Python can
    give (data, callbacks); ``parse``/``show`` convert a value that is not a plain str, int,
    float, bool or tuple of str (a target profile: its name)."""
    meta = {"doc": doc, "text": text, "parse": parse, "show": show}
    if isinstance(default, (list, dict, set)):
        raise TypeError("pass options are immutable: use a tuple")
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Pass:
    """A graph-to-graph pass; subclasses add options as fields (see the module docstring)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: the pass also rewrites the bodies of If, Loop and Scan (each body on its own, before
    #: the graph that owns it); passes that need the whole model (quantize, layout) do not
    in_regions: ClassVar[bool] = False

    def run(self, graph: Graph) -> Graph:
        """Transform ``graph`` (in place or not) and return the result."""
        raise NotImplementedError

    def __str__(self) -> str:
        return format_pass(self)


PASSES: dict[str, type[Pass]] = {}
P = TypeVar("P", bound=type[Pass])


def register(cls: P) -> P:
    """Class decorator: make ``cls`` available by its ``name`` in pipelines."""
    if not cls.name or not re.fullmatch(r"[a-z][a-z0-9-]*", cls.name):
        raise ValueError(f"pass name {cls.name!r} must be lower-case words joined by dashes")
    if cls.name in PASSES:
        raise ValueError(f"pass {cls.name!r} is registered twice")
    if not cls.description or "\n" in cls.description:
        raise ValueError(f"pass {cls.name!r} needs a one-line description")
    PASSES[cls.name] = cls
    return cls


# -- options as text ---------------------------------------------------------------------------
def _opt_name(field: str) -> str:
    return field.replace("_", "-")


def options_of(cls: type[Pass]) -> list[dataclasses.Field[Any]]:
    """The options of a pass that text can set, in declaration order."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("text", True)]


def _kind(cls: type[Pass], f: dataclasses.Field[Any]) -> tuple[Any, bool]:
    """(the option's value type, whether None is allowed)."""
    hint = typing.get_type_hints(cls)[f.name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else Any), True
    return hint, False


_BARE = re.compile(r"[A-Za-z0-9_.+\-/:@#]+")


def _show_str(s: str) -> str:
    return s if _BARE.fullmatch(s) and s not in ("none", "true", "false") else quote(s)


def show_value(cls: type[Pass], f: dataclasses.Field[Any], value: Any) -> str:
    """An option's value as pipeline text."""
    if value is None:
        return "none"
    if f.metadata.get("show"):
        return str(f.metadata["show"](value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(_show_str(str(v)) for v in value)
    if isinstance(value, str):
        return _show_str(value)
    return repr(value)


def _parse_value(cls: type[Pass], f: dataclasses.Field[Any], items: list[str],
                 quoted: list[bool]) -> Any:
    kind, optional = _kind(cls, f)
    where = f"option {_opt_name(f.name)!r} of pass {cls.name!r}"
    if optional and items == ["none"] and not quoted[0]:
        return None
    if f.metadata.get("parse"):
        if len(items) != 1:
            raise PassError(f"{where} takes one value, got {','.join(items)}")
        return f.metadata["parse"](items[0])
    if typing.get_origin(kind) is tuple:
        return tuple(items)
    if len(items) != 1:
        raise PassError(f"{where} takes one value, got {','.join(items)}")
    text = items[0]
    try:
        if kind is bool:
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        want = {bool: "true or false", int: "an integer", float: "a number"}[kind]
        raise PassError(f"{where} must be {want}, got {text!r}") from None
    return text


def format_pass(p: Pass) -> str:
    """``name{opt=value ...}`` with the options that differ from their defaults."""
    cls = type(p)
    opts = []
    for f in options_of(cls):
        value = getattr(p, f.name)
        if value != f.default:
            opts.append(f"{_opt_name(f.name)}={show_value(cls, f, value)}")
    return cls.name + ("{" + " ".join(opts) + "}" if opts else "")


def format_pipeline(passes: Iterable[Pass]) -> str:
    return ",".join(format_pass(p) for p in passes)


# -- reading pipeline text ---------------------------------------------------------------------
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<word>[^\s{},="]+)|(?P<op>[{},=]))')


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise PassError(_caret(text, pos, "unexpected character"))
        kind = m.lastgroup or "op"
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def _caret(text: str, pos: int, why: str) -> str:
    return f"bad pipeline: {why} at column {pos + 1}:\n  {text}\n  {' ' * pos}^"


def parse_pipeline(text: str) -> list[Pass]:
    """The passes ``text`` describes (see the module docstring), with unknown passes and
    options reported by name along with what is known."""
    toks = _tokens(text)
    passes: list[Pass] = []
    i = 0

    def expect(kind: str, value: str | None = None) -> tuple[str, str, int]:
        nonlocal i
        want = repr(value) if value is not None else {"word": "a name"}.get(kind, kind)
        if i >= len(toks):
            raise PassError(_caret(text, len(text), f"expected {want}"))
        tok = toks[i]
        if tok[0] != kind or (value is not None and tok[1] != value):
            raise PassError(_caret(text, tok[2], f"expected {want}, got {tok[1]!r}"))
        i += 1
        return tok

    while i < len(toks):
        _, name, at = expect("word")
        cls = PASSES.get(name)
        if cls is None:
            raise PassError(_caret(text, at, f"unknown pass {name!r}") +
                            f"\nknown passes: {', '.join(sorted(PASSES))}")
        kwargs: dict[str, Any] = {}
        if i < len(toks) and toks[i][1] == "{":
            i += 1
            while i < len(toks) and toks[i][1] != "}":
                if toks[i][1] == "," and kwargs:
                    i += 1  # options may also be separated by commas
                _, key, kat = expect("word")
                fields = {_opt_name(f.name): f for f in options_of(cls)}
                if key not in fields:
                    known = ", ".join(fields) or "none"
                    raise PassError(_caret(text, kat, f"pass {name!r} has no option {key!r}") +
                                    f"\nits options: {known}")
                expect("op", "=")
                items, quoted = [], []
                while True:
                    if i < len(toks) and toks[i][0] in ("word", "str"):
                        kind, value, _ = toks[i]
                        i += 1
                        items.append(unquote(value) if kind == "str" else value)
                        quoted.append(kind == "str")
                    else:
                        pos = toks[i][2] if i < len(toks) else len(text)
                        raise PassError(_caret(text, pos, f"option {key!r} needs a value"))
                    if i < len(toks) and toks[i][1] == "," and i + 1 < len(toks) and \
                            toks[i + 1][0] in ("word", "str") and \
                            (i + 2 >= len(toks) or toks[i + 2][1] != "="):
                        i += 1  # a list continues
                        continue
                    break
                f = fields[key]
                kwargs[f.name] = _parse_value(cls, f, items, quoted)
            expect("op", "}")
        passes.append(cls(**kwargs))
        if i < len(toks):
            expect("op", ",")
            if i >= len(toks):
                raise PassError(_caret(text, len(text), "expected a pass after ','"))
    return passes


def as_passes(pipeline: str | Iterable[str | Pass]) -> list[Pass]:
    """Pipeline text, or a list of pass texts and instances, as pass instances."""
    if isinstance(pipeline, str):
        return parse_pipeline(pipeline) if pipeline.strip() else []
    out: list[Pass] = []
    for item in pipeline:
        out.extend([item] if isinstance(item, Pass) else parse_pipeline(item))
    return out


# -- running -----------------------------------------------------------------------------------
def _check_names(names: Iterable[str], what: str) -> None:
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        known = ", ".join(sorted(PASSES))
        raise PassError(f"unknown pass {', '.join(map(repr, unknown))} in {what}; "
                        f"known passes: {known}")


def run_pipeline(
    graph: Graph,
    pipeline: str | Sequence[str | Pass],
    *,
    verify: bool = False,
    print_after: Iterable[str] = (),
    disabled: Iterable[str] = (),
    on_print: OnPrint | None = None,
) -> Graph:
    """Run ``pipeline`` (text, or pass instances and texts) in order; return the graph.

    ``verify`` checks the IR invariants before the first pass and after every pass, naming the
    pass that broke them. ``on_print(name, ir_text)`` is called after each pass named in
    ``print_after`` (default: print to stdout). Passes named in ``disabled`` are skipped.
    """
    passes = as_passes(pipeline)
    print_after, disabled = list(print_after), set(disabled)
    _check_names(print_after, "print_after")
    _check_names(disabled, "disabled")
    will_run = [p for p in passes if p.name not in disabled]
    idle = [n for n in print_after if n not in {p.name for p in will_run}]
    if idle:
        raise PassError(f"cannot print after {', '.join(map(repr, idle))}: not run by the "
                        f"pipeline {format_pipeline(passes)!r} with disabled {sorted(disabled)}")
    if verify:
        _verify(graph, "before the first pass")
    for p in will_run:
        graph = run_pass(p, graph)
        if verify:
            _verify(graph, f"after pass {p.name!r}")
        if p.name in print_after:
            _print(p.name, graph, on_print)
    return graph


def run_pass(p: Pass, graph: Graph) -> Graph:
    """Run ``p`` on ``graph`` and, when it works in regions, first on every body nested in it
    (innermost first). A body keeps its inputs and outputs: those are the node's interface."""
    if p.in_regions:
        for node in graph.nodes:
            node.regions = tuple(run_pass(p, body) for body in node.regions)
    return p.run(graph)


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
