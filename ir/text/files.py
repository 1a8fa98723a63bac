"""Saving and loading IR with its large constants: ``path`` holds the text, ``path.npz`` the
arrays that the text references as ``@name``.

Blob names are value names, which may hold any character; the .npz therefore stores the arrays
under positional keys and the names in a string array, so no name is mangled by zip paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ir.graph import Graph
from ir.text.parser import parse_graph
from ir.text.printer import DEFAULT_MAX_INLINE, print_graph

_NAMES_KEY = "__names__"


def blob_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".npz")


def save_ir(
    graph: Graph, path: str | os.PathLike[str], *, max_inline: int | None = DEFAULT_MAX_INLINE
) -> None:
    """Write ``graph`` as text to ``path`` and its large constants to ``path.npz``."""
    blobs: dict[str, np.ndarray] = {}
    text = print_graph(graph, blobs=blobs, max_inline=max_inline)
    Path(path).write_text(text, encoding="utf-8")
    if blobs:
        save_blobs(blobs, blob_path(path))


def load_ir(path: str | os.PathLike[str]) -> Graph:
    """Read a graph written by :func:`save_ir` (the .npz is optional if nothing refers to it)."""
    text = Path(path).read_text(encoding="utf-8")
    bp = blob_path(path)
    return parse_graph(text, load_blobs(bp) if bp.exists() else None)


def save_blobs(blobs: dict[str, np.ndarray], path: str | os.PathLike[str]) -> None:
    names = list(blobs)
    arrays = {f"b{i}": np.ascontiguousarray(blobs[n]) for i, n in enumerate(names)}
    with open(path, "wb") as f:
        np.savez(f, **arrays, **{_NAMES_KEY: np.array(names, dtype=np.str_)})


def load_blobs(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of a blob file; never unpickles (allow_pickle=False)."""
    with np.load(path, allow_pickle=False) as z:
        names = [str(n) for n in z[_NAMES_KEY]] if _NAMES_KEY in z.files else []
        return {n: z[f"b{i}"] for i, n in enumerate(names)}
