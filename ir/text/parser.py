"""Parse IR text (see grammar.lark) back into a Graph.

The parser is faithful, not clever: it rebuilds exactly the graph the text describes, with
the attribute values as written, and leaves checking op semantics to the verifier. It does
check what only it can: names defined once and before use, element types, constant data
matching their types, and blob references resolving. Every error names a line and column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import lark
import numpy as np
from lark import Token, Tree

from ir.graph import Graph, Node, Value
from ir.narrow import int_range
from ir.text.syntax import parse_float, parse_ident, parse_sigil_name
from ir.types import DType, QuantParams, TensorType


class IRParseError(ValueError):
    """IR text that does not parse; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int = 0, column: int = 0, source: str = "") -> None:
        self.line, self.column, self.message = line, column, message
        where = f"line {line}, column {column}: " if line else ""
        snippet = ""
        if line and source:
            lines = source.splitlines()
            if 0 < line <= len(lines):
                snippet = f"\n  {lines[line - 1]}\n  {' ' * (column - 1)}^"
        super().__init__(f"{where}{message}{snippet}")


# Human names for the grammar's terminals, used in "expected ..." messages.
_TERMINAL_NAMES = {
    "VALUE": "a value name (%x)",
    "GLOBAL": "a global name (@name)",
    "STRING": "a string",
    "IDENT": "an identifier",
    "INT": "an integer",
    "FLOAT": "a float",
    "NANBITS": "nan(0x...)",
    "HOLE": "'_'",
    "TRUE": "true",
    "FALSE": "false",
    "$END": "end of input",
}


@cache
def _lark() -> lark.Lark:
    grammar = resources.files("ir.text").joinpath("grammar.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", maybe_placeholders=False)


def _describe(term: str) -> str:
    if term in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[term]
    try:
        pattern = _lark().get_terminal(term).pattern
    except KeyError:
        return term
    return f"'{pattern.value}'" if pattern.type == "str" else term


def _expected(names: set[str]) -> str:
    return ", ".join(sorted({_describe(n) for n in names}))


def parse_graph(text: str, blobs: Mapping[str, np.ndarray] | None = None) -> Graph:
    """Parse one graph. ``blobs`` maps the names of ``@name`` constants to their arrays."""
    try:
        tree = _lark().parse(text)
    except lark.UnexpectedCharacters as e:
        msg = f"unexpected character {text[e.pos_in_stream]!r}"
        if e.allowed:
            msg += f"; expected {_expected(set(e.allowed))}"
        raise IRParseError(msg, e.line, e.column, text) from None
    except lark.UnexpectedEOF as e:
        lines = text.splitlines() or [""]
        raise IRParseError(
            f"unexpected end of input; expected {_expected(set(e.expected))}",
            len(lines), len(lines[-1]) + 1, text,
        ) from None
    except lark.UnexpectedToken as e:
        tok = e.token
        got = "end of input" if tok.type == "$END" else repr(str(tok))
        # LALR's table merges lookaheads; asking the parser what it accepts here is precise.
        expected = e.interactive_parser.accepts() if e.interactive_parser else set(e.expected)
        raise IRParseError(
            f"unexpected {got}; expected {_expected(expected or set(e.expected))}",
            e.line, e.column, text,
        ) from None
    return _Builder(text, blobs or {}).build(tree)


_ELEMENT_PIECE = re.compile(r"\s+|,|[^\s,]+")
_ELEMENT_KINDS = [
    ("INT", re.compile(r"[+-]?[0-9]+")),
    ("FLOAT", re.compile(r"[+-]?([0-9]+\.[0-9]*([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|inf|nan)")),
    ("NANBITS", re.compile(r"nan\(0x[0-9a-fA-F]+\)")),
    ("TRUE", re.compile("true")),
    ("FALSE", re.compile("false")),
]


_FLOAT_PIECE = re.compile(_ELEMENT_KINDS[1][1].pattern + "|" + _ELEMENT_KINDS[0][1].pattern)
_INT_PIECE = _ELEMENT_KINDS[0][1]


