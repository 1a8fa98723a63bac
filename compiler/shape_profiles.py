"""Shape profiles: the set of input shapes one compiled model serves.

A model whose inputs have symbolic dimensions (an OCR recogniser's text-line width, a
detector's image size, a transformer's sequence length) compiles for a list of concrete
shapes, one *profile* each, into one output folder; ``run()`` picks the profile that matches
the feeds (see compiler/profiled.py). A profile fixes every input's shape.

How profiles are written (``--input-shape`` on the command line, ``input_shapes=`` in the
API):

- ``x=1x3x224x224``: one shape for input ``x`` (one profile);
- ``x=1x3x48x160|320|640``: alternatives for a dimension (three profiles);
- ``x=1x3x640x640,1x3x960x960``: several whole shapes for one input (two profiles);
- ``seq=16..512:*2`` / ``seq=16..64:+16``: a range for a symbolic dimension named by the
  model (its ``dim_param``); every input using ``seq`` takes the same value in a profile;
- several items (comma-separated ``NAME=...`` in one flag, or repeated flags) combine as a
  product, keeping only the combinations where a dimension name shared by several inputs
  takes one value;
- ``;`` separates alternatives listed one by one: ``"ids=1x1,past=1x4x63x8;ids=1x16,past=1x4x0x8"``.

In Python the same is a dict (``{"x": [(1, 3, 48, 160), (1, 3, 48, 320)]}``, ``{"x": (1, 3,
48, [160, 320])}``, ``{"seq": [1, 16, 32]}``), a list of such dicts (alternatives), or the
text above.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import onnx

from compiler.errors import ConversionError, InputError, QnncError
from compiler.frontend.tensors import elem_type_name
from ir.types import DType

#: more profiles than this is almost surely a mistake in the spec (each one is compiled)
MAX_PROFILES = 64

Dim = int | str | None
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
Shapes = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class InputSig:
    """A model input as declared: each dimension a size, a symbol name, or None (unknown)."""

    name: str
    dtype: str
    dims: tuple[Dim, ...] | None  # None: no shape declared at all

    @property
    def symbolic(self) -> bool:
        return self.dims is None or any(not isinstance(d, int) for d in self.dims)

    def text(self) -> str:
        if self.dims is None:
            return f"{self.dtype}[?]"
        return f"{self.dtype}[{','.join('?' if d is None else str(d) for d in self.dims)}]"


def signature(model: onnx.ModelProto) -> list[InputSig]:
    """The model's inputs (initializers excluded) with their declared dimensions."""
    inits = {t.name for t in model.graph.initializer}
    out = []
    for inp in model.graph.input:
        if inp.name in inits or not inp.type.HasField("tensor_type"):
            continue
        tt = inp.type.tensor_type
        try:
            dtype = DType.from_numpy(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)).value
        except (KeyError, TypeError, ValueError):  # shown only; the importer reports it
            dtype = elem_type_name(tt.elem_type)
        if not tt.HasField("shape"):
            out.append(InputSig(inp.name, dtype, None))
            continue
        dims: list[Dim] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                # a name ties dimensions together; "?" and the like are just "unknown"
                name = d.dim_param
                dims.append(name if _NAME.fullmatch(name) else None)
        out.append(InputSig(inp.name, dtype, tuple(dims)))
    return out


def profile_text(shapes: Mapping[str, Sequence[int]]) -> str:
    """``x=1x3x48x160`` (inputs joined by commas): how a profile is shown and written."""
    return ",".join(f"{n}={'x'.join(str(d) for d in s)}" for n, s in shapes.items())


# -- the text syntax ------------------------------------------------------------------------

_RANGE = re.compile(r"^(\d+)\.\.(\d+)(?::([*+])(\d+))?$")


