"""Storage layouts: how a tensor's logical elements sit in memory on a target.

The IR's values are logical tensors (NCHW activations, OIHW weights); a layout only says where
each logical element is stored, so the interpreter ignores layouts and the C code generators
honour them. A layout is named by a short string, carried by the ``layout`` annotation of the
producing node (and ``weight_layout`` for a constant weight operand):

- ``""`` -- plain row-major (the default).
- ``NC1HWC0:32`` -- Ascend's 5-D activation layout for a 4-D [N, C, H, W] tensor:
  [N, ceil(C/C0), H, W, C0], channels zero-padded to a multiple of C0.
- ``NHWC:64`` -- channels innermost, padded to a multiple of 64 (MLU370's aligned stripes):
  [N, H, W, pad(C, 64)].
- ``FRACTAL_Z:16x32`` -- Ascend's convolution weight layout for [M, Cg, KH, KW]:
  [ceil(Cg/32) * KH * KW, ceil(M/16), 16, 32] (16 x 32 fractals, output channel major within).
- ``OI32i32o`` -- blocked weights [ceil(M/32), ceil(Cg/32), KH, KW, 32 (in), 32 (out)].
- ``OHWI:64`` -- weights [M, KH, KW, pad(Cg, 64)].

Padding elements hold zero. :func:`pack` and :func:`unpack` convert numpy arrays (the C code's
reference); :func:`offset_expr` gives the C expression of an element's offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

PLAIN = ""
_FORM = re.compile(r"^(NC1HWC0|NHWC|OHWI):([1-9][0-9]{0,3})$|^FRACTAL_Z:([1-9][0-9]{0,2})x"
                   r"([1-9][0-9]{0,2})$|^OI([1-9][0-9]{0,2})i([1-9][0-9]{0,2})o$")


class LayoutError(ValueError):
    """An unknown layout name, or a layout applied to a tensor of the wrong rank."""


@dataclass(frozen=True)
class Layout:
    """A parsed layout: ``kind`` and its block sizes (``a`` and, for two-block kinds, ``b``)."""

    name: str
    kind: str
    a: int = 0
    b: int = 0

    @property
    def is_weight(self) -> bool:
        return self.kind in ("FRACTAL_Z", "OI", "OHWI")


def parse(name: str) -> Layout:
    if name == PLAIN:
        return Layout(PLAIN, "plain")
    m = _FORM.match(name)
    if m is None:
        raise LayoutError(f"unknown layout {name!r}; layouts are '', NC1HWC0:<c0>, NHWC:<align>, "
                          "FRACTAL_Z:<n0>x<c0>, OI<i>i<o>o, OHWI:<align>")
    if m.group(1):
        return Layout(name, m.group(1), int(m.group(2)))
    if m.group(3):
        return Layout(name, "FRACTAL_Z", int(m.group(3)), int(m.group(4)))
    return Layout(name, "OI", int(m.group(5)), int(m.group(6)))


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def physical_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The stored array's shape for a logical ``shape`` (4-D for every non-plain layout)."""
    lay = parse(name)
    if lay.kind == "plain":
        return tuple(shape)
    if len(shape) != 4:
        raise LayoutError(f"layout {name!r} needs a 4-D tensor, got shape {list(shape)}")
    n, c, h, w = shape
    if lay.kind == "NC1HWC0":
        return (n, _cdiv(c, lay.a), h, w, lay.a)
    if lay.kind in ("NHWC", "OHWI"):
        return (n, h, w, _cdiv(c, lay.a) * lay.a)
    if lay.kind == "FRACTAL_Z":  # n = M output channels, c = Cg input channels
        return (_cdiv(c, lay.b) * h * w, _cdiv(n, lay.a), lay.a, lay.b)
    return (_cdiv(n, lay.b), _cdiv(c, lay.a), h, w, lay.a, lay.b)  # OI<a>i<b>o


def physical_size(name: str, shape: tuple[int, ...]) -> int:
    return int(np.prod(physical_shape(name, shape), dtype=np.int64))


