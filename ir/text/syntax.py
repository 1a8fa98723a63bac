"""Lexical pieces shared by the printer and the parser: names, strings and float spellings.

Kept in one place so that what the printer writes is, by construction, what the parser reads:
every rule here comes as a pair (format / parse).
"""

from __future__ import annotations

import re

import numpy as np

# A name that prints without quotes after '%' or '@'. Anything else (ONNX names with '/', ':',
# spaces, the empty name, ...) prints as a quoted string with escapes.
BARE_NAME = re.compile(r"[A-Za-z0-9_.]+")
# An op or attribute name that prints without quotes.
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words the grammar uses; an op or attribute spelled like one is quoted to stay unambiguous.
KEYWORDS = frozenset({"graph", "const", "dense", "loc", "from", "true", "false", "inf", "nan"})

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_ESCAPE_SEQ = re.compile(r"\\(u\{([0-9a-fA-F]{1,6})\}|.)", re.S)


def quote(s: str) -> str:
    """A double-quoted string literal. Non-printable characters (controls, separators, lone
    surrogates) become ``\\u{hex}`` so the text stays one line per statement and valid UTF-8."""
    out = ['"']
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    out.append('"')
    return "".join(out)


def unquote(lit: str) -> str:
    """Inverse of :func:`quote`; raises ValueError on an unknown escape."""

    def sub(m: re.Match[str]) -> str:
        if m.group(2) is not None:
            code = int(m.group(2), 16)
            if code > 0x10FFFF:
                raise ValueError(f"escape \\u{{{m.group(2)}}} is beyond U+10FFFF")
            return chr(code)
        ch = m.group(1)
        if ch not in _UNESCAPES:
            raise ValueError(f"unknown escape \\{ch} (known: \\\" \\\\ \\n \\t \\r \\u{{hex}})")
        return _UNESCAPES[ch]

    return _ESCAPE_SEQ.sub(sub, lit[1:-1])


def sigil_name(sigil: str, name: str) -> str:
    """``%name`` / ``@name``, quoted when the name is not a bare word."""
    return sigil + (name if BARE_NAME.fullmatch(name) else quote(name))


def ident(name: str) -> str:
    """An op or attribute name, quoted unless it is a plain identifier."""
    return name if IDENT.fullmatch(name) and name not in KEYWORDS else quote(name)


def parse_sigil_name(tok: str) -> str:
    body = tok[1:]
    return unquote(body) if body.startswith('"') else body


def parse_ident(tok: str) -> str:
    return unquote(tok) if tok.startswith('"') else tok


# -- floats ------------------------------------------------------------------------------
_UINT_OF = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _bits(x: np.floating) -> int:
    return int(np.array(x).view(_UINT_OF[x.itemsize]))


def _canonical_nan_bits(dt: np.dtype) -> int:
    return _bits(np.array(np.nan, dtype=dt)[()])


def format_float(x: np.floating | float) -> str:
    """The shortest decimal that reads back to the same value of ``x``'s own type (f16, f32 or
    f64), so parsing gives identical bits. NaNs other than the type's canonical quiet NaN (a
    sign or payload) print their raw bits, ``nan(0x...)``, because no decimal carries them."""
    v = x if isinstance(x, np.generic) else np.float64(x)  # ml_dtypes scalars too
    if np.isnan(v):
        bits = _bits(v)
        if bits == _canonical_nan_bits(v.dtype):
            return "nan"
        return f"nan(0x{bits:0{2 * v.itemsize}x})"
    # numpy's str() is the shortest unique spelling (Dragon4), e.g. '0.1', '1e-07', '-0.0'.
    return str(v)


def parse_float(tok: str, dt: np.dtype) -> np.floating:
    """Inverse of :func:`format_float` for element type ``dt``."""
    dt = np.dtype(dt)
    if tok.startswith("nan("):
        bits = int(tok[4:-1], 16)
        if bits >= 1 << (8 * dt.itemsize):
            raise ValueError(f"NaN bit pattern {tok[4:-1]} is too wide for {dt}")
        v = np.array(bits, dtype=_UINT_OF[dt.itemsize]).view(dt)[()]
        if not np.isnan(v):
            raise ValueError(f"bit pattern {tok[4:-1]} is not a NaN of {dt}")
        return v
    # Decimal -> double -> narrower float rounds correctly for the shortest spellings the
    # printer emits (double has more than 2p+2 bits for p = 11 and 24).
    d = float(tok)
    with np.errstate(over="ignore"):
        v = np.array(d, dtype=np.float64).astype(dt)[()]
    if np.isinf(v) and not np.isinf(d) or np.isnan(v) and not np.isnan(d):
        raise ValueError(f"{tok} is out of range for {dt}")
    return v
