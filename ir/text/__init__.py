"""The IR text format: a lark grammar, a printer and a parser that round-trip exactly.

``parse_graph(print_graph(g, blobs=b), b) == g`` for every graph ``g``; see printer.py for the
notation of large constants and files.py for saving a graph with its blobs.
"""

from ir.text.files import load_ir, save_ir
from ir.text.parser import IRParseError, parse_graph
from ir.text.printer import DEFAULT_MAX_INLINE, format_type, print_graph

__all__ = [
    "DEFAULT_MAX_INLINE",
    "IRParseError",
    "format_type",
    "load_ir",
    "parse_graph",
    "print_graph",
    "save_ir",
]
