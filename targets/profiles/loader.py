"""Target files (TOML or JSON) and the built-in profiles, through one parser.

A figure is written either bare (``cores = 24``) or with its source
(``cores = {value = 24, source = "CANN Ascend910B2.ini: ai_core_cnt"}``); a bare figure in a
user file gets the source "user file <path>". Built-in profiles are Python data in exactly the
file format (one module per chip), so they go through the same checks as a user's file, and
:func:`profile_to_data` writes any profile back out in that format.

Every error names the field: ``buffers[L0C].bytes: must be > 0, got 0``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from targets.profiles.schema import (
    Buffer,
    Layout,
    MatrixUnit,
    Memory,
    Profile,
    ProfileError,
    VectorUnit,
    validate,
)

_TOP = {"name", "description", "int8_tops", "rated_int8_tops", "clock_hz", "cores", "launch_us",
        "activation_dtype", "matrix", "vector", "buffers", "offchip", "l2", "layout"}


class _Reader:
    """Pulls typed fields out of nested dicts, recording sources and naming fields in errors."""

    def __init__(self, profile: str, default_source: str | None) -> None:
        self.profile = profile
        self.default_source = default_source

    def fail(self, where: str, msg: str) -> ProfileError:
        return ProfileError(f"target profile {self.profile!r}: {where}: {msg}")

    def take(self, d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str,
             sources: dict[str, str] | None, *, default: Any = ...,
             src_key: str | None = None) -> Any:
        """Field ``key`` of ``d``; with ``sources`` None it is a name, not a figure, and needs
        no source."""
        path = f"{where}.{key}" if where else key
        if key not in d:
            if default is ...:
                raise self.fail(path, "missing field")
            return default
        raw = d[key]
        if isinstance(raw, dict) and "value" in raw:
            extra = set(raw) - {"value", "source"}
            if extra:
                raise self.fail(path, f"unknown keys {sorted(extra)} (expected value, source)")
            value, source = raw["value"], raw.get("source")
        else:
            value, source = raw, None
        if sources is None:
            return self.check(value, kind, path)
        if source is None:
            source = self.default_source
        if source is None or not str(source).strip():
            raise self.fail(path, "has no source (every built-in figure must say where it "
                            "comes from, or 'assumed: why')")
        sources[src_key or key] = str(source)
        return self.check(value, kind, path)

    def check(self, value: Any, kind: type | tuple[type, ...], path: str) -> Any:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(path, f"expected {_names(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise self.fail(path, f"expected {_names(kinds)}, got {type(value).__name__} "
                            f"{value!r}")
        return value

    def table(self, d: dict[str, Any], key: str, where: str = "",
              optional: bool = False) -> dict[str, Any] | None:
        path = f"{where}.{key}" if where else key
        if key not in d:
            if optional:
                return None
            raise self.fail(path, "missing section")
        t = d[key]
        if not isinstance(t, dict):
            raise self.fail(path, f"expected a table, got {type(t).__name__}")
        return t

    def only(self, d: dict[str, Any], allowed: set[str], where: str) -> None:
        extra = sorted(set(d) - allowed)
        if extra:
            raise self.fail(where or "top level", f"unknown field(s) {', '.join(extra)}; "
                            f"known: {', '.join(sorted(allowed))}")


def _names(kinds: tuple[type, ...]) -> str:
    words = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
             list: "a list", dict: "a table"}
    return " or ".join(words.get(k, k.__name__) for k in kinds)


def _int_list(r: _Reader, v: Any, path: str, n: int) -> tuple[int, ...]:
    if not isinstance(v, list) or len(v) != n:
        raise r.fail(path, f"expected a list of {n} integers, got {v!r}")
    return tuple(r.check(x, int, f"{path}[{i}]") for i, x in enumerate(v))


def _per_dtype(r: _Reader, t: dict[str, Any], where: str,
               conv: Callable[[Any, str], Any]) -> tuple[dict[str, Any], dict[str, str]]:
    out: dict[str, Any] = {}
    src: dict[str, str] = {}
    for dt in t:
        out[dt] = conv(r.take(t, dt, (int, list), where, src), f"{where}.{dt}")
    return out, src


def profile_from_data(data: dict[str, Any], *, default_source: str | None = None) -> Profile:
    """Build and validate a Profile from file-format data (see the module docstring)."""
    if not isinstance(data, dict):
        raise ProfileError("a target file must hold a table at the top level")
    if "brief_int8_tops" in data and "rated_int8_tops" not in data:  # the field's old name
        data = {("rated_int8_tops" if k == "brief_int8_tops" else k): v for k, v in data.items()}
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError("target profile: name: missing field (a non-empty string)")
    r = _Reader(name, default_source)
    r.only(data, _TOP, "")
    src: dict[str, str] = {}
    mt = r.table(data, "matrix")
    r.only(mt, {"macs_per_cycle", "block"}, "matrix")
    macs, msrc = _per_dtype(r, r.table(mt, "macs_per_cycle", "matrix"), "matrix.macs_per_cycle",
                            lambda v, p: r.check(v, int, p))
    blocks, bsrc = _per_dtype(r, r.table(mt, "block", "matrix"), "matrix.block",
                              lambda v, p: _int_list(r, v, p, 3))
    matrix = MatrixUnit(macs, blocks, {**{f"macs_per_cycle.{k}": v for k, v in msrc.items()},
                                       **{f"block.{k}": v for k, v in bsrc.items()}})
    vt = r.table(data, "vector")
    r.only(vt, {"width_bytes", "units"}, "vector")
    vsrc: dict[str, str] = {}
    vector = VectorUnit(r.take(vt, "width_bytes", int, "vector", vsrc),
                        r.take(vt, "units", int, "vector", vsrc, default=1), vsrc)
    lt = r.table(data, "layout")
    r.only(lt, {"activation", "weight", "channel_block"}, "layout")
    lsrc: dict[str, str] = {}
    layout = Layout(r.take(lt, "activation", str, "layout", lsrc),
                    r.take(lt, "weight", str, "layout", lsrc),
                    r.take(lt, "channel_block", int, "layout", lsrc), lsrc)
    offchip = _memory(r, r.table(data, "offchip"), "offchip")
    l2t = r.table(data, "l2", optional=True)
    l2 = _memory(r, l2t, "l2") if l2t is not None else None
    bufs = data.get("buffers")
    if not isinstance(bufs, list) or not bufs:
        raise r.fail("buffers", "missing field (a list of buffer tables)")
    buffers = tuple(_buffer(r, b, i) for i, b in enumerate(bufs))
    rated = r.take(data, "rated_int8_tops", float, "", src, default=None)
    prof = Profile(
        name=name,
        description=r.take(data, "description", str, "", None, default=""),
        int8_tops=r.take(data, "int8_tops", float, "", src),
        clock_hz=r.take(data, "clock_hz", float, "", src),
        cores=r.take(data, "cores", int, "", src),
        matrix=matrix, vector=vector, buffers=buffers, offchip=offchip, layout=layout,
        activation_dtype=r.take(data, "activation_dtype", str, "", src),
        l2=l2, rated_int8_tops=rated,
        launch_us=r.take(data, "launch_us", float, "", src, default=0.0), sources=src,
    )
    return validate(prof)


def _memory(r: _Reader, t: dict[str, Any], where: str) -> Memory:
    r.only(t, {"name", "bytes", "bandwidth", "setup_bytes"}, where)
    src: dict[str, str] = {}
    return Memory(r.take(t, "name", str, where, None, default=where),
                  r.take(t, "bytes", int, where, src),
                  r.take(t, "bandwidth", float, where, src),
                  r.take(t, "setup_bytes", float, where, src, default=0.0), src)


_BUF_DEFAULTS = {"shared_by": 1, "double_buffered": False, "fill_bytes_per_cycle": 0.0}
_BUF_FIELDS = {"name", "bytes", "alignment", "roles", "level", "scope", "shared_by",
               "double_buffered", "fill_bytes_per_cycle"}


def _buffer(r: _Reader, t: Any, i: int) -> Buffer:
    if not isinstance(t, dict):
        raise r.fail(f"buffers[{i}]", "expected a table")
    bname = t.get("name")
    if not isinstance(bname, str) or not bname:
        raise r.fail(f"buffers[{i}].name", "missing field (a non-empty string)")
    where = f"buffers[{bname}]"
    r.only(t, _BUF_FIELDS, where)
    src: dict[str, str] = {}
    roles = r.take(t, "roles", list, where, None)
    for j, role in enumerate(roles):
        r.check(role, str, f"{where}.roles[{j}]")
    return Buffer(
        name=bname,
        bytes=r.take(t, "bytes", int, where, src),
        alignment=r.take(t, "alignment", int, where, src),
        roles=tuple(roles),
        level=r.take(t, "level", int, where, None),
        scope=r.take(t, "scope", str, where, None, default="core"),
        shared_by=r.take(t, "shared_by", int, where, src, default=1),
        double_buffered=r.take(t, "double_buffered", bool, where, src, default=False),
        fill_bytes_per_cycle=r.take(t, "fill_bytes_per_cycle", float, where, src, default=0.0),
        sources=src,
    )


def load_target_file(path: str | Path) -> Profile:
    """A profile from a .toml or .json file (TOML needs Python 3.11's tomllib or tomli)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ProfileError(f"cannot read target file {str(p)!r}: {e.strerror or e}") from e
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(raw.decode("utf-8"))
        elif suffix == ".toml":
            data = _toml_loads(raw.decode("utf-8"))
        else:
            raise ProfileError(f"target file {str(p)!r}: expected a .toml or .json file")
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        if isinstance(e, ProfileError):
            raise
        raise ProfileError(f"target file {str(p)!r} is not valid {suffix[1:].upper()}: {e}") from e
    if isinstance(data, list):  # what `qnnc targets NAME --json` prints: a list of profiles
        if len(data) != 1:
            names = [d.get("name", "?") if isinstance(d, dict) else "?" for d in data]
            raise ProfileError(
                f"target file {str(p)!r} holds {len(data)} profiles ({', '.join(map(str, names))}"
                "); a target file describes one chip: write one with `qnnc targets NAME --json "
                "> chip.json` and edit it")
        data = data[0]
    return profile_from_data(data, default_source=f"user file {p.name}")


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError as e:
            raise ProfileError("TOML target files need Python 3.11 or the tomli package; "
                               "use a .json target file instead") from e
    return tomllib.loads(text)


def profile_to_data(p: Profile) -> dict[str, Any]:
    """The file-format data of ``p`` (every figure with its source); JSON-serialisable."""

    def fig(v: Any, srcs: dict[str, str], key: str) -> Any:
        s = srcs.get(key)
        v = list(v) if isinstance(v, tuple) else v
        return {"value": v, "source": s} if s else v

    data: dict[str, Any] = {
        "name": p.name, "description": p.description,
        "int8_tops": fig(p.int8_tops, p.sources, "int8_tops"),
        "clock_hz": fig(p.clock_hz, p.sources, "clock_hz"),
        "cores": fig(p.cores, p.sources, "cores"),
        "activation_dtype": fig(p.activation_dtype, p.sources, "activation_dtype"),
        "matrix": {
            "macs_per_cycle": {k: fig(v, p.matrix.sources, f"macs_per_cycle.{k}")
                               for k, v in p.matrix.macs_per_cycle.items()},
            "block": {k: fig(v, p.matrix.sources, f"block.{k}")
                      for k, v in p.matrix.block.items()},
        },
        "vector": {k: fig(getattr(p.vector, k), p.vector.sources, k)
                   for k in ("width_bytes", "units")},
        "layout": {k: fig(getattr(p.layout, k), p.layout.sources, k)
                   for k in ("activation", "weight", "channel_block")},
        "offchip": _mem_data(p.offchip, fig),
        "buffers": [
            {"name": b.name, "roles": list(b.roles), "level": b.level, "scope": b.scope,
             **{k: fig(getattr(b, k), b.sources, k)
                for k in ("bytes", "alignment", "shared_by", "double_buffered",
                          "fill_bytes_per_cycle")
                if k in b.sources or getattr(b, k) != _BUF_DEFAULTS.get(k)}}
            for b in p.buffers
        ],
    }
    if p.rated_int8_tops is not None:
        data["rated_int8_tops"] = fig(p.rated_int8_tops, p.sources, "rated_int8_tops")
    if p.l2 is not None:
        data["l2"] = _mem_data(p.l2, fig)
    if p.launch_us:
        data["launch_us"] = fig(p.launch_us, p.sources, "launch_us")
    return data


def _mem_data(m: Memory, fig: Callable[[Any, dict[str, str], str], Any]) -> dict[str, Any]:
    data = {"name": m.name, "bytes": fig(m.bytes, m.sources, "bytes"),
            "bandwidth": fig(m.bandwidth, m.sources, "bandwidth")}
    if m.setup_bytes:
        data["setup_bytes"] = fig(m.setup_bytes, m.sources, "setup_bytes")
    return data