def _dim_values(tok: str, spec: str) -> list[int]:
    """One dimension of the text syntax: ``N``, ``N|M|...`` or ``A..B:+S`` / ``A..B:*K``."""
    vals: list[int] = []
    for alt in tok.split("|"):
        alt = alt.strip()
        m = _RANGE.match(alt)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            op, step = m.group(3) or "+", int(m.group(4) or 1)
            if lo <= 0 or hi < lo or step < 1 or (op == "*" and step < 2):
                raise QnncError(f"bad --input-shape {spec!r}: range {alt!r} must go up from a "
                                "positive size, by +N (N >= 1) or *K (K >= 2)")
            v = lo
            while v <= hi:
                vals.append(v)
                v = v + step if op == "+" else v * step
        elif alt.isdigit() and int(alt) > 0:
            vals.append(int(alt))
        else:
            raise QnncError(
                f"bad --input-shape {spec!r}: {alt!r} is not a size; a dimension is N, N|M|... "
                "or a range A..B:+S (step S) / A..B:*K (times K), e.g. x=1x3x48x160|320")
    return vals


def _shapes_of(text: str, spec: str) -> list[tuple[int, ...]]:
    """Every shape one ``DIMS`` text stands for (the product of its dimensions' values)."""
    toks = text.strip().lower().split("x")
    if not text.strip() or any(not t.strip() for t in toks):
        raise QnncError(f"bad --input-shape {spec!r}: write dimensions separated by 'x', e.g. "
                        "input=1x3x224x224")
    return [tuple(p) for p in itertools.product(*(_dim_values(t, spec) for t in toks))]


def parse_text(spec: str, sig: Sequence[InputSig] = ()) -> list[dict[str, list[Any]]]:
    """The alternatives of one ``--input-shape`` value: each maps an input name to its
    shapes, or a dimension name to its sizes."""
    inputs = {s.name for s in sig}
    symbols = {d for s in sig if s.dims for d in s.dims if isinstance(d, str)}
    ranks = {s.name: len(s.dims) for s in sig if s.dims is not None}
    alternatives = []
    for alt in spec.split(";"):
        items: dict[str, list[Any]] = {}
        last: str | None = None
        for part in alt.split(","):
            part = part.strip()
            if "=" in part:
                name, _, dims = part.rpartition("=")
                name = name.strip()
                if not name:
                    raise QnncError(f"bad --input-shape {spec!r}: write NAME=DIMS, e.g. "
                                    "--input-shape input=1x3x224x224")
                if name in items:
                    raise QnncError(f"--input-shape gives {name!r} twice; list its shapes "
                                    f"once, separated by commas ({name}=A,B)")
                last, items[name] = name, [dims.strip()]
            elif last is not None and part:
                items[last].append(part)
            else:
                raise QnncError(f"bad --input-shape {spec!r}: write NAME=DIMS, e.g. "
                                "--input-shape input=1x3x224x224")
        for name, texts in items.items():
            if name not in inputs and name not in symbols:
                raise _unknown_name([name], sig)
            if name not in inputs:  # a dimension name: sizes
                items[name] = [v for t in texts for v in _dim_values(t, spec)]
            elif len(texts) > 1 and all(t.isdigit() for t in texts) and \
                    ranks.get(name) == len(texts):
                items[name] = [tuple(int(t) for t in texts)]  # the old spelling x=1,3,224,224
            else:
                items[name] = [s for t in texts for s in _shapes_of(t, spec)]
        alternatives.append(items)
    return alternatives


# -- expansion --------------------------------------------------------------------------------


def _items_of_mapping(spec: Mapping[str, Any], sig: Sequence[InputSig]) -> dict[str, list[Any]]:
    """A dict spec as name -> alternatives (shapes for inputs, sizes for dimension names)."""
    inputs = {s.name for s in sig}
    items: dict[str, list[Any]] = {}
    for name, value in spec.items():
        if isinstance(value, str):
            items[name] = (_shapes_of(value, f"{name}={value}") if name in inputs
                           else _dim_values(value, f"{name}={value}"))
        elif isinstance(value, int):
            items[name] = [int(value)] if name not in inputs else [(int(value),)]
        elif isinstance(value, Sequence) and name not in inputs:
            items[name] = [int(v) for v in value]
        elif isinstance(value, Sequence):
            seq = list(value)
            if seq and all(isinstance(v, Sequence) and all(isinstance(d, int) for d in v)
                           for v in seq):
                items[name] = [tuple(int(d) for d in v) for v in seq]  # a list of shapes
            else:  # one shape, in which a dimension may be a list of sizes
                per_dim = [[int(x) for x in d] if isinstance(d, Sequence) else [int(d)]
                           for d in seq]
                items[name] = [tuple(p) for p in itertools.product(*per_dim)]
        else:
            raise QnncError(f"input_shapes[{name!r}] must be a shape, a list of shapes or "
                            f"sizes, got {type(value).__name__}")
    return items