def _dense_fast(raw: str, t: TensorType) -> np.ndarray | None:
    """Well-formed dense data, converted in bulk; None when anything is off."""
    pieces = [p.strip() for p in raw.split(",")] if raw.strip() else []
    if len(pieces) != t.size:
        return None
    dt = t.dtype.np
    try:
        if t.dtype.is_float:
            nan_bits = [(i, p) for i, p in enumerate(pieces) if p.startswith("nan(")]
            if not all(_FLOAT_PIECE.fullmatch(pieces[i]) for i in range(len(pieces))
                       if not pieces[i].startswith("nan(")):
                return None
            for i, _ in nan_bits:
                pieces[i] = "nan"
            wide = np.array(pieces, dtype=np.float64)
            with np.errstate(over="ignore"):
                arr = wide.astype(dt)
            if np.any(np.isinf(arr) & ~np.isinf(wide) | np.isnan(arr) & ~np.isnan(wide)):
                return None
            for i, p in nan_bits:
                arr[i] = parse_float(p, dt)
        elif t.dtype is DType.bool:
            if not all(p in ("true", "false") for p in pieces):
                return None
            arr = np.array([p == "true" for p in pieces], dtype=dt)
        else:
            if not all(_INT_PIECE.fullmatch(p) for p in pieces):
                return None
            arr = np.array([int(p) for p in pieces], dtype=dt)
    except (ValueError, OverflowError):
        return None
    return arr.reshape(t.shape)