def pack(name: str, x: np.ndarray) -> np.ndarray:
    """The stored form of logical ``x`` (padding zero)."""
    lay = parse(name)
    if lay.kind == "plain":
        return np.ascontiguousarray(x)
    ps = physical_shape(name, x.shape)
    n, c, h, w = x.shape
    if lay.kind == "NC1HWC0":
        p = np.zeros((n, ps[1] * lay.a, h, w), x.dtype)
        p[:, :c] = x
        return np.ascontiguousarray(p.reshape(n, ps[1], lay.a, h, w).transpose(0, 1, 3, 4, 2))
    if lay.kind in ("NHWC", "OHWI"):
        p = np.zeros((n, h, w, ps[3]), x.dtype)
        p[..., :c] = x.transpose(0, 2, 3, 1)
        return p
    if lay.kind == "FRACTAL_Z":
        n1, n0, c0 = ps[1], lay.a, lay.b
        c1 = _cdiv(c, c0)
        p = np.zeros((n1 * n0, c1 * c0, h, w), x.dtype)
        p[:n, :c] = x
        # [n1, n0, c1, c0, h, w] -> [c1, h, w, n1, n0, c0]
        q = p.reshape(n1, n0, c1, c0, h, w).transpose(2, 4, 5, 0, 1, 3)
        return np.ascontiguousarray(q.reshape(ps))
    o1, i1 = ps[0], ps[1]
    p = np.zeros((o1 * lay.b, i1 * lay.a, h, w), x.dtype)
    p[:n, :c] = x
    q = p.reshape(o1, lay.b, i1, lay.a, h, w).transpose(0, 2, 4, 5, 3, 1)
    return np.ascontiguousarray(q)


def unpack(name: str, stored: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The logical tensor of ``shape`` held in ``stored`` (inverse of :func:`pack`)."""
    lay = parse(name)
    if lay.kind == "plain":
        return stored.reshape(shape)
    n, c, h, w = shape
    s = stored.reshape(physical_shape(name, shape))
    if lay.kind == "NC1HWC0":
        return np.ascontiguousarray(
            s.transpose(0, 1, 4, 2, 3).reshape(n, -1, h, w)[:, :c])
    if lay.kind in ("NHWC", "OHWI"):
        return np.ascontiguousarray(s[..., :c].transpose(0, 3, 1, 2))
    if lay.kind == "FRACTAL_Z":
        c1 = _cdiv(c, lay.b)
        q = s.reshape(c1, h, w, -1, lay.a, lay.b).transpose(3, 4, 0, 5, 1, 2)
        return np.ascontiguousarray(q.reshape(-1, c1 * lay.b, h, w)[:n, :c])
    q = s.transpose(0, 5, 1, 4, 2, 3)
    return np.ascontiguousarray(q.reshape(q.shape[0] * lay.b, -1, h, w)[:n, :c])


def offset_expr(name: str, shape: tuple[int, ...], i: tuple[str, str, str, str]) -> str:
    """C expression of the stored offset of logical element (i0, i1, i2, i3) of a 4-D tensor
    of ``shape`` ([N, C, H, W] activations, [M, Cg, KH, KW] weights)."""
    lay = parse(name)
    n, c, h, w = shape
    a, b, y, x = i
    if lay.kind == "plain":
        return f"((({a})*{c} + ({b}))*{h} + ({y}))*{w} + ({x})"
    if lay.kind == "NC1HWC0":
        c1 = _cdiv(c, lay.a)
        return (f"(((({a})*{c1} + ({b})/{lay.a})*{h} + ({y}))*{w} + ({x}))*{lay.a}"
                f" + ({b})%{lay.a}")
    if lay.kind in ("NHWC", "OHWI"):
        cp = _cdiv(c, lay.a) * lay.a
        return f"((({a})*{h} + ({y}))*{w} + ({x}))*{cp} + ({b})"
    if lay.kind == "FRACTAL_Z":
        n1, n0, c0 = _cdiv(n, lay.a), lay.a, lay.b
        return (f"((((({b})/{c0})*{h} + ({y}))*{w} + ({x}))*{n1} + ({a})/{n0})*{n0 * c0}"
                f" + (({a})%{n0})*{c0} + ({b})%{c0}")
    o1, i1 = _cdiv(n, lay.b), _cdiv(c, lay.a)
    del o1
    return (f"((((({a})/{lay.b})*{i1} + ({b})/{lay.a})*{h} + ({y}))*{w} + ({x}))"
            f"*{lay.a * lay.b} + (({b})%{lay.a})*{lay.b} + ({a})%{lay.b}")