def _alternatives(spec: Any, sig: Sequence[InputSig]) -> list[dict[str, list[Any]]]:
    if isinstance(spec, str):
        return parse_text(spec, sig)
    if isinstance(spec, Mapping):
        return [_items_of_mapping(spec, sig)]
    if isinstance(spec, Sequence):
        out: list[dict[str, list[Any]]] = []
        texts = [s for s in spec if isinstance(s, str)]
        if texts and len(texts) == len(spec):  # repeated CLI flags: a product of factors
            factors = [parse_text(t, sig) for t in texts]
            for combo in itertools.product(*factors):
                merged: dict[str, list[Any]] = {}
                for part in combo:
                    for k, v in part.items():
                        if k in merged:
                            raise QnncError(f"--input-shape gives {k!r} twice; list its "
                                            f"shapes once, separated by commas ({k}=A,B)")
                        merged[k] = v
                out.append(merged)
            return out
        for s in spec:
            out += _alternatives(s, sig)
        return out
    raise QnncError(f"input_shapes must be a dict, a list of dicts or shape text, got "
                    f"{type(spec).__name__}")


def expand(spec: Any, sig: Sequence[InputSig]) -> list[Shapes]:
    """Every profile ``spec`` stands for, each giving every input's full shape (in model
    input order), duplicates dropped. ``spec`` None: [] (the model's declared shapes).

    Raises ConversionError when a shape contradicts the model (rank, a fixed size), names
    no input or dimension of the model, or leaves a dimension unknown."""
    if spec is None or (isinstance(spec, (Mapping, list, tuple)) and not spec):
        return []
    by_name = {s.name: s for s in sig}
    symbols = {d for s in sig if s.dims for d in s.dims if isinstance(d, str)}
    profiles: list[Shapes] = []
    for items in _alternatives(spec, sig):
        unknown = sorted(set(items) - set(by_name) - symbols)
        if unknown:
            raise _unknown_name(unknown, sig)
        for name, alts in items.items():
            if name in by_name:
                for shape in alts:
                    _check_against(by_name[name], shape)
        keys = list(items)
        kept = 0
        for combo in itertools.product(*(items[k] for k in keys)):
            prof = _resolve(dict(zip(keys, combo)), sig)
            if prof is not None:
                kept += 1
                if prof not in profiles:
                    profiles.append(prof)
            if len(profiles) > MAX_PROFILES:
                raise QnncError(f"--input-shape makes more than {MAX_PROFILES} profiles; each "
                                "is compiled separately: list fewer sizes")
        if kept == 0:
            raise ConversionError(
                f"--input-shape {_show(items)}: no combination gives a dimension shared by "
                "several inputs one size; give those inputs matching sizes")
    for prof in profiles:
        _check_complete(prof, sig)
    return profiles


def _unknown_name(unknown: list[str], sig: Sequence[InputSig]) -> ConversionError:
    names = ", ".join(repr(n) for n in sorted(s.name for s in sig)) or "none"
    dims = ", ".join(repr(d) for d in sorted({d for s in sig if s.dims for d in s.dims
                                              if isinstance(d, str)})) or "none"
    return ConversionError(f"--input-shape names {unknown}, which is neither an input of the "
                           f"model ({names}) nor one of its dimension names ({dims})")


def _show(items: Mapping[str, list[Any]]) -> str:
    return ", ".join(f"{k}={v}" for k, v in items.items())