class _Builder:
    """Walks the parse tree, defining values in order; errors carry token positions."""

    def __init__(self, text: str, blobs: Mapping[str, np.ndarray]) -> None:
        self.text = text
        self.blobs = blobs
        self.env: dict[str, Value] = {}

    def fail(self, tok: Token, msg: str) -> IRParseError:
        return IRParseError(msg, tok.line or 0, tok.column or 0, self.text)

    def build(self, tree: Tree) -> Graph:
        return self.graph_of(tree.children[0])

    def graph_of(self, tree: Tree) -> Graph:
        """One graph, a scope of its own: a region body sees none of the outer names."""
        outer = getattr(self, "graph", None), self.env
        self.env = {}
        name_tok = tree.children[0]
        g = Graph(self.name(name_tok))
        self.graph = g
        out_refs: list[Token] = []
        for child in tree.children[1:]:
            if child.data == "params":
                for p in child.children:
                    vtok, ttree = p.children
                    g.inputs.append(self.define(vtok, self.type(ttree)))
            elif child.data == "refs":
                out_refs = list(child.children)
            elif child.data == "const":
                g.constants.append(self.const(child))
            else:
                g.nodes.append(self.node(child))
        g.outputs = [self.use(t) for t in out_refs]
        self.graph, self.env = outer  # type: ignore[assignment]
        return g

    # -- names ----------------------------------------------------------------------------
    def name(self, tok: Token) -> str:
        try:
            return parse_sigil_name(str(tok))
        except ValueError as e:
            raise self.fail(tok, str(e)) from None

    def define(self, tok: Token, t: TensorType, data: np.ndarray | None = None) -> Value:
        name = self.name(tok)
        if name in self.env:
            raise self.fail(tok, f"value %{name} is defined twice")
        v = Value(name, t, data)
        self.env[name] = v
        # The graph's own name table must know every name, including unusual ones ("").
        self.graph._claim(name)
        return v

    def use(self, tok: Token) -> Value:
        name = self.name(tok)
        if name not in self.env:
            raise self.fail(tok, f"value %{name} is used before it is defined")
        return self.env[name]

    # -- types ----------------------------------------------------------------------------
    def type(self, tree: Tree) -> TensorType:
        dt_tok = tree.children[0]
        try:
            dtype = DType(str(dt_tok))
        except ValueError:
            known = ", ".join(d.value for d in DType)
            raise self.fail(dt_tok, f"unknown element type {str(dt_tok)!r}; expected one of "
                            f"{known}") from None
        shape: tuple[int, ...] = ()
        quant = None
        for sub in tree.children[1:]:
            if sub.data == "dims":
                for d in sub.children:
                    if int(d) < 0:
                        raise self.fail(d, f"dimension {d} is negative")
                shape = tuple(int(d) for d in sub.children)
            else:
                quant = self.quant(sub, dt_tok)
        return TensorType(shape, dtype, quant)

    def quant(self, tree: Tree, where: Token) -> QuantParams:
        fields: dict[str, Any] = {}
        for qf in tree.children:
            key_tok, val = qf.children
            key = str(key_tok)
            if key not in ("scale", "zp", "axis"):
                raise self.fail(key_tok, f"unknown quant field {key!r}; expected scale, zp, axis")
            if key in fields:
                raise self.fail(key_tok, f"quant field {key!r} is given twice")
            fields[key] = self.literal(val)
        for key in ("scale", "zp"):
            if key not in fields:
                raise self.fail(where, f"quant params need '{key}='")
        scale, zp, axis = fields["scale"], fields["zp"], fields.get("axis")
        per_axis = isinstance(scale, list)
        try:
            if per_axis != isinstance(zp, list) or per_axis != (axis is not None):
                raise ValueError("per-axis quant params need lists for scale and zp and an "
                                 "axis; per-tensor ones need single values and no axis")
            if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int)):
                raise ValueError(f"axis must be an integer, got {axis!r}")
            scales = scale if per_axis else [scale]
            zps = zp if per_axis else [zp]
            if any(isinstance(z, bool) or not isinstance(z, int) for z in zps):
                raise ValueError(f"zero points must be integers, got {zp!r}")
            if any(isinstance(s, (bool, str)) for s in scales):
                raise ValueError(f"scales must be numbers, got {scale!r}")
            return QuantParams(tuple(float(s) for s in scales), tuple(zps), axis)
        except ValueError as e:
            raise self.fail(where, str(e)) from None

    # -- statements -----------------------------------------------------------------------
    def const(self, tree: Tree) -> Value:
        vtok, ttree, src = tree.children
        t = self.type(ttree)
        if isinstance(src, Token):  # @blob
            data = self.blob(src, t)
        else:
            data = self.dense(src, t, vtok)
        return self.define(vtok, t, data)

    def blob(self, tok: Token, t: TensorType) -> np.ndarray:
        key = self.name(tok)
        if key not in self.blobs:
            raise self.fail(tok, f"constant data @{key} is not in the blobs given to the parser "
                            "(load the file with load_ir, or pass blobs=)")
        data = np.asarray(self.blobs[key])
        if tuple(data.shape) != t.shape or data.dtype != t.dtype.np:
            raise self.fail(tok, f"blob @{key} holds {data.dtype}{list(data.shape)}, the "
                            f"constant's type is {t}")
        return data

    def dense(self, tree: Tree, t: TensorType, where: Token) -> np.ndarray:
        raw = str(tree.children[0]) if tree.children else ""
        fast = _dense_fast(raw, t)
        if fast is not None:
            return fast
        # The slow path re-reads element by element to say exactly what is wrong, and where.
        toks = self.elements(tree.children[0]) if tree.children else []
        if len(toks) != t.size:
            raise self.fail(where, f"constant of type {t} needs {t.size} elements, "
                            f"got {len(toks)}")
        dt = t.dtype.np
        if t.dtype.is_float:
            arr = np.array([self.float_tok(tok, dt) for tok in toks], dtype=dt)
        elif t.dtype is DType.bool:
            arr = np.array([self.bool_tok(tok) for tok in toks], dtype=dt)
        else:
            lo, hi = int_range(t.dtype)
            ints = [self.int_tok(tok) for tok in toks]
            for tok, i in zip(toks, ints):
                if not lo <= i <= hi:
                    raise self.fail(tok, f"{i} is out of range for {t.dtype.value}")
            arr = np.array(ints, dtype=dt)
        return arr.reshape(t.shape)

    def elements(self, chunk: Token) -> list[Token]:
        """Split the ELEMENTS token into one token per number, each with its own position."""
        text = str(chunk)
        out: list[Token] = []
        expect_item = True
        line, line_start = chunk.line or 0, -((chunk.column or 1) - 1)  # offset of column 1
        for m in _ELEMENT_PIECE.finditer(text):
            piece = m.group()
            if piece[0].isspace():
                if "\n" in piece:
                    line += piece.count("\n")
                    line_start = m.start() + piece.rfind("\n") + 1
                continue
            col = m.start() - line_start + 1
            if piece == ",":
                if expect_item:
                    raise IRParseError("unexpected ','; expected a number", line, col, self.text)
                expect_item = True
                continue
            if not expect_item:
                raise IRParseError(f"unexpected {piece!r}; expected ','", line, col, self.text)
            kind = next((k for k, rx in _ELEMENT_KINDS if rx.fullmatch(piece)), "WORD")
            out.append(Token(kind, piece, line=line, column=col))
            expect_item = False
        if out and expect_item:
            line, col = chunk.end_line or 0, chunk.end_column or 0
            raise IRParseError("unexpected ']'; expected a number", line, col, self.text)
        return out

    def float_tok(self, tok: Token, dt: np.dtype) -> np.floating:
        if tok.type not in ("FLOAT", "INT", "NANBITS"):
            raise self.fail(tok, f"expected a number, got {str(tok)}")
        try:
            return parse_float(str(tok), dt)
        except ValueError as e:
            raise self.fail(tok, str(e)) from None

    def int_tok(self, tok: Token) -> int:
        if tok.type != "INT":
            raise self.fail(tok, f"expected an integer, got {str(tok)}")
        return int(tok)

    def bool_tok(self, tok: Token) -> bool:
        if tok.type not in ("TRUE", "FALSE"):
            raise self.fail(tok, f"expected true or false, got {str(tok)}")
        return tok.type == "TRUE"

    def node(self, tree: Tree) -> Node:
        outs: list[tuple[Token, TensorType]] = []
        ins: list[Value | None] = []
        attrs: dict[str, Any] = {}
        op, name = "", ""
        sources: list[tuple[str, str]] = []
        regions: list[Graph] = []
        for sub in tree.children:
            kind = sub.data
            if kind == "graph":
                regions.append(self.graph_of(sub))
            elif kind == "results":
                outs = [(r.children[0], self.type(r.children[1])) for r in sub.children]
            elif kind == "opname":
                op = self.text_of(sub.children[0])
            elif kind == "operands":
                for o in sub.children:
                    tok = o.children[0]
                    ins.append(None if tok.type == "HOLE" else self.use(tok))
            elif kind == "attrs":
                for a in sub.children:
                    key_tok, val = a.children
                    key = self.text_of(key_tok)
                    if key in attrs:
                        raise self.fail(key_tok, f"attribute {key!r} is given twice")
                    attrs[key] = self.literal(val)
            else:  # loc
                name = self.text_of(sub.children[0])
                for src in (sub.children[1].children if len(sub.children) > 1 else []):
                    sources.append((self.text_of(src.children[0].children[0]),
                                    self.text_of(src.children[1])))
        # Results are defined after the operands are read: a node cannot read its own output.
        outputs = [self.define(tok, t) for tok, t in outs]
        return Node(op, ins, outputs, attrs, name=name, sources=sources, regions=regions)

    def text_of(self, tok: Token) -> str:
        try:
            return parse_ident(str(tok))
        except ValueError as e:
            raise self.fail(tok, str(e)) from None

    def literal(self, tree: Tree) -> Any:
        if tree.data == "list":
            return [self.literal(s) for s in tree.children]
        tok = tree.children[0]
        kind = tok.type
        if kind == "INT":
            return int(tok)
        if kind in ("FLOAT", "NANBITS"):
            return float(self.float_tok(tok, np.dtype(np.float64)))
        if kind == "STRING":
            return self.text_of(tok)
        return kind == "TRUE"