def _check_against(s: InputSig, shape: tuple[int, ...]) -> None:
    if s.dims is None:
        return
    if len(shape) != len(s.dims):
        raise ConversionError(f"--input-shape for {s.name!r} has rank {len(shape)} "
                              f"({'x'.join(map(str, shape))}), the model's input {s.text()} "
                              f"has rank {len(s.dims)}")
    for i, (want, got) in enumerate(zip(s.dims, shape)):
        if isinstance(want, int) and want != got:
            raise ConversionError(
                f"--input-shape for {s.name!r} gives {'x'.join(map(str, shape))}, but the model "
                f"fixes dimension {i} of {s.text()} to {want}; keep it at {want}")


def _resolve(assign: Mapping[str, Any], sig: Sequence[InputSig]) -> Shapes | None:
    """Full shapes from one combination, or None when a shared dimension name would take two
    sizes."""
    sym: dict[str, int] = {k: v for k, v in assign.items() if isinstance(v, int)}
    for s in sig:
        shape = assign.get(s.name)
        if shape is None or s.dims is None:
            continue
        for d, v in zip(s.dims, shape):
            if isinstance(d, str):
                if sym.setdefault(d, v) != v:
                    return None
    out: Shapes = {}
    for s in sig:
        shape = assign.get(s.name)
        if shape is not None:
            out[s.name] = tuple(shape)
        elif s.dims is not None:
            out[s.name] = tuple(d if isinstance(d, int) else sym.get(d, 0) if isinstance(d, str)
                                else 0 for d in s.dims)
    return out


def suggest(s: InputSig) -> str:
    """An --input-shape value for ``s``: fixed sizes kept, a symbolic batch dimension 1, each
    other open dimension a placeholder named after it."""
    if s.dims is None:
        return "1x3x224x224"
    out = []
    for i, d in enumerate(s.dims):
        if isinstance(d, int):
            out.append(str(d))
        elif i == 0 and len(s.dims) > 1:
            out.append("1")
        elif isinstance(d, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,15}", d):
            out.append(f"<{d}>")
        else:
            out.append(f"<d{i}>")
    return "x".join(out) or "1"


def _check_complete(prof: Shapes, sig: Sequence[InputSig]) -> None:
    for s in sig:
        shape = prof.get(s.name)
        if shape is None or 0 in shape:
            raise ConversionError(
                f"input {s.name!r} ({s.text()}) has a symbolic or unknown dimension that "
                f"--input-shape leaves open; give it, e.g. --input-shape {s.name}="
                f"{suggest(s)}")


# -- matching feeds to profiles ---------------------------------------------------------------


def pick(profiles: Sequence[Shapes], shapes: Mapping[str, tuple[int, ...]],
         pad: bool) -> tuple[int, bool]:
    """(index of the profile for feeds of ``shapes``, whether the feeds need padding). With
    ``pad``, a shape no profile matches goes to the smallest profile at least as large in
    every dimension. Raises InputError listing the profiles otherwise."""
    for k, prof in enumerate(profiles):
        if all(tuple(shapes.get(n, ())) == tuple(s) for n, s in prof.items()):
            return k, False
    if pad:
        fits = [k for k, prof in enumerate(profiles)
                if all(len(shapes.get(n, ())) == len(s) and
                       all(a <= b for a, b in zip(shapes[n], s)) for n, s in prof.items())]
        if fits:
            def volume(k: int) -> int:
                return sum(int(_prod(s)) for s in profiles[k].values())

            return min(fits, key=volume), True
    listed = "; ".join(profile_text(p) for p in profiles)
    got = profile_text({n: tuple(s) for n, s in shapes.items()})
    how = ("no profile is at least as large in every dimension" if pad else
           "recompile with this shape added to --input-shape, or with --pad-to-profile if "
           "padding the input with zeros at the end is valid for this model")
    raise InputError(f"the feeds' shapes ({got}) match none of the model's {len(profiles)} "
                     f"shape profiles ({listed}); {how}")


def _prod(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


__all__ = ["MAX_PROFILES", "InputSig", "Shapes", "expand", "parse_text", "pick",
           "profile_text", "signature"]
